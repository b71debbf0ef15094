"""This process's boards: sending to a board's connections, its feed of updates, presence, hands.

The objects here send to the clients of this process only; what other processes must hear
goes through the cluster (sliders.cluster) as notices, handled by sliders.realtime.dispatch.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from django.conf import settings

from sliders.cluster import get_cluster
from sliders.realtime.connections import Connection, registry
from sliders.realtime.fanout import FRAMES_PER_TURN, BoardFeed, encode_event
from sliders.realtime.hands import Hands
from sliders.realtime.internals import (
    GuardedSocket,
    engineio_socket,
    message_packet,
    websocket_frame,
)
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
            feed = self._by_board[board_slug] = BoardFeed(_socket_of)
        return feed

    def get(self, board_slug: str) -> BoardFeed | None:
        """A board's feed if it has one."""
        return self._by_board.get(board_slug)

    def drop(self, board_slug: str) -> None:
        """Forget a board's feed (the board is gone)."""
        self._by_board.pop(board_slug, None)


def _socket_of(sid: str) -> GuardedSocket | None:
    """The Engine.IO socket of Socket.IO connection `sid` of this process, while it is open."""
    connection = registry.get(sid)
    return engineio_socket(sio, connection.eio_sid) if connection is not None else None


class BoardSends:
    """Sends to a board's connections, one at a time per board, in the order they were asked.

    A send hands its message out a turn of the event loop at a time; two sends to one board
    walking its connections together would reach some clients in one order and others in the
    other. Everything sent this way is a board's latest state of something (its presence, a
    slider's hands, a fade), so a client hearing two out of order would keep showing the
    older one.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}  # per board, while sends to it are on their way
        self._pending: Counter[str] = Counter()  # per board, the sends holding or awaiting it

    async def send(self, board_slug: str, event: str, data: Any) -> None:
        """Send one event to every connection of this process on a board, after the sends to
        that board asked for before it."""
        text = encode_event(event, data)  # as it is now, whatever it waits for
        lock = self._locks.setdefault(board_slug, asyncio.Lock())
        self._pending[board_slug] += 1
        try:
            async with lock:
                await _hand_out(board_slug, text)
        finally:
            self._pending[board_slug] -= 1
            if not self._pending[board_slug]:
                del self._pending[board_slug]
                del self._locks[board_slug]


async def _hand_out(board_slug: str, text: str) -> None:
    """`text` (an encoded event) to every connection on a board, FRAMES_PER_TURN per turn of
    the event loop; no other wait, so nothing overtakes it on the way to any one client."""
    frame: bytes | None = None
    packet: Any = None
    for count, sid in enumerate(registry.on_board(board_slug), start=1):
        socket = _socket_of(sid)
        if socket is None:
            pass  # gone meanwhile
        elif socket.can_write_now():
            frame = frame or websocket_frame(text)
            socket.write_now(frame)
        else:
            packet = packet or message_packet(text)
            socket.queue_message(packet)
        if count % FRAMES_PER_TURN == 0:
            await asyncio.sleep(0)


board_sends = BoardSends()


async def send_to_board(board_slug: str, event: str, data: Any) -> None:
    """Send one event to every connection of this process on a board, encoded once.

    python-socketio's room emit encodes and queues the message once per client and wakes each
    client's writer; at 5,000 clients a `board:presence` every 0.25 s while people join cost
    more than the joins. Here, as in the fan-out of slider updates, the websocket frame is built
    once and written straight to every idle websocket; a client whose writer is busy (or on
    long-polling) gets it in its queue, behind what waits for it, with the queue bound that
    protects the server from a client that does not read. FRAMES_PER_TURN per turn of the
    event loop, so sets are stored and acked in between; sends to one board go out one after
    another, in the order they were made (`BoardSends`).
    """
    await board_sends.send(board_slug, event, data)


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
