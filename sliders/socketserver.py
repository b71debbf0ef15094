"""The Socket.IO server: python-socketio configured for Slider Sync and hardened.

The event handlers live in sliders/realtime.py; this module only builds the server object.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import engineio.async_socket
import engineio.exceptions
import socketio
from django.conf import settings

from sliders import origins

logger = logging.getLogger(__name__)


def error_ack(code: str, message: str) -> dict[str, Any]:
    """An error reply to a client's event (see docs/protocol.md for the codes)."""
    return {"ok": False, "error": code, "message": message}


# Event names python-socketio reserves for its own lifecycle calls.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


class GuardedServer(socketio.AsyncServer):
    """python-socketio's server, hardened against hostile packets.

    Out of the box a client can send an event named "connect" or "disconnect" and have the
    lifecycle handlers run with arguments of its choosing, and a malformed packet logs a full
    traceback. Here reserved or non-string event names get a `bad_request` ack, and a packet
    that cannot be decoded closes that client's connection with one warning line.
    """

    async def _handle_event(self, eio_sid: str, namespace: str, id: Any, data: Any) -> None:
        if not data or not isinstance(data[0], str) or data[0] in RESERVED_EVENTS:
            if id is not None:
                ack = error_ack("bad_request", "That event name is not allowed.")
                await self._send_packet(
                    eio_sid,
                    self.packet_class(socketio.packet.ACK, namespace=namespace, id=id, data=[ack]),
                )
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        socket = self.eio.sockets.get(eio_sid)
        if type(socket) is engineio.async_socket.AsyncSocket:
            socket.__class__ = QuickPollSocket  # before its writer starts polling
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as e:
            logger.warning(
                "Closing a connection that sent a malformed packet (%s)", type(e).__name__
            )
            self._binary_packet.pop(eio_sid, None)
            await self.eio.disconnect(eio_sid)


def create_server() -> GuardedServer:
    return GuardedServer(
        # Rooms and emits stay in this process: what must reach other processes goes through
        # sliders.cluster as notices, and each process tells its own clients.
        # Without this python-socketio picks aiohttp when it is installed and fails under ASGI.
        async_mode="asgi",
        # One task per event, so the transport's reader never waits for a handler (a pong
        # behind a set waiting for the database would cost the connection). The order of one
        # connection's changes (invariant 8) is kept by sliders.changequeue instead.
        async_handlers=True,
        ping_interval=settings.SOCKETIO_PING_INTERVAL,
        ping_timeout=settings.SOCKETIO_PING_TIMEOUT,
        cors_allowed_origins=origins.is_allowed_origin,
        max_http_buffer_size=settings.SOCKETIO_MAX_MESSAGE_BYTES,
        transports=settings.SOCKETIO_TRANSPORTS,
    )


class QuickPollSocket(engineio.async_socket.AsyncSocket):
    """python-engineio's socket, waiting for outgoing packets more cheaply.

    The library's writer waits for each packet with `asyncio.wait_for`, which wraps every wait in
    a new task; with a thousand clients each hearing 30 updates a second that wrapper was one of
    the largest costs of a broadcast. `asyncio.timeout` keeps the same timeout without the task.
    Behaviour is otherwise the library's: packets are drained in order, `None` ends the writer.
    """

    async def poll(self) -> list[Any]:
        queue = self.queue
        try:
            if not queue.empty():
                packets = [queue.get_nowait()]
            elif self.upgraded:
                # The websocket writer: it ends when the connection does (the reader queues None).
                packets = [await queue.get()]
            else:
                async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                    packets = [await queue.get()]
            queue.task_done()
        except (TimeoutError, asyncio.CancelledError):
            raise engineio.exceptions.QueueEmpty() from None
        if packets == [None]:
            return []
        while not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is None:
                queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets


class EngineIOFrameGuard:
    """ASGI middleware: a websocket text frame that is not Engine.IO closes that connection.

    python-engineio decodes frames outside its error handling, so a frame like "hello" makes
    the server log a traceback and leaves a ghost connection until its ping times out (it still
    counts in presence and holds up a graceful shutdown). Engine.IO text frames start with a
    packet type, 0 to 6.
    """

    def __init__(self, app: Any, *, path: str = "/socket.io/") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket" or not scope.get("path", "").startswith(self.path):
            await self.app(scope, receive, send)
            return

        async def checked_receive() -> dict[str, Any]:
            message = await receive()
            text = message.get("text") if message["type"] == "websocket.receive" else None
            if text is not None and (not text or text[0] not in "0123456"):
                logger.warning("Closing a socket that sent a frame that is not Engine.IO")
                return {"type": "websocket.disconnect", "code": 1003}
            if message["type"] == "websocket.receive" and text is None and not message.get("bytes"):
                return {"type": "websocket.disconnect", "code": 1003}
            return message

        await self.app(scope, checked_receive, send)
