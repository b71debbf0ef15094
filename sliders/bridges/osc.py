"""OSC (Open Sound Control) over UDP: send a board's values to desks, and take theirs.

Out: each `OscTarget` of a board gets, for every changed slider, one message at the slider's
address (`Slider.osc_path`, by default `/<board>/<slider>`) with one float32 argument: the raw
value, or 0..1 over min..max (`Slider.osc_normalized`); a double beyond float32's range.
Messages are built with python-osc and sent on a *connected* asyncio datagram socket rather than
python-osc's UDPClient: on Linux an unconnected UDP socket never hears the ICMP "port
unreachable" a dead target answers with, so a dead target would look healthy forever. Such a
refusal is reported one send late (it arrives after the datagram left); while a target is
failing, each send waits `SETTLE` seconds for one before it counts as working again.

In: a board with an `osc_port` listens on it (`OSC_LISTEN_HOST`, every interface by default).
Messages to a slider's address (OSC address patterns such as `/main/*` match too, see
sliders/bridges/osc_patterns.py) with one int or float argument set that slider through the one
write path (`set_from_outside`: audited as "osc", as an operator). A value out of range
(min..max, or 0..1), of another type, not finite, to an unknown address, or a packet that is not
OSC changes nothing and is logged at most every 10 s. The values that arrive while one is being
stored are coalesced per slider (latest wins), so a flood costs one slot per slider. Datagrams
are read by our own small asyncio protocol around python-osc's parser rather than its
AsyncIOOSCUDPServer, whose protocol lets a malformed datagram (one whose address is not UTF-8)
raise out of the event loop's callback, and whose Dispatcher sleeps on the loop for a bundle's
future time tag and matches patterns with a regular expression that can backtrack for minutes
(we dispatch without timing, matching in linear time).

A message comes *from* target T when its sender's address and port are T's host and port, or
failing that when T is the board's only target at the sender's address. That target is not
sent the value back (sliders.bridges.runner); every other target is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Max
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from sliders import services
from sliders.bridges.base import Bridge, Change, Target, ThrottledLog, set_from_outside
from sliders.bridges.osc_patterns import is_pattern, matches
from sliders.models import AuditEntry, Board, OscTarget, Slider

logger = logging.getLogger(__name__)

FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32
SETTLE = 0.1  # seconds a failing target's send waits for a refusal before it counts as working


@dataclass(frozen=True)
class Route:
    """One slider's OSC address and how its value is written there."""

    slider: str
    address: str
    normalized: bool
    minimum: float
    maximum: float

    def to_wire(self, value: float) -> float:
        """The number sent for the stored `value`: raw, or 0..1 over min..max."""
        if not self.normalized:
            return value
        return (value - self.minimum) / (self.maximum - self.minimum)

    def from_wire(self, number: float) -> float | None:
        """The slider value an incoming `number` stands for; None if it is out of range."""
        if self.normalized:
            if not 0 <= number <= 1:
                return None
            return self.minimum + number * (self.maximum - self.minimum)
        return number if self.minimum <= number <= self.maximum else None


def route_of(slider: Slider) -> Route:
    return Route(slider.slug, slider.osc_path, slider.osc_normalized, slider.min, slider.max)


def _arg_type(number: float) -> str:
    """float32 ("f"), what desks take; a double ("d") for a number beyond float32's range,
    which cannot be packed as one (it would fail every send to the target)."""
    if abs(number) <= FLOAT32_MAX:
        return OscMessageBuilder.ARG_TYPE_FLOAT
    return OscMessageBuilder.ARG_TYPE_DOUBLE


