"""What a client holds of a board, and the protocol's rule for changing it: only newer versions.

`BoardState` takes the server's messages (`board:state`, `slider:update(s)`, a set's ack) and
answers with the `Change`s they bring: a value whose version is greater than the one held. The
first `board:state` of a connection replaces what is held (docs/protocol.md); comparing it with
what was held before turns whatever happened while the connection was down into changes, so
nothing is missed. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Slider:
    """A slider's description: `id` (its slug on the board), `name`, range `min`..`max`, the
    grid `step`, the display `unit` (may be empty) and `precision` (decimals to show, None: as
    many as the step needs). Values set are clamped to the range and snapped to the grid."""

    id: str
    name: str
    min: float
    max: float
    step: float
    unit: str = ""
    precision: int | None = None


@dataclass(frozen=True)
class Change:
    """A slider's value at a version: `slider` (its id), `value`, `version` (grows by one per
    accepted change of that slider)."""

    slider: str
    value: float
    version: int


def _slider(item: Mapping[str, Any]) -> Slider:
    precision = item.get("precision")
    return Slider(
        id=str(item["id"]),
        name=str(item.get("name", item["id"])),
        min=float(item["min"]),
        max=float(item["max"]),
        step=float(item["step"]),
        unit=str(item.get("unit") or ""),
        precision=precision if isinstance(precision, int) else None,
    )


def _change(item: Mapping[str, Any]) -> Change:
    return Change(slider=str(item["id"]), value=float(item["value"]), version=int(item["version"]))


class BoardState:
    """A board as the client knows it: its name, sliders, values and versions.

    Not thread-safe: the async `Board` changes it on its event loop only.
    """

    def __init__(self) -> None:
        self.board = ""
        self.name = ""
        self.can_edit = False
        self.clients = 0
        self.sliders: dict[str, Slider] = {}  # in display order
        self.held: dict[str, Change] = {}  # slider id -> the newest value and version known
        self.loaded = False  # a board:state has been taken

    def take_state(self, payload: Mapping[str, Any], *, first: bool) -> list[Change]:
        """Take a `board:state`; return the changes it brings (none for the very first one).

        With `first` (the first of a connection) it replaces what is held, sliders gone
        included; otherwise a value held with a greater version stays (an update may overtake
        a state). A slider that is new, or whose version grew, is a change.
        """
        items = [item for item in payload.get("sliders", ()) if isinstance(item, Mapping)]
        known_before = self.loaded
        self.board = str(payload.get("board", self.board))
        self.name = str(payload.get("name", self.name))
        self.can_edit = payload.get("can_edit") is True
        clients = payload.get("clients")
        self.clients = clients if isinstance(clients, int) else self.clients
        self.sliders = {slider.id: slider for slider in map(_slider, items)}
        changes: list[Change] = []
        held: dict[str, Change] = {}
        for change in map(_change, items):
            before = self.held.get(change.slider)
            if before is None or change.version > before.version:
                held[change.slider] = change
                changes.append(change)
            else:
                held[change.slider] = change if first else before
        self.held = held
        self.loaded = True
        return changes if known_before else []

    def take_updates(self, items: Iterable[Any]) -> list[Change]:
        """Take `slider:update` items; return those newer than what is held (others are stale)."""
        changes = []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            change = _change(item)
            before = self.held.get(change.slider)
            if change.slider in self.sliders and (
                before is None or change.version > before.version
            ):
                self.held[change.slider] = change
                changes.append(change)
        return changes

    def take_own(self, change: Change) -> None:
        """Hold the stored result of this client's own set (an ack), if it is newer."""
        before = self.held.get(change.slider)
        if before is None or change.version > before.version:
            self.held[change.slider] = change
