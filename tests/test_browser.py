"""The board page in a real browser: Debian's Chromium driven by Playwright (sync API).

Every test opens pages on a live uvicorn (the `asgi_server` of conftest.py, or its own from
`start_server`) and watches what a person would see: the range inputs, the numbers next to them,
the connection indicator and the presence count. Other pages, the database (through the ORM)
and the page's own Socket.IO client are used to cause things and to check them. The browser and
page fixtures are in tests/support/browser.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import (
    CONNECTED,
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    NOBODY_COUNTED,
    SERVER_DOWN_NOISE,
    feed_update,
    held_version,
    serious_violations,
    shows,
)
from tests.support.database import slider_row
from tests.support.proxies import TcpProxy
from tests.support.waiting import wait_until_blocking

pytestmark = pytest.mark.browser

# --- Tests --------------------------------------------------------------------------------------


def test_keyboard_change_reaches_the_other_browser(make_board, page_on):
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    shows(b, "50")
    a.locator("#slider-s1").focus()
    for _ in range(5):
        a.keyboard.press("ArrowRight")
    shows(a, "55")
    shows(b, "55")
    a.locator("#slider-s2").focus()
    a.keyboard.press("End")
    shows(b, "100", slider="s2")
    shows(b, "55")  # the other slider is left alone


def test_mouse_drag_final_value_reaches_the_other_browser_and_the_database(make_board, page_on):
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    box = a.locator("#slider-s1").bounding_box()
    y = box["y"] + box["height"] / 2
    a.mouse.move(box["x"] + box["width"] / 2, y)  # the thumb, at 50 of 0..100
    a.mouse.down()
    steps = 15
    for i in range(1, steps + 1):
        a.mouse.move(box["x"] + box["width"] * (0.5 + 0.35 * i / steps), y)
        time.sleep(0.01)
    a.mouse.up()
    final = a.locator("#slider-s1").input_value()
    assert 75 <= float(final) <= 90, f"the drag should have moved the thumb to ~85, got {final}"
    shows(b, final)

    # Once the sender has had the acks of everything it sent, nothing else is on its way: the
    # database, the sender and the other browser agree on the drag's final value and version.
    def settled() -> Any:
        row = slider_row(board)
        return row if row.version == held_version(a) else None

    row = wait_until_blocking(settled, timeout=3, what="the sender's acks")
    assert row.value == float(final)
    assert row.version >= 2, "a drag sends intermediate values"
    shows(b, final)
    assert held_version(b) == row.version
    shows(a, final)


def test_reload_and_new_context_paint_the_stored_value_first(make_board, page_on, asgi_server):
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    a.locator("#slider-s1").focus()
    a.keyboard.press("End")
    shows(b, "100")
    wait_until_blocking(lambda: slider_row(board).value == 100, timeout=2, what="the stored value")

    # B reloads: the HTML the server sends already holds the new value (first paint, no JS).
    response = b.reload()
    html = response.text()
    s1 = re.search(r'<input type="range" id="slider-s1"[^>]*>', html)
    assert s1, html
    assert re.search(r'\bvalue="100(\.0)?"', s1.group(0)), s1.group(0)
    assert re.search(r'<output id="value-s1"[^>]*>100(\.0)?</output>', html), html
    b.wait_for_selector(CONNECTED)
    shows(b, "100")

    # A brand-new context with JavaScript off sees the same: only the server's HTML.
    c = page_on(board.slug, javascript=False)
    expect(c.locator("#slider-s1")).to_have_value("100")
    expect(c.locator("#value-s1")).to_have_text(re.compile(r"^100(\.0)?$"))
    expect(c.locator("#slider-s2")).to_have_value("50")


def test_older_or_equal_versions_are_dropped_and_a_reconnect_takes_the_state(make_board, page_on):
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    a.locator("#slider-s1").focus()
    a.keyboard.press("End")
    shows(b, "100")
    expect(b.locator("#slider-s1")).to_have_attribute("data-version", "1")

    # An update that is older than, or as old as, the one held changes nothing (invariant 3).
    assert feed_update(b, {"id": "s1", "value": 1, "version": 0}) == ["100", "100", "1"]
    assert feed_update(b, {"id": "s1", "value": 2, "version": 1}) == ["100", "100", "1"]
    time.sleep(0.1)
    shows(b, "100")
    # A newer one applies.
    assert feed_update(b, {"id": "s1", "value": 7, "version": 2}) == ["7", "7", "2"]
    shows(b, "7")

    # B now holds version 2 (value 7), the server version 1 (value 100). A new connection's
    # board:state replaces the page's state, even though its version is lower.
    b.evaluate("window.sliderSync.socket.io.engine.close()")
    expect(b.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    expect(b.locator("#connection-status")).to_have_attribute("data-state", "connected")
    shows(b, "100", timeout=5000)
    expect(b.locator("#slider-s1")).to_have_attribute("data-version", "1")
    # ... and from then on it follows the server's versions again.
    a.keyboard.press("Home")
    shows(b, "0")


def test_read_only_board_renders_disabled_sliders_that_stay_disabled(make_board, page_on):
    board = make_board(edit_access="nobody")
    page = page_on(board.slug, wait=False)
    ranges = page.locator("input[type=range]")
    # First paint, from the server.
    assert ranges.count() == 2
    for i in range(2):
        expect(ranges.nth(i)).to_be_disabled()
    page.wait_for_selector(CONNECTED)
    expect(page.locator("#presence-count")).to_have_text("1")  # board:state has been applied
    for i in range(2):
        expect(ranges.nth(i)).to_be_disabled()
    expect(page.locator("#read-only")).to_be_visible()
    # Clicking the track does nothing.
    page.locator("#slider-s1").click(force=True, position={"x": 10, "y": 5})
    time.sleep(0.2)
    shows(page, "50")
    assert slider_row(board).version == 0


def test_hostile_names_are_shown_as_text(make_board, page_on, asgi_server):
    board_name = f"{HOSTILE_SCRIPT} & {HOSTILE_IMG}"
    board = make_board(
        name=board_name,
        sliders=[
            {"slug": "s1", "name": HOSTILE_IMG, "value": 50},
            {"slug": "s2", "name": HOSTILE_SCRIPT, "value": 50},
        ],
    )
    from sliders.models import Preset

    Preset.objects.create(board=board, name=HOSTILE_IMG, values={"s1": 1})
    page = page_on(board.slug)
    # board:state (which sets the names again, from JavaScript) has been applied.
    expect(page.locator("#presence-count")).to_have_text("1")
    expect(page.locator("button.preset")).to_have_text(HOSTILE_IMG)
    expect(page.locator("#board-name")).to_have_text(board_name)
    expect(page.locator("label[for=slider-s1]")).to_have_text(HOSTILE_IMG)
    expect(page.locator("label[for=slider-s2]")).to_have_text(HOSTILE_SCRIPT)
    assert page.title() == f"{board_name} · Slider Sync"
    # Text, not markup: no element was made from a name.
    assert page.evaluate(
        """() => [document.getElementById("board-name"), ...document.querySelectorAll(
                    ".slider label, button.preset")].map((el) => el.children.length)"""
    ) == [0, 0, 0, 0]
    assert page.locator("#board img, #board script").count() == 0
    # The board index lists it as text too.
    page.goto(f"{asgi_server.url}/")
    expect(page.locator(".board-card-name", has_text=board_name)).to_have_count(1)
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(300)  # give an injected onerror (a failed image load) time to fire
    assert [d for r in page_on.records for d in r.dialogs] == []


def test_presence_counts_open_pages(make_board, page_on):
    board = make_board()
    a = page_on(board.slug)
    expect(a.locator("#presence-count")).to_have_text("1")
    b = page_on(board.slug)
    expect(a.locator("#presence-count")).to_have_text("2")
    expect(b.locator("#presence-count")).to_have_text("2")
    b.context.close()
    expect(a.locator("#presence-count")).to_have_text("1")


def test_connection_indicator_follows_the_server(make_board, page_on, start_server):
    board = make_board()
    old = start_server()
    a = page_on(board.slug, server=old, allow_console=SERVER_DOWN_NOISE)
    status = a.locator("#connection-status")
    # Socket.IO's reconnection backoff grows to 5 s between attempts. Keep this page's attempts
    # short, so that what is waited for is the page's reconnect logic, not the backoff timer.
    a.evaluate("() => window.sliderSync.socket.io.reconnectionDelay(100).reconnectionDelayMax(300)")

    old.stop()
    expect(status).to_have_attribute("data-state", re.compile(r"^(reconnecting|offline)$"))
    expect(a.locator("#board")).to_have_class(re.compile(r"\bdisconnected\b"))
    expect(a.locator("#presence-count")).to_have_text(NOBODY_COUNTED)
    # Hold the page away (the browser goes offline) while the board changes without it.
    a.context.set_offline(True)
    expect(status).to_have_attribute("data-state", "offline")

    new = start_server(port=old.port)
    b = page_on(board.slug, server=new)
    b.locator("#slider-s1").focus()
    b.keyboard.press("Home")
    shows(b, "0")
    wait_until_blocking(lambda: slider_row(board).value == 0, timeout=2, what="the stored value")
    shows(a, "50")  # it missed the change

    a.context.set_offline(False)
    expect(status).to_have_attribute("data-state", "connected")
    shows(a, "0")  # from the new connection's board:state
    expect(a.locator("#board")).not_to_have_class(re.compile(r"\bdisconnected\b"))
    expect(a.locator("#presence-count")).to_have_text("2")
    expect(b.locator("#presence-count")).to_have_text("2")
    # And the reconnected page sends again.
    a.locator("#slider-s1").focus()
    a.keyboard.press("End")
    shows(b, "100")


def test_units_and_precision_are_shown_and_spoken(make_board, page_on):
    """A slider's unit and precision appear next to it and in its aria-valuetext."""
    slider = {"slug": "s1", "min": -60, "max": 12, "step": 0.5, "value": -12.5}
    board = make_board(sliders=[{**slider, "unit": "dB", "precision": 1}])
    static = page_on(board.slug, javascript=False)  # as the server renders it
    expect(static.locator("#value-s1")).to_have_text("-12.5 dB")
    expect(static.locator("#slider-s1")).to_have_attribute("aria-valuetext", "-12.5 dB")

    a, b = page_on(board.slug), page_on(board.slug)
    expect(a.locator("#value-s1")).to_have_text("-12.5 dB")
    b.locator("#slider-s1").focus()
    b.keyboard.press("ArrowRight")  # one step: -12.0
    for page in (a, b):
        expect(page.locator("#value-s1")).to_have_text("-12.0 dB")
        expect(page.locator("#slider-s1")).to_have_attribute("aria-valuetext", "-12.0 dB")


