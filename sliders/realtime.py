"""The realtime server: Socket.IO events in, service calls, acks and broadcasts out.

Kept thin on purpose: it authenticates a connection, joins it to its board's room, turns
`slider:set` into `services.set_slider_value` and the result into an ack. Committed changes reach
the board's clients through sliders.fanout (latest value wins). The wire protocol is described in
docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from django.conf import settings
from django.db import DatabaseError

from sliders import broadcast, db, metrics, selectors, services, sharing
from sliders.auth import Visitor, has_session_cookie, visitor_from_environ
from sliders.changequeue import WAITING_BARRIERS, ChangeQueue, too_late
from sliders.cluster import create_cluster
from sliders.db import run_in_db_thread, run_in_read_thread
from sliders.fanout import BoardFeed, UpdateFrame
from sliders.hands import Hands
from sliders.models import AuditEntry
from sliders.presence import Presence
from sliders.ratelimit import TokenBucket
from sliders.socketserver import create_server, error_ack

logger = logging.getLogger(__name__)

cluster = create_cluster()
sio = create_server()


@dataclass
class Connection:
    """What the server knows about one connected client."""

    board: str
    user: Any
    ip: str
    address: str  # ip:port, for the logs
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
    # Its sets and preset requests, one at a time in arrival order (see sliders.changequeue).
    changes: ChangeQueue = field(init=False)
    # Its grabs and releases, one at a time in arrival order: a release overtaking its grab
    # (handlers run concurrently) would leave a stale hand on every process.
    hand_order: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        board = self.board
        self.changes = ChangeQueue(
            timeout=settings.DATABASE_TIMEOUT,
            # One waiting set per slider (newer ones supersede) and a few presets.
            capacity=lambda: len(_slider_ids.get(board, ())) + WAITING_BARRIERS,
        )


Handler = Callable[..., Awaitable[dict[str, Any]]]
HAND_RATE, HAND_BURST = 10.0, 20  # grabs and releases per second, per connection

connections: dict[str, Connection] = {}
_connecting: Counter[str] = Counter()  # connections being admitted, per client address
_per_address: Counter[str] = Counter()  # connections, per client address
_per_board: Counter[str] = Counter()  # connections, per board
_board_reads: dict[str, asyncio.Future[Any]] = {}  # board lookups on their way, by slug
_awaiting_state: dict[str, list[str]] = {}  # connections waiting for their first board:state
_state_senders: dict[str, asyncio.Task[None]] = {}  # per board, while some are waiting
feeds: dict[str, BoardFeed] = {}  # slider updates waiting for this process's clients, per board
_set_received: dict[str, float] = {}  # when each connection's latest slider:set arrived
_slider_ids: dict[str, frozenset[str]] = {}  # each board's sliders, as of its latest state read


def board_room(board_slug: str) -> str:
    return f"board:{board_slug}"


def _count_clients(board_slug: str) -> int:
    return _per_board[board_slug]


def clients_per_board() -> dict[str, int]:
    """Connections per board in this process (for /metrics)."""
    return dict(_per_board)


async def _emit_presence(board_slug: str, clients: int) -> None:
    # Every process tells its own clients (the count is the cluster's total).
    await sio.emit("board:presence", {"clients": clients}, room=board_room(board_slug))


def _feed(board_slug: str) -> BoardFeed:
    feed = feeds.get(board_slug)
    if feed is None:
        feed = feeds[board_slug] = BoardFeed(_enqueue_frame)
    return feed


def _enqueue_frame(sid: str, frame: UpdateFrame) -> None:
    """Put a frame in a client's Engine.IO send queue (unbounded: this never waits)."""
    connection = connections.get(sid)
    socket = sio.eio.sockets.get(connection.eio_sid) if connection is not None else None
    if socket is not None and not socket.closed:
        socket.queue.put_nowait(frame)


presence = Presence(
    count_local=_count_clients, emit_local=_emit_presence, interval=settings.PRESENCE_INTERVAL
)


async def _emit_hands(board_slug: str, slider_id: str, held: list[dict[str, str]]) -> None:
    await sio.emit("slider:hands", {"id": slider_id, "hands": held}, room=board_room(board_slug))