class _Refusals(asyncio.DatagramProtocol):
    """A sending socket's protocol: keeps the error the kernel reports (ICMP refused, ...)."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def error_received(self, exc: Exception) -> None:
        self.error = exc


class OscSender(Target):
    """One OSC target: UDP datagrams to host:port, one message per changed slider."""

    def __init__(
        self, *, pk: int, board: str, host: str, port: int, rate: float, routes: dict[str, Route]
    ) -> None:
        self.key, self.pk, self.model = f"osc:{pk}", pk, OscTarget
        self.board, self.host, self.port, self.rate = board, host, port, rate
        self.routes = routes
        self.label = f"{host}:{port}"
        self.settings: Hashable = (host, port, rate, tuple(sorted(routes.items())))
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol = _Refusals()
        self._suspect = False  # a send failed: the next must wait for a refusal to trust it

    async def send(self, changes: Sequence[Change]) -> None:
        try:
            transport = await self._open()
            self._raise_reported()
            for change in changes:
                route = self.routes.get(change.slider)
                if route is None:  # a slider made since the last reload: its default address
                    route = Route(change.slider, f"/{self.board}/{change.slider}", False, 0, 1)
                message = OscMessageBuilder(address=route.address)
                number = route.to_wire(change.value)
                message.add_arg(number, _arg_type(number))
                transport.sendto(message.build().dgram)
            if self._suspect:
                await asyncio.sleep(SETTLE)
                self._raise_reported()
        except Exception:
            self._suspect = True
            raise
        self._suspect = False

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def _open(self) -> asyncio.DatagramTransport:
        if self._transport is None or self._transport.is_closing():
            self._protocol = _Refusals()
            self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: self._protocol, remote_addr=(self.host, self.port)
            )
        return self._transport

    def _raise_reported(self) -> None:
        error = self._protocol.error
        if error is not None:
            if self._transport is not None:
                self._transport.close()  # the next send opens a new one (the host may move)
            self._transport = None
            raise error


@dataclass
class ListenSettings:
    """What a board's listening port does: its board, routes and the targets senders may be."""

    board: str
    routes: list[Route]
    targets: list[tuple[str, str, int]]  # (key, host, port) of the board's targets


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, listener: OscListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.listener.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # a receiving socket has nothing to learn from ICMP errors


@dataclass
class OscListener:
    """One UDP port where OSC messages set one board's sliders."""

    port: int
    board: str = ""
    _routes: list[Route] = field(default_factory=list)
    _by_path: dict[str, list[Route]] = field(default_factory=dict)  # address -> its routes
    _by_endpoint: dict[tuple[str, int], str] = field(default_factory=dict)
    _by_address: dict[str, list[str]] = field(default_factory=dict)
    _waiting: dict[str, tuple[float, str, str]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _transport: asyncio.DatagramTransport | None = None
    _worker: asyncio.Task[None] | None = None
    _bad: ThrottledLog = field(default_factory=lambda: ThrottledLog(logger))

    async def start(self, host: str) -> None:
        """Listen on host:port; raises OSError if the port cannot be had."""
        _quiet_python_osc()
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=(host, self.port)
        )
        self._worker = asyncio.create_task(self._store_values(), name=f"osc-in-{self.port}")

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def configure(self, wanted: ListenSettings) -> None:
        """Take the board's current routes and targets (their hosts resolved here)."""
        self.board = wanted.board
        self._routes = list(wanted.routes)
        by_path: dict[str, list[Route]] = {}
        for route in self._routes:
            by_path.setdefault(route.address, []).append(route)
        self._by_path = by_path
        by_endpoint: dict[tuple[str, int], str] = {}
        by_address: dict[str, list[str]] = {}
        loop = asyncio.get_running_loop()
        for key, host, port in wanted.targets:
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except OSError:
                continue  # unknown host: its messages are taken as anyone's
            for address in {str(info[4][0]) for info in infos}:
                by_endpoint[(address, port)] = key
                by_address.setdefault(address, []).append(key)
        self._by_endpoint, self._by_address = by_endpoint, by_address

    def sender_target(self, sender: tuple[str, int]) -> str:
        """The key of the board's target a message from `sender` (ip, port) came from, or ""."""
        if sender in self._by_endpoint:
            return self._by_endpoint[sender]
        at_address = self._by_address.get(sender[0], [])
        return at_address[0] if len(at_address) == 1 else ""

    def received(self, data: bytes, sender: tuple[str, int]) -> None:
        """One datagram: every message in it is handled in turn, bundles without waiting."""
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception as error:  # python-osc raises more than ParseError on garbage
            self._bad.warning("Ignored a datagram on OSC port %d from %s: %s", self.port,
                              _text(sender), error)  # fmt: skip
            return
        for message in messages:
            address = message.address
            if is_pattern(address):
                routes = [route for route in self._routes if matches(address, route.address)]
            else:
                routes = self._by_path.get(address, [])
            if not routes:
                self._unknown_address(sender, address)
            for route in routes:
                self._message(sender, address, route, message.params)

    def _message(
        self, sender: tuple[str, int], address: str, route: Route, args: list[Any]
    ) -> None:
        number = args[0] if len(args) == 1 else None
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
        ):
            self._bad.warning("Ignored OSC %s %r from %s: it needs one number", address,
                              args[:4], _text(sender))  # fmt: skip
            return
        value = route.from_wire(float(number))
        if value is None:
            self._bad.warning("Ignored OSC %s %r from %s: out of range", address, number,
                              _text(sender))  # fmt: skip
            return
        self._waiting[route.slider] = (value, self.sender_target(sender), _text(sender))
        self._wake.set()

    def _unknown_address(self, sender: tuple[str, int], address: str) -> None:
        self._bad.warning("Ignored OSC %s from %s: no slider of board %s has that address",
                          address[:200], _text(sender), self.board)  # fmt: skip

    async def _store_values(self) -> None:
        """Store what arrived, one value at a time, the latest per slider."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiting, self._waiting = self._waiting, {}
            for slider, (value, bridge, sender) in waiting.items():
                try:
                    await set_from_outside(
                        board=self.board, slider=slider, value=value,
                        source=AuditEntry.Source.OSC, bridge=bridge, address=sender,
                    )  # fmt: skip
                except services.Refusal as error:
                    self._bad.warning("Ignored OSC value for %s/%s from %s: %s", self.board,
                                      slider, sender, error.message)  # fmt: skip
                except Exception:
                    logger.exception("Storing an OSC value for %s/%s failed", self.board, slider)


class _PythonOscWarnings(logging.Filter):
    """python-osc logs a warning for every malformed datagram, on the root logger: a flood of
    them would fill the log. We log our own (throttled) and drop these."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pythonosc" not in record.pathname


