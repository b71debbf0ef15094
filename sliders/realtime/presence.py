"""Coalesced presence: `board:presence` at most once per interval per board.

Emitting on every join and leave is quadratic: a thousand clients connecting at once would each
trigger a message to everyone. Instead the first change on a board schedules one trailing emit,
and every change until then rides along with it. Each process tells its own clients; with
several processes the count is the cluster's total (see sliders.cluster).
The instance of the process is `boards.presence`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sliders.cluster import LocalCluster


class Presence:
    """`board:presence` for the boards of this process, coalesced per board.

    `count_local(board)`: this process's connections on a board; `emit_local(board, total)`
    sends the count to them; `interval`: seconds between messages of one board. `cluster` is
    set when the server starts (None: one process, the local count is the total). With a
    cluster the total is read from Redis, one round per board at a time, so a slow answer never
    overtakes a newer count and a change's emit is never lost to a refresh.
    """

    def __init__(
        self,
        *,
        count_local: Callable[[str], int],
        emit_local: Callable[[str, int], Awaitable[None]],
        interval: float = 0.25,
    ) -> None:
        self.count_local = count_local
        self.emit_local = emit_local
        self.interval = interval
        self.cluster: LocalCluster | None = None
        self._scheduled: dict[str, asyncio.Task[None]] = {}
        self._local_change: set[str] = set()
        self._last_sent: dict[str, int] = {}
        # Boards that changed while their count was being taken: one more round follows.
        self._again: set[str] = set()

    def changed(self, board: str) -> None:
        """Someone joined or left through this process; the board hears of it within `interval`."""
        self._local_change.add(board)
        self._schedule(board)

    def refresh(self, board: str) -> None:
        """The count may have changed elsewhere; tell our clients if it did."""
        if self.count_local(board):
            self._schedule(board)

    def _schedule(self, board: str) -> None:
        if board in self._scheduled:
            self._again.add(board)  # counted by the round under way, or by one after it
        else:
            self._scheduled[board] = asyncio.get_running_loop().create_task(self._emit_later(board))

    async def _emit_later(self, board: str) -> None:
        """Rounds of one board, one at a time: with a cluster a round awaits Redis, and a
        second round at once could send its count before an older one came back, or take the
        count before this process's own report was in and then skip the emit the change needs."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                self._again.discard(board)  # what changed until now, this round counts
                await self._emit_round(board)
                if board not in self._again:
                    return
        finally:
            self._scheduled.pop(board, None)
            self._again.discard(board)

    async def _emit_round(self, board: str) -> None:
        local_change = board in self._local_change
        self._local_change.discard(board)
        local = self.count_local(board)
        total = local
        if self.cluster is not None:
            if local_change:
                await self.cluster.report_count(board, local)
                await self.cluster.notify("presence", board)
            total = await self.cluster.total_count(board)
            local = self.count_local(board)  # who is still here to tell
        if not local_change and self._last_sent.get(board) == total:
            return
        if local:
            self._last_sent[board] = total
            await self.emit_local(board, total)
        else:
            self._last_sent.pop(board, None)
