"""Webhooks: a board's events POSTed as signed JSON to any HTTP(S) service (aiohttp).

Each `Webhook` of a board gets the events it wants, one POST per event: `value_changed` (a
slider's new value), `preset_recalled` and `board_changed` (bodies in docs/integrations.md).
The body is compact JSON; `X-SliderSync-Signature: sha256=<hex>` is its HMAC-SHA256 under the
webhook's secret (as GitHub's `X-Hub-Signature-256`), `X-SliderSync-Delivery` the event's id
(also in the body, so it is signed; the same for every attempt), `X-SliderSync-Event` its name
and `X-SliderSync-Timestamp` when the attempt was sent (Unix seconds).

Delivery (`WebhookOutbox`, an Outbox with its own send loop): one POST at a time per webhook,
in the order the events happened, at most `rate` a second. A value waiting for its turn is
replaced by a newer one of the same slider (latest wins, counted as superseded, as for OSC);
other events wait in a FIFO of at most `WEBHOOK_QUEUE_SIZE` (when full, the oldest is dropped
and counted). A POST that gets no answer within `WEBHOOK_TIMEOUT`, a network error, a 5xx or a
429 is tried again after `WEBHOOK_RETRY_FIRST` seconds, doubling up to `WEBHOOK_RETRY_MAX` (a
Retry-After is honoured up to that too), `WEBHOOK_ATTEMPTS` times in all; any other answer
but 2xx (redirects are not followed) fails at once. A value superseded while its attempts wait
is dropped. An event given up on is logged (at most once a minute per webhook, with how many
more) and counted. Every attempt goes to the delivery log (`WebhookDelivery`), written in
batches by a task of its own: sending never waits for the database.

Redirects are never followed, and with `WEBHOOK_BLOCK_PRIVATE_ADDRESSES` a receiver whose
address is not a public one (loopback, private, link-local, ...) is refused, whether the URL
names an address or a host that resolves to one (checked as aiohttp connects).

Longer than 400 lines because the bodies, the signature and the delivery rules (order, retries,
Retry-After, supersession, the delivery log) are one contract with the receiver, read together.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import itertools
import json
import logging
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver
from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from sliders import metrics, services
from sliders.bridges.base import Bridge, Change, Event, Target, ThrottledLog
from sliders.bridges.outbox import Outbox, StateStore
from sliders.db import run_in_db_thread
from sliders.models import Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-SliderSync-Signature"
USER_AGENT = "SliderSync-Webhook/1"
LOG_FLUSH_INTERVAL = 0.25  # seconds the delivery log gathers attempts before one write
LOG_BUFFER = 1000  # attempts waiting to be written at most (the oldest go when the database lags)
# IPv6 networks whose last 32 bits are an IPv4 address: IPv4-compatible (deprecated, ::/96),
# IPv4-translated (SIIT, ::ffff:0:0:0/96) and NAT64's well-known and local-use prefixes.
CARRY_IPV4 = tuple(
    ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)
DELAY_SECONDS = re.compile(r"[0-9]+")  # a Retry-After in seconds
RESPONSE_READ = 64 * 1024  # bytes of an answer read (and ignored) so the connection is reused


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: "sha256=" + hex HMAC-SHA256 under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class PrivateAddress(OSError):
    """The receiver's address is not public and WEBHOOK_BLOCK_PRIVATE_ADDRESSES is on."""


def is_public(address: str) -> bool:
    """Whether an IP address is a public (globally routable, not multicast) one.

    An IPv6 address that carries an IPv4 one (IPv4-mapped or -compatible, NAT64's
    64:ff9b::/96, 6to4, Teredo's client) is as public as that IPv4 address: a NAT64 or 6to4
    gateway delivers it there.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    elif isinstance(ip, ipaddress.IPv6Address):
        carried = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if carried is None and any(ip in network for network in CARRY_IPV4):
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None and not carried.is_global:
            return False
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(ThreadedResolver):
    """aiohttp's resolver, keeping only public addresses (raises PrivateAddress if none is)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        public = [result for result in found if is_public(result["host"])]
        if not public:
            raise PrivateAddress(
                f"{host} is not a public address (WEBHOOK_BLOCK_PRIVATE_ADDRESSES)"
            )
        return public


