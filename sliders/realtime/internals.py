"""Every use of a library detail that is private or undocumented, in one place.

Written against python-socketio 5.18.1, python-engineio 4.15.1, Django 5.2.x and uvicorn
0.54.0 (the pins in requirements.txt). Only those pins protect what follows, so before moving
any of them read this module against the new version; tests/test_library_internals.py fails
when an upgrade removes or changes what it relies on:

- python-socketio's `AsyncServer`: the private methods `GuardedServer` overrides
  (`_handle_event`, `_handle_eio_connect`, `_handle_eio_message`, `_handle_eio_disconnect`,
  `_handle_disconnect`, `_send_packet`, `_send_eio_packet`), its `_binary_packet` buffer and
  `packet_class`;
  `manager.eio_sid_from_sid`, `manager.sid_from_eio_sid`, `manager.get_namespaces`;
- python-engineio's `AsyncSocket`: a live socket's class swapped for `GuardedSocket` (as
  `TimedPingSocket`), which re-implements `poll`, `send`, `close`, `handle_post_request` and
  `schedule_ping`, wraps `_upgrade_websocket` (answering a second upgrade with the server's
  `_bad_request`) and `_websocket_handler` (resetting `upgrading` after a failed upgrade), and
  reads `queue`, `upgraded`, `closing`, `closed`, `last_ping`, `check_ping_timeout` and `server`;
  `AsyncServer.sockets`; frames and messages put straight into `socket.queue` (`queue_frame`,
  `queue_message`, with a `Packet` from `message_packet`) and a `Packet` subclass whose text is
  made when the writer calls `encode` (`LazyFrame`, `encode_cache`); Socket.IO packets we
  encoded ourselves sent as Engine.IO messages (`send_encoded`); the
  `_async["translate_request"]` of python-socketio's Engine.IO server (`eio`: the ASGI driver's
  request-to-environ function), replaced by `translate_request`;
- uvicorn: it installs its own SIGTERM/SIGINT handlers with `signal.signal`, which
  `chain_exit_signals` chains; a broadcast frame is written straight to the transport of its
  websocket protocol (`WebSocketsSansIOProtocol`: `transport`, `writable`, `close_sent`,
  `conn.extensions`), found as the `__self__` of the ASGI `send` python-engineio holds
  (`GuardedSocket.write_now`), and the connection of a client that stops reading is reset
  when its session closes (`reset`, from `GuardedSocket.close`); the text of the lines it and
  websockets log for every websocket (`WEBSOCKET_LINES`, left out by `quiet_websocket_lines`);
- websockets: `Frame.serialize` builds that frame once for every recipient (`websocket_frame`);
- Django: `connection.errors_occurred` (`drop_broken_connections`, used by sliders.db).

Longer than 400 lines because it is the one place for every library internal: splitting it would
spread them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import struct
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from socket import SO_LINGER, SOL_SOCKET
from typing import Any

import engineio.async_socket
import engineio.exceptions
import engineio.packet
import socketio
import websockets.frames
from django.conf import settings
from django.db import connections
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from sliders.realtime.acks import error_ack

logger = logging.getLogger(__package__)

# Event names python-socketio reserves for its own lifecycle calls.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})

# Binary attachments one Socket.IO message may announce. Our protocol sends none; the cap only
# keeps a client from announcing millions and having every frame that follows buffered.
MAX_ATTACHMENTS = 10


class MessageTooLarge(ValueError):
    """A Socket.IO message (attachments included) is larger than SOCKETIO_MAX_MESSAGE_BYTES."""


class BadPayload(engineio.exceptions.EngineIOError):  # type: ignore[misc]  # untyped library
    """A long-polling POST whose body is not an Engine.IO payload (answered 400, then closed)."""


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped library
    """python-socketio's server, hardened against hostile packets.

    Out of the box a client can send an event named "connect" or "disconnect" and have the
    lifecycle handlers run with arguments of its choosing, and a malformed packet logs a full
    traceback. Here reserved or non-string event names get a `bad_request` ack, and a packet
    that cannot be decoded closes that client's connection with one warning line, at the
    transport (see GuardedSocket.close).

    The library buffers a binary message's attachments until as many have arrived as its header
    announced, with no bound on their count or total size. Here a message announcing more than
    MAX_ATTACHMENTS, or growing past SOCKETIO_MAX_MESSAGE_BYTES (header and attachments
    together), closes the connection. A zero-length binary frame is an empty attachment when a
    binary message awaits one, and is ignored otherwise (it holds no packet to decode).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._binary_bytes: dict[str, int] = {}  # per Engine.IO session: the pending message's size

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        """Send a Socket.IO packet (an ack, an event to one client): a text packet goes straight
        to an idle websocket (GuardedSocket.write_now), anything else through the library."""
        encoded = pkt.encode()
        if isinstance(encoded, str) and self._written_now(eio_sid, "4" + encoded):
            return
        for part in encoded if isinstance(encoded, list) else [encoded]:  # as the library does
            await self.eio.send(eio_sid, part)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        """Send an encoded Engine.IO packet (an emit's, built once for every recipient)."""
        text = eio_pkt.packet_type == engineio.packet.MESSAGE and not eio_pkt.binary
        if not (text and self._written_now(eio_sid, eio_pkt.encode())):
            await super()._send_eio_packet(eio_sid, eio_pkt)

    async def send_encoded(self, eio_sid: str, text: str) -> None:
        """Send a Socket.IO packet already encoded (`text`, e.g. `2["event",{...}]`) to Engine.IO
        session `eio_sid`, as `_send_packet` sends one it encoded: straight to an idle websocket,
        else through the session's send queue. A session that is gone gets nothing.

        python-socketio's emit builds the packet, checks every value of it for binary data, starts
        a task per client and wakes the client's writer; a `board:state` for a thousand clients
        connecting at once is one text each, made from one encoding (sliders.realtime.state).
        """
        if not self._written_now(eio_sid, "4" + text):  # 4: an Engine.IO message
            await self.eio.send(eio_sid, text)

    def _written_now(self, eio_sid: str, text: str) -> bool:
        """Write Engine.IO message `text` to the session's websocket now if it is idle."""
        socket = self.eio.sockets.get(eio_sid)
        if isinstance(socket, GuardedSocket) and socket.can_write_now():
            socket.write_now(websocket_frame(text))
            return True
        return False

    async def drop(self, sid: str, namespace: str = "/") -> None:
        """End a Socket.IO connection and close its transport at once.

        The client hears the Socket.IO disconnect (reason "io server disconnect"), then its
        websocket is closed (or its long-poll answered with Engine.IO's close packet), so it
        knows at once even if it ignores the disconnect. `sid` is the Socket.IO session id;
        an unknown one does nothing.
        """
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        await self.disconnect(sid, namespace=namespace)
        if eio_sid is not None:
            await self.eio.disconnect(eio_sid)

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
            socket.__class__ = TimedPingSocket  # before its writer starts polling
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self.environ:
            # The session closed (the client left, a drop, a shutdown) while this packet waited
            # in its websocket's reader, which does not check. Nobody is left to answer, and
            # the library would fail on it (a connect packet: KeyError on `environ`).
            return
        try:
            if eio_sid in self._binary_packet:
                size = self._binary_bytes.get(eio_sid, 0) + len(data)
                if size > self.eio.max_http_buffer_size:
                    raise MessageTooLarge()
                self._binary_bytes[eio_sid] = size
            elif data == b"":
                return  # an empty binary frame with no message waiting for it: nothing to do
            await super()._handle_eio_message(eio_sid, data)
            pending = self._binary_packet.get(eio_sid)
            if pending is None:
                self._binary_bytes.pop(eio_sid, None)
            elif eio_sid not in self._binary_bytes:  # a binary message's header just arrived
                if pending.attachment_count > MAX_ATTACHMENTS:
                    raise MessageTooLarge()
                self._binary_bytes[eio_sid] = len(data)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as e:
            logger.warning(
                "Closing a connection that sent a malformed packet (%s)", type(e).__name__
            )
            self._binary_packet.pop(eio_sid, None)
            self._binary_bytes.pop(eio_sid, None)
            await self.eio.disconnect(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self._binary_bytes.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_disconnect(self, eio_sid: str, namespace: str, reason: Any = None) -> None:
        """A Socket.IO disconnect; one that leaves the Engine.IO session with no namespace
        (a client that left `/`, our only one) also closes the transport.

        The library keeps such a session open until its ping times out, and events sent on it
        go unanswered; the JavaScript client closes the transport itself, other clients may not.
        """
        await super()._handle_disconnect(eio_sid, namespace, reason)
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed:
            return  # the transport is closing already (this disconnect came from it)
        if not any(
            self.manager.sid_from_eio_sid(eio_sid, name) for name in self.manager.get_namespaces()
        ):
            await self.eio.disconnect(eio_sid)


def _queued_size(pkt: Any) -> int:
    """Bytes an outgoing packet holds while it waits in a send queue (0 for control packets)."""
    data = getattr(pkt, "data", None)
    return len(data) if isinstance(data, (str, bytes)) else 0


# Put in a long-polling socket's queue to answer its waiting long-poll with an error (400), which
# every client takes for a lost connection and reconnects (GuardedSocket.abort).
_ABORTED = object()

# Packets one long-polling response carries at most; the rest wait for the client's next poll.
# 16 is what python-engineio's client (and server) accept in one payload (engineio/payload.py).
PACKETS_PER_POLL = 16


class GuardedSocket(engineio.async_socket.AsyncSocket):  # type: ignore[misc]  # untyped library
    """python-engineio's socket, with bounded queues and closes that reach the transport.

    - Closing: the library's server-side close queues Engine.IO's close packet and marks the
      socket closed, but over a websocket the writer then waits for more packets and the
      websocket stays open; browsers ignore a close packet on a websocket, so the page would
      say "Connected" until its ping timeout (~45 s). Here a close the server decides also ends
      the writer, which closes the websocket; a websocket whose client does not read is reset.
      It never waits for the client (the library's `wait=True` waits for a long-polling client
      that may never come back).
    - Outgoing queue: unbounded in the library; a long-polling client that stops polling, or a
      websocket reader slower than the board's traffic, would grow it without end. Past
      SOCKETIO_MAX_QUEUED_BYTES (bytes of queued packets) the connection is closed instead.
    - Long-polling POST: the library refuses a payload of more than 16 packets (a Socket.IO JS
      client batches everything it queued into one POST) yet answers it `200 OK`, so the
      client never learns its events were lost. Here a payload may hold as many packets as fit
      in SOCKETIO_MAX_MESSAGE_BYTES (each takes at least 2 bytes with its separator), and one
      that cannot be decoded is answered 400 and closed, which the client sees as an error.
      A long-poll response carries at most PACKETS_PER_POLL packets, since python-engineio's
      client drops a larger payload whole (twenty acks at once would all be lost).
    - Waiting: the library's writer waits for each packet with `asyncio.wait_for`, which wraps
      every wait in a new task; with a thousand clients each hearing 30 updates a second that
      wrapper was one of the largest costs of a broadcast. A websocket's writer waits with no
      timeout (its reader ends a dead connection and queues `None`); long-polling keeps the
      timeout with `asyncio.timeout`, without the task. Packets are drained in order, `None`
      ends the writer.
    """

    # Sockets become GuardedSockets after the library created them: no __init__ of ours runs.
    queued_bytes = 0  # bytes of packets in `queue` counted by send()
    websocket: Any = None  # python-engineio's ASGI websocket wrapper, once upgraded
    protocol: WebSocketsSansIOProtocol | None = None  # uvicorn's websocket under it
    wire: WebSocketsSansIOProtocol | None = None  # the same, when frames may go to it at once
    writer_busy = False  # poll() handed the writer packets it may not have written yet
    upgrade_started = False  # a websocket upgrade of this session is under way or done
    _overflow: asyncio.Task[None] | None = None

    async def poll(self) -> list[Any]:
        self.writer_busy = False  # the writer is back: what it took last time is written
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
        if packets[0] is _ABORTED:
            raise engineio.exceptions.QueueEmpty()  # answered 400: the client reconnects
        # A long-poll answers with at most PACKETS_PER_POLL packets: python-engineio's own client
        # refuses a payload of more (its Payload.max_decode_packets), losing all of them.
        limit = None if self.upgraded else PACKETS_PER_POLL
        while not queue.empty() and (limit is None or len(packets) < limit):
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is None or pkt is _ABORTED:
                queue.put_nowait(pkt)  # for the next poll
                break
            packets.append(pkt)
        self.queued_bytes = max(0, self.queued_bytes - sum(map(_queued_size, packets)))
        self.writer_busy = True
        return packets

    async def send(self, pkt: Any) -> None:
        """Queue a packet for the client; past the queue's bound, close the connection instead."""
        if not await self.check_ping_timeout():
            return
        self._put_within_bound(pkt)

    def queue_message(self, pkt: Any) -> None:
        """Queue a broadcast message (`message_packet`) at once, without waiting: bounded like
        `send`, and dropped once the session is closing.

        A send to a board's connections must not wait between clients: while it waits, a later
        one could reach the clients after this one first (sliders.realtime.boards).
        """
        if not self.closing and not self.closed:
            self._put_within_bound(pkt)

    def _put_within_bound(self, pkt: Any) -> None:
        size = _queued_size(pkt)
        if self.queued_bytes + size > settings.SOCKETIO_MAX_QUEUED_BYTES and not self.closing:
            if self._overflow is None:
                # Not from here: send() runs inside sends that are walking a board's connections.
                self._overflow = asyncio.ensure_future(self._close_overflowing())
            return
        self.queued_bytes += size
        self.queue.put_nowait(pkt)

    async def _close_overflowing(self) -> None:
        logger.warning(
            "Closing a connection whose client does not read what it is sent (%d bytes queued)",
            self.queued_bytes,
        )
        while not self.queue.empty():  # what it would never read; frees the memory now
            self.queue.get_nowait()
            self.queue.task_done()
        self.queued_bytes = 0
        await self.server.disconnect(self.sid)  # a websocket it does not read is reset (close)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """Close the session and its transport: a websocket is closed (after Engine.IO's close
        packet unless `abort`), a long-poll gets that packet.

        `abort` is the library's "the client ended it": its transport is gone, or it sent
        Engine.IO's close packet over a websocket it left open; either way the websocket closes.
        A websocket whose connection is full (its client does not read, or not nearly as fast
        as it must) is reset instead: uvicorn writes nothing more, a close frame included,
        until the client has read some, so the connection would stay open, megabytes buffered
        for it, for as long as the client likes.
        """
        closing_now = not self.closed and not self.closing
        await super().close(wait=False, abort=abort, reason=reason)
        if closing_now and self.upgraded:
            protocol = self.protocol
            if protocol is not None and not protocol.writable.is_set():
                reset(protocol.transport)  # what is queued would never reach it
            self.queue.put_nowait(None)  # the writer sends what is queued, then closes

    async def abort(self) -> None:
        """End the session the way a lost connection ends, so that every client reconnects
        (to another process, behind a load balancer): for a server that is stopping.

        No Engine.IO close packet: python-engineio's client takes one for a deliberate close and
        does not reconnect. The websocket is closed; a waiting long-poll is answered 400.
        """
        if self.closed or self.closing:
            return
        await self.close(wait=False, abort=True, reason=self.server.reason.SERVER_DISCONNECT)
        if not self.upgraded:
            self.queue.put_nowait(_ABORTED)

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        """Receive a long-polling POST: every packet in it, or a 400 (`BadPayload`)."""
        length = int(environ.get("CONTENT_LENGTH", "0"))
        if length > self.server.max_http_buffer_size:
            raise engineio.exceptions.ContentTooLongError()
        body = await environ["wsgi.input"].read(length)
        try:
            text = body.decode("utf-8")
            if text.startswith("d="):  # a JSONP POST
                text = urllib.parse.parse_qs(text)["d"][0]
            # The body is bounded in bytes, so the number of packets is too: no count cap.
            encoded = text.split("\x1e") if text else []
            packets = [engineio.packet.Packet(encoded_packet=p) for p in encoded]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError) as e:
            name = type(e).__name__
            logger.warning("Closing a connection that sent a malformed payload (%s)", name)
            raise BadPayload() from None
        for pkt in packets:
            if self.closed or self.closing:
                break  # an earlier packet closed the connection: the rest goes nowhere
            await self.receive(pkt)

    async def _upgrade_websocket(self, environ: dict[str, Any]) -> Any:
        """One websocket per session: a second upgrade request is answered 400 (a 403 refusal
        of the websocket handshake, from uvicorn).

        The library refuses an upgrade only once one has completed (`upgraded`); two requests
        at once both completed, and the session's messages were split between the two.
        """
        if self.upgrade_started:
            return self.server._bad_request("This session has a websocket already")
        self.upgrade_started = True
        try:
            return await super()._upgrade_websocket(environ)
        finally:
            if not self.upgraded:
                self.upgrade_started = False  # failed, or the client left before its accept

    async def _websocket_handler(self, ws: Any) -> Any:
        """The library's websocket handler, with uvicorn's protocol kept for `write_now`, and
        a failed upgrade of a long-polling session undone.

        An upgrade fails when its websocket closes before the probe, or sends something else
        (our frame guard closes one that is not Engine.IO) or too much: the library then left
        `upgrading` set, so every long-poll was answered at once with a NOOP (a busy loop with
        no messages until the session timed out), and raised the "packet is too large" of an
        oversized probe out of the application. The session goes on over long-polling instead,
        and may upgrade again.

        The library decodes each message outside its error handling: one whose JSON nests past
        Python's recursion limit raised out of the application, and once upgraded left the
        session open until its ping timeout. Such a connection is closed like any other that
        sends an undecodable packet.
        """
        self.websocket = ws
        protocol = getattr(
            ws.asgi_send, "__self__", None
        )  # uvicorn's, unless a middleware wraps it
        if isinstance(protocol, WebSocketsSansIOProtocol):
            self.protocol = protocol
            if not protocol.conn.extensions:
                self.wire = protocol  # write_now's frames carry no extension
        try:
            return await super()._websocket_handler(ws)
        except (ValueError, RecursionError) as error:  # too large, or nested too deep
            name = type(error).__name__
            if self.upgraded:
                logger.warning("Closing a connection that sent a malformed packet (%s)", name)
                await self.close(wait=False, abort=True)
            else:
                logger.warning("A websocket upgrade failed (%s); it stays on long-polling", name)
            return None
        finally:
            if not self.upgraded:
                self.upgrading = False
                self.websocket = self.protocol = self.wire = None

    def can_write_now(self) -> bool:
        """Whether a frame written now with `write_now` reaches the client in order.

        True when the session is a websocket (upgraded, open) whose writer has nothing waiting:
        its queue is empty and it is not in the middle of sending what it took from it, so a
        frame written now cannot overtake an ack or a `board:state`. False too while the
        transport's buffer is above its high-water mark (uvicorn clears `writable`): then the
        frame waits in the queue like any other, behind the writer's own back-pressure.
        """
        wire = self.wire
        return (
            wire is not None
            and self.upgraded
            and not self.writer_busy
            and not self.closing
            and not self.closed
            and self.queue.empty()
            and wire.writable.is_set()
            and not wire.close_sent
            and not wire.transport.is_closing()
        )

    def write_now(self, frame: bytes) -> None:
        """Write a whole websocket frame (`websocket_frame`) to the client's transport.

        Only after `can_write_now()`. This is how one broadcast frame, built once, goes out to
        a thousand clients without waking a thousand writer tasks: uWebSockets' publish and
        socket.io's pre-encoded broadcast do the same. `transport.write` buffers whatever the
        kernel does not take at once, whole frames only, so frames never interleave.
        """
        wire = self.wire
        assert wire is not None
        wire.transport.write(frame)

    def queue_frame(self, frame: LazyFrame) -> None:
        """Put a frame in the Engine.IO send queue, for the writer (unbounded: never waits)."""
        if not self.closed:
            self.queue.put_nowait(frame)


class LazyFrame(engineio.packet.Packet):  # type: ignore[misc]  # untyped library
    """An Engine.IO message whose text is made when the client's writer reaches it.

    python-engineio's writer calls `encode()` on each queued packet when it sends it, and
    `Packet.encode` caches its result in `encode_cache`; a frame queued again after `reset()`
    is encoded afresh. Subclasses say what the text is (`text()`).
    """

    encode_cache: str | None  # set by Packet.__init__ and Packet.encode

    def __init__(self) -> None:
        super().__init__(engineio.packet.MESSAGE, "")

    def text(self) -> str:
        """The encoded Engine.IO message (a string starting with its packet type)."""
        raise NotImplementedError

    def encode(self, b64: bool = False) -> str:
        if self.encode_cache is None:
            self.encode_cache = self.text()
        return self.encode_cache

    def reset(self) -> None:
        """Make the next `encode()` ask `text()` again (before the frame is queued again)."""
        self.encode_cache = None


def reset(transport: asyncio.Transport) -> None:
    """Close a TCP connection at once, dropping what waits to be sent (the peer gets a reset).

    `transport.abort()` alone drops only the transport's own buffer: the kernel still holds
    the connection open, trying to deliver what it buffered to a client that does not read.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_SOCKET, SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def eio_sid_of(sio: socketio.AsyncServer, sid: str) -> str | None:
    """The Engine.IO session under Socket.IO connection `sid` (default namespace), if any."""
    eio_sid: str | None = sio.manager.eio_sid_from_sid(sid, "/")
    return eio_sid


