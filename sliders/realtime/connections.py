"""This process's Socket.IO connections: who each one is, and the counts kept with them.

One registry (`registry`) instead of loose dicts: the connections by Socket.IO sid, how many
come from each address and are on each board, the connections being admitted per address, each
board's slider ids as of its latest `board:state`, and when each connection's latest
`slider:set` arrived (for the set-to-broadcast histogram). Imports nothing of the server, so
/metrics can read `clients_per_board()` in any process.

Addresses: a connection's `address` is its client's IP (what per-address limits and the audit
trail count), its `peer` is "ip:port" (for the logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from sliders.ratelimit import TokenBucket
from sliders.realtime.changequeue import WAITING_BARRIERS, ChangeQueue

HAND_RATE, HAND_BURST = 10.0, 20  # grabs and releases per second, per connection
NAME_LENGTH = 40  # characters of a person's name shown with their hands


@dataclass
class Connection:
    """What the server knows about one connected client."""

    board: str
    user: Any
    address: str  # the client's IP
    peer: str  # ip:port, for the logs
    eio_sid: str  # the Engine.IO session under this Socket.IO connection
    name: str  # shown with this connection's hands: the user's name, or "someone"
    client: str  # the page's own id (auth.client, kept across its reconnects), else the sid
    share_id: int | None = None  # the share link this browser opened the board with, if any
    bucket: TokenBucket = field(
        default_factory=lambda: TokenBucket(settings.SLIDER_SET_RATE, settings.SLIDER_SET_BURST)
    )
    hand_bucket: TokenBucket = field(default_factory=lambda: TokenBucket(HAND_RATE, HAND_BURST))
    # Public id of this connection's hands (the Socket.IO sid is a session secret).
    hand: str = field(default_factory=lambda: secrets.token_hex(6))
    can_edit: bool = False  # as of its latest board:state
    # Its sets and preset requests, one at a time in arrival order (see changequeue).
    changes: ChangeQueue = field(init=False)
    # Its grabs and releases, one at a time in arrival order: a release overtaking its grab
    # (handlers run concurrently) would leave a stale hand on every process.
    hand_order: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The least lateness of its live sets so far, in seconds: what its link and the page's
    # estimate of the server's clock add to every set (see held_up).
    least_lateness: float = math.inf

    def __post_init__(self) -> None:
        board = self.board
        self.changes = ChangeQueue(
            timeout=settings.DATABASE_TIMEOUT,
            # One waiting set per slider (newer ones supersede) and a few presets.
            capacity=lambda: len(registry.slider_ids(board)) + WAITING_BARRIERS,
        )

    def held_up(self, lateness: float) -> bool:
        """Whether a live set that arrived `lateness` seconds after it was made was held up.

        Every set of a connection arrives late by about the same amount: its trip here, plus
        the error of the page's estimate of the server's clock (early by the trip of the
        `board:state` it came from). That amount is the least lateness seen so far; a set later
        than it by more than LIVE_SET_MAX_DELAY was held up (a link frozen without FIN, or a
        value that waited in the page) and is held to its base. A slow but steady link is not.
        """
        self.least_lateness = min(self.least_lateness, lateness)
        return lateness - self.least_lateness > settings.LIVE_SET_MAX_DELAY


class Connections:
    """The connections of this process, by Socket.IO sid, with counts per address and board."""

    def __init__(self) -> None:
        self._by_sid: dict[str, Connection] = {}
        self._connecting: Counter[str] = Counter()  # connections being admitted, per address
        self._per_address: Counter[str] = Counter()  # connections, per address
        self._per_board: Counter[str] = Counter()  # connections, per board
        self._slider_ids: dict[str, frozenset[str]] = {}  # per board, as of its latest state
        self._set_received: dict[str, float] = {}  # sid -> when its latest slider:set arrived

    def __len__(self) -> int:
        return len(self._by_sid)

    def __contains__(self, sid: object) -> bool:
        return sid in self._by_sid

    def get(self, sid: str) -> Connection | None:
        """The connection with Socket.IO sid `sid`, if it is admitted and still here."""
        return self._by_sid.get(sid)

    def add(self, sid: str, connection: Connection) -> None:
        """Register an admitted connection."""
        self._by_sid[sid] = connection
        self._per_address[connection.address] += 1
        self._per_board[connection.board] += 1

    def remove(self, sid: str) -> Connection | None:
        """Forget a connection that left; the connection, or None if it was not admitted."""
        connection = self._by_sid.pop(sid, None)
        if connection is not None:
            self._set_received.pop(sid, None)
            _discount(self._per_address, connection.address)
            _discount(self._per_board, connection.board)
        return connection

    def on_board(self, board_slug: str) -> list[str]:
        """The sids of the connections on a board."""
        return [sid for sid, c in self._by_sid.items() if c.board == board_slug]

    def boards(self) -> set[str]:
        """The boards that have connections here."""
        return {c.board for c in self._by_sid.values()}

    def clients_on(self, board_slug: str) -> int:
        """How many connections a board has in this process."""
        return self._per_board[board_slug]

    def clients_per_board(self) -> dict[str, int]:
        """Connections per board in this process."""
        return dict(self._per_board)

    def from_address(self, address: str) -> int:
        """Connections from a client IP, counting those being admitted."""
        return self._per_address[address] + self._connecting[address]

    @contextlib.contextmanager
    def admitting(self, address: str) -> Iterator[None]:
        """Count a connection from `address` as being admitted for the block's duration."""
        self._connecting[address] += 1
        try:
            yield
        finally:
            self._connecting[address] -= 1
            if not self._connecting[address]:
                del self._connecting[address]

    def slider_ids(self, board_slug: str) -> frozenset[str]:
        """A board's slider ids as of its latest `board:state` here (empty if none yet)."""
        return self._slider_ids.get(board_slug, frozenset())

    def note_sliders(self, board_slug: str, slider_ids: frozenset[str]) -> None:
        """Remember a board's slider ids (from a `board:state` being sent)."""
        self._slider_ids[board_slug] = slider_ids

    def set_received(self, sid: str, at: float) -> None:
        """A slider:set of `sid` arrived at `at` (time.perf_counter(), seconds)."""
        self._set_received[sid] = at

    def take_set_received(self, sid: str) -> float | None:
        """When the latest slider:set of `sid` arrived (see set_received), once."""
        return self._set_received.pop(sid, None)


def _discount(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


registry = Connections()


def clients_per_board() -> dict[str, int]:
    """Connections per board in this process (for /metrics)."""
    return registry.clients_per_board()