def press_on_thumb(page: Any, slider: str = "s1", *, to: float = 0.3) -> None:
    """Press the mouse on the slider's middle (its value 50 of 0..100) and drag to `to`."""
    box = page.locator(f"#slider-{slider}").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * to, y, steps=5)


def test_others_see_a_hand_while_someone_drags(make_board, page_on):
    """B sees A's hand while A holds the slider; B's change does not move A's thumb; A lets go
    and sees the board's value."""
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    hand_on_b = b.locator("#hands-s1")
    expect(hand_on_b).to_be_hidden()

    press_on_thumb(a)
    expect(hand_on_b).to_have_text("Being moved by someone")
    expect(b.locator('.slider[data-slider-id="s1"]')).to_have_class(re.compile(r"\bheld\b"))
    expect(a.locator("#hands-s1")).to_be_hidden()  # a page does not show its own hand
    held = a.locator("#slider-s1").input_value()
    assert int(held) < 50

    b.locator("#slider-s1").focus()
    b.keyboard.press("End")
    wait_until_blocking(lambda: slider_row(board).value == 100, what="B's value stored")
    version = slider_row(board).version
    wait_until_blocking(lambda: held_version(a) == version, what="B's update on A")
    assert a.locator("#slider-s1").input_value() == held  # still under A's pointer

    a.mouse.up()
    expect(hand_on_b).to_be_hidden()
    expect(b.locator('.slider[data-slider-id="s1"]')).not_to_have_class(re.compile(r"\bheld\b"))
    shows(a, "100")  # the authoritative value: B's change came after A's last one
    shows(b, "100")


