"""Announce committed changes to every server process, from any thread, without the socket side.

Domain code (services) imports this module, never sliders.realtime: a notice goes to this
process's cluster (sliders.cluster.get_cluster()), and each process's realtime server tells its
own clients. Services call these functions from `transaction.on_commit`, usually in a worker
thread of the running server (a socket set runs through `sync_to_async`, an admin view runs in
Django's sync thread). Notices are coroutines on the server's event loop, so they are handed to
that loop (`loop.call_soon_threadsafe`) without waiting for them: a commit never waits for a
broadcast.

In a process that runs no realtime server (a shell, a management command) nobody is connected
here; with REDIS_URL set the news goes through Redis to the processes that serve clients, and
without it there is nobody to tell. Either way no Socket.IO server is built here.

A change's *sender* is who made it: the Socket.IO sid of the connection that sent the set (it
has its ack, so its update is not sent back to it) or a fade's id; None for the admin and the
API (everyone hears of it). Between processes it travels as the notice's "origin".

An update notice's data is `{"updates": [{"id", "value", "version"}, ...], "origin": sender,
"source", "actor", "at", "bridge"}`: the changes (committed together, so made by one actor at
one time) and who made them, how, when, and the bridge target they came in from ("" if none;
see `SliderChange`). The socket side reads only "updates" and "origin"; the bridges
(sliders.bridges) read the rest. A board notice may say what changed, and a "preset" notice
says a preset was recalled: both for the bridges (webhooks), whose data the socket side never
reads, so nothing a browser gets changes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from sliders import redis_sync
from sliders.cluster import channel, encode_notice, get_cluster

if TYPE_CHECKING:
    from sliders.services import SliderChange

logger = logging.getLogger(__name__)

_server_loop: asyncio.AbstractEventLoop | None = None
_running: set[asyncio.Task[None]] = set()  # keeps tasks alive until they finish


def attach_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by the realtime server when it starts (with its loop) and stops (with None).

    Until then notices go to Redis directly (or nowhere without it).
    """
    global _server_loop
    _server_loop = loop


def slider_updated(change: SliderChange, *, sender: str | None = None) -> None:
    """One committed change of a slider's value (see the module's docstring for `sender`)."""
    sliders_updated([change], sender=sender)


def sliders_updated(changes: list[SliderChange], *, sender: str | None = None) -> None:
    """Changes to one board committed together: clients get them in one message."""
    first = changes[0]
    _notify(
        "update",
        first.board,
        {
            "updates": [change.as_update() for change in changes],
            "origin": sender,
            "source": first.source,
            "actor": first.actor,
            "at": first.at,
            "bridge": first.bridge,
        },
    )


def board_changed(board_slug: str, change: str = "", **details: str) -> None:
    """A board's structure changed (sliders added, removed, renamed, ...): re-send its state.

    `change` says what, for the bridges (webhooks' `board_changed`): "board_saved",
    "board_deleted", "slider_saved", "slider_deleted", "preset_saved", "preset_deleted",
    "share_link_saved", "share_link_deleted" ("" if the caller did not say); `details` name
    the thing (`slider`, `preset`) and who did it (`actor`, `source`). The notice's data is
    then `{"change", ...details, "at"}`; the socket side ignores it.
    """
    data = {"change": change, **details, "at": timezone.now().isoformat()} if change else None
    _notify("board", board_slug, data)


def preset_recalled(
    board_slug: str,
    *,
    preset: str,
    changes: list[SliderChange],
    fade: float = 0,
    source: str = "",
    actor: str = "",
) -> None:
    """A preset was recalled: at once (`fade` 0, after its commit) or by a fade that ended.

    `changes` are the sliders the recall moved (their last stored value and version). The
    notice's kind is "preset", its data `{"preset", "fade", "sliders": [{"id", "value",
    "version"}], "source", "actor", "at"}`; only the bridges read it (webhooks'
    `preset_recalled`), the socket side ignores the kind.
    """
    data = {
        "preset": preset,
        "fade": fade,
        "sliders": [change.as_update() for change in changes],
        "source": source,
        "actor": actor,
        "at": timezone.now().isoformat(),
    }
    _notify("preset", board_slug, data)


def bridges_changed(board_slug: str) -> None:
    """A board's bridge settings changed (an OSC target, its listening port): the bridge runner
    reloads them. The socket side ignores this kind."""
    _notify("bridges", board_slug)


def _notify(kind: str, board_slug: str, data: Any = None) -> None:
    if _has_server_loop():
        _run_on_server_loop(get_cluster().notify(kind, board_slug, data))
    elif settings.REDIS_URL:
        _external_redis().publish(channel(), encode_notice(kind, board_slug, data))


def run_on_server_loop(coroutine: Coroutine[Any, Any, None]) -> bool:
    """Start `coroutine` on the realtime server's loop; False if this process runs none."""
    if not _has_server_loop():
        coroutine.close()
        return False
    _run_on_server_loop(coroutine)
    return True


def _has_server_loop() -> bool:
    return _server_loop is not None and not _server_loop.is_closed()


@functools.cache
def _external_redis() -> Any:
    return redis_sync.client(connect_timeout=2, timeout=5)  # one, for the life of the process


def _run_on_server_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    loop = _server_loop
    if loop is None or loop.is_closed():
        coroutine.close()
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _start(coroutine)
    else:
        # A fresh context: the caller's (e.g. asgiref's "inside the database thread" marker)
        # must not follow the broadcast, which may itself need the database thread.
        loop.call_soon_threadsafe(_start, coroutine, context=contextvars.Context())


def _start(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _running.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Future[None] | concurrent.futures.Future[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("Broadcast failed", exc_info=task.exception())
