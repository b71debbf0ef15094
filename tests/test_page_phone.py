"""The board page on a phone: touch gestures in Chromium's touch emulation (real touch events
through the DevTools protocol), checked against what is stored and what other pages show.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import PHONE, held_version, shows, touch_drag
from tests.support.database import slider_row
from tests.support.waiting import wait_until_blocking

pytestmark = pytest.mark.browser

# Enough sliders that the board is taller than a phone's screen: there is a page to scroll.
TALL = [{"slug": f"s{i}", "name": f"Slider {i}", "value": 50} for i in range(1, 9)]


def point_on(page: Any, slider: str = "s1", fraction: float = 0.5) -> tuple[float, float]:
    """A point on the slider's track, `fraction` of its width from the left, in the viewport
    (0.5: the thumb of a 0..100 slider at 50)."""
    box = page.locator(f"#slider-{slider}").bounding_box()
    return box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2


def scrolled(page: Any) -> float:
    return page.evaluate("() => window.scrollY")


def test_a_vertical_swipe_on_a_slider_scrolls_and_changes_nothing(make_board, page_on):
    """A swipe that starts on a slider but goes mostly up or down scrolls the page: no value
    changes, nothing is stored or sent (the slider used to jump to where the finger landed)."""
    board = make_board(sliders=TALL)
    phone = page_on(board.slug, device=PHONE)
    other = page_on(board.slug)

    def swipe(slider: str, fraction: float, dx: float, dy: float) -> None:
        top = scrolled(phone)
        x, y = point_on(phone, slider, fraction)
        touch_drag(phone, (x, y), (x + dx, y + dy))
        wait_until_blocking(
            lambda: abs(scrolled(phone) - top) > abs(dy) / 3, what=f"the page to scroll ({dy})"
        )

    # Up (the page scrolls down), starting on the track away from the thumb, drifting sideways
    # as thumbs do; then down from a thumb; then up again from the track's left end.
    swipe("s3", 0.88, -40, -300)
    swipe("s5", 0.5, 40, 250)
    swipe("s4", 0.1, 30, -250)

    time.sleep(0.3)  # anything the swipes sent has arrived by now
    for slider in ("s3", "s4", "s5"):
        shows(phone, "50", slider=slider)
        shows(other, "50", slider=slider)
        row = slider_row(board, slider)
        assert (row.value, row.version) == (50, 0), f"{slider} moved: {row.value} v{row.version}"


def test_a_horizontal_drag_on_a_phone_moves_the_thumb(make_board, page_on):
    board = make_board(sliders=TALL)
    phone = page_on(board.slug, device=PHONE)
    other = page_on(board.slug)
    box = phone.locator("#slider-s1").bounding_box()
    x, y = point_on(phone)
    before = scrolled(phone)

    touch_drag(phone, (x, y), (box["x"] + box["width"] * 0.8, y + 12))
    value = float(phone.locator("#slider-s1").input_value())
    assert value >= 70, f"the thumb should follow the finger to ~80, it is at {value}"
    shows(other, f"{value:g}", timeout=3000)
    wait_until_blocking(lambda: slider_row(board).value == value, what="the drag stored")
    assert held_version(phone) >= 1
    assert scrolled(phone) == before, "a sideways drag does not scroll the page"
    # Left again, all the way.
    x, y = point_on(phone)
    touch_drag(phone, (box["x"] + box["width"] * value / 100, y), (box["x"] - 20, y - 10))
    shows(phone, "0")
    shows(other, "0", timeout=3000)
    expect(phone.locator("#slider-s2")).to_have_value("50")
    # A tap sets the value where it lands, as a click does.
    x, y = point_on(phone, "s2", 0.9)
    touch_drag(phone, (x, y), (x, y), steps=1)
    tapped = float(phone.locator("#slider-s2").input_value())
    assert 80 <= tapped <= 95, tapped
    shows(other, f"{tapped:g}", slider="s2", timeout=3000)
    wait_until_blocking(lambda: slider_row(board, "s2").value == tapped, what="the tap stored")


def test_a_second_finger_on_another_slider_is_decided_like_the_first(make_board, page_on):
    """Two fingers swiping up (or pinching), the second landing on another slider: nothing
    changes. Only the first finger used to be followed; the second moved its slider's thumb
    to where it landed (50 to 94 here), stored and sent to everyone."""
    board = make_board(sliders=TALL)
    phone = page_on(board.slug, device=PHONE)
    other = page_on(board.slug)
    first, second = point_on(phone, "s3", 0.15), point_on(phone, "s4", 0.9)
    cdp = phone.context.new_cdp_session(phone)

    def touch(kind: str, *points: tuple[int, tuple[float, float]]) -> None:
        touch_points = [{"x": x, "y": y, "id": finger} for finger, (x, y) in points]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})

    try:
        touch("touchStart", (1, first))
        phone.wait_for_timeout(50)
        touch("touchStart", (1, first), (2, second))
        for step in range(1, 13):
            up = 15 * step
            touch("touchMove", (1, (first[0], first[1] - up)), (2, (second[0], second[1] - up)))
            phone.wait_for_timeout(16)
        touch("touchEnd")
    finally:
        cdp.detach()

    time.sleep(0.3)  # anything the fingers sent has arrived by now
    for slider in ("s3", "s4"):
        shows(phone, "50", slider=slider)
        shows(other, "50", slider=slider)
        row = slider_row(board, slider)
        assert (row.value, row.version) == (50, 0), f"{slider} moved: {row.value} v{row.version}"