def is_open(sio: socketio.AsyncServer, eio_sid: str | None) -> bool:
    """Whether Engine.IO session `eio_sid` still exists and is not closed."""
    socket = sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
    return socket is not None and not socket.closed


def engineio_socket(sio: socketio.AsyncServer, eio_sid: str) -> GuardedSocket | None:
    """Engine.IO session `eio_sid`'s socket, if it is open (a GuardedSocket: see GuardedServer)."""
    socket = sio.eio.sockets.get(eio_sid)
    if isinstance(socket, GuardedSocket) and not socket.closed:
        return socket
    return None


def message_packet(text: str) -> engineio.packet.Packet:
    """The Engine.IO message whose encoding is `text` (fanout.encode_event's "42[...]"), to
    queue for any number of clients (`GuardedSocket.queue_message`); its size counts towards
    each one's queue bound."""
    assert text.startswith("4"), text[:10]
    return engineio.packet.Packet(engineio.packet.MESSAGE, text[1:])


def websocket_frame(text: str) -> bytes:
    """A server-to-client websocket text frame holding `text`: unmasked, final, RFC 6455 §5.2.

    Built by the websockets library (uvicorn's own framing), without extensions: only written
    to connections that negotiated none (see GuardedSocket._websocket_handler).
    """
    frame = websockets.frames.Frame(websockets.frames.Opcode.TEXT, text.encode())
    return frame.serialize(mask=False)


