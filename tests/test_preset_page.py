"""Presets on the board page, in Chromium: asking before replacing one, saying what a recall
skipped, and refusing preset actions visibly while the page cannot reach the server."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from sliders.models import Preset
from tests.support.browser import SERVER_DOWN_NOISE, shows
from tests.support.database import slider_row
from tests.support.waiting import wait_until_blocking

pytestmark = pytest.mark.browser


def presets_of(board: Any) -> dict[str, dict[str, float]]:
    return dict(Preset.objects.filter(board=board).values_list("name", "values"))


def test_saving_under_a_taken_name_asks_in_the_page_first(make_board, page_on):
    board = make_board()
    Preset.objects.create(board=board, name="Quiet", values={"s1": 5, "s2": 5})
    page = page_on(board.slug)
    confirm = page.locator("#preset-confirm")
    page.locator("#preset-name").fill("quiet")  # the same name, in another case
    page.locator("#preset-save button").click()
    expect(page.locator("#preset-confirm-text")).to_have_text(
        "There is a preset “Quiet” already. Replace it with the current values?"
    )
    expect(page.locator("#preset-keep")).to_be_focused()  # the safe answer first
    assert presets_of(board) == {"Quiet": {"s1": 5, "s2": 5}}

    page.locator("#preset-keep").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#preset-name")).to_have_value("quiet")
    assert presets_of(board) == {"Quiet": {"s1": 5, "s2": 5}}

    page.locator("#preset-save button").click()
    page.locator("#preset-replace").click()
    expect(page.locator("#message")).to_have_text("Replaced the preset “quiet”.")
    expect(confirm).to_be_hidden()
    expect(page.locator("#preset-name")).to_have_value("")
    assert presets_of(board) == {"quiet": {"s1": 50, "s2": 50}}
    # The page fixture fails the test on any browser dialog (window.confirm and the like).


def test_a_recall_on_the_page_says_what_it_skipped_or_fitted(make_board, page_on):
    board = make_board()
    Preset.objects.create(board=board, name="Old", values={"s1": 250, "gone": 5})
    page = page_on(board.slug)
    page.locator('button.preset[data-preset="Old"]').click()
    expect(page.locator("#message")).to_have_text(
        "Recalled “Old”. Skipped gone: no longer on the board. "
        "Fitted to the sliders as they are now: Slider 1 250 → 100."
    )
    shows(page, "100")

    page.locator("#preset-fade").select_option("2")
    page.locator("#slider-s1").focus()
    page.keyboard.press("Home")
    shows(page, "0")
    page.locator('button.preset[data-preset="Old"]').click()
    expect(page.locator("#message")).to_contain_text("Fading to “Old”… Skipped gone")
    expect(page.locator("#message")).to_have_text(
        "Recalled “Old”. Skipped gone: no longer on the board. "
        "Fitted to the sliders as they are now: Slider 1 250 → 100.",
        timeout=5000,
    )
    expect(page.locator("#message")).to_have_attribute("data-kind", "warning")


def test_preset_actions_offline_are_refused_visibly_and_never_sent_later(make_board, page_on):
    board = make_board()
    Preset.objects.create(board=board, name="Up", values={"s1": 90})
    page = page_on(board.slug, allow_console=SERVER_DOWN_NOISE)
    page.context.set_offline(True)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "offline")

    page.locator('button.preset[data-preset="Up"]').click()
    expect(page.locator("#message")).to_have_text(
        "Not connected: “Up” was not recalled. Recall it again once the page is connected."
    )
    page.locator("#preset-name").fill("Later")
    page.locator("#preset-save button").click()
    expect(page.locator("#message")).to_have_text(
        "Not connected: “Later” was not saved. Save it again once the page is connected."
    )
    expect(page.locator("#preset-name")).to_have_value("Later")  # to save again

    page.context.set_offline(False)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    # A move made now is handled after anything the page might have held back and sent on
    # reconnecting (one connection's changes are handled in order): once it is stored,
    # nothing else is coming.
    page.locator("#slider-s2").focus()
    page.keyboard.press("End")
    wait_until_blocking(lambda: slider_row(board, "s2").value == 100, what="the later move")
    assert slider_row(board).value == 50
    assert presets_of(board) == {"Up": {"s1": 90}}
