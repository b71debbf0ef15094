"""Coalesced presence (sliders/realtime/presence.py): one trailing `board:presence` per interval.

The counts come from a dict and the emits go to a list: the two callbacks are the seam
`Presence` takes. With a cluster, the real in-process `LocalCluster`, with Redis's latency added
where a test needs it (`SlowRedis`); tests/test_scaleout.py has the same with real Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sliders.cluster import LocalCluster
from sliders.realtime.presence import Presence

INTERVAL = 0.02


class Room:
    """Local client counts per board, and every presence emit, in order."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.emits: list[tuple[str, int]] = []

    def presence(self, interval: float = INTERVAL) -> Presence:
        async def emit(board: str, clients: int) -> None:
            self.emits.append((board, clients))

        return Presence(
            count_local=lambda board: self.counts.get(board, 0), emit_local=emit, interval=interval
        )


async def settle() -> None:
    await asyncio.sleep(INTERVAL * 4)


async def test_changes_within_an_interval_are_one_emit_of_the_latest_count() -> None:
    room = Room()
    presence = room.presence()
    for clients in (1, 2, 3):
        room.counts["stage"] = clients
        presence.changed("stage")
    assert room.emits == []  # trailing: nothing before the interval
    await settle()
    assert room.emits == [("stage", 3)]


async def test_each_board_has_its_own_emit() -> None:
    room = Room()
    presence = room.presence()
    room.counts.update(stage=2, foyer=1)
    presence.changed("stage")
    presence.changed("foyer")
    await settle()
    assert sorted(room.emits) == [("foyer", 1), ("stage", 2)]


async def test_a_change_after_an_emit_is_emitted_again_even_with_the_same_count() -> None:
    room = Room()
    presence = room.presence()
    room.counts["stage"] = 2
    presence.changed("stage")
    await settle()
    presence.changed("stage")  # one left and another joined
    await settle()
    assert room.emits == [("stage", 2), ("stage", 2)]


async def test_a_board_nobody_here_watches_gets_no_emit() -> None:
    room = Room()
    presence = room.presence()
    presence.changed("stage")  # the last client left
    await settle()
    assert room.emits == []


async def test_a_refresh_emits_only_when_the_total_changed() -> None:
    room = Room()
    presence = room.presence()
    room.counts["stage"] = 1
    presence.changed("stage")
    await settle()
    presence.refresh("stage")  # nothing changed anywhere
    await settle()
    assert room.emits == [("stage", 1)]
    presence.refresh("empty")  # no local clients: nothing to tell
    await settle()
    assert room.emits == [("stage", 1)]


async def test_with_a_cluster_the_count_is_reported_announced_and_the_total_emitted() -> None:
    room = Room()
    presence = room.presence()
    cluster = LocalCluster()
    notices: list[tuple[str, str, Any]] = []

    async def handle(kind: str, board: str, data: Any) -> None:
        notices.append((kind, board, data))

    await cluster.start(handle)
    presence.cluster = cluster
    room.counts["stage"] = 4
    presence.changed("stage")
    await settle()
    assert await cluster.total_count("stage") == 4
    assert notices == [("presence", "stage", None)]
    assert room.emits == [("stage", 4)]
    await cluster.stop()


class SlowRedis(LocalCluster):
    """The in-process cluster with Redis's latency added: each report, notice and total takes
    `delay` seconds, and the successive `total_count` reads the extra `total_delays` (the read
    is taken at once, its answer comes late). As with Redis, this process hears its own notice
    at once, before the publish returns."""

    def __init__(self, delay: float = 0, total_delays: tuple[float, ...] = ()) -> None:
        super().__init__()
        self.delay = delay
        self.total_delays = list(total_delays)

    async def notify(self, kind: str, board: str, data: Any = None) -> None:
        await super().notify(kind, board, data)
        await asyncio.sleep(self.delay)

    async def report_count(self, board: str, count: int) -> None:
        await super().report_count(board, count)
        await asyncio.sleep(self.delay)

    async def total_count(self, board: str) -> int:
        total = await super().total_count(board)
        extra = self.total_delays.pop(0) if self.total_delays else 0
        await asyncio.sleep(self.delay + extra)
        return total


async def test_stale_total_from_a_slow_read_is_not_sent_after_a_newer_one() -> None:
    room = Room()
    presence = room.presence()
    presence.cluster = cluster = SlowRedis(total_delays=(INTERVAL * 5,))
    await cluster.start(lambda kind, board, data: asyncio.sleep(0))
    room.counts["stage"] = 1
    presence.changed("stage")  # its total (1) is read, then answered late
    await asyncio.sleep(INTERVAL * 2)
    room.counts["stage"] = 2
    presence.changed("stage")  # a second client: its total (2) comes back first
    await asyncio.sleep(INTERVAL * 8)
    assert room.emits[-1] == ("stage", 2), room.emits  # the screens show the newer count
    await cluster.stop()


async def test_slow_redis_does_not_lose_the_emit_of_a_local_change() -> None:
    """A change's own notice makes this process refresh; when the change's Redis round trips
    outlast the interval, that refresh must not swallow the change's emit (one left and another
    joined: same count, but the newcomer's board:state may predate the leave)."""
    room = Room()
    presence = room.presence()
    presence.cluster = cluster = SlowRedis(delay=INTERVAL)

    async def on_notice(kind: str, board: str, data: Any) -> None:
        presence.refresh(board)  # as sliders.realtime.dispatch does for "presence"

    await cluster.start(on_notice)
    room.counts["stage"] = 2
    presence.changed("stage")
    await asyncio.sleep(INTERVAL * 15)
    assert room.emits == [("stage", 2)]
    presence.changed("stage")  # one left and another joined
    await asyncio.sleep(INTERVAL * 15)
    assert room.emits == [("stage", 2), ("stage", 2)]
    await cluster.stop()