async def abort_all(sio: socketio.AsyncServer) -> None:
    """End every Engine.IO session as a lost connection ends (GuardedSocket.abort)."""
    for socket in list(sio.eio.sockets.values()):
        await socket.abort()


def chain_exit_signals(on_exit: Callable[[], object]) -> None:
    """On SIGTERM or SIGINT, run the handler installed before (uvicorn's), then `on_exit()`.

    uvicorn installs its handlers with `signal.signal` when it starts serving. Only the main
    thread may set signal handlers; elsewhere (tests, a thread) nothing changes.
    """
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def on_signal(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            previous(signum, frame)
            on_exit()

        try:
            signal.signal(number, on_signal)
        except ValueError:  # not the main thread
            return


def drop_broken_connections() -> None:
    """Replace this thread's database connections that failed and no longer answer.

    Socket handlers never see Django's request_started/finished signals, which is where Django
    recycles connections. Each thread keeps its connection open between calls (opening one per
    set costs more than the set), and replaces it once a query has failed on it and it no
    longer answers, e.g. after a database restart. Reads Django's undocumented
    `errors_occurred` flag, the one `close_if_unusable_or_obsolete` uses.
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()


# The INFO lines uvicorn and websockets log for every websocket, by their message formats (not
# documented): uvicorn's `"WebSocket /socket.io/?..." [accepted]` and the "connection open" and
# "connection closed" of websockets, which it logs through uvicorn's logger.
WEBSOCKET_LINES = frozenset(
    {'%s - "WebSocket %s" [accepted]', "connection open", "connection closed"}
)


class WithoutWebsocketLines(logging.Filter):
    """A filter for the `uvicorn.error` logger that drops WEBSOCKET_LINES.

    Three lines per page that connects and leaves, formatted and written one by one: a thousand
    clients connecting at once spent a tenth of the burst's CPU on them. sliders.realtime logs
    who connected, to which board, and who left (its `Connected` and `Disconnected` lines, at
    INFO); uvicorn's other lines (start-up, refused handshakes, errors) stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in WEBSOCKET_LINES)


def quiet_websocket_lines() -> None:
    """Leave WEBSOCKET_LINES out of this process's log (once; calling again changes nothing)."""
    uvicorn_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, WithoutWebsocketLines) for f in uvicorn_logger.filters):
        uvicorn_logger.addFilter(WithoutWebsocketLines())


