"""Coalesced presence: `board:presence` at most once per interval per board.

Emitting on every join and leave is quadratic: a thousand clients connecting at once would each
trigger a message to everyone. Instead the first change on a board schedules one trailing emit,
and every change until then rides along with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Presence:
    def __init__(
        self,
        *,
        count: Callable[[str], int],
        emit: Callable[[str, int], Awaitable[None]],
        interval: float = 0.25,
    ) -> None:
        self.count = count
        self.emit = emit
        self.interval = interval
        self._scheduled: dict[str, asyncio.Task[None]] = {}

    def changed(self, board_slug: str) -> None:
        """Note that someone joined or left; the board hears of it within `interval` seconds."""
        if board_slug not in self._scheduled:
            self._scheduled[board_slug] = asyncio.get_running_loop().create_task(
                self._emit_later(board_slug)
            )

    async def _emit_later(self, board_slug: str) -> None:
        try:
            await asyncio.sleep(self.interval)
        finally:
            self._scheduled.pop(board_slug, None)
        await self.emit(board_slug, self.count(board_slug))