def test_a_closed_page_takes_its_hand_away(make_board, page_on):
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    press_on_thumb(a)
    expect(b.locator("#hands-s1")).to_have_text("Being moved by someone")
    a.context.close()
    expect(b.locator("#hands-s1")).to_be_hidden()


# --- Accessibility ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1440])
def test_the_board_page_passes_an_accessibility_check(make_board, page_on, scheme, width):
    """axe-core (the engine behind Lighthouse's accessibility audit) finds nothing serious: on a
    phone and a wall screen, light and dark, with a hand shown and a read-only board."""
    sliders = [
        {"slug": "gain", "name": "Gain", "min": -60, "max": 12, "step": 0.5, "value": -6},
        {"slug": "mix", "name": "Mix", "unit": "%", "value": 75},
    ]
    board = make_board(name="Stage", sliders=sliders)
    other = page_on(board.slug)
    press_on_thumb(other, "gain")
    page = page_on(board.slug)
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    expect(page.locator("#hands-gain")).to_be_visible()
    assert serious_violations(page) == []

    read_only = make_board(name="Display", sliders=sliders, edit_access="nobody")
    page.goto(page.url.replace(board.slug, read_only.slug))
    page.wait_for_selector(CONNECTED)
    assert serious_violations(page) == []


def test_the_index_and_sign_in_pages_pass_an_accessibility_check(make_board, page_on, asgi_server):
    board = make_board(name="Stage")
    page = page_on(board.slug)
    for path in ("/", "/accounts/login/"):
        page.goto(asgi_server.url + path)
        assert serious_violations(page) == [], path


