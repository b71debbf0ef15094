"""Tell open pages about committed changes, from any thread.

Services call these functions from `transaction.on_commit`, usually in a worker thread of the
running server (a socket set runs through `sync_to_async`, an admin view runs in Django's sync
thread). The emits themselves are coroutines on the server's event loop, so they are handed to
that loop without waiting for them: a commit never waits for a broadcast.

In a process that runs no realtime server (a shell, a management command) nobody is connected,
so there is nobody to tell.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sliders.services import SliderChange

logger = logging.getLogger(__name__)

_server_loop: asyncio.AbstractEventLoop | None = None
_running: set[asyncio.Task[None]] = set()  # keeps tasks alive until they finish


def attach_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by the realtime server when it starts (with its loop) and stops (with None)."""
    global _server_loop
    _server_loop = loop


def slider_updated(change: SliderChange, *, skip_sid: str | None = None) -> None:
    from sliders import realtime

    _run_on_server_loop(realtime.emit_slider_update(change, skip_sid=skip_sid))


def board_changed(board_slug: str) -> None:
    from sliders import realtime

    _run_on_server_loop(realtime.send_board_state_to_room(board_slug))


def _run_on_server_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    loop = _server_loop
    if loop is None or loop.is_closed():
        coroutine.close()
        logger.debug("No realtime server in this process; nothing to broadcast to.")
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        task = loop.create_task(coroutine)
        _running.add(task)
        task.add_done_callback(_finished)
    else:
        asyncio.run_coroutine_threadsafe(coroutine, loop).add_done_callback(_finished)


def _finished(task: asyncio.Future[None] | concurrent.futures.Future[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("Broadcast failed", exc_info=task.exception())
