"""Conflicts: a change made while its sender was cut off never reverts a newer one.

A `slider:set` may carry `base_version`, the version its sender based it on; the HTTP API uses
`ETag` / `If-Match` / `412`. Everything runs against a live uvicorn over real sockets: pages are
BoardClients that connect with their own `client` id, as the board page does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.support.clients import BoardClient
from tests.support.database import stored, trail

pytestmark = pytest.mark.live

PAGE_A = "page-a-5f0c1e2d3b4a"  # a page's own id (auth.client), kept across its reconnects
PAGE_B = "page-b-9e8d7c6b5a49"


async def open_page(asgi_server: Any, board_slug: str, client_id: str | None) -> BoardClient:
    """A connected client that introduces itself with `client_id`, as the board page does."""
    page = BoardClient(asgi_server.url, board_slug)
    auth: dict[str, Any] = {"board": board_slug}
    if client_id is not None:
        auth["client"] = client_id
    await page.connect(auth=auth)
    return page


async def set_with_base(page: BoardClient, slider_id: str, value: Any, base: Any) -> Any:
    payload = {"id": slider_id, "value": value, "base_version": base}
    return await page.sio.call("slider:set", payload, timeout=5)


async def set_and_lose_the_ack(page: BoardClient, board_slug: str, slider_id: str, value: float):
    """Send a set, let it commit, and drop the connection before the page hears its ack."""
    before = stored(board_slug, slider_id)
    await page.sio.emit("slider:set", {"id": slider_id, "value": value})  # no ack is asked for
    await page.wait_for(lambda: stored(board_slug, slider_id) != before)
    await page.disconnect()


def assert_conflict(ack: Any, slider_id: str, value: float, version: int) -> None:
    assert isinstance(ack, dict), ack
    assert set(ack) == {"ok", "error", "message", "id", "value", "version"}, ack
    assert ack["ok"] is False and ack["error"] == "conflict", ack
    assert isinstance(ack["message"], str) and ack["message"], ack
    assert (ack["id"], ack["value"], ack["version"]) == (slider_id, value, version), ack


# --- Sockets ---------------------------------------------------------------------------------


async def test_replayed_set_never_reverts_a_newer_change(make_board, asgi_server):
    """A's set commits but its ack is lost with the connection; B sets; A's page sends its value
    again on its old base after reconnecting: refused with B's value, which stays."""
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    b = await open_page(asgi_server, board.slug, PAGE_B)
    await set_and_lose_the_ack(a, board.slug, "s2", 100)
    assert stored(board.slug, "s2") == (100.0, 1)
    ack = await b.set("s2", 10)
    assert ack == {"ok": True, "id": "s2", "value": 10.0, "version": 2}

    a = await open_page(asgi_server, board.slug, PAGE_A)
    ack = await set_with_base(a, "s2", 100, 0)  # the version A held before the lost set
    assert_conflict(ack, "s2", 10.0, 2)
    assert stored(board.slug, "s2") == (10.0, 2)
    assert trail(board.slug, "s2")[-1] == (PAGE_B, 10.0, 1, 2)
    await asyncio.sleep(0.2)  # nothing was broadcast: B saw no update after its own set
    assert b.of("slider:update") == [{"id": "s2", "value": 100.0, "version": 1}]
    await a.disconnect()
    await b.disconnect()


async def test_offline_move_never_reverts_a_newer_change(make_board, asgi_server):
    """A goes offline holding version 0 and moves s1; B sets it; A comes back: refused."""
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    b = await open_page(asgi_server, board.slug, PAGE_B)
    base = a.values["s1"][1]
    await a.disconnect()
    assert (await b.set("s1", 100))["ok"] is True
    await a.connect(auth={"board": board.slug, "client": PAGE_A})
    assert_conflict(await set_with_base(a, "s1", 0, base), "s1", 100.0, 1)
    assert stored(board.slug, "s1") == (100.0, 1)
    await a.disconnect()
    await b.disconnect()


async def test_offline_move_on_an_untouched_slider_goes_through(make_board, asgi_server):
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    b = await open_page(asgi_server, board.slug, PAGE_B)
    base = a.values["s1"][1]
    await a.disconnect()
    assert (await b.set("s2", 5))["ok"] is True  # another slider: no matter
    await a.connect(auth={"board": board.slug, "client": PAGE_A})
    ack = await set_with_base(a, "s1", 0, base)
    assert ack == {"ok": True, "id": "s1", "value": 0.0, "version": 1}
    await b.wait_for(lambda: b.values["s1"] == (0.0, 1))
    assert stored(board.slug, "s1") == (0.0, 1)
    await a.disconnect()
    await b.disconnect()