def test_the_accessibility_check_finds_what_it_should(make_board, page_on):
    """The check itself works: a slider without its label is reported."""
    board = make_board()
    page = page_on(board.slug)
    page.evaluate("() => document.querySelector('label[for=slider-s1]').remove()")
    assert any(line.startswith("label (critical)") for line in serious_violations(page))


def test_changes_by_others_are_announced_once_the_slider_is_still(make_board, page_on):
    """Screen readers hear "Slider 1: 80" after someone else's drag, not every value of it."""
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    b.evaluate(
        """() => {
          window.announced = [];
          const el = document.getElementById("announcer");
          new MutationObserver(() => window.announced.push(el.textContent))
            .observe(el, {childList: true, characterData: true, subtree: true});
        }"""
    )
    announcer = b.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    a.locator("#slider-s1").focus()
    for _ in range(30):  # a drag of 30 steps over about 1.5 s
        a.keyboard.press("ArrowRight")
        a.wait_for_timeout(50)
    shows(b, "80")
    expect(announcer).to_have_text("Slider 1: 80", timeout=3000)
    a.wait_for_timeout(1000)
    assert b.evaluate("() => window.announced") == ["Slider 1: 80"]
    # The page that made the change announces nothing: its person knows.
    assert a.locator("#announcer").text_content() == ""


def test_the_index_shows_who_is_on_each_board(make_board, page_on, asgi_server):
    stage, empty = make_board(name="Stage"), make_board(name="Empty")
    index = page_on(stage.slug, wait=False)
    index.goto(f"{asgi_server.url}/")
    on_stage = index.locator(f'[data-presence-for="{stage.slug}"]')
    expect(index.locator(f'[data-presence-for="{empty.slug}"]')).to_have_text("nobody here")
    expect(on_stage).to_have_text("nobody here")
    visitor = page_on(stage.slug)
    expect(on_stage).to_have_text("1 here", timeout=5000)  # refreshed every 3 s
    visitor.context.close()
    expect(on_stage).to_have_text("nobody here", timeout=5000)


def test_presets_are_saved_and_recalled_from_the_page(make_board, page_on):
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    expect(b.locator("#no-presets")).to_be_visible()
    a.locator("#slider-s1").focus()
    a.keyboard.press("Home")  # s1 = 0
    shows(b, "0")
    a.locator("#preset-name").fill("Quiet")
    a.locator("#preset-save button").click()
    expect(a.locator("#message")).to_have_text("Saved the preset “Quiet”.")
    expect(a.locator("#message")).to_have_attribute("data-kind", "success")
    quiet_on_b = b.locator('button.preset[data-preset="Quiet"]')
    expect(quiet_on_b).to_be_visible()
    expect(b.locator("#no-presets")).to_be_hidden()

    a.locator("#slider-s1").focus()
    a.keyboard.press("End")  # s1 = 100
    shows(b, "100")
    b.locator("#preset-fade").select_option("2")
    quiet_on_b.click()
    expect(a.locator("#message")).to_have_text("Fading to “Quiet”…")
    expect(a.locator("#slider-s1")).not_to_have_value("100")  # on its way
    shows(a, "0", timeout=4000)
    expect(a.locator("#message")).to_have_text("Recalled “Quiet”.")
    expect(a.locator("#message")).to_have_attribute("data-kind", "success")
    shows(b, "0")