_pings: set[asyncio.Future[None]] = set()  # pings being sent (TimedPingSocket._ping_due)


class TimedPingSocket(GuardedSocket):
    """A GuardedSocket whose Engine.IO pings wait on a timer, not in a task per connection.

    python-engineio schedules each ping (at connect, then at every pong) as a background task
    that sleeps `ping_interval` seconds, then sends it: every idle connection held a task, its
    coroutine and a future, and every client connecting started one more task. Here the wait is
    a timer handle on the loop, and a task runs only for the moment the ping is sent. When pings
    go out, and what a missing pong does (the library's `check_ping_timeout`), are unchanged.
    """

    # When the ping waiting for its pong was sent (time.time()); None while the next one waits.
    last_ping: float | None

    def schedule_ping(self) -> None:
        if self.last_ping:  # as the library: no second ping while one waits for its pong
            self.last_ping = None
            asyncio.get_running_loop().call_later(self.server.ping_interval, self._ping_due)

    def _ping_due(self) -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            ping = asyncio.ensure_future(self.send(engineio.packet.Packet(engineio.packet.PING)))
            _pings.add(ping)
            ping.add_done_callback(_pings.discard)


# ASGI's receive callable: each call returns the next event, a dict with its "type".
Receive = Callable[[], Awaitable[dict[str, Any]]]


