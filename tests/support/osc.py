"""OSC in tests: a real UDP endpoint that records the OSC messages it gets and can send some.

`OscPeer` stands for a desk: it listens on a UDP port of 127.0.0.1 (give that port to an
`OscTarget`), records every message with its arrival time (`time.perf_counter()`), and sends
messages from that same port, as desks usually do.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from tests.support.servers import LiveServer
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Received:
    at: float  # time.perf_counter() on arrival
    address: str
    args: tuple[Any, ...]

    @property
    def value(self) -> Any:
        return self.args[0] if len(self.args) == 1 else self.args


class OscPeer:
    """A UDP endpoint on 127.0.0.1 that records OSC messages and sends them (see module).

    It reads in a thread of its own, so arrival times are not held up by the test's event loop.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.socket: socket.socket | None = None
        self.port = 0
        self._reader: threading.Thread | None = None

    async def open(self, port: int = 0) -> OscPeer:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", port))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self._reader = threading.Thread(target=self._read, args=(self.socket,), daemon=True)
        self._reader.start()
        return self

    def _read(self, sock: socket.socket) -> None:
        while sock.fileno() != -1:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # closed, or a refusal our own sends earned
                if sock.fileno() == -1:
                    return
                continue
            now = time.perf_counter()
            for timed in OscPacket(data).messages:
                self.received.append(Received(now, timed.message.address, tuple(timed.message)))

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self._reader is not None:
            self._reader.join(timeout=2)

    def at(self, address: str) -> list[Received]:
        """What arrived at `address`, in order."""
        return [message for message in list(self.received) if message.address == address]

    async def wait_for(self, address: str, value: float, timeout: float = 5) -> Received:
        """The first message to `address` carrying `value` (compared as float32 is sent)."""
        return await wait_until(
            lambda: next((m for m in self.at(address) if close_to(m.value, value)), None),
            timeout,
            f"OSC {address} {value} at port {self.port}",
        )

    def send(self, address: str, *args: Any, to: int, types: str | None = None) -> None:
        """Send one message from this peer's port to 127.0.0.1:`to`."""
        self.send_raw(message(address, *args, types=types), to=to)

    def send_raw(self, data: bytes, *, to: int) -> None:
        assert self.socket is not None
        self.socket.sendto(data, ("127.0.0.1", to))


def message(address: str, *args: Any, types: str | None = None) -> bytes:
    """An OSC message's datagram; `types` gives each argument's type tag ("f", "i", "s", ...)."""
    builder = OscMessageBuilder(address=address)
    for index, arg in enumerate(args):
        builder.add_arg(arg, types[index] if types else None)
    return builder.build().dgram


def close_to(received: Any, value: float) -> bool:
    """Whether an OSC float32 argument stands for `value`."""
    return isinstance(received, float) and abs(received - value) <= 1e-6 * max(1, abs(value))


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Live servers that run OSC ------------------------------------------------------------------

# A server that runs the bridges itself, its OSC ports on loopback, checking settings every 0.2 s
# (how it learns of the targets the tests make).
OSC_SERVER_ENV = {
    "BRIDGES_IN_PROCESS": "true",
    "OSC_LISTEN_HOST": "127.0.0.1",
    "BRIDGES_CHECK_INTERVAL": "0.2",
}


@pytest.fixture(scope="module")
def osc_server(django_db_setup: None) -> Iterator[LiveServer]:
    """One server with OSC_SERVER_ENV per test module (the only one running bridges then)."""
    server = LiveServer(env=OSC_SERVER_ENV)
    yield server.start()
    server.stop()


@pytest.fixture
async def peers() -> AsyncIterator[Any]:
    """`await peers()` opens an OscPeer (a desk); all are closed afterwards."""
    opened: list[OscPeer] = []

    async def open_peer(port: int = 0) -> OscPeer:
        peer = await OscPeer().open(port)
        opened.append(peer)
        return peer

    yield open_peer
    for peer in opened:
        peer.close()


def add_target(board: Any, port: int, **fields: Any) -> Any:
    """An OSC target on 127.0.0.1:`port` for `board`, saved through the service."""
    from sliders import services
    from sliders.models import OscTarget

    target = OscTarget(board=board, host="127.0.0.1", port=port, **fields)
    services.save_osc_target(target=target)
    return target