def test_a_share_link_opens_a_private_board_for_a_wall_screen(make_board, page_on, asgi_server):
    from sliders.models import ShareLink

    board = make_board(name="Backstage", view_access="signed_in", edit_access="editors")
    viewer = ShareLink.objects.create(board=board, kind="view", label="lobby")
    editor = ShareLink.objects.create(board=board, kind="edit", label="crew")
    wall = page_on(board.slug, wait=False)
    wall.goto(f"{asgi_server.url}{viewer.get_absolute_url()}")
    wall.wait_for_selector(CONNECTED)
    assert wall.url.endswith(f"/b/{board.slug}/")
    expect(wall.locator("#slider-s1")).to_be_disabled()
    crew = page_on(board.slug, wait=False)
    crew.goto(f"{asgi_server.url}{editor.get_absolute_url()}")
    crew.wait_for_selector(CONNECTED)
    crew.locator("#slider-s1").focus()
    crew.keyboard.press("End")
    shows(wall, "100")


def test_an_anonymous_viewer_of_an_editors_board_cannot_move_sliders(
    make_board, page_on, asgi_server
):
    from django.contrib.auth.models import Group, User

    from tests.support.accounts import session_cookie

    editors = Group.objects.create(name="crew")
    board = make_board(edit_access="editors", editors_group=editors)
    page = page_on(board.slug)
    expect(page.locator("#presence-count")).to_have_text("1")  # board:state has been applied
    ranges = page.locator("input[type=range]")
    expect(ranges).to_have_count(2)
    for i in range(2):
        expect(ranges.nth(i)).to_be_disabled()
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("#read-only")).to_contain_text("signing in may help")
    page.locator("#slider-s1").click(force=True, position={"x": 5, "y": 5})
    page.keyboard.press("End")
    shows(page, "50")  # the disabled slider did not move, so nothing was sent
    assert (slider_row(board).value, slider_row(board).version) == (50, 0)

    # The same page signed in as a member of the board's editors group can move them.
    member = User.objects.create_user("member")
    member.groups.add(editors)
    name, value = session_cookie(member).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": asgi_server.url}])
    page.reload()
    page.wait_for_selector(CONNECTED)
    expect(page.locator("#read-only")).to_be_hidden()
    expect(ranges.nth(0)).to_be_enabled()
    page.locator("#slider-s1").focus()
    page.keyboard.press("End")
    expect(page.locator("#value-s1")).to_have_text("100")
    wait_until_blocking(lambda: slider_row(board).version == 1, what="the member's set stored")
    assert slider_row(board).value == 100


# --- Conflicts: a move made offline never reverts someone else's newer change -----------------

CONFLICT_MESSAGE = (
    "Your change to “Slider 1” made while disconnected was not applied: "
    "someone changed it meanwhile."
)


def audit_clients(board: Any, slug: str = "s1") -> list[str]:
    from sliders.models import AuditEntry

    return list(
        AuditEntry.objects.filter(board=board.slug, slider=slug)
        .order_by("id")
        .values_list("client", flat=True)
    )


def go_offline(page: Any) -> None:
    page.context.set_offline(True)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "offline")


def come_back(page: Any) -> None:
    page.context.set_offline(False)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")