async def test_resending_a_set_whose_ack_was_lost_is_harmless(make_board, asgi_server):
    """The value is stored already: ok with the current version, no new version, no update."""
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    b = await open_page(asgi_server, board.slug, PAGE_B)
    await set_and_lose_the_ack(a, board.slug, "s2", 100)
    a = await open_page(asgi_server, board.slug, PAGE_A)
    for base in (0, 0):  # and again: still the same answer
        ack = await set_with_base(a, "s2", 100, base)
        assert ack == {"ok": True, "id": "s2", "value": 100.0, "version": 1}
    # Even after someone else's change and its undoing, a value stored already is no conflict.
    assert (await b.set("s2", 7))["ok"] is True
    assert (await b.set("s2", 100))["ok"] is True
    ack = await set_with_base(a, "s2", 100, 0)
    assert ack == {"ok": True, "id": "s2", "value": 100.0, "version": 3}
    assert stored(board.slug, "s2") == (100.0, 3)
    # The re-sends wrote nothing; B's two sets are one merged entry.
    assert trail(board.slug, "s2") == [(PAGE_A, 100.0, 0, 1), (PAGE_B, 100.0, 1, 3)]
    await a.disconnect()
    await b.disconnect()


async def test_pipelined_sets_never_conflict_with_each_other(make_board, asgi_server):
    """A client's own sets in flight together, with or without a base, all apply in order; two
    live clients moving one slider at once never conflict (the later set wins)."""
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    b = await open_page(asgi_server, board.slug, PAGE_B)
    acks = await asyncio.gather(*(set_with_base(a, "s1", v, 0) for v in range(1, 21)))
    assert [ack.get("ok") for ack in acks] == [True] * 20, acks
    # In order: versions never go back. Sets still waiting when a newer one arrives are
    # superseded by it and share its ack (sliders/realtime/changequeue.py), so versions may repeat.
    versions = [ack["version"] for ack in acks]
    assert versions == sorted(versions), versions
    assert (acks[-1]["value"], acks[-1]["version"]) == stored(board.slug, "s1")
    assert stored(board.slug, "s1")[0] == 20.0

    live = await asyncio.gather(
        *(page.set("s2", v) for v in range(30, 60) for page in (a, b)), return_exceptions=True
    )
    assert all(isinstance(ack, dict) and ack["ok"] is True for ack in live), live
    value, version = stored(board.slug, "s2")
    assert value == 59.0  # both pages sent 59 last
    for page in (a, b):
        await page.wait_for(lambda p=page: p.values["s2"] == (value, version))
    await a.disconnect()
    await b.disconnect()


async def test_own_unacked_sets_then_a_new_value_do_not_conflict(make_board, asgi_server):
    """A page's sets from before a dropped connection are its own, not someone else's, because
    it reconnects with the same `client` id; another page on that base does conflict."""
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    await set_and_lose_the_ack(a, board.slug, "s1", 80)
    a = await open_page(asgi_server, board.slug, PAGE_A)
    await set_and_lose_the_ack(a, board.slug, "s1", 90)
    a = await open_page(asgi_server, board.slug, PAGE_A)
    ack = await set_with_base(a, "s1", 30, 0)  # moved on while cut off
    assert ack == {"ok": True, "id": "s1", "value": 30.0, "version": 3}

    other = await open_page(asgi_server, board.slug, PAGE_B)
    assert_conflict(await set_with_base(other, "s1", 70, 0), "s1", 30.0, 3)
    # Without an id of its own a connection is itself only: A's next page load is someone else.
    anonymous = await open_page(asgi_server, board.slug, None)
    assert_conflict(await set_with_base(anonymous, "s1", 70, 2), "s1", 30.0, 3)
    assert stored(board.slug, "s1") == (30.0, 3)
    for page in (a, other, anonymous):
        await page.disconnect()


async def test_a_base_version_newer_than_the_stored_one_conflicts(make_board, asgi_server):
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    for base in (1, 10**30):  # 10**30 fits no database integer: never sent to one
        assert_conflict(await set_with_base(a, "s1", 3, base), "s1", 50.0, 0)
    assert stored(board.slug, "s1") == (50.0, 0)
    await a.disconnect()


