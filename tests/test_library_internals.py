"""The library details sliders.realtime.internals relies on are still there, as it expects.

Fails on an upgrade of python-socketio, python-engineio, Django or uvicorn until someone has
read sliders/realtime/internals.py against the new version and updated the pins below: a
version that differs, or a private method or attribute that is gone or takes other arguments.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import json
import logging
import signal
from collections.abc import Iterator
from typing import Any

import engineio
import engineio.async_drivers.asgi
import engineio.async_socket
import engineio.packet
import engineio.payload
import pytest
import socketio
import uvicorn.protocols.websockets.websockets_sansio_impl
import uvicorn.protocols.websockets.wsproto_impl
import uvicorn.server
import websockets.protocol
import websockets.server
from django.db import connections
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from sliders.realtime import internals

PINNED = {
    "python-socketio": "5.18.1",
    "python-engineio": "4.15.1",
    "uvicorn": "0.54.0",
}


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


@pytest.mark.parametrize(("package", "version"), PINNED.items())
def test_the_pinned_versions_are_installed(package: str, version: str) -> None:
    assert importlib.metadata.version(package) == version


def test_django_is_5_2() -> None:
    assert importlib.metadata.version("django").startswith("5.2.")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("_handle_event", ["self", "eio_sid", "namespace", "id", "data"]),
        ("_handle_eio_connect", ["self", "eio_sid", "environ"]),
        ("_handle_eio_message", ["self", "eio_sid", "data"]),
        ("_handle_eio_disconnect", ["self", "eio_sid", "reason"]),
        ("_handle_disconnect", ["self", "eio_sid", "namespace", "reason"]),
        ("_send_packet", ["self", "eio_sid", "pkt"]),
        ("_send_eio_packet", ["self", "eio_sid", "eio_pkt"]),
    ],
)
def test_socketio_server_private_methods_we_override(name: str, expected: list[str]) -> None:
    library = getattr(socketio.AsyncServer, name)
    assert inspect.iscoroutinefunction(library)
    assert parameters(library) == expected
    ours = getattr(internals.GuardedServer, name)
    assert ours is not library, f"GuardedServer no longer overrides {name}: update the list"
    assert parameters(ours) == expected


def test_socketio_server_attributes() -> None:
    # What GuardedServer._send_packet does when it cannot write at once: the library's own body.
    source = inspect.getsource(socketio.AsyncServer._send_packet)
    assert "await self.eio.send(eio_sid, ep)" in source
    assert "await self.eio.send(eio_sid, encoded_packet)" in source
    assert hasattr(engineio.packet.Packet(engineio.packet.MESSAGE, "x"), "binary")
    server = socketio.AsyncServer(async_mode="asgi")
    assert isinstance(server._binary_packet, dict)
    # GuardedServer._handle_eio_message takes a session missing from `environ` for closed.
    assert isinstance(server.environ, dict)
    assert "self.environ[eio_sid] = environ" in inspect.getsource(server._handle_eio_connect)
    assert "del self.environ[eio_sid]" in inspect.getsource(server._handle_eio_disconnect)
    assert server.packet_class is socketio.packet.Packet
    assert hasattr(server.packet_class(socketio.packet.BINARY_EVENT), "attachment_count")
    assert isinstance(server.eio.sockets, dict)
    assert parameters(server.manager.eio_sid_from_sid) == ["sid", "namespace"]
    assert parameters(server.manager.sid_from_eio_sid) == ["eio_sid", "namespace"]
    assert parameters(server.manager.get_namespaces) == []
    assert hasattr(server.eio.reason, "SERVER_DISCONNECT")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("poll", ["self"]),
        ("send", ["self", "pkt"]),
        ("close", ["self", "wait", "abort", "reason"]),
        ("handle_post_request", ["self", "environ"]),
        ("_upgrade_websocket", ["self", "environ"]),
        ("_websocket_handler", ["self", "ws"]),
    ],
)
def test_engineio_socket_methods_we_replace(name: str, expected: list[str]) -> None:
    library = getattr(engineio.async_socket.AsyncSocket, name)
    assert parameters(library) == expected
    assert parameters(getattr(internals.GuardedSocket, name)) == expected


def test_engineio_socket_attributes() -> None:
    assert parameters(engineio.async_socket.AsyncSocket.check_ping_timeout) == ["self"]
    assert parameters(engineio.async_socket.AsyncSocket.receive) == ["self", "pkt"]
    # GuardedSocket._upgrade_websocket refuses a second upgrade with the server's 400 response.
    assert parameters(engineio.base_server.BaseServer._bad_request) == ["self", "message"]

    async def made() -> engineio.async_socket.AsyncSocket:
        server = engineio.AsyncServer(async_mode="asgi")
        return engineio.async_socket.AsyncSocket(server, "sid")

    socket = asyncio.run(made())
    for attribute in ("queue", "upgraded", "upgrading", "closing", "closed", "server", "sid"):
        assert hasattr(socket, attribute), attribute
    assert hasattr(socket.queue, "put_nowait") and hasattr(socket.queue, "get_nowait")
    # The class swap keeps the instance's state: GuardedSocket adds no slots or __init__.
    assert internals.GuardedSocket.__init__ is engineio.async_socket.AsyncSocket.__init__
    assert internals.TimedPingSocket.__init__ is engineio.async_socket.AsyncSocket.__init__
    assert isinstance(socket.last_ping, float)  # truthy: the first schedule_ping schedules


def test_engineio_packets() -> None:
    assert parameters(engineio.packet.Packet.__init__) == [
        "self",
        "packet_type",
        "data",
        "encoded_packet",
    ]
    assert parameters(engineio.packet.Packet.encode) == ["self", "b64"]
    assert engineio.packet.Packet(engineio.packet.MESSAGE, "").encode_cache is None
    # A long-poll response carries at most what python-engineio's client decodes.
    assert engineio.payload.Payload.max_decode_packets == internals.PACKETS_PER_POLL


def test_uvicorn_installs_exit_signals_with_signal_signal() -> None:
    assert {signal.SIGINT, signal.SIGTERM} <= set(uvicorn.server.HANDLED_SIGNALS)
    assert "signal.signal(" in inspect.getsource(uvicorn.server.Server.capture_signals)


@pytest.mark.django_db
def test_django_connection_errors_occurred() -> None:
    connection = connections["default"]
    connection.ensure_connection()
    assert connection.errors_occurred is False
    assert parameters(connection.is_usable) == []


def test_a_websocket_frame_is_what_uvicorns_websockets_would_write() -> None:
    """`websocket_frame` builds the bytes uvicorn's protocol (websockets' ServerProtocol) sends."""
    for text in ("42[]", "4" + "x" * 200, "4" + "é" * 40_000):  # each length encoding
        protocol = websockets.server.ServerProtocol()
        protocol.state = websockets.protocol.State.OPEN
        protocol.send_text(text.encode())
        assert internals.websocket_frame(text) == b"".join(protocol.data_to_send())


def test_uvicorns_websocket_protocol_has_what_write_now_reads() -> None:
    """uvicorn's default websocket protocol, and the attributes GuardedSocket.write_now reads."""
    from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

    assert AutoWebSocketsProtocol is WebSocketsSansIOProtocol
    source = inspect.getsource(WebSocketsSansIOProtocol)
    for attribute in ("self.transport", "self.writable", "self.close_sent", "self.conn"):
        assert attribute in source, attribute
    assert "await self.app(self.scope, self.receive, self.send)" in source
    assert hasattr(websockets.server.ServerProtocol(), "extensions")


