"""Hands on controls: who is moving which slider right now.

A page sends `slider:grab` when a person starts dragging (and every couple of seconds while
they hold on) and `slider:release` when they let go. Everyone on the board gets
`slider:hands {id, hands: [{hand, by}]}`, the full list of hands on that slider, whenever it
changes; `board:state` carries the lists for late joiners. A hand is an opaque id per
connection (never the Socket.IO session id), and `by` is the person's name, or "someone".

Every process keeps the table of all hands on the boards it serves: its own connections' and
those it hears of through the cluster. A hand goes away on release, when its connection closes,
or `GRAB_TIMEOUT` seconds after its last grab, so a crashed page or process leaves no hand
behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Emit = Callable[[str, str, list[dict[str, str]]], Awaitable[None]]  # (board, slider, hands)


@dataclass(slots=True)
class _Hand:
    by: str
    expires_at: float


class Hands:
    """The table of hands on the boards this process serves; `emit(board, slider, hands)` tells
    a board's clients here, `timeout` is GRAB_TIMEOUT in seconds. The process's is
    `boards.hands`."""

    def __init__(self, *, emit: Emit, timeout: float) -> None:
        self.emit = emit
        self.timeout = timeout
        # board -> slider -> hand id -> hand
        self._table: dict[str, dict[str, dict[str, _Hand]]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def on_board(self, board: str) -> dict[str, list[dict[str, str]]]:
        """The hands on each slider of a board, for `board:state`."""
        return {slider: self._listed(hands) for slider, hands in self._table.get(board, {}).items()}

    async def grab(self, board: str, slider: str, hand: str, by: str) -> None:
        """A hand is on `slider` (again): tell the board if it is new."""
        hands = self._table.setdefault(board, {}).setdefault(slider, {})
        new = hand not in hands
        hands[hand] = _Hand(by, time.monotonic() + self.timeout)
        self._start_sweeping()
        if new:
            await self.emit(board, slider, self._listed(hands))

    async def release(self, board: str, slider: str, hand: str) -> None:
        """`hand` let go of `slider`: tell the board if it held it."""
        hands = self._table.get(board, {}).get(slider, {})
        if hands.pop(hand, None) is not None:
            self._forget_empty(board, slider)
            await self.emit(board, slider, self._listed(hands))

    def held_by(self, board: str, hand: str) -> list[str]:
        """The sliders `hand` holds on `board` (to release them when its connection closes)."""
        return [s for s, hands in self._table.get(board, {}).items() if hand in hands]

    async def sweep(self) -> None:
        """Drop hands whose last grab is older than the timeout."""
        now = time.monotonic()
        for board, sliders in list(self._table.items()):
            for slider, hands in list(sliders.items()):
                expired = [hand for hand, held in hands.items() if held.expires_at <= now]
                for hand in expired:
                    del hands[hand]
                if expired:
                    self._forget_empty(board, slider)
                    await self.emit(board, slider, self._listed(hands))

    def stop(self) -> None:
        """Stop sweeping (the server is stopping)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _start_sweeping(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_while_held())

    async def _sweep_while_held(self) -> None:
        while self._table:
            await asyncio.sleep(min(1.0, self.timeout / 4))
            await self.sweep()

    def _forget_empty(self, board: str, slider: str) -> None:
        sliders = self._table.get(board, {})
        if not sliders.get(slider, True):
            del sliders[slider]
        if not sliders:
            self._table.pop(board, None)

    @staticmethod
    def _listed(hands: dict[str, _Hand]) -> list[dict[str, Any]]:
        return [{"hand": hand, "by": held.by} for hand, held in hands.items()]
