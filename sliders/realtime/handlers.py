"""The Socket.IO events: each parses its payload, calls a service and answers with an ack.

`connect`/`disconnect` hand over to sliders.realtime.admission. Changes (`slider:set`,
`preset:recall`, `preset:save`) spend a token of the connection's rate limit as they arrive and
then run in their turn among the connection's changes (sliders.realtime.changequeue); service
refusals and an unreachable database become error acks. The wire protocol is in
docs/protocol.md.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import DatabaseError

from sliders import db, fades, metrics, services
from sliders.db import run_in_db_thread
from sliders.models import AuditEntry
from sliders.realtime import admission
from sliders.realtime.acks import Ack, error_ack
from sliders.realtime.boards import announce_hand
from sliders.realtime.changequeue import too_late
from sliders.realtime.connections import Connection, registry
from sliders.realtime.server import sio

logger = logging.getLogger(__package__)

Handler = Callable[..., Awaitable[Ack]]


@sio.event  # type: ignore[untyped-decorator]  # python-socketio has no type hints
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    await admission.connect(sid, environ, auth)


@sio.event  # type: ignore[untyped-decorator]  # python-socketio has no type hints
async def disconnect(sid: str, reason: Any = None) -> None:
    await admission.disconnect(sid, reason)


def _service_refusals_as_acks(doing: str) -> Callable[[Handler], Handler]:
    """Turn a handler's service refusals (and an unreachable database) into its error ack."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def handle(sid: str, *args: Any, **kwargs: Any) -> Ack:
            try:
                return await handler(sid, *args, **kwargs)
            except services.Refusal as error:
                return {**error_ack(error.code, error.message), **error.details}
            except db.DeadlinePassed:
                board = getattr(registry.get(sid), "board", "?")
                logger.warning("Refused %s on board %s: the database is too slow", doing, board)
                return too_late()
            except DatabaseError:
                board = getattr(registry.get(sid), "board", "?")
                logger.exception("Database error while %s on board %s", doing, board)
                return error_ack(
                    "unavailable", "The server cannot store changes right now; try again."
                )

        return handle

    return wrap


def _change_from(sid: str) -> tuple[Connection | None, Ack]:
    """The connection if it may send a change now, else None and the error ack to send back.

    Sets and preset requests share one rate limit per connection, spent as they arrive
    (_in_change_order).
    """
    connection = registry.get(sid)
    if connection is None:
        return None, error_ack("bad_request", "Not connected to a board.")
    return connection, {}


async def _in_change_order(sid: str, key: str | None, handler: Handler, *args: Any) -> Ack:
    """Run `handler(sid, *args)` in its turn among the connection's changes (ChangeQueue.run).

    `key`: the slider of a well-formed set (a newer set for it supersedes a waiting one), None
    for anything else. Called first thing in the event's task, with no await before it.
    """
    connection = registry.get(sid)
    if connection is None:
        return await handler(sid, *args)  # not connected: refused at once
    # Every change spends a token as it arrives, refused, superseded or not.
    if not connection.bucket.take():
        return error_ack("rate_limited", "Too many changes at once; slow down.")
    return await connection.changes.run(functools.partial(handler, sid, *args), key=key)


def _queued_change(handler: Handler) -> Handler:
    """A handler of changes other than sets (presets): queued, and never superseded."""

    @functools.wraps(handler)
    async def queued(sid: str, *args: Any) -> Ack:
        return await _in_change_order(sid, None, handler, *args)

    return queued


def _set_key(args: tuple[Any, ...]) -> str | None:
    if len(args) == 1 and isinstance(args[0], dict) and "value" in args[0]:
        slider_id = args[0].get("id")
        return slider_id if isinstance(slider_id, str) else None
    return None


@sio.on("slider:set")  # type: ignore[untyped-decorator]  # python-socketio has no type hints
async def slider_set(sid: str, *args: Any) -> Ack:
    # When it arrived, before any wait in the queue: what a live set's `made_at` is held to.
    handler = functools.partial(_slider_set, arrived=time.time())
    ack = await _in_change_order(sid, _set_key(args), handler, *args)
    metrics.SETS.labels(ack.get("error", "ok")).inc()
    return ack


@_service_refusals_as_acks("setting a slider")
async def _slider_set(sid: str, *args: Any, arrived: float | None = None) -> Ack:
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
    if "made_at" in payload:
        lateness = services.lateness(
            payload["made_at"], arrived=time.time() if arrived is None else arrived
        )
        if base_version is not None and not connection.held_up(lateness):
            base_version = None  # a live set: while people drag together, the later set wins
    registry.set_received(sid, time.perf_counter())  # for the set-to-broadcast histogram
    change = await run_in_db_thread(
        services.set_slider_value,
        board=connection.board,
        slider_id=payload["id"],
        value=payload["value"],
        actor=_actor(sid, connection),
        sender=sid,
        base_version=base_version,
    )
    return change.as_ack()


