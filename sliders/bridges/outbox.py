"""One target's outgoing queue: latest value wins per slider, at most `rate` sends a second.

`put` never waits and never fails: it only records the change (replacing the same slider's
waiting one, which counts as superseded), so a set never waits for a target. The outbox's own
task sends what waits, at most `target.rate` times a second, each time the latest value of
every slider that changed since the last send; the last value is always sent. What waits is
one entry per slider of the board, so a dead target costs a bounded queue. A failed send keeps
its values (unless newer ones came meanwhile), marks the target failing (logged once, stored
for the admin) and is retried after a back-off that doubles up to `RETRY_MAX` seconds; the
first send that works marks it ok again (logged once). While it is ok, the time of the last
success is stored at most every `SUCCESS_STORE_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection

from django.utils import timezone

from sliders import metrics, services
from sliders.bridges.base import Change, Event, Target
from sliders.models import TargetState

logger = logging.getLogger(__name__)

RETRY_FIRST = 0.5  # seconds before the first retry of a failed send; it doubles each time
RETRY_MAX = 30.0  # the longest wait between retries
SUCCESS_STORE_INTERVAL = 10.0  # seconds between two stores of `last_success_at`

# Stores a target's state (the runner runs it in a database thread): (target, state, error).
StateStore = Callable[[Target, str, str | None], Awaitable[None]]


class Outbox:
    """The changes waiting for one target, and the task that sends them."""

    def __init__(self, target: Target, store_state: StateStore) -> None:
        self.target = target
        self.state = TargetState.State.UNKNOWN.value
        self._store_state = store_state
        self._waiting: dict[str, Change] = {}  # slider -> its latest change not yet sent
        self._latest: dict[str, Change] = {}  # slider -> the newest change the target has or gets
        self._wake = asyncio.Event()
        self._resume = asyncio.Event()  # cuts a retry's wait short: the target works again
        self._last_batch: list[Change] = []
        self._stored_success = 0.0
        self._store_lock = asyncio.Lock()  # FIFO: states are stored in the order they happened
        self._storing: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._counters = (
            metrics.BRIDGE_SENT.labels(target.key),
            metrics.BRIDGE_SUPERSEDED.labels(target.key),
            metrics.BRIDGE_FAILURES.labels(target.key),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervised(), name=f"bridge-{self.target.key}")
        self.target.watch(self.report)

    async def _supervised(self) -> None:
        """Run the sending task, and run it again a second after it fails: a bug in one kind's
        sending code (an exception no send is expected to raise) must not stop a target for
        good, silently. What waits is kept."""
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Bridge target %s: its sending task failed; starting it again",
                                 self.target.key)  # fmt: skip
                await asyncio.sleep(1.0)
                self._wake.set()

    async def stop(self) -> None:
        """Stop sending (what waits is dropped) and close the target."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.target.close()
        if self.state != TargetState.State.UNKNOWN:
            metrics.BRIDGE_UP.remove(self.target.key)

    def put(self, change: Change) -> None:
        """Send `change` soon, unless the target has or gets a newer version of the slider."""
        if change.version <= self._version(change.slider):
            return
        if self._waiting.pop(change.slider, None) is not None:
            self._counters[1].inc()
        self._waiting[change.slider] = change
        self._latest[change.slider] = change
        self._wake.set()

    def put_event(self, event: Event) -> None:
        """An event other than a value change: only outboxes of targets that report events
        (webhooks) take it; this one ignores it."""
        return None

    def came_from_target(self, change: Change) -> None:
        """`change` came in from this target: it has that value, so nothing older is sent."""
        if change.version > self._version(change.slider):
            waiting = self._waiting.pop(change.slider, None)
            if waiting is not None:
                self._counters[1].inc()
            self._latest[change.slider] = change

    # A target whose settings change is sent the newest value of every slider again (a desk moved
    # to another address has none of them); an outbox of events (webhooks) sends only what
    # happens from then on, and says so by setting this False.
    resend_on_new_settings = True

    def replace_target(self, target: Target, sliders: Collection[str]) -> Target:
        """Send to `target` from now on (same key, new settings); returns the old one.

        New settings may be a new place (another host or port, another address for a slider):
        like a new target, it is sent the newest value of each of `sliders` (the board's
        sliders now; others are forgotten), not only the next change.
        """
        old, self.target = self.target, target
        target.watch(self.report)
        if not self.resend_on_new_settings:
            return old
        self._latest = {s: c for s, c in self._latest.items() if s in sliders}
        for slider, change in self._latest.items():
            self._waiting.setdefault(slider, change)
        self._waiting = {s: c for s, c in self._waiting.items() if s in sliders}
        self._wake.set()
        return old

    def report(self, error: Exception | None) -> None:
        """The target says how it is doing between sends (`Target.watch`): failing with `error`,
        or working (None). Sets the state as a send's outcome would (counting no failure); a
        target working again is sent what waits at once, not after the retry's back-off."""
        if error is not None:
            self._failed(error)
        else:
            self._succeeded()
            self._resume.set()

    def _version(self, slider: str) -> int:
        latest = self._latest.get(slider)
        return -1 if latest is None else latest.version

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_send = 0.0
        retry = RETRY_FIRST
        while True:
            await self._wake.wait()
            await asyncio.sleep(max(0.0, next_send - loop.time()))
            self._wake.clear()
            batch, self._waiting = list(self._waiting.values()), {}
            next_send = loop.time() + 1 / self.target.rate
            if not batch:
                continue
            try:
                await self.target.send(batch)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._counters[2].inc()
                # A failure may belong to the previous send (UDP): send both again.
                for change in (*self._last_batch, *batch):
                    if self._waiting.get(change.slider, change).version <= change.version:
                        self._waiting[change.slider] = change
                self._last_batch = []
                self._failed(error)
                self._wake.set()
                self._resume.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._resume.wait(), retry)
                retry = min(RETRY_MAX, retry * 2)
                continue
            self._counters[0].inc(len(batch))
            self._last_batch = batch
            retry = RETRY_FIRST
            self._succeeded()

    def _failed(self, error: Exception) -> None:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if self.state != TargetState.State.FAILING:
            logger.warning(
                "Bridge target %s (%s, board %s) is failing, retrying with back-off: %s",
                self.target.key, self.target.label, self.target.board, text,
            )  # fmt: skip
            self.state = TargetState.State.FAILING.value
            metrics.BRIDGE_UP.labels(self.target.key).set(0)
            self._store(text)

    def _succeeded(self) -> None:
        now = time.monotonic()
        if self.state != TargetState.State.OK:
            if self.state == TargetState.State.FAILING:
                logger.warning(
                    "Bridge target %s (%s, board %s) works again",
                    self.target.key, self.target.label, self.target.board,
                )  # fmt: skip
            self.state = TargetState.State.OK.value
            metrics.BRIDGE_UP.labels(self.target.key).set(1)
        elif now - self._stored_success < SUCCESS_STORE_INTERVAL:
            return
        self._stored_success = now
        self._store(None)

    def _store(self, error: str | None) -> None:
        """Store the state in the background (in order): sending never waits for the database."""
        task = asyncio.create_task(self._store_in_turn(self.target, self.state, error))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)

    async def _store_in_turn(self, target: Target, state: str, error: str | None) -> None:
        async with self._store_lock:
            try:
                await self._store_state(target, state, error)
            except Exception:  # the database may be down too: sending goes on
                logger.exception("Could not store the state of bridge target %s", target.key)


def store_state_now(target: Target, state: str, error: str | None) -> None:
    """What the runner's StateStore runs in a database thread (see `Outbox`)."""
    now = timezone.now()
    services.record_target_state(
        model=target.model,
        pk=target.pk,
        state=state,
        error=error,
        error_at=now if error is not None else None,
        success_at=now if state == TargetState.State.OK else None,
    )
