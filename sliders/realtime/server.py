"""The process's one Socket.IO server: python-socketio configured for Slider Sync, and hardened.

`sio` is built when this module is first imported, so only the socket side imports it (domain
code announces changes through sliders.notices instead). The hardening against hostile packets
is `GuardedServer`/`GuardedSocket` in sliders.realtime.internals (they override library
internals) and `EngineIOFrameGuard` here (plain ASGI). The event handlers are in
sliders.realtime.handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from sliders import origins
from sliders.realtime.internals import GuardedServer, use_translate_request

logger = logging.getLogger(__package__)

# ASGI's receive callable: each call returns the next event, a dict with its "type".
Receive = Callable[[], Awaitable[dict[str, Any]]]


def create_server() -> GuardedServer:
    """A new server: ASGI, one task per event, our heartbeats, origin check and size limits."""
    server = GuardedServer(
        # No client manager for other processes: what must reach them goes through
        # sliders.cluster as notices, and each process tells its own clients.
        # Without this python-socketio picks aiohttp when it is installed and fails under ASGI.
        async_mode="asgi",
        # One task per event, so the transport's reader never waits for a handler (a pong
        # behind a set waiting for the database would cost the connection). The order of one
        # connection's changes (invariant 8) is kept by sliders.realtime.changequeue instead.
        async_handlers=True,
        ping_interval=settings.SOCKETIO_PING_INTERVAL,
        ping_timeout=settings.SOCKETIO_PING_TIMEOUT,
        cors_allowed_origins=origins.is_allowed_origin,
        max_http_buffer_size=settings.SOCKETIO_MAX_MESSAGE_BYTES,
        transports=settings.SOCKETIO_TRANSPORTS,
    )
    use_translate_request(server)  # no class made per request (internals.RequestBody)
    return server


sio = create_server()


class EngineIOFrameGuard:
    """ASGI middleware: a websocket text frame that is not Engine.IO closes that connection.

    python-engineio decodes frames outside its error handling, so a frame like "hello" makes
    the server log a traceback and leaves a ghost connection until its ping times out (it still
    counts in presence and holds up a graceful shutdown). Engine.IO text frames start with a
    packet type, 0 to 6. A binary frame passes, empty ones too (RFC 6455 allows them; see
    GuardedServer for what they mean).
    """

    def __init__(self, app: Any, *, path: str = "/socket.io/") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Any) -> None:
        if scope["type"] != "websocket" or not scope.get("path", "").startswith(self.path):
            await self.app(scope, receive, send)
            return

        async def checked_receive() -> dict[str, Any]:
            message = await receive()
            text = message.get("text") if message["type"] == "websocket.receive" else None
            if text is not None and (not text or text[0] not in "0123456"):
                logger.warning("Closing a socket that sent a frame that is not Engine.IO")
                return {"type": "websocket.disconnect", "code": 1003}
            if (
                message["type"] == "websocket.receive"
                and text is None
                and message.get("bytes") is None
            ):
                return {"type": "websocket.disconnect", "code": 1003}
            return message

        await self.app(scope, checked_receive, send)
