"""A stalled database: another process holds SQLite's write lock for longer than the timeout.

A set waits at most `DATABASE_TIMEOUT` in all (queueing included) and is then refused with
`unavailable`; connecting and reading a board never queue behind stalled writes; heartbeats are
never starved by waiting handlers; and one person's newer set supersedes their own queued ones.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from django.conf import settings

from tests.support.checks import assert_error
from tests.support.clients import BoardClient
from tests.support.database import stored
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live


class WriteLock:
    """SQLite's write lock, held by another process's connection (as a long writer would)."""

    def __init__(self) -> None:
        self.connection = sqlite3.connect(
            settings.DATABASES["default"]["NAME"], isolation_level=None, timeout=5
        )
        self.held = False

    def take(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.connection.execute("ROLLBACK")
            self.held = False

    def close(self) -> None:
        self.release()
        self.connection.close()


@pytest.fixture
def write_lock() -> Iterator[WriteLock]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the test database is not SQLite")
    lock = WriteLock()
    yield lock
    lock.close()


def stall_server(start_server: Any, timeout: float, **env: str) -> LiveServer:
    return start_server(env={"DATABASE_TIMEOUT": str(timeout), **env})


async def timed_call(
    client: BoardClient, slider: str, value: Any, wait: float
) -> tuple[Any, float]:
    """A set's ack and how long it took (the ack is "no ack" if none came within `wait` s)."""
    started = time.monotonic()
    try:
        ack = await client.set(slider, value, timeout=wait)
    except socketio.exceptions.TimeoutError:
        ack = "no ack"
    return ack, time.monotonic() - started


async def test_a_stalled_database_refuses_sets_within_the_timeout(
    start_server, make_board, connect_client, write_lock
):
    timeout = 1.0
    server = stall_server(start_server, timeout)
    board = make_board()
    draggers = [await connect_client(board.slug, server=server) for _ in range(3)]
    other = await connect_client(board.slug, server=server)

    write_lock.take()
    # Three people drag (15 sets each, as fast as a page sends them), then someone else sets.
    drags = [
        asyncio.gather(*(timed_call(a, "s1", v, 4 * timeout + 4) for v in range(1, 16)))
        for a in draggers
    ]
    await asyncio.sleep(0.05)
    single = await timed_call(other, "s2", 7, 4 * timeout + 4)
    results = await asyncio.gather(*drags)
    write_lock.release()

    ack, took = single
    assert ack != "no ack", "the single set got no ack at all"
    assert_error(ack, "unavailable")
    assert took < timeout + 0.8, f"the single set was refused after {took:.1f}s"
    for acks in results:
        slowest = max(took for _, took in acks)
        assert slowest < timeout + 1.5, f"a dragger's acks took up to {slowest:.1f}s"
        for ack, _ in acks:
            assert_error(ack, "unavailable")
    assert stored(board.slug, "s1") == (50, 0)
    assert stored(board.slug, "s2") == (50, 0)


async def test_reads_do_not_queue_behind_stalled_writes(
    start_server, make_board, connect_client, write_lock
):
    timeout = 3.0
    server = stall_server(start_server, timeout)
    board = make_board()
    dragger = await connect_client(board.slug, server=server)

    write_lock.take()
    drag = asyncio.gather(*(timed_call(dragger, "s1", v, 3 * timeout) for v in range(1, 16)))
    await asyncio.sleep(0.2)  # the drag's first set is waiting for the lock
    late = BoardClient(server.url, board.slug)
    started = time.monotonic()
    try:
        await late.connect(wait_state=False)
        await late.wait_for(lambda: late.of("board:state"), timeout=3 * timeout)
        took = time.monotonic() - started
        assert late.values["s1"] == (50, 0)
    finally:
        await late.disconnect()
        await drag
        write_lock.release()
    assert took < timeout / 2, f"board:state took {took:.1f}s during the stall"