def test_offline_move_never_reverts_a_newer_change_in_the_browser(make_board, page_on):
    board = make_board()
    a = page_on(board.slug, allow_console=SERVER_DOWN_NOISE)
    b = page_on(board.slug)
    go_offline(a)
    a.locator("#slider-s1").focus()
    a.keyboard.press("Home")  # A moves s1 to 0 while offline
    shows(a, "0")

    b.locator("#slider-s1").focus()
    b.keyboard.press("End")  # B, later, moves it to 100
    wait_until_blocking(lambda: slider_row(board).value == 100, what="B's value stored")
    version = slider_row(board).version

    come_back(a)
    expect(a.locator("#message")).to_have_text(CONFLICT_MESSAGE, timeout=5000)
    expect(a.locator("#message")).to_be_visible()
    shows(a, "100")
    shows(b, "100")
    time.sleep(0.2)  # anything A sent has been answered by now (the message came from its ack)
    assert (slider_row(board).value, slider_row(board).version) == (100, version)
    assert len(set(audit_clients(board))) == 1, "only B changed s1"
    # Later moves are live sets again, and go through.
    a.locator("#slider-s1").focus()
    a.keyboard.press("ArrowLeft")
    shows(b, "99")


def test_offline_move_on_an_untouched_slider_goes_through_in_the_browser(make_board, page_on):
    board = make_board()
    a = page_on(board.slug, allow_console=SERVER_DOWN_NOISE)
    b = page_on(board.slug)
    go_offline(a)
    a.locator("#slider-s1").focus()
    a.keyboard.press("Home")
    b.locator("#slider-s2").focus()
    b.keyboard.press("End")  # another slider
    wait_until_blocking(lambda: slider_row(board, "s2").value == 100, what="B's value stored")

    come_back(a)
    shows(b, "0")
    shows(a, "0")
    shows(a, "100", slider="s2")
    wait_until_blocking(lambda: slider_row(board).value == 0, what="A's offline move stored")
    # No warning: the page says the move went through.
    expect(a.locator("#message")).to_have_text(
        "The change you made while disconnected went through."
    )
    expect(a.locator("#pending-s1")).to_have_text("Sent")


def test_two_browsers_dragging_one_slider_converge_without_conflicts(make_board, page_on):
    board = make_board()
    a, b = page_on(board.slug), page_on(board.slug)
    boxes = {page: page.locator("#slider-s1").bounding_box() for page in (a, b)}

    def move(page: Any, fraction: float) -> None:
        box = boxes[page]
        page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)

    for page in (a, b):
        move(page, 0.5)  # the thumb, at 50 of 0..100
        page.mouse.down()
    for i in range(1, 16):  # interleaved: A drags up, B drags down
        move(a, 0.5 + 0.3 * i / 15)
        move(b, 0.5 - 0.3 * i / 15)
        time.sleep(0.01)
    a.mouse.up()
    b.mouse.up()

    # Once each page has the acks of all it sent, both show the database's value and version.
    def settled() -> Any:
        row = slider_row(board)
        return all(
            page.locator("#slider-s1").get_attribute("data-version") == str(row.version)
            for page in (a, b)
        )

    wait_until_blocking(settled, timeout=5, what="both pages on the stored version")
    row = slider_row(board)
    assert row.version >= 10, "both drags sent intermediate values"
    assert {a.locator("#slider-s1").input_value(), b.locator("#slider-s1").input_value()} == {
        f"{row.value:g}"
    }
    for page in (a, b):
        shows(page, f"{row.value:g}")
        expect(page.locator("#message")).to_be_hidden()
        assert not re.search("not applied", page.locator("#message").text_content() or "")


# --- A retry that fires while the page is cut off -----------------------------------------------


