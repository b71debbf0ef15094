"""The library details sliders.realtime.internals relies on are still there, as it expects.

Fails on an upgrade of python-socketio, python-engineio, Django or uvicorn until someone has
read sliders/realtime/internals.py against the new version and updated the pins below: a
version that differs, or a private method or attribute that is gone or takes other arguments.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import signal

import engineio
import engineio.async_socket
import engineio.packet
import engineio.payload
import pytest
import socketio
import uvicorn.server
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
    assert parameters(socketio.AsyncServer._send_packet) == ["self", "eio_sid", "pkt"]
    server = socketio.AsyncServer(async_mode="asgi")
    assert isinstance(server._binary_packet, dict)
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

    async def made() -> engineio.async_socket.AsyncSocket:
        server = engineio.AsyncServer(async_mode="asgi")
        return engineio.async_socket.AsyncSocket(server, "sid")

    socket = asyncio.run(made())
    for attribute in ("queue", "upgraded", "closing", "closed", "server", "sid"):
        assert hasattr(socket, attribute), attribute
    assert hasattr(socket.queue, "put_nowait") and hasattr(socket.queue, "get_nowait")
    # The class swap keeps the instance's state: GuardedSocket adds no slots or __init__.
    assert internals.GuardedSocket.__init__ is engineio.async_socket.AsyncSocket.__init__


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


def test_uvicorns_websocket_send_waits_until_the_transport_is_writable() -> None:
    """Why a client that does not read is reset (`internals.reset`) rather than sent a close
    frame: uvicorn's `send` waits for `writable`, which the transport clears while its buffer
    is full, before it writes anything, a close frame included."""
    assert "await self.writable.wait()" in inspect.getsource(WebSocketsSansIOProtocol.send)
    assert "self.writable.clear()" in inspect.getsource(WebSocketsSansIOProtocol.pause_writing)
