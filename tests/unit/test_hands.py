"""Hands on controls (sliders/realtime/hands.py): who holds which slider, and its emits.

The emits go to a list: the callback is the seam `Hands` takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sliders.realtime.hands import Hands
from tests.support.waiting import wait_until

Emitted = list[tuple[str, str, list[dict[str, str]]]]


@pytest.fixture
def emitted() -> Emitted:
    return []


@pytest.fixture
async def hands(emitted: Emitted) -> AsyncIterator[Hands]:
    async def emit(board: str, slider: str, listed: list[dict[str, str]]) -> None:
        emitted.append((board, slider, listed))

    table = Hands(emit=emit, timeout=60)
    yield table
    table.stop()


async def test_a_new_hand_is_told_and_a_repeated_grab_is_not(hands, emitted) -> None:
    await hands.grab("stage", "s1", "h1", "Ada")
    await hands.grab("stage", "s1", "h1", "Ada")  # still holding: the grab only renews it
    assert emitted == [("stage", "s1", [{"hand": "h1", "by": "Ada"}])]


async def test_every_change_tells_the_full_list_of_the_sliders_hands(hands, emitted) -> None:
    await hands.grab("stage", "s1", "h1", "Ada")
    await hands.grab("stage", "s1", "h2", "someone")
    await hands.release("stage", "s1", "h1")
    assert [listed for _, _, listed in emitted] == [
        [{"hand": "h1", "by": "Ada"}],
        [{"hand": "h1", "by": "Ada"}, {"hand": "h2", "by": "someone"}],
        [{"hand": "h2", "by": "someone"}],
    ]


async def test_releasing_a_hand_not_held_tells_nobody(hands, emitted) -> None:
    await hands.release("stage", "s1", "h1")
    await hands.grab("stage", "s1", "h1", "Ada")
    await hands.release("stage", "s2", "h1")
    assert len(emitted) == 1


async def test_on_board_lists_the_hands_per_slider_for_board_state(hands) -> None:
    await hands.grab("stage", "s1", "h1", "Ada")
    await hands.grab("stage", "s2", "h1", "Ada")
    await hands.grab("foyer", "s1", "h2", "Grace")
    assert hands.on_board("stage") == {
        "s1": [{"hand": "h1", "by": "Ada"}],
        "s2": [{"hand": "h1", "by": "Ada"}],
    }
    assert hands.on_board("nowhere") == {}
    assert sorted(hands.held_by("stage", "h1")) == ["s1", "s2"]
    assert hands.held_by("stage", "h2") == []


async def test_the_last_release_forgets_the_slider_and_the_board(hands) -> None:
    await hands.grab("stage", "s1", "h1", "Ada")
    await hands.release("stage", "s1", "h1")
    assert hands.on_board("stage") == {}
    assert hands.held_by("stage", "h1") == []


async def test_a_hand_not_renewed_within_the_timeout_is_swept(emitted) -> None:
    async def emit(board: str, slider: str, listed: list[dict[str, str]]) -> None:
        emitted.append((board, slider, listed))

    hands = Hands(emit=emit, timeout=0.05)
    try:
        await hands.grab("stage", "s1", "h1", "Ada")
        await hands.sweep()  # not yet
        assert hands.on_board("stage") == {"s1": [{"hand": "h1", "by": "Ada"}]}
        await asyncio.sleep(0.1)
        await hands.sweep()
        assert hands.on_board("stage") == {}
        assert emitted[-1] == ("stage", "s1", [])
    finally:
        hands.stop()


async def test_the_sweeper_runs_on_its_own_while_hands_are_held(emitted) -> None:
    async def emit(board: str, slider: str, listed: list[dict[str, str]]) -> None:
        emitted.append((board, slider, listed))

    hands = Hands(emit=emit, timeout=0.04)  # sweeps every 10 ms
    try:
        await hands.grab("stage", "s1", "h1", "Ada")
        await wait_until(lambda: hands.on_board("stage") == {}, timeout=1, what="the sweep")
        assert emitted == [("stage", "s1", [{"hand": "h1", "by": "Ada"}]), ("stage", "s1", [])]
    finally:
        hands.stop()
