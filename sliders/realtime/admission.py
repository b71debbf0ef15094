"""Who may connect, and leaving: the `connect` and `disconnect` of a Socket.IO connection.

A connection asks for a board (`auth.board`, else the default board) and may sign in with an
API token (`auth.token`, sliders.auth); it is refused with a reason the page can show when its
address has too many connections, the token is wrong or revoked, the board does not exist, the
database cannot be reached, or the visitor may not view the board. Board lookups of
connections arriving together are read once (`BoardReads`). An admitted connection is
registered on its board (sliders.realtime.connections), counts in presence and gets its first
`board:state` (sliders.realtime.state).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

import socketio
from django.conf import settings
from django.db import DatabaseError

from sliders import addresses, selectors, services, sharing
from sliders.auth import Visitor, has_session_cookie, visitor_from_environ, visitor_from_token
from sliders.db import run_in_db_thread, run_in_read_thread
from sliders.realtime.boards import announce_hand, feeds, hands, presence
from sliders.realtime.connections import NAME_LENGTH, Connection, registry
from sliders.realtime.internals import eio_sid_of, is_open
from sliders.realtime.server import sio
from sliders.realtime.state import first_states

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

logger = logging.getLogger(__package__)

# A page's id for itself (auth.client): random, so long enough not to be guessed or collide.
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


class BoardReads:
    """Board lookups on their way, by slug: connections asking meanwhile share the read."""

    def __init__(self) -> None:
        self._reads: dict[str, asyncio.Future[Any]] = {}

    async def read(self, board_slug: str) -> Any:
        """The board (a `Board`, or None if there is none); raises DatabaseError."""
        read = self._reads.get(board_slug)
        if read is None:
            read = self._reads[board_slug] = asyncio.ensure_future(
                run_in_read_thread(selectors.get_board, board_slug)
            )
            read.add_done_callback(lambda _: self._reads.pop(board_slug, None))
        return await asyncio.shield(read)


board_reads = BoardReads()


async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
    """Admit connection `sid`, or raise socketio's ConnectionRefusedError with the reason."""
    token = _requested_token(auth)  # a bad request before any other refusal
    board_slug = _requested_board(auth)
    client = _requested_client(auth, sid)
    address, peer = addresses.socket_ip_and_peer(environ)
    if registry.from_address(address) >= settings.SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS:
        logger.warning("Refused %s from %s: too many connections from that address", sid, address)
        raise socketio.exceptions.ConnectionRefusedError(
            "Too many connections from your address; close some tabs and try again.",
            {"code": "too_many_connections"},
        )
    # Hold the slot while we wait for the database, or a burst of connections would all pass.
    with registry.admitting(address):
        await _admit(sid, environ, board_slug, token, client, address, peer)


async def _admit(
    sid: str,
    environ: dict[str, Any],
    board_slug: str,
    token: str | None,
    client: str,
    address: str,
    peer: str,
) -> None:
    try:
        visitor = await _visitor(environ, token)
        if visitor is None:
            logger.info("Refused %s from %s: a wrong or revoked API token", sid, peer)
            raise socketio.exceptions.ConnectionRefusedError(
                "This API token is not valid (wrong or revoked).", {"code": "unauthorized"}
            )
        board = await board_reads.read(board_slug)
        user = visitor.user
        share_id = visitor.share_links.get(board_slug)
        share = await run_in_read_thread(sharing.share_for, share_id, board) if share_id else None
    except DatabaseError:
        logger.exception("Refused %s from %s: the database is unavailable", sid, peer)
        raise socketio.exceptions.ConnectionRefusedError(
            "The server cannot reach its database right now; try again shortly.",
            {"code": "unavailable"},
        ) from None
    if board is None:
        logger.info("Refused %s from %s: no board %r", sid, peer, board_slug[:100])
        raise socketio.exceptions.ConnectionRefusedError(
            f"There is no board '{board_slug[:100]}'.", {"code": "unknown_board"}
        )
    eio_sid = eio_sid_of(sio, sid)
    if eio_sid is None or not is_open(sio, eio_sid):
        # It left while we read the database; python-socketio sends no disconnect for a
        # connection it has not finished, so registering it now would leave a ghost.
        logger.info("%s from %s left before it was admitted", sid, peer)
        raise socketio.exceptions.ConnectionRefusedError(
            "The connection closed.", {"code": "unavailable"}
        )
    if not board.user_can_view(user, share):
        logger.info("Refused %s from %s: board %s is for signed-in users", sid, peer, board.slug)
        raise socketio.exceptions.ConnectionRefusedError(
            "This board is for signed-in users. Sign in and reload the page.",
            {"code": "forbidden"},
        )
    registry.add(
        sid,
        Connection(
            board=board.slug,
            user=user,
            address=address,
            peer=peer,
            eio_sid=eio_sid,
            name=_display_name(user),
            client=client,
            share_id=share.pk if share is not None else None,
        ),
    )
    presence.changed(board.slug)
    logger.info("Connected %s to board %s from %s as %s", sid, board.slug, peer, _user_label(user))
    # The state is sent once the connection is fully open (after this handler returns).
    first_states.add(board.slug, sid)