@pytest.mark.parametrize("base", [-1, 1.5, 2.0, "0", True, False, None, [0], {"v": 0}])
async def test_a_bad_base_version_is_a_bad_request(make_board, asgi_server, base):
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    ack = await set_with_base(a, "s1", 3, base)
    assert set(ack) == {"ok", "error", "message"}, ack
    assert (ack["ok"], ack["error"]) == (False, "bad_request"), ack
    assert "base_version" in ack["message"]
    assert stored(board.slug, "s1") == (50.0, 0)
    assert (await a.set("s1", 4))["ok"] is True  # the connection is fine
    await a.disconnect()


async def test_an_invalid_client_id_falls_back_to_the_connection(make_board, asgi_server):
    """A `client` that is not an id ([A-Za-z0-9_-]{8,64}) is ignored, never refused."""
    board = make_board()
    odd_ids = ["short", "x" * 65, "has space-123", 12345678, None, [PAGE_A]]
    for odd in odd_ids:
        page = BoardClient(asgi_server.url, board.slug)
        await page.connect(auth={"board": board.slug, "client": odd})
        assert (await page.set("s1", 1 + len(str(odd)) % 90))["ok"] is True
        await page.disconnect()
    clients = {client for client, *_ in trail(board.slug, "s1")}
    assert len(clients) == len(odd_ids), clients  # each connection its own client (its sid)
    assert not clients & {"short", "x" * 65, "has space-123", PAGE_A}, clients


async def test_a_forged_client_id_never_joins_another_persons_audit_entry(make_board, asgi_server):
    """The page's id is its own claim: a change merges only into the same user's entry."""
    from django.contrib.auth.models import User

    from sliders.models import AuditEntry
    from tests.support.accounts import session_cookie

    board = make_board()
    ada = User.objects.create_user("ada-conflicts", first_name="Ada")
    victim = BoardClient(asgi_server.url, board.slug)
    await victim.connect(
        auth={"board": board.slug, "client": PAGE_A}, headers={"Cookie": session_cookie(ada)}
    )
    assert (await victim.set("s1", 10))["ok"] is True
    forger = await open_page(asgi_server, board.slug, PAGE_A)  # anonymous, the same id
    assert (await forger.set("s1", 20))["ok"] is True
    entries = AuditEntry.objects.filter(board=board.slug, slider="s1").order_by("id")
    assert [(e.username, e.to_value, e.changes) for e in entries] == [
        ("ada-conflicts", 10.0, 1),
        ("", 20.0, 1),
    ]
    await victim.disconnect()
    await forger.disconnect()


# --- HTTP API --------------------------------------------------------------------------------

SLIDER = "{url}/api/boards/{board}/sliders/s1"


async def test_api_reads_and_writes_carry_the_version_as_etag(make_board, asgi_server):
    board = make_board()
    url = SLIDER.format(url=asgi_server.url, board=board.slug)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            assert response.headers["ETag"] == '"0"'
        async with http.put(url, json={"value": 12}) as response:
            assert response.status == 200, await response.text()
            assert response.headers["ETag"] == '"1"'
        async with http.put(url, json={"value": 12}) as response:  # nothing to change
            assert response.headers["ETag"] == '"1"'
        async with http.get(url) as response:
            assert response.headers["ETag"] == '"1"'


async def test_api_put_with_a_stale_if_match_never_reverts_a_newer_change(make_board, asgi_server):
    board = make_board()
    url = SLIDER.format(url=asgi_server.url, board=board.slug)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            read_etag = response.headers["ETag"]
        async with http.put(url, json={"value": 70}) as response:  # someone else, meanwhile
            assert response.status == 200
        for stale in (read_etag, f'"9", {read_etag}', f"W/{read_etag}", 'W/"1"', '"01"', '"x"'):
            async with http.put(url, json={"value": 20}, headers={"If-Match": stale}) as response:
                assert response.status == 412, (stale, await response.text())
                assert response.headers["ETag"] == '"1"'
                body = await response.json()
                assert body["ok"] is False and body["error"] == "conflict", body
                assert (body["id"], body["value"], body["version"]) == ("s1", 70.0, 1), body
                assert isinstance(body["message"], str) and body["message"]
        assert stored(board.slug, "s1") == (70.0, 1)

        # The change appears applied already (the value is stored): 200, nothing written.
        async with http.put(url, json={"value": 70}, headers={"If-Match": read_etag}) as response:
            assert response.status == 200 and response.headers["ETag"] == '"1"'
        for fresh, value, version in (('"1"', 21, 2), ('"0", "2"', 22, 3), ("*", 23, 4)):
            headers = {"If-Match": fresh}
            async with http.put(url, json={"value": value}, headers=headers) as response:
                assert response.status == 200, (fresh, await response.text())
                assert response.headers["ETag"] == f'"{version}"'
        async with http.put(url, json={"value": 24}) as response:  # no If-Match: as ever
            assert response.status == 200 and response.headers["ETag"] == '"5"'
        for malformed in ("1", '"1', 'W/ "1"', '"1" "2"'):
            headers = {"If-Match": malformed}
            async with http.put(url, json={"value": 25}, headers=headers) as response:
                assert response.status == 400, (malformed, await response.text())
                assert (await response.json())["error"] == "bad_request"
    assert stored(board.slug, "s1") == (24.0, 5)


