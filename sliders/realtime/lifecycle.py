"""Start-up and shutdown of the realtime server (ASGI lifespan), and closing on SIGTERM/SIGINT.

On start-up the server takes notices (sliders.notices) on its loop, starts the process's
cluster, leaves uvicorn's lines per websocket out of the log and sets the garbage collector for
serving (`tune_garbage_collector`); on shutdown every client's transport is closed the way a
lost connection closes, so pages reconnect at once (to another process, behind a load balancer).

Without REDIS_URL this is the only process, so it also runs the bridges (sliders.bridges): they
hear every notice after this process's clients (unless BRIDGES_IN_PROCESS is off). With
REDIS_URL `manage.py run_bridges` runs them and web processes never do.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from sliders import notices
from sliders.bridges.runner import Runner
from sliders.cluster import NoticeHandler, get_cluster
from sliders.realtime.boards import hands, presence
from sliders.realtime.connections import registry
from sliders.realtime.dispatch import on_notice
from sliders.realtime.internals import abort_all, chain_exit_signals, quiet_websocket_lines
from sliders.realtime.server import sio

logger = logging.getLogger(__package__)

_bridges: Runner | None = None  # running here only without REDIS_URL

# Allocations of container objects between two collections of the garbage collector's youngest
# generation while serving (Python's default: 700). See tune_garbage_collector.
YOUNG_COLLECTION_THRESHOLD = 10_000


async def on_startup() -> None:
    """Attach notices to this loop, close transports on SIGTERM/SIGINT, start the cluster, tune
    the log and the garbage collector."""
    cluster = get_cluster()
    notices.attach_loop(asyncio.get_running_loop())
    _close_transports_when_asked_to_exit(asyncio.get_running_loop())
    quiet_websocket_lines()
    presence.cluster = cluster
    if settings.REDIS_URL or not settings.BRIDGES_IN_PROCESS:
        await cluster.start(on_notice)
    else:
        await _start_with_bridges(cluster.start)
    tune_garbage_collector()
    logger.info(
        "Realtime server started (process %s, transports: %s, broadcasting: %s)",
        cluster.process_id,
        ", ".join(settings.SOCKETIO_TRANSPORTS),
        cluster.describe(),
    )


def tune_garbage_collector() -> None:
    """Keep what start-up loaded out of the garbage collector's scans, and collect less often.

    Django, the libraries and the app are some 100,000 objects that live as long as the process.
    With Python's defaults a thousand clients connecting at once set off full collections that
    walked all of them, and collections of the young generations every 700 allocations: a third
    of the CPU of the burst (docs/performance.md). `gc.freeze()` moves everything alive now to a
    generation the collector never scans, and the young generation is collected every
    YOUNG_COLLECTION_THRESHOLD allocations. Reference cycles are still collected; the ones made
    while serving only wait a little longer.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


async def on_shutdown() -> None:
    """Close every transport, stop hands and the cluster, detach notices from this loop."""
    logger.info("Realtime server stopping: closing %d connection(s)", len(registry))
    await _close_transports()
    hands.stop()
    await get_cluster().stop()
    await _stop_bridges()
    notices.attach_loop(None)


async def _start_with_bridges(start_cluster: Callable[[NoticeHandler], Awaitable[None]]) -> None:
    """Start the cluster with a handler that tells this process's clients, then the bridges."""
    global _bridges
    runner = Runner()

    async def both(kind: str, board: str, data: Any) -> None:
        try:
            await on_notice(kind, board, data)
        finally:
            await runner.on_notice(kind, board, data)

    await start_cluster(both)
    await runner.start()
    _bridges = runner


async def _stop_bridges() -> None:
    global _bridges
    if _bridges is not None:
        await _bridges.stop()
        _bridges = None


async def _close_transports() -> None:
    """End every Engine.IO session as a lost connection ends (GuardedSocket.abort): clients
    reconnect at once, to another process behind a load balancer."""
    await abort_all(sio)


def _close_transports_when_asked_to_exit(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGTERM or SIGINT, close every transport at once, then let the server stop as usual.

    uvicorn closes websockets when it is asked to exit, but waits for open HTTP requests
    (long-polls last up to a ping interval, 25 s) before it runs `on_shutdown`: polling clients
    would learn of the shutdown that late. Chaining uvicorn's own handler keeps its behaviour.
    """
    chain_exit_signals(
        lambda: loop.call_soon_threadsafe(lambda: loop.create_task(_close_transports()))
    )
