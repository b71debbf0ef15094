"""One connection's changes, applied one at a time in the order they arrived (invariant 8).

Socket.IO handlers run as concurrent tasks, one per event, so that the transport's reader never
waits for the database (heartbeats included). The order of a connection's changes is kept here
instead: each change's own task runs it when its turn comes, so no extra task or thread is
involved, and a change that finds the queue empty runs at once.

While changes wait (the database is slow or stalled):

- latest value wins: a waiting set for a slider is superseded by a newer set for the same slider
  from the same connection; the older one never runs and is answered with the newer one's ack,
  which is what the page wants (its latest value). The newer set keeps the older one's deadline.
  A change that is not a set (a preset) is a barrier: nothing is superseded across it.
- a change must have its answer within `timeout` seconds (`DATABASE_TIMEOUT`) of its arrival:
  one whose turn comes later is refused with `unavailable` without touching the database, and
  one that starts late waits for locks only for the time it has left (sliders.db.deadline).
- the queue is bounded by `capacity()` waiting changes (the board's sliders and a few barriers);
  past it, a change is refused at once with `rate_limited` and the connection stays open.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sliders import db
from sliders.realtime.acks import Ack, error_ack

# Changes other than sets (presets, malformed sets) that may wait, on top of one set per slider.
WAITING_BARRIERS = 8


def too_late() -> Ack:
    """The ack of a change not stored within DATABASE_TIMEOUT of its arrival."""
    return error_ack("unavailable", "The server cannot store changes right now; try again.")


def too_many() -> Ack:
    """The ack of a change refused because the queue is full."""
    return error_ack("rate_limited", "Too many changes are waiting; slow down.")


@dataclass(eq=False, slots=True)
class _Waiting:
    key: str | None  # the slider a set is for; None: a barrier
    deadline: float  # time.monotonic() by which it must be answered
    # Resolves to None when it is this change's turn, or to the newer change superseding it.
    turn: asyncio.Future[_Waiting | None]
    # This change's ack, for the older changes it superseded (created when it supersedes one).
    ack: asyncio.Future[Ack] | None = field(default=None)


class ChangeQueue:
    """The changes of one connection: run one at a time, in arrival order, within a deadline."""

    def __init__(self, *, timeout: float, capacity: Callable[[], int]) -> None:
        """`timeout`: seconds from arrival to answer; `capacity()`: how many changes may wait."""
        self.timeout = timeout
        self.capacity = capacity
        self._busy = False  # a change is running (or its turn has been given)
        self._waiting: deque[_Waiting] = deque()
        self._latest: dict[str, _Waiting] = {}  # slider -> its waiting set, since the last barrier

    def __len__(self) -> int:
        """How many changes wait (the running one not included)."""
        return len(self._waiting)

    async def run(self, change: Callable[[], Awaitable[Ack]], *, key: str | None) -> Ack:
        """Run `change()` (a set of slider `key`, or a barrier if None) in its turn; its ack.

        Must be awaited at the start of the event's task: python-socketio starts one task per
        event in arrival order, and nothing here suspends before the change takes its place,
        so the queue's order is the arrival order.
        """
        deadline = time.monotonic() + self.timeout
        if not self._busy:  # the normal case: nothing runs, nothing waits
            self._busy = True
            try:
                return await self._start(change, deadline)
            finally:
                self._pass_turn()
        older = self._latest.pop(key, None) if key is not None else None
        if older is not None and older.turn.done():
            older = None  # its task was cancelled; it leaves the queue when that task resumes
        if older is None and len(self._waiting) >= self.capacity():
            return too_many()
        if older is not None:
            # The newer set answers the older ones too: it keeps the earliest deadline, so no
            # ack comes later than DATABASE_TIMEOUT after its own set arrived.
            deadline = min(deadline, older.deadline)
        waiting = _Waiting(key, deadline, asyncio.get_running_loop().create_future())
        if older is not None:
            self._waiting.remove(older)
            waiting.ack = asyncio.get_running_loop().create_future()
            older.turn.set_result(waiting)
        if key is None:
            self._latest.clear()  # nothing is superseded across a barrier
        else:
            self._latest[key] = waiting
        self._waiting.append(waiting)
        has_turn = False
        try:
            newer = await waiting.turn
            if newer is not None:
                ack = await asyncio.shield(newer.ack)  # type: ignore[arg-type]
            else:
                has_turn = True
                try:
                    ack = await self._start(change, waiting.deadline)
                finally:
                    self._pass_turn()
        except BaseException as error:  # cancelled (the server is stopping), or a bug
            if not has_turn:
                turn = waiting.turn
                if turn.done() and not turn.cancelled() and turn.result() is None:
                    self._pass_turn()  # the turn came as this task was cancelled: hand it on
                else:
                    self._forget(waiting)
            if waiting.ack is not None and not waiting.ack.done():
                if isinstance(error, asyncio.CancelledError):
                    waiting.ack.cancel()
                else:
                    waiting.ack.set_exception(error)
                    waiting.ack.exception()  # retrieved: the superseded change's task gets it
            raise
        if waiting.ack is not None:
            waiting.ack.set_result(ack)
        return ack

    async def _start(self, change: Callable[[], Awaitable[Ack]], deadline: float) -> Ack:
        if time.monotonic() >= deadline:
            return too_late()
        with db.deadline(deadline):
            return await change()

    def _pass_turn(self) -> None:
        """The running change is done: give the turn to the next waiting one, if any."""
        while self._waiting:
            waiting = self._waiting.popleft()
            if waiting.key is not None and self._latest.get(waiting.key) is waiting:
                del self._latest[waiting.key]  # it starts now: no longer supersedable
            if not waiting.turn.done():
                waiting.turn.set_result(None)
                return
        self._busy = False

    def _forget(self, waiting: _Waiting) -> None:
        if waiting in self._waiting:
            self._waiting.remove(waiting)
        if waiting.key is not None and self._latest.get(waiting.key) is waiting:
            del self._latest[waiting.key]