@dataclass(frozen=True)
class Delivery:
    """One event on its way: `id` (a UUID), `event` ("value_changed", ...), the signed `body`,
    and for a value its `slider` (a newer value of it supersedes this one)."""

    id: str
    event: str
    body: bytes
    slider: str = ""


def _time(at: str) -> str:
    return at or timezone.now().isoformat()


def value_body(change: Change, delivery: str) -> dict[str, Any]:
    """A `value_changed` body (see docs/integrations.md)."""
    return {
        "event": "value_changed",
        "delivery": delivery,
        "board": change.board,
        "slider": change.slider,
        "value": change.value,
        "version": change.version,
        "actor": change.actor or None,
        "source": change.source or None,
        "time": _time(change.at),
    }


def event_body(event: Event, delivery: str) -> dict[str, Any]:
    """A `preset_recalled` or `board_changed` body (see docs/integrations.md)."""
    details = event.details
    if event.kind == "preset_recalled":
        about = {key: details.get(key) for key in ("preset", "fade", "sliders")}
    else:
        about = {key: details.get(key) for key in ("change", "slider", "preset")}
    return {
        "event": event.kind,
        "delivery": delivery,
        "board": event.board,
        **about,
        "actor": event.actor or None,
        "source": event.source or None,
        "time": _time(event.at),
    }


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class ReceiverAnswered(Exception):
    """The receiver answered with a status that is not 2xx (`status`; `retry_after`: its
    Retry-After header, or None)."""

    def __init__(self, status: int, reason: str, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status, self.retry_after = status, retry_after


class WebhookSender(Target):
    """One webhook: its URL, secret and the events it wants; POSTs one delivery at a time."""

    outbox_class: ClassVar[type[Any] | None] = None  # WebhookOutbox, set below

    def __init__(
        self, *, pk: int, board: str, url: str, secret: str, events: frozenset[str], rate: float
    ) -> None:
        self.key, self.pk, self.model = f"webhook:{pk}", pk, Webhook
        self.board, self.url, self.secret, self.events, self.rate = board, url, secret, events, rate
        parts = urlsplit(url)
        # No path or query in logs: some receivers put their own secret there.
        self.label = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        self.settings: Hashable = (url, secret, events, rate)

    def delivery_of_change(self, change: Change) -> Delivery:
        """A new delivery (its own id) of a `value_changed` for `change`."""
        delivery = str(uuid.uuid4())
        body = _encode(value_body(change, delivery))
        return Delivery(delivery, "value_changed", body, change.slider)

    def delivery_of_event(self, event: Event) -> Delivery:
        """A new delivery (its own id) of `event` (`preset_recalled`, `board_changed`)."""
        delivery = str(uuid.uuid4())
        return Delivery(delivery, event.kind, _encode(event_body(event, delivery)))

    async def post(self, session: aiohttp.ClientSession, delivery: Delivery) -> int:
        """POST `delivery` once; returns the status (2xx). Raises ReceiverAnswered for another
        status, TimeoutError after WEBHOOK_TIMEOUT, PrivateAddress, or what aiohttp raises for a
        network error (aiohttp.ClientError, OSError)."""
        host = urlsplit(self.url).hostname or ""
        if settings.WEBHOOK_BLOCK_PRIVATE_ADDRESSES and _is_address(host) and not is_public(host):
            raise PrivateAddress(
                f"{host} is not a public address (WEBHOOK_BLOCK_PRIVATE_ADDRESSES)"
            )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-SliderSync-Event": delivery.event,
            "X-SliderSync-Delivery": delivery.id,
            "X-SliderSync-Timestamp": str(int(time.time())),
            SIGNATURE_HEADER: sign(self.secret, delivery.body),
        }
        try:
            async with session.post(
                self.url, data=delivery.body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(RESPONSE_READ)
                if not 200 <= response.status < 300:
                    raise ReceiverAnswered(
                        response.status, response.reason or "", response.headers.get("Retry-After")
                    )
                return response.status
        except TimeoutError as error:
            raise TimeoutError(f"no answer within {settings.WEBHOOK_TIMEOUT:g} s") from error
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.__cause__, PrivateAddress):  # from PublicOnlyResolver
                raise error.__cause__ from None
            raise

    async def send(self, changes: Sequence[Change]) -> None:
        raise NotImplementedError("WebhookOutbox delivers webhooks itself")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def retry_after(header: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP-date); None if unusable.

    delay-seconds are ASCII digits only (RFC 9110): "²" or "٣" are digits to `str.isdigit`,
    not to `float`, and a receiver's header must never raise here.
    """
    if not header:
        return None
    if DELAY_SECONDS.fullmatch(header.strip()):
        return float(header.strip())
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retryable(error: Exception) -> bool:
    """Network errors, timeouts, 5xx and 429 are tried again; other answers and a refused
    (private) address are not."""
    if isinstance(error, ReceiverAnswered):
        return error.status >= 500 or error.status == 429
    return not isinstance(error, PrivateAddress)


class WebhookOutbox(Outbox):
    """A webhook's waiting events and the task that POSTs them (see the module's docstring)."""

    target: WebhookSender
    resend_on_new_settings = False  # a receiver gets what happens from then on, not the values

    def __init__(self, target: Target, store_state: StateStore) -> None:
        super().__init__(target, store_state)
        self._order: dict[str, int] = {}  # slider -> when its waiting value was put
        self._events: deque[tuple[int, Event]] = deque()
        self._sequence = itertools.count()
        self._log_rows: list[dict[str, Any]] = []
        self._log_task: asyncio.Task[None] | None = None
        self._gave_up = ThrottledLog(logger, interval=60.0)
        self._dropped = (
            metrics.WEBHOOK_DROPPED.labels(target.key, "gave_up"),
            metrics.WEBHOOK_DROPPED.labels(target.key, "queue_full"),
        )

    def put(self, change: Change) -> None:
        if "value_changed" not in self.target.events:
            return
        if not change.source and change.slider not in self._latest:
            # The value the board has when the webhook starts (the runner's first values): not
            # an event. A value found later by a reload (a lost notice) is one.
            self._latest[change.slider] = change
            return
        super().put(change)
        if self._waiting.get(change.slider) is change:
            self._order[change.slider] = next(self._sequence)

    def put_event(self, event: Event) -> None:
        if event.kind not in self.target.events:
            return
        if len(self._events) >= settings.WEBHOOK_QUEUE_SIZE:
            self._events.popleft()
            self._dropped[1].inc()
            self._gave_up.warning("Webhook %s (%s, board %s): its queue is full; dropped the "
                                  "oldest event", self.target.key, self.target.label,
                                  self.target.board)  # fmt: skip
        self._events.append((next(self._sequence), event))
        self._wake.set()

    @property
    def waiting(self) -> int:
        return len(self._waiting) + len(self._events)

    def _next(self) -> Delivery | None:
        """Take the delivery that waited longest (a value or an event), or None."""
        slider = min(self._waiting, key=self._order.__getitem__, default=None)
        if self._events and (slider is None or self._events[0][0] < self._order[slider]):
            return self.target.delivery_of_event(self._events.popleft()[1])
        if slider is None:
            return None
        del self._order[slider]
        return self.target.delivery_of_change(self._waiting.pop(slider))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_send = 0.0
        resolver = PublicOnlyResolver() if settings.WEBHOOK_BLOCK_PRIVATE_ADDRESSES else None
        timeout = aiohttp.ClientTimeout(total=settings.WEBHOOK_TIMEOUT)
        connector = aiohttp.TCPConnector(resolver=resolver, limit=2)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while True:
                await self._wake.wait()
                await asyncio.sleep(max(0.0, next_send - loop.time()))
                delivery = self._next()
                if delivery is None:
                    self._wake.clear()
                    continue
                next_send = loop.time() + 1 / self.target.rate
                await self._deliver(session, delivery)

    async def _deliver(self, session: aiohttp.ClientSession, delivery: Delivery) -> None:
        """Try `delivery` up to WEBHOOK_ATTEMPTS times (see the module's docstring)."""
        wait = settings.WEBHOOK_RETRY_FIRST
        for attempt in range(1, settings.WEBHOOK_ATTEMPTS + 1):
            at, started = timezone.now(), time.perf_counter()
            target = self.target  # settings may be replaced meanwhile; this attempt uses these
            try:
                status = await target.post(session, delivery)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                took = (time.perf_counter() - started) * 1000
                self._counters[2].inc()
                self._failed(error)
                last = attempt == settings.WEBHOOK_ATTEMPTS or not _retryable(error)
                result = WebhookDelivery.Result.GAVE_UP if last else WebhookDelivery.Result.RETRYING
                answer = error.status if isinstance(error, ReceiverAnswered) else None
                self._log(delivery, at, attempt, took, result, answer, _describe(error))
                if last:
                    self._dropped[0].inc()
                    self._gave_up.warning(
                        "Webhook %s (%s, board %s) gave up on %s %s after %d attempt(s): %s",
                        target.key, target.label, target.board, delivery.event, delivery.id,
                        attempt, _describe(error),
                    )  # fmt: skip
                    return
                asked = (
                    retry_after(error.retry_after) if isinstance(error, ReceiverAnswered) else None
                )
                await asyncio.sleep(min(settings.WEBHOOK_RETRY_MAX, max(wait, asked or 0.0)))
                wait = min(settings.WEBHOOK_RETRY_MAX, wait * 2)
                if delivery.slider and delivery.slider in self._waiting:
                    self._counters[1].inc()  # a newer value waits: this one is not tried again
                    self._log(delivery, timezone.now(), attempt + 1, 0.0,
                              WebhookDelivery.Result.SUPERSEDED, None, "")  # fmt: skip
                    return
                continue
            took = (time.perf_counter() - started) * 1000
            self._counters[0].inc()
            self._succeeded()
            self._log(delivery, at, attempt, took, WebhookDelivery.Result.DELIVERED, status, "")
            return

    def _log(
        self,
        delivery: Delivery,
        at: datetime,
        attempt: int,
        took: float,
        result: str,
        status: int | None,
        error: str,
    ) -> None:
        """Keep an attempt for the delivery log; a task of its own writes it soon."""
        self._log_rows.append(
            {"at": at, "delivery": delivery.id, "event": delivery.event, "attempt": attempt,
             "status": status, "error": error[:1000], "duration_ms": round(took, 1),
             "result": result}
        )  # fmt: skip
        del self._log_rows[:-LOG_BUFFER]
        if self._log_task is None or self._log_task.done():
            self._log_task = asyncio.create_task(self._write_log(), name=f"{self.target.key}-log")

    async def _write_log(self) -> None:
        while self._log_rows:
            await asyncio.sleep(LOG_FLUSH_INTERVAL)
            rows, self._log_rows = self._log_rows, []
            try:
                await run_in_db_thread(
                    services.record_webhook_deliveries,
                    webhook=self.target.pk,
                    attempts=rows,
                    keep=settings.WEBHOOK_LOG_SIZE,
                )
            except Exception:  # the database may be down: sending goes on
                logger.exception("Could not store the delivery log of %s", self.target.key)


WebhookSender.outbox_class = WebhookOutbox


def _describe(error: Exception) -> str:
    """An attempt's error for the delivery log: the status, or the exception and its text."""
    if isinstance(error, ReceiverAnswered):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class WebhookBridge(Bridge):
    """Every board's enabled webhooks (nothing comes in through them)."""

    kind = "webhook"

    def fingerprint(self) -> Hashable:
        webhooks = Webhook.objects.aggregate(count=Count("pk"), latest=Max("updated_at"))
        return (webhooks["count"], webhooks["latest"])

    def load(self) -> list[Target]:
        return [
            WebhookSender(
                pk=webhook.pk,
                board=webhook.board.slug,
                url=webhook.url,
                secret=webhook.secret,
                events=webhook.events,
                rate=webhook.rate,
            )
            for webhook in Webhook.objects.filter(enabled=True).select_related("board")
        ]