def _quiet_python_osc() -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _PythonOscWarnings) for f in root.filters):
        root.addFilter(_PythonOscWarnings())


def _text(sender: tuple[str, int]) -> str:
    return f"{sender[0]}:{sender[1]}"


class OscBridge(Bridge):
    """OSC targets per board, and each board's optional listening port."""

    kind = "osc"

    def __init__(self) -> None:
        self._wanted: dict[int, ListenSettings] = {}
        self._listeners: dict[int, OscListener] = {}
        self._refused: dict[int, str] = {}  # port -> why it could not be listened on (logged)

    def fingerprint(self) -> Hashable:
        targets = OscTarget.objects.aggregate(count=Count("pk"), latest=Max("updated_at"))
        ports = Board.objects.filter(osc_port__isnull=False).values_list("slug", "osc_port")
        return (targets["count"], targets["latest"], tuple(sorted(ports)))

    def load(self) -> list[Target]:
        targets = list(OscTarget.objects.filter(enabled=True).select_related("board"))
        listening = {b.pk: b for b in Board.objects.filter(osc_port__isnull=False)}
        routes: dict[int, list[Route]] = {}
        for slider in Slider.objects.filter(
            board_id__in={t.board_id for t in targets} | set(listening)
        ).select_related("board"):
            routes.setdefault(slider.board_id, []).append(route_of(slider))
        self._wanted = {
            board.osc_port: ListenSettings(
                board.slug,
                routes.get(pk, []),
                [(t.key, t.host, t.port) for t in targets if t.board_id == pk],
            )
            for pk, board in listening.items()
            if board.osc_port is not None
        }
        return [
            OscSender(
                pk=t.pk,
                board=t.board.slug,
                host=t.host,
                port=t.port,
                rate=t.rate,
                routes={r.slider: r for r in routes.get(t.board_id, [])},
            )
            for t in targets
        ]

    async def apply(self) -> None:
        for port in set(self._listeners) - set(self._wanted):
            await self._listeners.pop(port).stop()
        for port, wanted in self._wanted.items():
            listener = self._listeners.get(port)
            if listener is None:
                listener = OscListener(port)
                try:
                    await listener.start(settings.OSC_LISTEN_HOST)
                except OSError as error:
                    if self._refused.get(port) != str(error):
                        logger.error("Cannot listen for OSC on port %d: %s", port, error)
                    self._refused[port] = str(error)
                    continue
                self._refused.pop(port, None)
                self._listeners[port] = listener
                logger.info("Listening for OSC to board %s on UDP port %d", wanted.board, port)
            await listener.configure(wanted)

    async def close(self) -> None:
        for listener in self._listeners.values():
            await listener.stop()
        self._listeners.clear()