# --- Live sets: the later set wins, unless the network held one up ---------------------------


def live_set(slider_id: str, value: float, base: int, *, made_ago: float = 0.0) -> dict[str, Any]:
    """A live set as the page sends it: the version it held, and when it was made (server's
    clock; the test runs on the server's machine, so `time.time()` is that clock)."""
    made_at = round((time.time() - made_ago) * 1000)
    return {"id": slider_id, "value": value, "base_version": base, "made_at": made_at}


async def test_a_live_set_on_time_wins_over_a_change_it_had_not_seen(make_board, asgi_server):
    """Two people dragging one slider: a live set based on a version someone else has just
    passed still applies (the later set wins); no stream of conflicts."""
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    b = await open_page(asgi_server, board.slug, PAGE_B)
    assert (await b.set("s1", 70))["ok"] is True
    ack = await a.sio.call("slider:set", live_set("s1", 20, 0), timeout=5)
    assert ack == {"ok": True, "id": "s1", "value": 20, "version": 2}, ack
    await a.disconnect()
    await b.disconnect()


async def test_a_live_set_delayed_by_a_frozen_link_never_reverts_a_newer_change(
    make_board, asgi_server
):
    """Invariant 9: a *delayed* set applies only over the version its sender saw.

    Page A's link freezes silently (no FIN): A still counts as connected and sends its move as a
    live set. B sets the slider meanwhile. When the link thaws, A's set arrives seconds after it
    was made, more than LIVE_SET_MAX_DELAY later than A's sets usually arrive: it is refused
    `conflict`, and B's value stays."""
    from tests.support.proxies import TcpProxy

    board = make_board()
    port = int(asgi_server.url.rsplit(":", 1)[1])
    proxy = TcpProxy(port).start()
    try:
        a = BoardClient(proxy.url(asgi_server.url), board.slug)
        await a.connect(auth={"board": board.slug, "client": PAGE_A})
        b = await open_page(asgi_server, board.slug, PAGE_B)
        answers: list[Any] = []
        # A's sets so far arrived on time: that is how late its sets usually are.
        ack = await a.sio.call("slider:set", live_set("s1", 10, 0), timeout=5)
        assert ack["ok"] is True and ack["version"] == 1, ack

        proxy.freeze()
        await a.sio.emit("slider:set", live_set("s1", 0, 1), callback=answers.append)
        await asyncio.sleep(0.3)
        ack = await b.set("s1", 100)  # B, later, on a good link
        assert ack["ok"] is True and ack["version"] == 2, ack
        await asyncio.sleep(2)  # the frozen link holds A's set past LIVE_SET_MAX_DELAY (1 s)
        proxy.resume()
        await a.wait_for(lambda: answers, timeout=10)
        assert_conflict(answers[0], "s1", 100, 2)
        reverted = f"B's newer change reverted: {trail(board.slug, 's1')}"
        assert stored(board.slug, "s1") == (100, 2), reverted
        await a.disconnect()
        await b.disconnect()
    finally:
        proxy.close()


async def test_a_bad_made_at_is_a_bad_request(make_board, asgi_server):
    board = make_board()
    a = await open_page(asgi_server, board.slug, PAGE_A)
    for made_at in ("now", None, True, [1], {}):
        payload = {"id": "s1", "value": 5, "base_version": 0, "made_at": made_at}
        ack = await a.sio.call("slider:set", payload, timeout=5)
        assert ack["ok"] is False and ack["error"] == "bad_request", (made_at, ack)
    assert stored(board.slug, "s1") == (50, 0)
    await a.disconnect()
