"""Hands on controls: `slider:grab` / `slider:release` and the `slider:hands` everyone sees."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.support.accounts import session_cookie
from tests.support.clients import BoardClient

pytestmark = pytest.mark.live


def hands_on(client: BoardClient, slider: str = "s1") -> list[dict[str, str]] | None:
    """The latest hands the client heard of for `slider` (None: nothing yet)."""
    lists = [h["hands"] for h in client.of("slider:hands") if h["id"] == slider]
    return lists[-1] if lists else None


async def test_a_grab_shows_a_hand_to_everyone_until_it_is_released(make_board, connect_client):
    board = make_board()
    mover, watcher = await connect_client(board.slug), await connect_client(board.slug)
    hand = mover.state["hand"]
    assert re.fullmatch(r"[0-9a-f]{12}", hand) and hand != watcher.state["hand"]

    assert await mover.call("slider:grab", {"id": "s1"}) == {"ok": True}
    await watcher.wait_for(lambda: hands_on(watcher) == [{"hand": hand, "by": "someone"}])
    # A late joiner sees it in its board:state.
    late = await connect_client(board.slug)
    assert late.state["hands"] == {"s1": [{"hand": hand, "by": "someone"}]}
    # Grabbing again (the page does, every few seconds) is no news.
    assert await mover.call("slider:grab", {"id": "s1"}) == {"ok": True}

    assert await mover.call("slider:release", {"id": "s1"}) == {"ok": True}
    for client in (watcher, late, mover):
        await client.wait_for(lambda c=client: hands_on(c) == [])
    assert len(watcher.of("slider:hands")) == 2  # the grab and the release, nothing more


async def test_closing_the_connection_releases_its_hands(make_board, connect_client):
    board = make_board()
    mover, watcher = await connect_client(board.slug), await connect_client(board.slug)
    await mover.call("slider:grab", {"id": "s1"})
    await mover.call("slider:grab", {"id": "s2"})
    await watcher.wait_for(lambda: hands_on(watcher, "s2"))
    await mover.disconnect()
    await watcher.wait_for(lambda: hands_on(watcher, "s1") == [] and hands_on(watcher, "s2") == [])


async def test_a_hand_not_renewed_goes_away_after_the_timeout(make_board, start_server):
    server = start_server(env={"GRAB_TIMEOUT": "0.6"})
    board = make_board()
    mover, watcher = BoardClient(server.url, board.slug), BoardClient(server.url, board.slug)
    try:
        await mover.connect()
        await watcher.connect()
        await mover.call("slider:grab", {"id": "s1"})
        await watcher.wait_for(lambda: hands_on(watcher))
        grabbed = asyncio.get_running_loop().time()
        await watcher.wait_for(lambda: hands_on(watcher) == [], timeout=3)
        assert asyncio.get_running_loop().time() - grabbed >= 0.5
        assert mover.sio.connected  # the page is still there; only its hand expired
    finally:
        await mover.disconnect()
        await watcher.disconnect()


async def test_signed_in_hands_carry_the_persons_name(make_board, connect_client):
    board = make_board()
    ada = User.objects.create_user("ada", first_name="Ada", last_name="Lovelace")
    grace = User.objects.create_user("grace")
    a = await connect_client(board.slug, headers={"Cookie": session_cookie(ada)})
    g = await connect_client(board.slug, headers={"Cookie": session_cookie(grace)})
    watcher = await connect_client(board.slug)
    await a.call("slider:grab", {"id": "s1"})
    await g.call("slider:grab", {"id": "s1"})
    await watcher.wait_for(
        lambda: [h["by"] for h in hands_on(watcher) or []] == ["Ada Lovelace", "grace"]
    )


@pytest.mark.parametrize(
    ("event", "payload", "error"),
    [
        ("slider:grab", None, "bad_request"),
        ("slider:grab", ["s1"], "bad_request"),
        ("slider:grab", {"slider": "s1"}, "bad_request"),
        ("slider:grab", {"id": 1}, "bad_request"),
        ("slider:grab", {"id": "nope"}, "unknown_slider"),
        ("slider:release", {"id": "<script>"}, "unknown_slider"),
    ],
)
async def test_bad_grabs_are_refused_and_reach_nobody(
    make_board, connect_client, event: str, payload: Any, error: str
):
    board = make_board()
    sender, watcher = await connect_client(board.slug), await connect_client(board.slug)
    ack = await sender.call(event, payload)
    assert ack["ok"] is False and ack["error"] == error, ack
    await sender.set("s2", 7)  # a marker: anything the bad grab sent would have come before it
    await watcher.wait_for(lambda: watcher.values["s2"][0] == 7)
    assert watcher.of("slider:hands") == []


async def test_who_may_not_edit_may_not_grab(make_board, connect_client):
    board = make_board(edit_access="nobody")
    viewer, watcher = await connect_client(board.slug), await connect_client(board.slug)
    assert (await viewer.call("slider:grab", {"id": "s1"}))["error"] == "forbidden"
    assert await viewer.call("slider:release", {"id": "s1"}) == {"ok": True}  # harmless
    await asyncio.sleep(0.2)
    assert watcher.of("slider:hands") == []


async def test_grabs_are_rate_limited(make_board, connect_client):
    board = make_board()
    flooder = await connect_client(board.slug)
    acks = await asyncio.gather(*(flooder.call("slider:grab", {"id": "s1"}) for _ in range(60)))
    errors = [a.get("error") for a in acks if not a["ok"]]
    assert errors and set(errors) == {"rate_limited"}
    assert flooder.sio.connected


async def test_everyone_hears_a_sliders_hands_in_the_order_they_changed(make_board, asgi_server):
    """Grabs and releases from many people at once reach every client in one order, the
    order the hands changed in; so every screen ends showing the hands there are (none).

    Each change of a slider's hands is sent as the whole list: one heard out of order leaves a
    client showing a stale list, a hand on a slider nobody holds, until the next change.
    """
    board = make_board()
    people = [BoardClient(asgi_server.url, board.slug) for _ in range(30)]
    await asyncio.gather(*(person.connect() for person in people))
    try:

        async def drag(person: BoardClient) -> None:
            for _ in range(8):  # within the grab rate limit's burst
                assert await person.call("slider:grab", {"id": "s1"}) == {"ok": True}
                assert await person.call("slider:release", {"id": "s1"}) == {"ok": True}

        await asyncio.gather(*(drag(person) for person in people))
        for person in people:
            await person.wait_for(lambda p=person: len(p.of("slider:hands")) == 2 * 8 * 30)
        heard = [[h["hands"] for h in p.of("slider:hands") if h["id"] == "s1"] for p in people]
        assert all(lists[-1] == [] for lists in heard), [lists[-1] for lists in heard]
        out_of_order = [i for i, lists in enumerate(heard) if lists != heard[0]]
        assert out_of_order == [], f"{len(out_of_order)} of 30 clients heard another order"
    finally:
        await asyncio.gather(*(person.disconnect() for person in people))
