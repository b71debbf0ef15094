"""The bridge runner: the one place outgoing bridge messages are sent from.

It hears the cluster's notices (sliders.cluster): without REDIS_URL the web process runs it
(sliders/realtime/lifecycle.py), with REDIS_URL `manage.py run_bridges` does and the web
processes never do, so each change is sent once per target however many web processes run.

- "update": each change goes to the outbox (sliders/bridges/outbox.py) of every target of its
  board, except the target it came in from (`Change.bridge`), whose outbox only learns that
  the target has that value (nothing older is sent there).
- "preset" (a preset recalled) and "board" notices that say what changed: an `Event` to the
  outbox of every target of the board (only webhooks' outboxes take events).
- "board", "bridges" (settings changed), "resync" (notices may have been lost): reload. A
  reload reads every kind's targets and the current values of their boards: new targets are
  sent every slider's value, and so are targets whose settings changed (another host, port or
  slider address); a value newer than what a target has or gets is sent (a change whose notice
  was lost, an admin edit that changed a slider's range and value at once).
- Every `BRIDGES_CHECK_INTERVAL` seconds it reads each kind's `fingerprint()` and reloads when
  one changed (settings edited where no notice reaches the runner), and lets each kind retry
  what failed (a listening port that was taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from typing import Any

from django.conf import settings

from sliders.bridges.base import (
    Bridge,
    Change,
    Event,
    Target,
    changes_of_notice,
    event_of_notice,
)
from sliders.bridges.mqtt import MqttBridge
from sliders.bridges.osc import OscBridge
from sliders.bridges.outbox import Outbox, store_state_now
from sliders.bridges.webhooks import WebhookBridge
from sliders.db import run_in_db_thread, run_in_read_thread
from sliders.models import Slider

logger = logging.getLogger(__name__)


def bridge_kinds() -> list[Bridge]:
    """One of each kind of bridge: adding a kind is adding it here."""
    return [OscBridge(), MqttBridge(), WebhookBridge()]


class Runner:
    """Every kind's targets, their outboxes, and the notices that feed them."""

    def __init__(self, kinds: list[Bridge] | None = None) -> None:
        self.kinds = kinds if kinds is not None else bridge_kinds()
        self.outboxes: dict[str, Outbox] = {}  # target key -> its outbox
        self._by_board: dict[str, list[Outbox]] = {}
        self._fingerprints: list[Hashable] = []
        self._reload_wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load the settings, start every target and listener, and keep them current.

        If the database cannot be read now, the runner keeps trying (logged) instead of raising.
        """
        try:
            await self._reload()
        except Exception:
            logger.exception("Loading the bridge settings failed; retrying")
            self._reload_wanted.set()
        self._tasks = [
            asyncio.create_task(self._reload_when_wanted(), name="bridges-reload"),
            asyncio.create_task(self._check_regularly(), name="bridges-check"),
        ]
        logger.info(
            "Bridges started: %d target(s) (%s)",
            len(self.outboxes),
            ", ".join(f"{o.target.key} {o.target.label}" for o in self.outboxes.values()) or "-",
        )

    async def stop(self) -> None:
        """Stop every target and listener; values still waiting are dropped."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for outbox in self.outboxes.values():
            await outbox.stop()
        self.outboxes, self._by_board = {}, {}
        for kind in self.kinds:
            await kind.close()

    async def on_notice(self, kind: str, board: str, data: Any) -> None:
        """A cluster notice (any process's, this one's included); never raises."""
        try:
            if kind == "update":
                self.route(changes_of_notice(board, data))
            elif kind in ("preset", "board"):
                event = event_of_notice(kind, board, data)
                if event is not None:
                    self.route_event(event)
            if kind in ("board", "bridges", "resync"):
                self._reload_wanted.set()
        except Exception:
            logger.exception("The bridges could not handle the notice %s for board %s", kind, board)

    def route(self, changes: list[Change]) -> None:
        """Hand committed changes to the outboxes of their board's targets."""
        for change in changes:
            for outbox in self._by_board.get(change.board, ()):
                if change.bridge == outbox.target.key:
                    outbox.came_from_target(change)
                else:
                    outbox.put(change)

    def route_event(self, event: Event) -> None:
        """Hand an event (a preset recalled, a board changed) to its board's targets' outboxes."""
        for outbox in self._by_board.get(event.board, ()):
            outbox.put_event(event)

    async def _reload_when_wanted(self) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()  # notices during the reload ask for another one
            try:
                await self._reload()
            except Exception:
                logger.exception("Reloading the bridge settings failed; retrying")
                await asyncio.sleep(1)
                self._reload_wanted.set()

    async def _check_regularly(self) -> None:
        while True:
            await asyncio.sleep(settings.BRIDGES_CHECK_INTERVAL)
            try:
                fingerprints = await run_in_read_thread(self._read_fingerprints)
                if fingerprints != self._fingerprints:
                    self._reload_wanted.set()
                else:
                    for kind in self.kinds:
                        await kind.apply()
            except Exception:
                logger.exception("Checking the bridge settings failed")

    def _read_fingerprints(self) -> list[Hashable]:
        return [kind.fingerprint() for kind in self.kinds]

    def _load(self) -> tuple[list[Hashable], list[Target], list[Change]]:
        """In a database thread: fingerprints, every kind's targets, and their boards' values."""
        fingerprints = self._read_fingerprints()
        targets = [target for kind in self.kinds for target in kind.load()]
        values = Slider.objects.filter(board__slug__in={t.board for t in targets}).values_list(
            "board__slug", "slug", "value", "version"
        )
        return fingerprints, targets, [Change(*row) for row in values]

    async def _reload(self) -> None:
        self._fingerprints, targets, values = await run_in_read_thread(self._load)
        wanted = {target.key: target for target in targets}
        for key in set(self.outboxes) - set(wanted):
            await self.outboxes.pop(key).stop()
        for key, target in wanted.items():
            outbox = self.outboxes.get(key)
            if outbox is not None and outbox.target.board != target.board:
                await self.outboxes.pop(key).stop()  # moved to another board: start afresh
                outbox = None
            if outbox is None:
                outbox_class = target.outbox_class or Outbox
                self.outboxes[key] = outbox = outbox_class(target, self._store_state)
                outbox.start()
            elif outbox.target.settings != target.settings:  # sent every value again
                sliders = {change.slider for change in values if change.board == target.board}
                await outbox.replace_target(target, sliders).close()
            else:
                await target.close()  # unchanged: the running one stays
        self._by_board = {}
        for outbox in self.outboxes.values():
            self._by_board.setdefault(outbox.target.board, []).append(outbox)
        self.route(values)  # only what a target does not have yet is sent
        for kind in self.kinds:
            await kind.apply()

    async def _store_state(self, target: Target, state: str, error: str | None) -> None:
        await run_in_db_thread(store_state_now, target, state, error)
