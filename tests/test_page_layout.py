"""The board page holds still: nothing moves under a person's finger because someone else did
something (a hand shown on a slider, a message, the connection's status). Chromium, on a
desktop and on a phone; element positions measured before and after.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE, SERVER_DOWN_NOISE

pytestmark = pytest.mark.browser

DEVICES = {"desktop": DESKTOP, "phone": PHONE}
SLIDERS = [{"slug": f"s{i}", "name": f"Slider {i}", "value": 50} for i in range(1, 5)]
# What a person could be touching: every slider card and its input, the presets.
MEASURED = ".slider, .slider input, #presets, #preset-list button"


def layout(page: Any) -> list[tuple[str, float, float, float, float]]:
    """Where every measured element is on the page (not the viewport): id, x, y, width, height."""
    return page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(selector), (el) => {
            const box = el.getBoundingClientRect();
            const name = el.id || el.dataset.sliderId || el.dataset.preset || el.tagName;
            return [name, box.x + scrollX, box.y + scrollY, box.width, box.height].map(
                (v) => typeof v === "number" ? Math.round(v * 10) / 10 : v);
        })""",
        MEASURED,
    )


def grab_with_mouse(page: Any, slider: str) -> None:
    """Press the mouse on the slider's thumb and move it a little (the press is held)."""
    box = page.locator(f"#slider-{slider}").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=3)


@pytest.mark.parametrize("device", DEVICES)
def test_someone_elses_hand_does_not_move_the_sliders(make_board, page_on, device):
    board = make_board(sliders=SLIDERS)
    watcher = page_on(board.slug, device=DEVICES[device])
    before = layout(watcher)

    movers = [page_on(board.slug) for _ in range(3)]
    grab_with_mouse(movers[0], "s1")
    expect(watcher.locator("#hands-s1")).to_have_text("Being moved by someone")
    assert layout(watcher) == before
    # Three hands on one slider: a longer line, still in the same place.
    grab_with_mouse(movers[1], "s2")
    grab_with_mouse(movers[2], "s2")  # (a second mouse on another page)
    expect(watcher.locator("#hands-s2")).to_have_text("Being moved by someone, someone")
    assert layout(watcher) == before
    for mover in movers:
        mover.mouse.up()
    expect(watcher.locator("#hands-s2")).to_be_hidden()
    assert layout(watcher) == before


@pytest.mark.parametrize("device", DEVICES)
def test_messages_and_the_status_do_not_move_the_board(make_board, page_on, device):
    from sliders.models import Preset

    board = make_board(sliders=SLIDERS)
    Preset.objects.create(board=board, name="Quiet", values={"s1": 0})
    watcher = page_on(board.slug, device=DEVICES[device], allow_console=SERVER_DOWN_NOISE)
    other = page_on(board.slug)
    before = layout(watcher)

    # Someone else fades to a preset: the page says so ("Fading to ..."), then "Recalled".
    other.evaluate(
        """() => window.sliderSync.socket.emit("preset:recall", {name: "Quiet", fade: 2})"""
    )
    expect(watcher.locator("#message")).to_have_text(re.compile("Fading"))
    assert layout(watcher) == before
    expect(watcher.locator("#message")).to_have_text(re.compile("Recalled"), timeout=5000)
    assert layout(watcher) == before

    # The connection goes: the status says so.
    watcher.context.set_offline(True)
    expect(watcher.locator("#connection-status")).to_have_attribute("data-state", "offline")
    assert layout(watcher) == before
    watcher.context.set_offline(False)
    expect(watcher.locator("#connection-status")).to_have_attribute("data-state", "connected")
    assert layout(watcher) == before
