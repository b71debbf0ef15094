"""This process's boards: sending to a board's connections, its feed of updates, presence, hands.

The objects here send to the clients of this process only; what other processes must hear
goes through the cluster (sliders.cluster) as notices, handled by sliders.realtime.dispatch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings

from sliders.cluster import get_cluster
from sliders.realtime.connections import Connection, registry
from sliders.realtime.fanout import FRAMES_PER_TURN, BoardFeed, Outlet, encode_event
from sliders.realtime.hands import Hands
from sliders.realtime.internals import engineio_socket, websocket_frame
from sliders.realtime.presence import Presence
from sliders.realtime.server import sio


class Feeds:
    """The slider updates waiting for this process's clients, one `BoardFeed` per board."""

    def __init__(self) -> None:
        self._by_board: dict[str, BoardFeed] = {}

    def of(self, board_slug: str) -> BoardFeed:
        """A board's feed, made on first use."""
        feed = self._by_board.get(board_slug)
        if feed is None:
            feed = self._by_board[board_slug] = BoardFeed(_outlet_of)
        return feed

    def get(self, board_slug: str) -> BoardFeed | None:
        """A board's feed if it has one."""
        return self._by_board.get(board_slug)

    def drop(self, board_slug: str) -> None:
        """Forget a board's feed (the board is gone)."""
        self._by_board.pop(board_slug, None)


def _outlet_of(sid: str) -> Outlet | None:
    """How Socket.IO connection `sid` of this process is reached: its Engine.IO socket."""
    connection = registry.get(sid)
    return engineio_socket(sio, connection.eio_sid) if connection is not None else None


async def send_to_board(board_slug: str, event: str, data: Any) -> None:
    """Send one event to every connection of this process on a board, encoded once.

    python-socketio's room emit encodes and queues the message once per client and wakes each
    client's writer; at 5,000 clients a `board:presence` every 0.25 s while people join cost
    more than the joins. Here, as in the fan-out of slider updates, the websocket frame is built
    once and written straight to every idle websocket; a client whose writer is busy (or on
    long-polling) gets it through the library, behind what waits for it, with the queue bound
    that protects the server from a client that does not read. FRAMES_PER_TURN per turn of the
    event loop, so sets are stored and acked in between.
    """
    text = encode_event(event, data)
    frame: bytes | None = None
    for count, sid in enumerate(registry.on_board(board_slug), start=1):
        outlet = _outlet_of(sid)
        if outlet is None:
            continue  # gone meanwhile
        if outlet.can_write_now():
            frame = frame or websocket_frame(text)
            outlet.write_now(frame)
        else:
            await sio.emit(event, data, to=sid)
        if count % FRAMES_PER_TURN == 0:
            await asyncio.sleep(0)


async def _emit_presence(board_slug: str, clients: int) -> None:
    # Every process tells its own clients (the count is the cluster's total).
    await send_to_board(board_slug, "board:presence", {"clients": clients})


async def _emit_hands(board_slug: str, slider_id: str, held: list[dict[str, str]]) -> None:
    await send_to_board(board_slug, "slider:hands", {"id": slider_id, "hands": held})


feeds = Feeds()
presence = Presence(
    count_local=registry.clients_on, emit_local=_emit_presence, interval=settings.PRESENCE_INTERVAL
)
hands = Hands(emit=_emit_hands, timeout=settings.GRAB_TIMEOUT)


async def announce_hand(connection: Connection, slider_id: str, *, held: bool) -> None:
    """Tell every process that `connection` took hold of (or let go of) a slider."""
    data = {"id": slider_id, "hand": connection.hand, "by": connection.name, "held": held}
    await get_cluster().notify("hand", connection.board, data)