def test_rate_limited_retry_while_cut_off_never_reverts_a_newer_change(
    make_board, page_on, start_server
):
    """A `rate_limited` set is retried 250 ms later. If the page was cut off in between, the
    retried value must keep the version it was based on, so that after the reconnect it cannot
    revert a change someone else made while this page was away (it did, when the retry took the
    live set's missing base)."""
    # One token per connection and almost no refill: A's second set is refused rate_limited
    # and every retry on that connection is too; B has its own token.
    server = start_server(env={"SLIDER_SET_RATE": "0.001", "SLIDER_SET_BURST": "1"})
    board = make_board()
    a = page_on(board.slug, server=server, allow_console=SERVER_DOWN_NOISE)
    b = page_on(board.slug, server=server)

    a.locator("#slider-s1").focus()
    a.keyboard.press("End")  # spends A's token: stored
    wait_until_blocking(lambda: slider_row(board).value == 100, what="A's first set stored")
    a.keyboard.press("Home")  # refused rate_limited; the page retries every 250 ms
    expect(a.locator("#message")).to_contain_text("slow down")

    # A's link drops (the browser goes offline and the transport closes).
    a.context.set_offline(True)
    a.evaluate("window.sliderSync.socket.io.engine.close()")
    expect(a.locator("#connection-status")).to_have_attribute("data-state", "offline")
    time.sleep(0.6)  # a retry fires while A cannot send

    b.locator("#slider-s1").focus()
    b.keyboard.press("ArrowLeft")  # B, later, moves s1 to 99
    wait_until_blocking(lambda: slider_row(board).value == 99, what="B's value stored")
    version = slider_row(board).version

    a.context.set_offline(False)
    expect(a.locator("#connection-status")).to_have_attribute("data-state", "connected")
    time.sleep(1.0)  # whatever A sends after its reconnect has been answered by now
    row = slider_row(board)
    assert (row.value, row.version) == (99, version), (
        f"A's value chosen before B's change reverted it: stored {row.value} v{row.version}"
    )


# A page reached through a test proxy tries to reconnect once the proxy is closed at the end.
PROXY_CLOSED = re.compile(r"ERR_CONNECTION_REFUSED|WebSocket connection to .* failed")


@dataclass
class Proxied:
    """The shared server behind a test proxy: `page_on(slug, server=proxied)` goes through it."""

    proxy: TcpProxy
    url: str


@pytest.fixture
def proxied(asgi_server: Any) -> Iterator[Proxied]:
    proxy = TcpProxy(int(asgi_server.url.rsplit(":", 1)[1])).start()
    try:
        yield Proxied(proxy, proxy.url(asgi_server.url))
    finally:
        proxy.close()


def test_a_conflict_answer_never_drops_the_live_move_sent_after_it(make_board, page_on, proxied):
    """A `conflict` answer for an offline value must not forget a live move sent after it: if
    the connection drops before that move's ack, the move is sent again after the reconnect
    (it was silently dropped when the conflict cleared the page's last sent value)."""
    from tests.support.proxies import Shape

    board = make_board()
    proxy = proxied.proxy
    a = page_on(board.slug, server=proxied, allow_console=SERVER_DOWN_NOISE)
    b = page_on(board.slug)
    go_offline(a)
    a.evaluate("window.sliderSync.socket.io.engine.close()")  # the link is really gone
    a.locator("#slider-s1").focus()
    a.keyboard.press("Home")  # A moves s1 to 0 while offline
    shows(a, "0")
    b.locator("#slider-s1").focus()
    b.keyboard.press("End")  # B, later, moves it to 100: A's offline move will conflict
    wait_until_blocking(lambda: slider_row(board).value == 100, what="B's value stored")

    proxy.shape(up=Shape(latency=3.0))  # A's sets reach the server 3 s after they leave
    a.context.set_offline(False)
    # The new connection's board:state is applied (A holds B's version): the offline value
    # has just gone out with its base_version; its conflict answer comes in about 3 s.
    expect(a.locator("#slider-s1")).to_have_attribute("data-version", "1", timeout=20000)
    time.sleep(1.0)
    a.keyboard.press("ArrowRight")  # a live move (0 -> 1), sent before the conflict answer
    expect(a.locator("#message")).to_have_text(CONFLICT_MESSAGE, timeout=10000)
    proxy.stop()  # the link drops before the live move (due ~1 s later) reaches the server
    proxy.shape(latency=0.0)
    proxy.start()
    expect(a.locator("#connection-status")).to_have_attribute(
        "data-state", "connected", timeout=15000
    )
    time.sleep(1.5)  # anything A sends again after its reconnect is answered by now
    row = slider_row(board)
    assert row.value == 1, f"A's last (live) move was dropped: stored {row.value} v{row.version}"


# --- Live values held back in the page (MAX_SETS_IN_FLIGHT) and slow links ---------------------