hands = Hands(emit=_emit_hands, timeout=settings.GRAB_TIMEOUT)


# --- Lifecycle ------------------------------------------------------------------------------


async def on_startup() -> None:
    broadcast.attach_loop(asyncio.get_running_loop())
    _close_transports_when_asked_to_exit(asyncio.get_running_loop())
    presence.cluster = cluster
    await cluster.start(_on_notice)
    logger.info(
        "Realtime server started (process %s, transports: %s, broadcasting: %s)",
        cluster.process_id,
        ", ".join(settings.SOCKETIO_TRANSPORTS),
        cluster.describe(),
    )


async def on_shutdown() -> None:
    logger.info("Realtime server stopping: closing %d connection(s)", len(connections))
    await _close_transports()
    hands.stop()
    await cluster.stop()
    broadcast.attach_loop(None)


async def _close_transports() -> None:
    """End every Engine.IO session as a lost connection ends (GuardedSocket.abort): clients
    reconnect at once, to another process behind a load balancer."""
    for socket in list(sio.eio.sockets.values()):
        await socket.abort()


def _close_transports_when_asked_to_exit(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGTERM or SIGINT, close every transport at once, then let the server stop as usual.

    uvicorn closes websockets when it is asked to exit, but waits for open HTTP requests
    (long-polls last up to a ping interval, 25 s) before it runs `on_shutdown`: polling clients
    would learn of the shutdown that late. Chaining uvicorn's own handler keeps its behaviour.
    Only the main thread may set signal handlers; elsewhere (tests, a thread) nothing changes.
    """
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def on_signal(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            previous(signum, frame)
            loop.call_soon_threadsafe(lambda: loop.create_task(_close_transports()))

        try:
            signal.signal(number, on_signal)
        except ValueError:  # not the main thread
            return


async def _on_notice(kind: str, board_slug: str, data: Any) -> None:
    """A notice from any process (this one included) about a board."""
    if kind == "update":
        updates, origin = data["updates"], data.get("origin")
        fade = fades.get(board_slug)
        if fade is not None and origin != fade.origin:
            _cancel_fade(board_slug)  # someone else moved a slider of the board
        feed = _feed(board_slug)
        for update in updates:  # no await in between: one frame carries all of them
            feed.publish(update, origin=origin)
        received = _set_received.pop(origin, None) if origin else None
        if received is not None:
            metrics.SET_TO_BROADCAST.observe(time.perf_counter() - received)
    elif kind == "hand":
        if data.get("held") is True:
            _cancel_fade(board_slug)  # someone took hold of a slider
        await _on_hand_notice(board_slug, data)
    elif kind == "fade":
        fade = fades.get(board_slug)
        if data.get("state") == "running" and fade is not None and data.get("id") != fade.origin:
            _cancel_fade(board_slug)  # a newer fade started elsewhere (another process)
        public = {key: data.get(key) for key in ("preset", "seconds", "state")}
        await sio.emit("board:fade", public, room=board_room(board_slug))
    elif kind == "board":
        await send_board_state_to_room(board_slug)
    elif kind in ("presence", "recount"):
        presence.refresh(board_slug)
    elif kind == "resync":
        await resync_all_boards()


# --- Events ---------------------------------------------------------------------------------


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    board_slug = _requested_board(auth)
    client = _requested_client(auth, sid)
    ip, address = _client_address(environ)
    same_address = _per_address[ip] + _connecting[ip]
    if same_address >= settings.SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS:
        logger.warning("Refused %s from %s: too many connections from that address", sid, ip)
        raise socketio.exceptions.ConnectionRefusedError(
            "Too many connections from your address; close some tabs and try again.",
            {"code": "too_many_connections"},
        )
    # Hold the slot while we wait for the database, or a burst of connections would all pass.
    _connecting[ip] += 1
    try:
        await _admit(sid, environ, board_slug, client, ip, address)
    finally:
        _connecting[ip] -= 1
        if not _connecting[ip]:
            del _connecting[ip]


async def _admit(
    sid: str, environ: dict[str, Any], board_slug: str, client: str, ip: str, address: str
) -> None:
    try:
        board = await _read_board(board_slug)
        visitor = (
            await run_in_read_thread(visitor_from_environ, environ)
            if has_session_cookie(environ)
            else Visitor()
        )
        user = visitor.user
        share_id = visitor.share_links.get(board_slug)
        share = await run_in_read_thread(sharing.share_for, share_id, board) if share_id else None
    except DatabaseError:
        logger.exception("Refused %s from %s: the database is unavailable", sid, address)
        raise socketio.exceptions.ConnectionRefusedError(
            "The server cannot reach its database right now; try again shortly.",
            {"code": "unavailable"},
        ) from None
    if board is None:
        logger.info("Refused %s from %s: no board %r", sid, address, board_slug[:100])
        raise socketio.exceptions.ConnectionRefusedError(
            f"There is no board '{board_slug[:100]}'.", {"code": "unknown_board"}
        )
    socket = sio.eio.sockets.get(sio.manager.eio_sid_from_sid(sid, "/"))
    if socket is None or socket.closed:
        # It left while we read the database; python-socketio sends no disconnect for a
        # connection it has not finished, so registering it now would leave a ghost.
        logger.info("%s from %s left before it was admitted", sid, address)
        raise socketio.exceptions.ConnectionRefusedError(
            "The connection closed.", {"code": "unavailable"}
        )
    if not board.user_can_view(user, share):
        logger.info("Refused %s from %s: board %s is for signed-in users", sid, address, board.slug)
        raise socketio.exceptions.ConnectionRefusedError(
            "This board is for signed-in users. Sign in and reload the page.",
            {"code": "forbidden"},
        )
    connections[sid] = Connection(
        board=board.slug,
        user=user,
        ip=ip,
        address=address,
        eio_sid=sio.manager.eio_sid_from_sid(sid, "/"),
        name=_display_name(user),
        client=client,
        share_id=share.pk if share is not None else None,
    )
    _per_address[ip] += 1
    _per_board[board.slug] += 1
    await sio.enter_room(sid, board_room(board.slug))
    presence.changed(board.slug)
    logger.info(
        "Connected %s to board %s from %s as %s", sid, board.slug, address, _user_label(user)
    )
    # The state is sent once the connection is fully open (after this handler returns).
    _awaiting_state.setdefault(board.slug, []).append(sid)
    if board.slug not in _state_senders:
        _state_senders[board.slug] = asyncio.create_task(_send_first_states(board.slug))


@sio.event
async def disconnect(sid: str, reason: Any = None) -> None:
    connection = connections.pop(sid, None)
    if connection is not None:
        _set_received.pop(sid, None)
        _discount(_per_address, connection.ip)
        _discount(_per_board, connection.board)
        if (feed := feeds.get(connection.board)) is not None:
            feed.forget(sid)
        presence.changed(connection.board)
        logger.info("Disconnected %s from board %s (%s)", sid, connection.board, reason)
        for slider_id in hands.held_by(connection.board, connection.hand):
            await _notify_hand(connection, slider_id, held=False)


def _service_refusals_as_acks(doing: str) -> Callable[[Handler], Handler]:
    """Turn a handler's service refusals (and an unreachable database) into its error ack."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def handle(sid: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            try:
                return await handler(sid, *args, **kwargs)
            except services.Refusal as error:
                return {**error_ack(error.code, error.message), **error.details}
            except db.DeadlinePassed:
                board = getattr(connections.get(sid), "board", "?")
                logger.warning("Refused %s on board %s: the database is too slow", doing, board)
                return too_late()
            except DatabaseError:
                board = getattr(connections.get(sid), "board", "?")
                logger.exception("Database error while %s on board %s", doing, board)
                return error_ack(
                    "unavailable", "The server cannot store changes right now; try again."
                )

        return handle

    return wrap


def _change_from(sid: str) -> tuple[Connection | None, dict[str, Any]]:
    """The connection if it may send a change now, else None and the error ack to send back.

    Sets and preset requests share one rate limit per connection, spent as they arrive
    (_in_change_order).
    """
    connection = connections.get(sid)
    if connection is None:
        return None, error_ack("bad_request", "Not connected to a board.")
    return connection, {}


async def _in_change_order(sid: str, key: str | None, handler: Handler, *args: Any) -> Any:
    """Run `handler(sid, *args)` in its turn among the connection's changes (ChangeQueue.run).

    `key`: the slider of a well-formed set (a newer set for it supersedes a waiting one), None
    for anything else. Called first thing in the event's task, with no await before it.
    """
    connection = connections.get(sid)
    if connection is None:
        return await handler(sid, *args)  # not connected: refused at once
    # Every change spends a token as it arrives, refused, superseded or not.
    if not connection.bucket.take():
        return error_ack("rate_limited", "Too many changes at once; slow down.")
    return await connection.changes.run(functools.partial(handler, sid, *args), key=key)


def _queued_change(handler: Handler) -> Handler:
    """A handler of changes other than sets (presets): queued, and never superseded."""

    @functools.wraps(handler)
    async def queued(sid: str, *args: Any) -> dict[str, Any]:
        return await _in_change_order(sid, None, handler, *args)

    return queued


def _set_key(args: tuple[Any, ...]) -> str | None:
    if len(args) == 1 and isinstance(args[0], dict) and "value" in args[0]:
        slider_id = args[0].get("id")
        return slider_id if isinstance(slider_id, str) else None
    return None


@sio.on("slider:set")
async def slider_set(sid: str, *args: Any) -> dict[str, Any]:
    # When it arrived, before any wait in the queue: what a live set's `made_at` is held to.
    handler = functools.partial(_slider_set, arrived=time.time())
    ack = await _in_change_order(sid, _set_key(args), handler, *args)
    metrics.SETS.labels(ack.get("error", "ok")).inc()
    return ack


@_service_refusals_as_acks("setting a slider")
async def _slider_set(sid: str, *args: Any, arrived: float | None = None) -> dict[str, Any]:
    connection, refusal = _change_from(sid)
    if connection is None:
        return refusal
    if len(args) != 1 or not isinstance(args[0], dict):
        return error_ack("bad_request", "Send one object: {id, value}.")
    payload = args[0]
    if "id" not in payload or "value" not in payload:
        return error_ack("bad_request", "Both 'id' and 'value' are required.")
    base_version = None
    if "base_version" in payload:
        base_version = services.check_base_version(payload["base_version"])
        if "made_at" in payload and not services.is_delayed(
            payload["made_at"], arrived=time.time() if arrived is None else arrived
        ):
            base_version = None  # a live set: while people drag together, the later set wins
    _set_received[sid] = time.perf_counter()  # for the set-to-broadcast histogram
    change = await run_in_db_thread(
        services.set_slider_value,
        board=connection.board,
        slider_id=payload["id"],
        value=payload["value"],
        actor=_actor(sid, connection),
        sender_sid=sid,
        base_version=base_version,
    )
    return {"ok": True, "id": change.id, "value": change.value, "version": change.version}


# --- Presets --------------------------------------------------------------------------------

FADE_FRAMES_PER_SECOND = 20
MAX_FADE_SECONDS = 60


@dataclass
class Fade:
    """A preset being recalled gradually on one board by this process."""

    preset: str
    origin: str  # the fade's own changes carry this origin; anyone else's cancel it
    task: asyncio.Task[None] | None = None


fades: dict[str, Fade] = {}  # board -> the fade running on it here


@sio.on("preset:recall")
@_queued_change
@_service_refusals_as_acks("recalling a preset")
async def preset_recall(sid: str, *args: Any) -> dict[str, Any]:
    """Recall a preset at once, or over `fade` seconds (interpolated here, 20 frames a second)."""
    connection, refusal = _change_from(sid)
    if connection is None:
        return refusal
    if len(args) != 1 or not isinstance(args[0], dict) or not isinstance(args[0].get("name"), str):
        return error_ack("bad_request", "Send one object: {name, fade}.")
    name, fade = args[0]["name"], args[0].get("fade", 0)
    if fade is None:
        fade = 0
    if not services.is_finite_number(fade) or not 0 <= fade <= MAX_FADE_SECONDS:
        return error_ack("bad_request", f"'fade' must be 0 to {MAX_FADE_SECONDS} seconds.")
    actor = _actor(sid, connection, source=AuditEntry.Source.PRESET)
    if fade == 0:
        await run_in_db_thread(
            services.recall_preset, board=connection.board, name=name, actor=actor
        )
        _cancel_fade(connection.board)  # even when nothing moved: the recall is the last word
    else:
        targets = await run_in_db_thread(
            services.fade_targets, board=connection.board, name=name, actor=actor
        )
        await fade_to(connection.board, name, targets, float(fade), actor)
    return {"ok": True}


@sio.on("preset:save")
@_queued_change
@_service_refusals_as_acks("saving a preset")
async def preset_save(sid: str, *args: Any) -> dict[str, Any]:
    """Save the board's current values under a name."""
    connection, refusal = _change_from(sid)
    if connection is None:
        return refusal
    if len(args) != 1 or not isinstance(args[0], dict):
        return error_ack("bad_request", "Send one object: {name}.")
    preset = await run_in_db_thread(
        services.save_preset,
        board=connection.board,
        name=args[0].get("name"),
        actor=_actor(sid, connection),
    )
    return {"ok": True, "name": preset.name}


async def fade_to(
    board_slug: str, preset: str, targets: dict[str, Any], seconds: float, actor: Any
) -> None:
    """Start fading `board_slug` to `targets` (a preset's values), replacing any running fade."""
    _cancel_fade(board_slug)
    fade = Fade(preset=preset, origin=f"fade:{secrets.token_hex(6)}")
    # The fade outlives the recall that started it: its frames have no deadline.
    fade.task = asyncio.create_task(
        _run_fade(board_slug, fade, targets, seconds, actor),
        context=db.context_without_deadline(),
    )
    fades[board_slug] = fade


def _cancel_fade(board_slug: str) -> None:
    fade = fades.pop(board_slug, None)
    if fade is not None and fade.task is not None:
        fade.task.cancel()


async def _run_fade(
    board_slug: str, fade: Fade, targets: dict[str, Any], seconds: float, actor: Any
) -> None:
    """Move every slider of the preset from where it is to its target in equal steps.

    Each frame is one transaction (services.set_slider_values): versions bump per frame and
    clients see every frame whole. Someone grabbing or moving a slider of the board cancels
    the fade; the sliders stay where the last frame put them.
    """
    loop = asyncio.get_running_loop()
    notice = {"preset": fade.preset, "seconds": seconds, "id": fade.origin}
    await cluster.notify("fade", board_slug, {**notice, "state": "running"})
    state = "cancelled"
    try:
        start, versions = await run_in_db_thread(
            selectors.values_and_versions, board_slug, list(targets)
        )
        frames = max(1, round(seconds * FADE_FRAMES_PER_SECOND))
        began = loop.time()
        for frame in range(1, frames + 1):
            await asyncio.sleep(max(0.0, began + seconds * frame / frames - loop.time()))
            values = (
                targets
                if frame == frames
                else {
                    slug: start[slug] + (float(target) - start[slug]) * frame / frames
                    for slug, target in targets.items()
                    if slug in start
                }
            )
            # Only over the versions this fade wrote: a frame that reaches the database after
            # someone else's change (from another thread or process) is refused, not applied.
            changes = await run_in_db_thread(
                services.set_slider_values,
                board=board_slug,
                values=values,
                actor=actor,
                sender_sid=fade.origin,
                expected_versions=versions,
            )
            versions.update({change.id: change.version for change in changes})
        state = "done"
    except services.Refusal as error:
        log = logger.info if error.code == "conflict" else logger.warning
        log("Fade to %r on board %s stopped: %s", fade.preset, board_slug, error.message)
    except DatabaseError:
        logger.exception("Fade to %r on board %s stopped", fade.preset, board_slug)
    finally:
        if fades.get(board_slug) is fade:
            del fades[board_slug]
        await cluster.notify("fade", board_slug, {**notice, "state": state})


def _actor(
    sid: str, connection: Connection, source: str = AuditEntry.Source.SOCKET
) -> services.Actor:
    return services.Actor(
        user=connection.user,
        source=source,
        address=connection.ip,
        client=connection.client,
        share_link=connection.share_id,
    )


# --- Hands -----------------------------------------------------------------------------------


@sio.on("slider:grab")
async def slider_grab(sid: str, *args: Any) -> dict[str, Any]:
    """Someone started (or is still) dragging a slider: everyone sees a hand on it."""
    return await _hand_event(sid, args, held=True)


@sio.on("slider:release")
async def slider_release(sid: str, *args: Any) -> dict[str, Any]:
    return await _hand_event(sid, args, held=False)


async def _hand_event(sid: str, args: tuple[Any, ...], *, held: bool) -> dict[str, Any]:
    connection = connections.get(sid)
    if connection is None:
        return error_ack("bad_request", "Not connected to a board.")
    if not connection.hand_bucket.take():
        return error_ack("rate_limited", "Too many grabs at once; slow down.")
    if len(args) != 1 or not isinstance(args[0], dict) or not isinstance(args[0].get("id"), str):
        return error_ack("bad_request", "Send one object: {id}.")
    slider_id = args[0]["id"]
    if slider_id not in _slider_ids.get(connection.board, frozenset()):
        return error_ack("unknown_slider", f"There is no slider '{slider_id[:100]}' here.")
    if held and not connection.can_edit:
        return error_ack("forbidden", "You may not change the sliders on this board.")
    # Nothing above suspends, so the lock (first come, first served) keeps the arrival order.
    async with connection.hand_order:
        if sid not in connections:
            return error_ack("bad_request", "Not connected to a board.")  # it left meanwhile
        await _notify_hand(connection, slider_id, held=held)
    return {"ok": True}


async def _notify_hand(connection: Connection, slider_id: str, *, held: bool) -> None:
    data = {"id": slider_id, "hand": connection.hand, "by": connection.name, "held": held}
    await cluster.notify("hand", connection.board, data)


async def _on_hand_notice(board_slug: str, data: Any) -> None:
    slider_id, hand, by, held = data["id"], data["hand"], data["by"], data["held"]
    if not all(isinstance(x, str) for x in (slider_id, hand, by)) or not isinstance(held, bool):
        raise ValueError(f"malformed hand notice: {data!r}")
    if held:
        await hands.grab(board_slug, slider_id, hand, by[:NAME_LENGTH])
    else:
        await hands.release(board_slug, slider_id, hand)


@sio.on("*")
async def unknown_event(event: str, sid: str, *args: Any) -> dict[str, Any]:
    return error_ack("bad_request", f"Unknown event '{str(event)[:100]}'.")


# --- Broadcasts (notices from sliders.broadcast, through the cluster) ------------------------


async def send_board_state_to_room(board_slug: str) -> None:
    """Re-send `board:state` to this process's clients on a board after its structure changed."""
    sids = [sid for sid, c in connections.items() if c.board == board_slug]
    if sids:
        await _send_states(board_slug, sids, first=False)


async def resync_all_boards() -> None:
    """Re-send `board:state` to every local client (after broadcasts may have been lost)."""
    for board_slug in {c.board for c in connections.values()}:
        try:
            await send_board_state_to_room(board_slug)
        except Exception:  # one board must not keep the others stale
            logger.exception("Resyncing board %s failed", board_slug)


# --- Helpers --------------------------------------------------------------------------------


async def _send_first_states(board_slug: str) -> None:
    """Send `board:state` to the connections waiting for their first one on a board.

    Everyone who connected while a read was on its way is served by the next read: a thousand
    clients connecting at once cost a handful of queries, not a thousand. Updates published
    from the start of a read on reach those clients through the feed (see fanout.BoardFeed).
    """
    try:
        while waiting := _awaiting_state.pop(board_slug, None):
            sids = [sid for sid in waiting if sid in connections]
            if sids:
                await _send_states(board_slug, sids, first=True)
    finally:
        _state_senders.pop(board_slug, None)


async def _send_states(board_slug: str, sids: list[str], *, first: bool) -> None:
    """Send `board:state` to some of this process's connections on a board.

    `can_edit` depends on who is asking, so a state is built once per kind of viewer. With
    `first` the connections just joined: they hear updates through the feed from then on. A
    connection that may no longer view the board, or whose board is gone, is disconnected.
    """
    feed = _feed(board_slug)
    since_seq = feed.seq  # updates published from here on may be missing from the state
    viewers = {_viewer_key(connections[sid]): connections[sid] for sid in sids}
    try:
        if first:
            await cluster.report_count(board_slug, _count_clients(board_slug))
        states = await run_in_read_thread(
            _states_for_users, board_slug, viewers, clients=await cluster.total_count(board_slug)
        )
    except DatabaseError:
        logger.exception("Cannot read board %s for %d connection(s)", board_slug, len(sids))
        if not first:
            return  # they keep the state they have
        states = None  # a connection cannot start without one
    else:
        if states is None:
            logger.info("Board %s is gone; disconnecting %d client(s)", board_slug, len(sids))
            feeds.pop(board_slug, None)
    for sid in sids:
        connection = connections.get(sid)
        if connection is None or connection.board != board_slug:
            continue
        state = states.get(_viewer_key(connection)) if states is not None else None
        if state is None:
            logger.info("Disconnecting %s: it may not view board %s", sid, board_slug)
            await sio.drop(sid)
            continue
        await sio.emit("board:state", _state_for(connection, state), to=sid)
        if first and sid in connections:
            feed.listen(sid, since_seq=since_seq)


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


# A page's id for itself (auth.client): random, so long enough not to be guessed or collide.
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


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


async def _read_board(board_slug: str) -> Any:
    """The board, read once for all the connections that ask while a read is on its way."""
    read = _board_reads.get(board_slug)
    if read is None:
        read = _board_reads[board_slug] = asyncio.ensure_future(
            run_in_read_thread(selectors.get_board, board_slug)
        )
        read.add_done_callback(lambda _: _board_reads.pop(board_slug, None))
    return await asyncio.shield(read)


def _discount(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def _states_for_users(
    board_slug: str, viewers: dict[Any, Connection], *, clients: int
) -> dict[Any, dict | None] | None:
    """`board:state` per kind of viewer (a user, maybe with a share link), built once each.

    None for a viewer who may no longer view the board; None overall: there is no board.
    Rights are checked again here: permissions change and share links get revoked.
    """
    board = selectors.get_board(board_slug)
    if board is None:
        return None
    base = selectors.board_state(board, user=None, clients=clients)
    states: dict[Any, dict | None] = {}
    for key, connection in viewers.items():
        current = services.current_user(connection.user)
        share = sharing.share_for(connection.share_id, board)
        if board.user_can_view(current, share):
            states[key] = {**base, "can_edit": board.user_can_edit(current, share)}
        else:
            states[key] = None
    return states


def _state_for(connection: Connection, state: dict[str, Any]) -> dict[str, Any]:
    """A user's `board:state` made personal: this connection's hand id and everyone's hands."""
    _slider_ids[connection.board] = frozenset(s["id"] for s in state["sliders"])
    connection.can_edit = state["can_edit"]
    return {
        **state,
        "hand": connection.hand,
        "hands": hands.on_board(connection.board),
        # The server's clock (ms since the Unix epoch), for a live set's `made_at`.
        "server_time": round(time.time() * 1000),
    }


NAME_LENGTH = 40


def _display_name(user: Any) -> str:
    if user is None or not user.is_authenticated:
        return "someone"
    return (user.get_full_name() or user.get_username())[:NAME_LENGTH]


def _viewer_key(connection: Connection) -> Any:
    return (_user_key(connection.user), connection.share_id)


def _user_key(user: Any) -> Any:
    return user.pk if user is not None and user.is_authenticated else None


def _user_label(user: Any) -> str:
    return user.get_username() if user is not None and user.is_authenticated else "anonymous"


def _client_address(environ: dict[str, Any]) -> tuple[str, str]:
    """(ip, "ip:port") of the client. Behind a proxy, run uvicorn with --proxy-headers."""
    # Under ASGI, REMOTE_ADDR is always 127.0.0.1; the real peer is in the ASGI scope.
    client = environ.get("asgi.scope", {}).get("client")
    if not client:
        return "unknown", "unknown"
    return str(client[0]), f"{client[0]}:{client[1]}"
