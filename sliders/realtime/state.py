"""`board:state`: built once per kind of viewer, read once for everyone waiting, sent per client.

A connection gets its first `board:state` once it is fully open; everyone who connects while a
read is on its way is served by the next read, so a thousand clients connecting at once cost a
handful of queries, not a thousand. Each kind of viewer's state is encoded once; a connection's
message is that text with its own fields (hand id, everyone's hands, the server's clock) added.
The state is sent again to a board's clients here when its structure changes, and to every
client after notices may have been lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from django.db import DatabaseError

from sliders import selectors, services
from sliders.cluster import get_cluster
from sliders.db import run_in_read_thread
from sliders.realtime.boards import feeds, hands
from sliders.realtime.connections import Connection, registry
from sliders.realtime.fanout import encode_event
from sliders.realtime.server import sio

logger = logging.getLogger(__package__)

State = dict[str, Any]  # a board:state payload (docs/protocol.md)

# The fields of a board:state that differ from one connection to the next (_personal_text).
PERSONAL_FIELDS = ("hand", "hands", "server_time")
# States queued per turn of the event loop: a thousand at once would hold up sets meanwhile.
STATES_PER_TURN = 64


class FirstStates:
    """The connections of each board waiting for their first `board:state`, and its sender."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[str]] = {}  # per board, the sids waiting
        self._senders: dict[str, asyncio.Task[None]] = {}  # per board, while some are waiting

    def add(self, board_slug: str, sid: str) -> None:
        """`sid` just joined `board_slug`: send it its first state with the next read."""
        self._waiting.setdefault(board_slug, []).append(sid)
        if board_slug not in self._senders:
            self._senders[board_slug] = asyncio.create_task(self._send(board_slug))

    async def _send(self, board_slug: str) -> None:
        """Send `board:state` to the connections waiting for their first one on a board.

        Updates published from the start of a read on reach those clients through the feed
        (see fanout.BoardFeed).
        """
        try:
            while waiting := self._waiting.pop(board_slug, None):
                sids = [sid for sid in waiting if sid in registry]
                if sids:
                    await _send_states(board_slug, sids, first=True)
        finally:
            self._senders.pop(board_slug, None)


first_states = FirstStates()


async def resend_board_state(board_slug: str) -> None:
    """Re-send `board:state` to this process's clients on a board after its structure changed."""
    sids = registry.on_board(board_slug)
    if sids:
        await _send_states(board_slug, sids, first=False)


async def resync_all_boards() -> None:
    """Re-send `board:state` to every local client (after broadcasts may have been lost)."""
    for board_slug in registry.boards():
        try:
            await resend_board_state(board_slug)
        except Exception:  # one board must not keep the others stale
            logger.exception("Resyncing board %s failed", board_slug)


async def _send_states(board_slug: str, sids: list[str], *, first: bool) -> None:
    """Send `board:state` to some of this process's connections on a board.

    `can_edit` depends on who is asking, so a state is built once per kind of viewer. With
    `first` the connections just joined. Either way each hears, after its state, the updates
    published since the state was read, and every update through the feed from then on. A
    connection that may no longer view the board, or whose board is gone, is disconnected.
    """
    feed = feeds.of(board_slug)
    since_seq = feed.seq  # updates published from here on may be missing from the state
    present = [c for c in map(registry.get, sids) if c is not None]  # all: no await since
    viewers = {_viewer_key(connection): connection for connection in present}
    cluster = get_cluster()
    try:
        if first:
            await cluster.report_count(board_slug, registry.clients_on(board_slug))
        states = await run_in_read_thread(
            _states_for_viewers, board_slug, viewers, clients=await cluster.total_count(board_slug)
        )
    except DatabaseError:
        logger.exception("Cannot read board %s for %d connection(s)", board_slug, len(sids))
        if not first:
            return  # they keep the state they have
        states = None  # a connection cannot start without one
    else:
        if states is None:
            logger.info("Board %s is gone; disconnecting %d client(s)", board_slug, len(sids))
            feeds.drop(board_slug)
    texts = _state_texts(states) if states is not None else {}
    if states is not None:
        _note_sliders(board_slug, states)
    hands_text = _hands_text(board_slug)
    for index, sid in enumerate(sids, 1):
        if index % STATES_PER_TURN == 0:
            await asyncio.sleep(0)
            hands_text = _hands_text(board_slug)  # hands may have moved meanwhile
        connection = registry.get(sid)
        if connection is None or connection.board != board_slug:
            continue
        viewer = texts.get(_viewer_key(connection))
        if viewer is None:
            logger.info("Disconnecting %s: it may not view board %s", sid, board_slug)
            await sio.drop(sid)
            hands_text = _hands_text(board_slug)  # hands may have moved meanwhile
            continue
        text, connection.can_edit = viewer
        await sio.send_encoded(connection.eio_sid, _personal_text(text, connection, hands_text))
        if sid in registry:
            # What was published since the read may be missing from this state, or have gone
            # out before it (dropped by a client that did not know the slider yet): after it.
            feed.listen(sid, since_seq=since_seq)


def _states_for_viewers(
    board_slug: str, viewers: dict[Any, Connection], *, clients: int
) -> dict[Any, State | None] | None:
    """`board:state` per kind of viewer (a user, maybe with a share link), built once each.

    None for a viewer who may no longer view the board; None overall: there is no board.
    Rights are checked again here: permissions change and share links get revoked.
    """
    board = selectors.get_board(board_slug)
    if board is None:
        return None
    base = selectors.board_state(board, user=None, clients=clients)
    states: dict[Any, State | None] = {}
    for key, connection in viewers.items():
        rights = selectors.viewer_rights(
            board, user=services.current_user(connection.user), share_link=connection.share_id
        )
        states[key] = {**base, "can_edit": rights.can_edit} if rights.can_view else None
    return states


def _state_texts(states: dict[Any, State | None]) -> dict[Any, tuple[str, bool]]:
    """Each kind of viewer's `board:state` as a Socket.IO event, its personal fields left out
    and its closing brackets left off (_personal_text adds them), with its `can_edit`."""
    texts = {}
    for key, state in states.items():
        if state is not None:
            shared = {name: value for name, value in state.items() if name not in PERSONAL_FIELDS}
            # The Socket.IO packet (no Engine.IO "4"), its object left open: '2["board:state",{…'
            text = encode_event("board:state", shared)[1:-2]
            texts[key] = (text, bool(state["can_edit"]))
    return texts


def _personal_text(text: str, connection: Connection, hands_text: str) -> str:
    """A viewer's `board:state` (`text`, from _state_texts) made personal: this connection's
    hand id, everyone's hands (`hands_text`, encoded) and the server's clock (ms since the Unix
    epoch, for a live set's `made_at`)."""
    hand = json.dumps(connection.hand)
    server_time = round(time.time() * 1000)
    return f'{text},"hand":{hand},"hands":{hands_text},"server_time":{server_time}}}]'


def _hands_text(board_slug: str) -> str:
    """The hands on a board's sliders, encoded for `board:state`."""
    return json.dumps(hands.on_board(board_slug), separators=(",", ":"))


def _note_sliders(board_slug: str, states: dict[Any, State | None]) -> None:
    """Remember a board's slider ids from the states being sent (for hands and the change
    queue's bound); every viewer sees the same sliders."""
    for state in states.values():
        if state is not None:
            registry.note_sliders(board_slug, frozenset(s["id"] for s in state["sliders"]))
            return


def _viewer_key(connection: Connection) -> Any:
    return (_user_key(connection.user), connection.share_id)


def _user_key(user: Any) -> Any:
    return user.pk if user is not None and user.is_authenticated else None
