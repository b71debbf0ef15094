"""What the board page says about itself, in Chromium: values chosen while cut off (waiting,
then sent or not applied), a server that stays away, a board that was removed, who signing in
could help, and how messages look (a success is not a warning).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import SERVER_DOWN_NOISE, serious_violations, shows
from tests.support.database import slider_row
from tests.support.waiting import wait_until_blocking

pytestmark = pytest.mark.browser

THREE = [{"slug": f"s{i}", "name": f"Slider {i}", "value": 50} for i in range(1, 4)]


def go_offline(page: Any) -> None:
    page.context.set_offline(True)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "offline")


def come_back(page: Any) -> None:
    page.context.set_offline(False)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")


def move(page: Any, slider: str, key: str) -> None:
    page.locator(f"#slider-{slider}").focus()
    page.keyboard.press(key)


def test_a_move_made_offline_says_it_is_waiting_and_then_what_became_of_it(make_board, page_on):
    board = make_board(sliders=THREE)
    a = page_on(board.slug, allow_console=SERVER_DOWN_NOISE)
    b = page_on(board.slug)
    go_offline(a)
    move(a, "s1", "Home")  # nobody else touches s1: it will go through
    move(a, "s2", "End")  # B changes s2 meanwhile: it will not
    expect(a.locator("#pending-s1")).to_have_text("Waiting to send")
    expect(a.locator("#pending-s2")).to_have_text("Waiting to send")
    expect(a.locator("#pending-s3")).to_have_text("")
    move(b, "s2", "Home")
    wait_until_blocking(lambda: slider_row(board, "s2").value == 0, what="B's value stored")
    expect(a.locator("#pending-s1")).to_have_text("Waiting to send")  # still offline

    come_back(a)
    expect(a.locator("#pending-s1")).to_have_text("Sent")
    expect(a.locator("#pending-s2")).to_have_text("Not applied: changed meanwhile")
    expect(a.locator("#pending-s3")).to_have_text("")
    expect(a.locator("#message")).to_contain_text("“Slider 2” made while disconnected was not")
    shows(a, "0", slider="s1")
    shows(a, "0", slider="s2")
    assert slider_row(board, "s1").value == 0
    assert slider_row(board, "s2").value == 0
    # The next live move leaves those words behind.
    move(a, "s1", "ArrowRight")
    expect(a.locator("#pending-s1")).to_have_text("")
    shows(b, "1", slider="s1")


def test_moves_made_offline_that_went_through_are_reported_as_a_success(make_board, page_on):
    board = make_board(sliders=THREE)
    a = page_on(board.slug, allow_console=SERVER_DOWN_NOISE)
    warning = a.evaluate("() => getComputedStyle(document.getElementById('message')).background")
    go_offline(a)
    move(a, "s1", "Home")
    move(a, "s3", "End")
    come_back(a)
    message = a.locator("#message")
    expect(message).to_have_text("The changes you made while disconnected went through.")
    expect(message).to_have_attribute("data-kind", "success")
    expect(a.locator("#pending-s3")).to_have_text("Sent")
    # It looks like a success, not like the amber warnings, and can be read (axe's contrast).
    success = a.evaluate("() => getComputedStyle(document.getElementById('message')).background")
    assert success != warning
    for scheme in ("light", "dark"):
        a.emulate_media(color_scheme=scheme)
        assert serious_violations(a, "#message") == [], scheme
        expect(message).to_be_visible()  # (it was checked while shown)
    assert (slider_row(board, "s1").value, slider_row(board, "s3").value) == (0, 100)


# --- Wording --------------------------------------------------------------------------------


def test_signing_in_is_suggested_only_where_it_can_help(make_board, page_on, asgi_server):
    from django.contrib.auth.models import User

    from sliders.models import ShareLink
    from tests.support.accounts import session_cookie

    def read_only_note(slug: str, *, cookie: str | None = None, via: str | None = None) -> str:
        page = page_on(slug, wait=False)
        if cookie:
            name, value = cookie.split("=", 1)
            page.context.add_cookies([{"name": name, "value": value, "url": asgi_server.url}])
        page.goto(f"{asgi_server.url}{via or f'/b/{slug}/'}")
        page.wait_for_selector('#connection-status[data-state="connected"]')
        expect(page.locator("#read-only")).to_be_visible()
        return page.locator("#read-only").text_content()

    editors = make_board(edit_access="editors")
    hint = "signing in may help"
    assert hint in read_only_note(editors.slug)  # signing in as an editor would
    assert hint not in read_only_note(make_board(edit_access="nobody").slug)  # nobody may edit
    viewer = ShareLink.objects.create(board=editors, kind="view", label="wall")
    assert hint not in read_only_note(editors.slug, via=viewer.get_absolute_url())
    somebody = session_cookie(User.objects.create_user("somebody"))
    assert hint not in read_only_note(editors.slug, cookie=somebody)  # signed in already


def test_a_removed_board_says_it_was_removed_not_offline(
    make_board, page_on, asgi_server, stable_content_types
):
    from tests.support.accounts import live_superuser, session_cookie

    board = make_board()
    page = page_on(board.slug)
    admin = page_on(board.slug, wait=False)
    name, value = session_cookie(live_superuser("remover", "remover@example.org")).split("=", 1)
    admin.context.add_cookies([{"name": name, "value": value, "url": asgi_server.url}])
    admin.goto(f"{asgi_server.url}/admin/sliders/board/{board.pk}/delete/")
    admin.locator('form input[type="submit"]').click()
    expect(admin.locator(".messagelist")).to_contain_text("deleted")

    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-state", "removed", timeout=10000)
    expect(status).to_have_text("Board removed")
    message = page.locator("#message")
    expect(message).to_have_text("This board was removed (or its address changed). See the boards.")
    expect(message).to_have_attribute("data-kind", "error")
    expect(message.locator("a")).to_have_attribute("href", "/")
    page.wait_for_timeout(500)
    expect(status).to_have_text("Board removed")  # and it stays so


def test_a_server_that_stays_away_gets_a_hint(make_board, page_on, start_server):
    board = make_board()
    server = start_server()
    page = page_on(board.slug, server=server, allow_console=SERVER_DOWN_NOISE)
    page.evaluate(
        "() => window.sliderSync.socket.io.reconnectionDelay(100).reconnectionDelayMax(300)"
    )
    server.stop()
    status, message = page.locator("#connection-status"), page.locator("#message")
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(message).to_have_text(
        re.compile(r"^The server has been unreachable for 10 s: check that the address is right"),
        timeout=15000,
    )
    expect(status).to_have_text("Reconnecting…")

    start_server(port=server.port)
    expect(status).to_have_attribute("data-state", "connected", timeout=10000)
    expect(message).to_be_hidden()
