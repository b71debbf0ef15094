"""What every kind of bridge implements, and what the runner gives them.

A *bridge kind* (OSC, ...) is one module with one `Bridge` subclass. Its `load()` reads its
settings from the database and returns its *targets*, the places it sends to (one `Target`
each); the runner gives each target an outgoing queue (sliders/bridges/outbox.py) and feeds it
the board's changes. A kind that also takes values from outside (OSC's listening port) starts
that in `apply()` and sets sliders with `set_from_outside`, through the one write path.
docs/integrations.md describes the interface for those who add a kind.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sliders import services
from sliders.db import run_in_db_thread
from sliders.models import TargetState


@dataclass(frozen=True)
class Change:
    """A committed change of one slider, as the bridges send it.

    `value` is the stored value, `version` its version (a target never gets a lower version
    after a higher one); `source` an `AuditEntry.Source` value ("socket", "api", "osc", ...),
    or "" for values the runner sends on its own (a target's first values, a resync); `actor`
    the user's name ("" if anonymous); `at` when it was written (ISO 8601, UTC; "" if unknown);
    `bridge` the target it came in from, which is not sent it back; "" if none, or if the value
    was stored other than that target sent it (clamped, snapped: see services.SliderChange).
    """

    board: str
    slider: str
    value: float
    version: int
    source: str = ""
    actor: str = ""
    at: str = ""
    bridge: str = ""


def changes_of_notice(board: str, data: Any) -> list[Change]:
    """The changes an "update" notice carries (see sliders.notices for its shape).

    Raises KeyError, TypeError or ValueError for a malformed notice.
    """
    about = {key: str(data.get(key) or "") for key in ("source", "actor", "at", "bridge")}
    return [
        Change(board, str(u["id"]), float(u["value"]), int(u["version"]), **about)
        for u in data["updates"]
    ]


@dataclass(frozen=True)
class Event:
    """Something that happened to a board other than a value change, for the targets that
    report events (webhooks); other kinds of target are not given them.

    `kind`: "preset_recalled" (from a "preset" notice) or "board_changed" (a "board" notice
    that says what changed); `details`: the notice's data without `source`, `actor` and `at`
    (see sliders.notices.preset_recalled and .board_changed), which are fields here as on
    `Change`. Unlike a change, an event is never superseded by a newer one.
    """

    board: str
    kind: str
    details: dict[str, Any]
    source: str = ""
    actor: str = ""
    at: str = ""


def event_of_notice(kind: str, board: str, data: Any) -> Event | None:
    """The event a "preset" or "board" notice stands for; None for a board notice that does
    not say what changed (or any other kind). Raises AttributeError or TypeError for a
    malformed notice."""
    if kind == "preset":
        name = "preset_recalled"
    elif kind == "board" and data and data.get("change"):
        name = "board_changed"
    else:
        return None
    about = {key: str(data.get(key) or "") for key in ("source", "actor", "at")}
    details = {key: value for key, value in data.items() if key not in about}
    return Event(board, name, details, **about)


class Target(ABC):
    """One place a bridge sends a board's changes to (an OSC host:port, ...).

    `key` names it everywhere (notices' "bridge", metrics, logs): "<kind>:<id>", unique.
    `settings` is anything hashable that changes when it must be rebuilt: after a reload, a
    target whose key and settings are unchanged keeps running as it was. Its state is stored in
    the row `pk` of `model` (a `TargetState`).
    """

    key: str
    board: str
    rate: float  # at most this many sends a second
    model: type[TargetState]
    pk: int
    settings: Hashable
    label: str  # how people know it: "10.0.0.5:8000"
    # The outbox class it needs (an Outbox subclass), if not sliders.bridges.outbox.Outbox.
    outbox_class: ClassVar[type[Any] | None] = None

    @abstractmethod
    async def send(self, changes: Sequence[Change]) -> None:
        """Send the latest value of each changed slider (at most one change per slider).

        Raises (any Exception) when the target cannot be reached: the outbox keeps the values,
        marks the target failing and retries later. A failure may be reported one send late
        (UDP learns of a refused datagram afterwards): the outbox sends the previous batch
        again too.
        """

    async def close(self) -> None:
        """Release what the target holds (sockets); it is not used again."""
        return None

    def watch(self, report: Callable[[Exception | None], None]) -> None:
        """Take the outbox's `report`, for a target that learns of its state between sends.

        A target with a connection of its own (MQTT) calls `report(error)` when it loses it and
        `report(None)` when it has it again: the target's state (logs, admin, metrics) follows
        at once instead of at the next send. Others ignore it (the default).
        """
        return None


class Bridge(ABC):
    """One kind of bridge; the runner makes one of each and calls these in turn.

    `load()` runs in a database thread whenever the settings may have changed (at start, on a
    "board" or "bridges" notice, after a resync, when the periodic check sees a change) and
    returns every enabled target of the kind; then `apply()` runs on the event loop.
    """

    kind: ClassVar[str]

    @abstractmethod
    def load(self) -> list[Target]:
        """Read this kind's settings (synchronous, in a database thread): its targets.

        May keep what `apply()` needs (listeners' settings) on `self`.
        """

    def fingerprint(self) -> Hashable:
        """A cheap summary of the settings (synchronous, in a database thread): the runner
        checks it every `BRIDGES_CHECK_INTERVAL` seconds and reloads when it changes, which
        catches edits that sent no notice (a shell without Redis). None: never changes."""
        return None

    async def apply(self) -> None:
        """Start, change or stop what takes values from outside, as the last `load()` read."""
        return None

    async def close(self) -> None:
        """Stop everything the kind started (listeners)."""
        return None


async def set_from_outside(
    *, board: str, slider: str, value: float, source: str, bridge: str, address: str
) -> services.SliderChange:
    """Set a slider to a value that came from outside through a bridge, in the write thread.

    As an operator (whoever configured the bridge in the admin allowed it), audited with
    `source`, the sender's `address` ("ip:port", also the audit's client, so one fader move is
    one entry) and `bridge` (the target it came from, which is not sent the change back).
    Raises services.Refusal as `set_slider_value` does.
    """
    actor = services.Actor(
        source=source,
        address=address.rsplit(":", 1)[0],
        client=f"{source}:{address}",
        operator=True,
        bridge=bridge,
    )
    return await run_in_db_thread(
        services.set_slider_value, board=board, slider_id=slider, value=value, actor=actor
    )


class ThrottledLog:
    """A warning logged at most once per `interval` seconds, with how many were held back.

    For input from outside (bad OSC packets): a flood must not fill the log.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._next = 0.0
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        held, self._held, self._next = self._held, 0, now + self.interval
        if held:
            message += f" ({held} more held back before this one)"
        self.logger.warning(message, *args)


class ThrottledFilter(logging.Filter):
    """A logging filter that lets each message through at most once per `interval` seconds.

    For a library's logger that can be made to log per message received (a flood).
    """

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._next: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now < self._next.get(str(record.msg), 0.0):
            return False
        self._next[str(record.msg)] = now + self.interval
        return True