async def disconnect(sid: str, reason: Any) -> None:
    """Connection `sid` left: forget it, update presence and let go of its hands."""
    connection = registry.remove(sid)
    if connection is not None:
        if (feed := feeds.get(connection.board)) is not None:
            feed.forget(sid)
        presence.changed(connection.board)
        logger.info("Disconnected %s from board %s (%s)", sid, connection.board, reason)
        for slider_id in hands.held_by(connection.board, connection.hand):
            await announce_hand(connection, slider_id, held=False)


def _requested_board(auth: Any) -> str:
    if auth is None:
        return settings.DEFAULT_BOARD_SLUG
    if not isinstance(auth, dict):
        raise socketio.exceptions.ConnectionRefusedError(
            "The connection's auth must be an object like {board: 'main'}.",
            {"code": "bad_request"},
        )
    board = auth.get("board", settings.DEFAULT_BOARD_SLUG)
    if board is None or board == "":
        return settings.DEFAULT_BOARD_SLUG
    if not isinstance(board, str):
        raise socketio.exceptions.ConnectionRefusedError(
            "'board' must be a board's slug.", {"code": "bad_request"}
        )
    if not services.SLUG_PATTERN.fullmatch(board):
        raise socketio.exceptions.ConnectionRefusedError(
            f"There is no board {board[:100]!r}.", {"code": "unknown_board"}
        )
    return board


def _requested_token(auth: Any) -> str | None:
    """The API token in `auth.token` (None: no token); anything but text is a bad request."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if token is not None and not isinstance(token, str):
        raise socketio.exceptions.ConnectionRefusedError(
            "'token' must be an API token (text).", {"code": "bad_request"}
        )
    return token


async def _visitor(environ: dict[str, Any], token: str | None) -> Visitor | None:
    """Who connects: the token's user (None for a wrong or revoked token), else the cookie's."""
    if token is not None:
        visitor = await run_in_read_thread(visitor_from_token, token)
        if visitor is not None and visitor.api_token is not None:
            _record_use(visitor.api_token)
        return visitor
    if has_session_cookie(environ):
        return await run_in_read_thread(visitor_from_environ, environ)
    return Visitor()


_token_uses: set[asyncio.Task[None]] = set()


def _record_use(row: Any) -> None:
    """Record the token's use in the write thread, without making the connection wait for it."""
    if not services.token_use_is_due(row):
        return
    task = asyncio.ensure_future(run_in_db_thread(services.record_api_token_use, row))
    _token_uses.add(task)
    task.add_done_callback(_token_use_done)


def _token_use_done(task: asyncio.Task[None]) -> None:
    _token_uses.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("Could not record an API token's use: %s", task.exception())


def _requested_client(auth: Any, sid: str) -> str:
    """Who the connection is for the conflict rule and the audit trail's merging of changes.

    A page sends a random id of its own (`auth.client`), the same on every reconnect, so that
    its own sets from before a dropped connection never count as someone else's change. Nothing
    else trusts it. Anything that is not such an id falls back to the connection's sid.
    """
    client = auth.get("client") if isinstance(auth, dict) else None
    if isinstance(client, str) and CLIENT_ID.fullmatch(client):
        return client
    return sid


def _display_name(user: AbstractUser | AnonymousUser | None) -> str:
    if user is None or not user.is_authenticated:
        return "someone"
    return (user.get_full_name() or user.get_username())[:NAME_LENGTH]


def _user_label(user: AbstractUser | AnonymousUser | None) -> str:
    return user.get_username() if user is not None and user.is_authenticated else "anonymous"