class RequestBody:
    """An ASGI request's body, read as python-engineio reads its `wsgi.input`.

    Its own `translate_request` defines this class anew for every request: a class per
    connection, about 2.4 kB and eleven objects the garbage collector tracks for as long as the
    connection lasts (python-socketio keeps the environ). Reads the same way: the whole body, or
    `length` bytes at a time.
    """

    __slots__ = ("_event", "_payload", "_receive")

    def __init__(self, event: dict[str, Any], receive: Receive) -> None:
        self._event = event
        self._payload: bytes | None = None
        self._receive = receive

    async def read(self, length: int | None = None) -> bytes:
        """The body (or its next `length` bytes), once every part of it has arrived."""
        if self._payload is None and self._event["type"] == "http.request":
            self._payload = self._event.get("body") or b""
            while self._event.get("more_body"):
                self._event = await self._receive()
                if self._event["type"] == "http.request" and (
                    length is None or len(self._payload) < length
                ):
                    self._payload += self._event.get("body") or b""
        payload = self._payload or b""
        if length is None:
            self._payload = b""
            return payload
        self._payload = payload[length:]
        return payload[:length]


async def translate_request(scope: dict[str, Any], receive: Receive, send: Any) -> dict[str, Any]:
    """python-engineio's ASGI `translate_request` (4.15.1), with `RequestBody` as `wsgi.input`.

    The environ is the library's, key for key (tests/test_library_internals.py compares them).
    """
    event = await receive()
    if event["type"] not in ("http.request", "websocket.connect"):
        return {}
    raw_uri = scope["path"]
    query_string = ""
    if scope.get("query_string"):
        try:
            query_string = scope["query_string"].decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raw_uri += "?" + query_string
    environ: dict[str, Any] = {
        "wsgi.input": RequestBody(event, receive),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.async": True,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": "asgi",
        "REQUEST_METHOD": scope.get("method", "GET"),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": query_string,
        "RAW_URI": raw_uri,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "0",
        "SERVER_NAME": "asgi",
        "SERVER_PORT": "0",
        "asgi.receive": receive,
        "asgi.send": send,
        "asgi.scope": scope,
    }
    for raw_name, raw_value in scope["headers"]:
        try:
            name = raw_name.upper().decode("utf-8")
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            continue  # as the library: a header that cannot be decoded is skipped
        if name == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
        elif name == "CONTENT-LENGTH":
            environ["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    environ["wsgi.url_scheme"] = environ.get("HTTP_X_FORWARDED_PROTO", "http")
    return environ


def use_translate_request(sio: socketio.AsyncServer) -> None:
    """Make `sio`'s Engine.IO server build each request's environ with `translate_request`."""
    sio.eio._async = {**sio.eio._async, "translate_request": translate_request}