@pytest.mark.parametrize(
    ("module", "line"),
    [
        (uvicorn.protocols.websockets.websockets_sansio_impl, '%s - "WebSocket %s" [accepted]'),
        (uvicorn.protocols.websockets.wsproto_impl, '%s - "WebSocket %s" [accepted]'),
        (websockets.server, "connection open"),
        (websockets.protocol, "connection closed"),
    ],
)
def test_the_lines_logged_per_websocket(module: object, line: str) -> None:
    assert line in internals.WEBSOCKET_LINES
    source = inspect.getsource(module)  # type: ignore[arg-type]
    assert f"'{line}'" in source or f'"{line}"' in source


@pytest.fixture
def uvicorn_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("uvicorn.error")
    filters = list(logger.filters)
    yield logger
    logger.filters[:] = filters


def test_websocket_lines_are_left_out_of_uvicorns_log(uvicorn_logger: logging.Logger) -> None:
    internals.quiet_websocket_lines()
    internals.quiet_websocket_lines()
    ours = [f for f in uvicorn_logger.filters if isinstance(f, internals.WithoutWebsocketLines)]
    assert len(ours) == 1

    def logged(message: str, *args: object) -> bool:
        record = uvicorn_logger.makeRecord(
            uvicorn_logger.name, logging.INFO, __file__, 1, message, args, None
        )
        return bool(uvicorn_logger.filter(record))

    assert not logged('%s - "WebSocket %s" [accepted]', "10.0.0.7:5312", "/socket.io/?EIO=4")
    assert not logged("connection open")
    assert not logged("connection closed")
    assert logged('%s - "WebSocket %s" 403', "10.0.0.7:5312", "/socket.io/?EIO=4")
    assert logged("Uvicorn running on %s (Press CTRL+C to quit)", "http://127.0.0.1:8000")
    assert logged({"not": "text"})  # type: ignore[arg-type]


