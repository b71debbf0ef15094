"""This process's boards: each board's room, its feed of slider updates, presence and hands.

The objects here send to the clients of this process only; what other processes must hear
goes through the cluster (sliders.cluster) as notices, handled by sliders.realtime.dispatch.
"""

from __future__ import annotations

from django.conf import settings

from sliders.cluster import get_cluster
from sliders.realtime.connections import Connection, registry
from sliders.realtime.fanout import BoardFeed, Outlet
from sliders.realtime.hands import Hands
from sliders.realtime.internals import engineio_socket
from sliders.realtime.presence import Presence
from sliders.realtime.server import board_room, sio


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


async def _emit_presence(board_slug: str, clients: int) -> None:
    # Every process tells its own clients (the count is the cluster's total).
    await sio.emit("board:presence", {"clients": clients}, room=board_room(board_slug))


async def _emit_hands(board_slug: str, slider_id: str, held: list[dict[str, str]]) -> None:
    await sio.emit("slider:hands", {"id": slider_id, "hands": held}, room=board_room(board_slug))


feeds = Feeds()
presence = Presence(
    count_local=registry.clients_on, emit_local=_emit_presence, interval=settings.PRESENCE_INTERVAL
)
hands = Hands(emit=_emit_hands, timeout=settings.GRAB_TIMEOUT)


async def announce_hand(connection: Connection, slider_id: str, *, held: bool) -> None:
    """Tell every process that `connection` took hold of (or let go of) a slider."""
    data = {"id": slider_id, "hand": connection.hand, "by": connection.name, "held": held}
    await get_cluster().notify("hand", connection.board, data)