async def test_heartbeats_survive_a_stalled_database(
    start_server, make_board, connect_client, write_lock
):
    timeout = 3.0
    # A ping every second, answered within a second: a reader blocked for a set's lock wait
    # (3 s) would miss the pongs.
    server = stall_server(
        start_server, timeout, SOCKETIO_PING_INTERVAL="1", SOCKETIO_PING_TIMEOUT="1"
    )
    board = make_board()
    dragger = await connect_client(board.slug, server=server)
    dropped: list[Any] = []
    dragger.sio.on("disconnect", lambda *reason: dropped.append(reason))

    write_lock.take()
    stall_ends = time.monotonic() + 2 * timeout  # longer than ping interval + timeout
    acks = []
    try:
        # The person keeps dragging through the stall, so sets are always waiting.
        while time.monotonic() < stall_ends and not dropped:
            acks.append(asyncio.ensure_future(timed_call(dragger, "s1", len(acks), 2 * timeout)))
            await asyncio.sleep(0.1)
        results = await asyncio.gather(*acks)
    finally:
        write_lock.release()

    assert not dropped, f"the connection was dropped during the stall: {dropped}"
    assert dragger.sio.connected
    for ack, _ in results:
        assert_error(ack, "unavailable")
    ack = await dragger.set("s1", 42)
    assert ack == {"ok": True, "id": "s1", "value": 42, "version": 1}
    assert "ping timeout" not in server.log().lower()


async def test_a_newer_set_supersedes_the_same_connections_queued_ones(
    start_server, make_board, connect_client, write_lock
):
    server = stall_server(start_server, 5.0)
    board = make_board()
    dragger = await connect_client(board.slug, server=server)

    write_lock.take()
    drag = asyncio.gather(*(dragger.set("s1", v, timeout=10) for v in range(10, 16)))
    await asyncio.sleep(0.5)  # well within the timeout: the first set still waits for the lock
    write_lock.release()
    acks = await drag

    final = acks[-1]
    assert final["ok"] is True and final["value"] == 15, acks
    # The sets queued behind the first were superseded by the newest one and got its result.
    assert acks[1:] == [final] * 5, acks
    first_written = acks[0] != final
    if first_written:
        assert acks[0] == {"ok": True, "id": "s1", "value": 10, "version": 1}
    # One write per value actually stored: the superseded values were never written.
    assert final["version"] == 1 + first_written
    assert stored(board.slug, "s1") == (15, final["version"])


async def test_a_connections_waiting_changes_are_bounded(
    start_server, make_board, connect_client, write_lock
):
    timeout = 2.0
    server = stall_server(start_server, timeout)
    board = make_board()  # two sliders: one waiting set each, and a few barriers
    flooder = await connect_client(board.slug, server=server)

    write_lock.take()
    try:
        # Sets for 30 different ids: none supersedes another, so they would all wait.
        results = await asyncio.gather(
            *(timed_call(flooder, f"x{n}", 1, 3 * timeout) for n in range(30))
        )
    finally:
        write_lock.release()

    refused = [took for ack, took in results if ack != "no ack" and ack["error"] == "rate_limited"]
    # One running, then the board's 2 sliders + 8 barriers' worth of waiting changes.
    assert len(refused) == 30 - 11, [ack for ack, _ in results]
    assert max(refused) < 1, f"a refusal past the bound took {max(refused):.1f}s"
    for ack, took in results:
        assert ack != "no ack"
        assert ack["error"] in ("rate_limited", "unavailable"), ack
        assert took < timeout + 1, f"an ack took {took:.1f}s"
    assert flooder.sio.connected
    assert await flooder.set("s1", 3) == {"ok": True, "id": "s1", "value": 3, "version": 1}


async def test_no_set_supersedes_another_across_a_preset(
    start_server, make_board, connect_client, write_lock
):
    from sliders import services

    server = stall_server(start_server, 5.0)
    board = make_board()
    services.save_preset(board=board.slug, name="Scene")  # s1 at 50
    person = await connect_client(board.slug, server=server)

    write_lock.take()
    first = asyncio.ensure_future(person.set("s1", 10, timeout=10))
    await asyncio.sleep(0.3)  # the first set waits for the lock; the rest queue behind it
    before = asyncio.ensure_future(person.set("s1", 20, timeout=10))
    recall = asyncio.ensure_future(person.call("preset:recall", {"name": "Scene"}, timeout=10))
    after = asyncio.ensure_future(person.set("s1", 30, timeout=10))
    await asyncio.sleep(0.3)
    write_lock.release()
    acks = await asyncio.gather(first, before, recall, after)

    # Each applied in the order sent: 10, 20, the preset (back to 50), 30.
    assert acks == [
        {"ok": True, "id": "s1", "value": 10, "version": 1},
        {"ok": True, "id": "s1", "value": 20, "version": 2},
        {"ok": True, "name": "Scene", "skipped": [], "adjusted": []},
        {"ok": True, "id": "s1", "value": 30, "version": 4},
    ]
    assert stored(board.slug, "s1") == (30, 4)