def test_an_encoded_event_is_what_python_socketio_would_send() -> None:
    """sliders.realtime.state encodes `board:state` itself and sends it with send_encoded."""
    state = {"board": "main", "sliders": [{"id": "s1", "value": 1.5, "unit": "°"}], "hands": {}}
    ours = "2" + json.dumps(["board:state", state], separators=(",", ":"))
    packet = socketio.packet.Packet(socketio.packet.EVENT, data=["board:state", state])
    assert ours == packet.encode()
    message = engineio.packet.Packet(engineio.packet.MESSAGE, data=ours)
    assert message.encode() == "4" + ours  # what send_encoded writes when it writes at once


def test_engineio_schedules_each_ping_with_schedule_ping() -> None:
    """TimedPingSocket replaces `schedule_ping`, which the library calls once the connection is
    accepted and at every pong, and which alone starts `_send_ping` (never called by us)."""
    library = engineio.async_socket.AsyncSocket
    assert parameters(library.schedule_ping) == ["self"]
    assert not inspect.iscoroutinefunction(library.schedule_ping)
    assert "self._send_ping" in inspect.getsource(library.schedule_ping)
    assert "self.schedule_ping()" in inspect.getsource(library.receive)
    assert "s.schedule_ping()" in inspect.getsource(engineio.AsyncServer._handle_connect)
    assert "last_ping" in inspect.getsource(library._send_ping)
    assert internals.TimedPingSocket.schedule_ping is not library.schedule_ping
    assert "TimedPingSocket" in inspect.getsource(internals.GuardedServer._handle_eio_connect)


HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"origin", b"http://127.0.0.1:8000"),
    (b"cookie", b"sessionid=abc"),
    (b"x-forwarded-for", b"10.0.0.7"),
    (b"x-forwarded-for", b"10.0.0.8"),  # twice: joined with a comma
    (b"x-forwarded-proto", b"https"),
    (b"user-agent", b"\xff\xfe"),  # not UTF-8: skipped
]
REQUESTS = {
    "websocket": (
        {"type": "websocket", "path": "/socket.io/", "query_string": b"EIO=4&transport=websocket"},
        [{"type": "websocket.connect"}],
    ),
    "long-polling POST in parts": (
        {
            "type": "http",
            "method": "POST",
            "path": "/socket.io/",
            "query_string": b"EIO=4&transport=polling&sid=x",
            "headers_extra": [(b"content-type", b"text/plain"), (b"content-length", b"9")],
        },
        [
            {"type": "http.request", "body": b"42[", "more_body": True},
            {"type": "http.request", "body": b'"a"', "more_body": True},
            {"type": "http.request", "body": b"]~~", "more_body": False},
        ],
    ),
    "query string not UTF-8": (
        {"type": "http", "method": "GET", "path": "/socket.io/", "query_string": b"\xff"},
        [{"type": "http.request", "body": b""}],
    ),
    "lifespan": ({"type": "lifespan", "path": "/"}, [{"type": "lifespan.startup"}]),
}


@pytest.mark.parametrize("request_name", REQUESTS)
@pytest.mark.parametrize("length", [None, 4])
def test_translate_request_makes_the_librarys_environ(
    request_name: str, length: int | None
) -> None:
    """internals.translate_request is python-engineio's own, with a body class made once."""
    scope_fields, events = REQUESTS[request_name]
    scope = {k: v for k, v in scope_fields.items() if k != "headers_extra"}
    scope["headers"] = HEADERS + list(scope_fields.get("headers_extra", []))  # type: ignore[operator]

    async def translate(function: Any) -> tuple[dict[str, Any], list[bytes]]:
        queue = list(events)

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        environ = await function(scope, receive, None)
        reads = []
        if environ and scope["type"] == "http":
            while chunk := await environ["wsgi.input"].read(length):
                reads.append(chunk)
        return environ, reads

    library = asyncio.run(translate(engineio.async_drivers.asgi.translate_request))
    ours = asyncio.run(translate(internals.translate_request))
    assert set(ours[0]) == set(library[0])
    for key, value in library[0].items():
        if key not in ("wsgi.input", "asgi.receive"):
            assert ours[0][key] == value, key
    assert ours[1] == library[1]
    assert engineio.async_drivers.asgi._async["translate_request"] is (
        engineio.async_drivers.asgi.translate_request
    )


def test_the_server_builds_environs_with_our_translate_request() -> None:
    from sliders.realtime.server import sio

    assert sio.eio._async["translate_request"] is internals.translate_request
    assert "self._async['translate_request']" in inspect.getsource(
        engineio.AsyncServer.handle_request
    )


def test_uvicorns_websocket_send_waits_until_the_transport_is_writable() -> None:
    """Why a client that does not read is reset (`internals.reset`) rather than sent a close
    frame: uvicorn's `send` waits for `writable`, which the transport clears while its buffer
    is full, before it writes anything, a close frame included."""
    assert "await self.writable.wait()" in inspect.getsource(WebSocketsSansIOProtocol.send)
    assert "self.writable.clear()" in inspect.getsource(WebSocketsSansIOProtocol.pause_writing)