def test_a_held_back_value_chosen_during_a_frozen_link_never_reverts_a_newer_change(
    make_board, page_on, proxied
):
    """While 3 sets of a slider are on their way, the page keeps the person's latest value and
    sends it when an answer returns; it must be judged by when it was chosen. Over a link that
    froze without closing (and survived), the 3 sets made during the freeze arrive late and are
    refused `conflict`; their answers release the held-back value, also chosen during the
    freeze: it must not go out as a fresh live set and revert the change someone else made
    after it (it did, when `made_at` and `base_version` were taken as it went out)."""
    board = make_board()
    proxy = proxied.proxy
    a = page_on(board.slug, server=proxied, allow_console=PROXY_CLOSED)  # the proxy goes first
    b = page_on(board.slug)
    a.locator("#slider-s1").focus()
    a.keyboard.press("ArrowRight")  # 51, stored: A holds a version
    wait_until_blocking(lambda: slider_row(board).value == 51, what="A's first set stored")
    shows(a, "51")
    time.sleep(0.3)

    proxy.freeze()  # no FIN, no RST: A's page still counts as connected
    for _ in range(6):  # 52..57: three go into the frozen link, 57 waits in the page
        a.keyboard.press("ArrowRight")
        time.sleep(0.05)
    time.sleep(0.3)
    b.locator("#slider-s1").focus()
    b.keyboard.press("Home")  # B, after every move A made, moves s1 to 0
    wait_until_blocking(lambda: slider_row(board).value == 0, what="B's value stored")
    version = slider_row(board).version
    time.sleep(4.0)  # well past LIVE_SET_MAX_DELAY, well within the ping timeout
    proxy.resume()

    expect(a.locator("#message")).to_contain_text("not applied", timeout=5000)
    time.sleep(1.5)  # whatever A sends after the answers has been answered by now
    row = slider_row(board)
    assert (row.value, row.version) == (0, version), (
        f"A's value chosen during the freeze reverted B's newer change: "
        f"stored {row.value} v{row.version} (B's was 0 v{version})"
    )


def test_a_shared_live_drag_over_a_slow_but_working_link_does_not_conflict(
    make_board, page_on, proxied
):
    """Slow-link conflict storm. The page's clock offset is early by board:state's trip down,
    and a set takes its trip up: the server sees `arrived - made_at` ~ the round trip. On a
    link with a steady round trip over LIVE_SET_MAX_DELAY (1.2 s here: 0.6 s each way, a busy
    mobile or satellite link; nothing frozen, nothing held up), EVERY live set counts as
    delayed and is held to the version the page saw, which in a shared drag is always a
    round trip old: each of A's moves is refused `conflict` ("held up on its way to the
    server"), and A's last move, made after B's last one, is lost. docs/protocol.md: "two
    people moving one slider at once do not conflict, the later set wins"."""
    from tests.support.proxies import Shape

    board = make_board()
    proxy = proxied.proxy
    a = page_on(board.slug, server=proxied, allow_console=PROXY_CLOSED)  # the proxy goes first
    b = page_on(board.slug)
    latency, rate = 0.6, None  # (the reliability doc's 0.3 s + 1,000 bytes/s link passes)
    proxy.shape(up=Shape(latency=latency, rate=rate), down=Shape(latency=latency, rate=rate))
    # Connect again over the slow link (the page itself loaded before it slowed down).
    a.evaluate("window.sliderSync.socket.io.engine.close()")
    expect(a.locator("#connection-status")).to_have_attribute(
        "data-state", "connected", timeout=20000
    )
    time.sleep(3.0)  # its board:state has arrived
    a.evaluate(
        """() => { window.messages = []; const el = document.getElementById("message");
        new MutationObserver(() => {
            if (el.textContent) window.messages.push(el.textContent);
        }).observe(el, {childList: true, characterData: true, subtree: true}); }"""
    )
    a.locator("#slider-s1").focus()
    b.locator("#slider-s1").focus()
    for _ in range(10):  # both move s1 together: B down, A up; A moves last
        b.keyboard.press("ArrowLeft")
        a.keyboard.press("ArrowRight")
        time.sleep(0.1)
    time.sleep(8.0)  # every set answered
    message = " | ".join(dict.fromkeys(a.evaluate("window.messages")))
    row = slider_row(board)
    shown = a.locator("#slider-s1").input_value()
    assert "not applied" not in message and row.value == 60, (
        f"A was told {message!r}; stored {row.value} v{row.version} (A's last move: 60,"
        f" A shows {shown})"
    )