@sio.on("preset:recall")  # type: ignore[untyped-decorator]  # python-socketio has no type hints
@_queued_change
@_service_refusals_as_acks("recalling a preset")
async def preset_recall(sid: str, *args: Any) -> Ack:
    """Recall a preset at once, or over `fade` seconds (sliders.fades, 20 frames a second).

    The ack names the preset as stored and says what could not be taken as saved (`skipped`,
    `adjusted`: see services.Recall).
    """
    connection, refusal = _change_from(sid)
    if connection is None:
        return refusal
    if len(args) != 1 or not isinstance(args[0], dict) or not isinstance(args[0].get("name"), str):
        return error_ack("bad_request", "Send one object: {name, fade}.")
    name, fade = args[0]["name"], args[0].get("fade", 0)
    if fade is None:
        fade = 0
    if not services.is_finite_number(fade) or not 0 <= fade <= fades.MAX_FADE_SECONDS:
        return error_ack("bad_request", f"'fade' must be 0 to {fades.MAX_FADE_SECONDS} seconds.")
    actor = _actor(sid, connection, source=AuditEntry.Source.PRESET)
    if fade == 0:
        recall = await run_in_db_thread(
            services.recall_preset, board=connection.board, name=name, actor=actor
        )
        fades.cancel(connection.board)  # even when nothing moved: the recall is the last word
    else:
        recall = await run_in_db_thread(
            services.plan_recall, board=connection.board, name=name, actor=actor
        )
        await fades.fade_to(connection.board, recall.name, recall.targets, float(fade), actor)
    return recall.as_ack()


@sio.on("preset:save")  # type: ignore[untyped-decorator]  # python-socketio has no type hints
@_queued_change
@_service_refusals_as_acks("saving a preset")
async def preset_save(sid: str, *args: Any) -> Ack:
    """Save the board's current values under a name; a taken name only with `overwrite`."""
    connection, refusal = _change_from(sid)
    if connection is None:
        return refusal
    if len(args) != 1 or not isinstance(args[0], dict):
        return error_ack("bad_request", "Send one object: {name, overwrite}.")
    overwrite = args[0].get("overwrite", False)
    if not isinstance(overwrite, bool):
        return error_ack("bad_request", "'overwrite' must be true or false.")
    preset, created = await run_in_db_thread(
        services.save_preset,
        board=connection.board,
        name=args[0].get("name"),
        actor=_actor(sid, connection),
        overwrite=overwrite,
    )
    return {"ok": True, "name": preset.name, "created": created}


def _actor(
    sid: str, connection: Connection, source: str = AuditEntry.Source.SOCKET
) -> services.Actor:
    return services.Actor(
        user=connection.user,
        source=source,
        address=connection.address,
        client=connection.client,
        share_link=connection.share_id,
    )


@sio.on("slider:grab")  # type: ignore[untyped-decorator]  # python-socketio has no type hints
async def slider_grab(sid: str, *args: Any) -> Ack:
    """Someone started (or is still) dragging a slider: everyone sees a hand on it."""
    return await _hand_event(sid, args, held=True)


@sio.on("slider:release")  # type: ignore[untyped-decorator]  # python-socketio has no type hints
async def slider_release(sid: str, *args: Any) -> Ack:
    return await _hand_event(sid, args, held=False)


async def _hand_event(sid: str, args: tuple[Any, ...], *, held: bool) -> Ack:
    connection = registry.get(sid)
    if connection is None:
        return error_ack("bad_request", "Not connected to a board.")
    if not connection.hand_bucket.take():
        return error_ack("rate_limited", "Too many grabs at once; slow down.")
    if len(args) != 1 or not isinstance(args[0], dict) or not isinstance(args[0].get("id"), str):
        return error_ack("bad_request", "Send one object: {id}.")
    slider_id = args[0]["id"]
    if slider_id not in registry.slider_ids(connection.board):
        return error_ack("unknown_slider", f"There is no slider '{slider_id[:100]}' here.")
    if held and not connection.can_edit:
        return error_ack("forbidden", "You may not change the sliders on this board.")
    # Nothing above suspends, so the lock (first come, first served) keeps the arrival order.
    async with connection.hand_order:
        if sid not in registry:
            return error_ack("bad_request", "Not connected to a board.")  # it left meanwhile
        await announce_hand(connection, slider_id, held=held)
    return {"ok": True}


@sio.on("*")  # type: ignore[untyped-decorator]  # python-socketio has no type hints
async def unknown_event(event: str, sid: str, *args: Any) -> Ack:
    return error_ack("bad_request", f"Unknown event '{str(event)[:100]}'.")
