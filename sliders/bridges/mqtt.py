"""MQTT (aiomqtt): a board's sliders as retained state topics, set topics, Home Assistant numbers.

For an `MqttBroker` with topic prefix P on board B (docs/integrations.md):

- `P/B/<slider>/state`: the stored value as text ("42", "-12.5"), retained, QoS 1, for every
  change (through the outbox: latest value wins, at most `rate` flushes a second).
- `P/B/<slider>/set`: subscribed. A payload that is one decimal number within min..max sets the
  slider through the one write path (`set_from_outside`, audited as "mqtt"), coalesced per
  slider as OSC's are; anything else (not a number, NaN, out of range, an unknown slider, a
  retained command left on the broker) changes nothing and is logged at most every 10 s.
- `P/B/availability`: "online" (retained) once connected; "offline" when the bridges stop, and
  as the client's last will (the broker says it for a bridge process that died).
- With discovery, `<discovery prefix>/number/<node id>/<slider>/config` (retained): see
  `discovery_config`. A slider removed (or discovery turned off) has its config cleared (an
  empty retained message); a slider renamed or given another range is announced again.
- A slider removed has its state topic cleared too; a line deleted, disabled or moved (a new
  board slug, prefix or broker) clears everything it left retained where it published before.

No echo, no loop: nothing is ever published on a `set` topic. A value that came in on `set` is
stored and then published on `state` like any change, since Home Assistant (and anyone) reads
`state` as the slider's value after the command; it is the stored value, clamped and snapped.

One connection per broker line (`BrokerLink`), owned by `MqttBridge` and kept across reloads
unless its URL, topic prefix or board changes. It reconnects by itself after 0.5 s, doubling
to 30 s; on each (re)connect it announces the sliders again and republishes every slider's
latest state (a broker restarted without persistence has lost them). While it is down a send
fails at once (the outbox keeps the values and retries), and the target's state follows the
connection (`Target.watch`). Sets never wait for any of this.

Longer than 400 lines because a broker line's life (connect, announce, republish, take sets,
clear what it left behind) is one state machine, read together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import uuid
from collections.abc import Callable, Hashable, Sequence

import aiomqtt
from django.conf import settings
from django.db.models import Count, Max

from sliders import services
from sliders.bridges.base import (
    Bridge,
    Change,
    Target,
    ThrottledFilter,
    ThrottledLog,
    set_from_outside,
)
from sliders.bridges.models import parse_broker_url
from sliders.bridges.mqtt_messages import (
    OFFLINE,
    ONLINE,
    Announce,
    Connection,
    SliderInfo,
    config_topic,
    discovery_config,
    format_value,
    parse_value,
    shown,
)
from sliders.models import AuditEntry, MqttBroker, Slider

logger = logging.getLogger(__name__)

INCOMING_MAX = 10_000  # messages read from the broker and not yet handled; more are dropped
RECONNECT_FIRST = 0.5  # seconds before the first reconnection; it doubles each time
RECONNECT_MAX = 30.0
PUBLISH_TIMEOUT = 5.0  # seconds a QoS 1 publish waits for the broker's acknowledgement
Report = Callable[[Exception | None], None]
# The MQTT client's own log (a warning per message dropped from a full incoming queue: a flood).
CLIENT_LOGGER = logging.getLogger(f"{__name__}.client")
CLIENT_LOGGER.addFilter(ThrottledFilter())


class BrokerLink:
    """One connection to a broker for one board: publishes, listens, reconnects (see module)."""

    def __init__(self, connection: Connection, announce: Announce, report: Report | None) -> None:
        self.connection, self.announce, self.report = connection, announce, report
        self.broker = parse_broker_url(connection.url)
        self._client: aiomqtt.Client | None = None
        self._error = "not connected yet"
        self._tried = asyncio.Event()  # the first connection attempt is over, for better or worse
        self._latest: dict[str, Change] = {}  # slider -> the newest change it was asked to send
        self._configs: dict[str, str] = {}  # config topic -> what was published there
        self._lock = asyncio.Lock()  # publishes in order: a republish never overtakes a send
        self._waiting: dict[str, float] = {}  # slider -> a value from `set` not yet stored
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._bad = ThrottledLog(logger)

    def start(self) -> None:
        name = f"mqtt-{self.connection.pk}"
        self._tasks = [
            asyncio.create_task(self._run(), name=name),
            asyncio.create_task(self._store_values(), name=f"{name}-in"),
        ]

    async def close(self, *, forget: bool = False) -> None:
        """Say "offline", then disconnect. With `forget` (the line is gone, or now publishes
        elsewhere: another board slug, prefix or broker), clear what it left retained instead:
        discovery configs, state topics and availability."""
        client, connection = self._client, self.connection
        if client is not None:
            with contextlib.suppress(Exception):
                async with self._lock:
                    if forget:
                        gone = {topic: "" for topic in self._configs}
                        gone.update({connection.topic(s, "state"): "" for s in self._latest})
                        await self._publish_all(client, gone)
                    await self._publish(
                        client, connection.availability_topic, "" if forget else OFFLINE
                    )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError, Exception):
                await asyncio.wait_for(task, 5)

    async def publish_states(self, changes: Sequence[Change]) -> None:
        """Publish each change's value retained on its state topic; raise if not connected."""
        for change in changes:
            known = self._latest.get(change.slider)
            if known is None or change.version >= known.version:
                self._latest[change.slider] = change  # republished on the next connect anyway
        if not self._tried.is_set():  # connecting: the first values wait for it, not a retry
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._tried.wait(), PUBLISH_TIMEOUT)
        client = self._client
        if client is None:
            raise ConnectionError(f"Not connected to the broker: {self._error}")
        async with self._lock:
            await self._publish_all(client, self._states(changes))

    async def configure(self, announce: Announce) -> None:
        """Take the sliders as they are now: announce what changed, clear what went (its
        discovery config and its retained state)."""
        gone = {s.slug for s in self.announce.sliders} - {s.slug for s in announce.sliders}
        self.announce = announce
        for slug in gone:
            self._latest.pop(slug, None)
        client = self._client
        if client is not None:
            async with self._lock:
                await self._announce(client)
                cleared = {self.connection.topic(slug, "state"): "" for slug in gone}
                await self._publish_all(client, cleared)

    def _states(self, changes: Sequence[Change]) -> dict[str, str]:
        return {self.connection.topic(c.slider, "state"): format_value(c.value) for c in changes}

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str) -> None:
        await client.publish(topic, payload, qos=1, retain=True, timeout=PUBLISH_TIMEOUT)

    async def _publish_all(self, client: aiomqtt.Client, messages: dict[str, str]) -> None:
        await asyncio.gather(*(self._publish(client, t, p) for t, p in messages.items()))

    async def _announce(self, client: aiomqtt.Client, *, again: bool = False) -> None:
        """Publish the discovery configs that changed (all of them `again`), clear the others."""
        announce = self.announce
        wanted = {
            config_topic(self.connection, announce.discovery_prefix, s.slug): json.dumps(
                discovery_config(self.connection, announce, s)
            )
            for s in announce.sliders
            if announce.discovery
        }
        messages = {topic: "" for topic in self._configs if topic not in wanted}
        messages.update(
            (topic, payload)
            for topic, payload in wanted.items()
            if again or self._configs.get(topic) != payload
        )
        self._configs = wanted
        await self._publish_all(client, messages)

    async def _run(self) -> None:
        delay = RECONNECT_FIRST
        while True:
            try:
                async with self._new_client() as client:
                    await self._connected(client)
                    delay = RECONNECT_FIRST
                    async for message in client.messages:
                        self._received(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # aiomqtt.MqttError, OSError, ssl.SSLError, ...
                self._error = _described(error)
                if self.report is not None:
                    self.report(ConnectionError(self._error))
            finally:
                self._client = None
                self._tried.set()
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX, delay * 2)

    def _new_client(self) -> aiomqtt.Client:
        broker = self.broker
        return aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=f"slidersync-{uuid.uuid4().hex[:12]}",  # 23 characters, MQTT 3.1.1's most
            will=aiomqtt.Will(self.connection.availability_topic, OFFLINE, qos=1, retain=True),
            keepalive=settings.MQTT_KEEPALIVE,
            timeout=PUBLISH_TIMEOUT,
            max_queued_incoming_messages=INCOMING_MAX,
            logger=CLIENT_LOGGER,
            tls_context=ssl.create_default_context() if broker.tls else None,
        )

    async def _connected(self, client: aiomqtt.Client) -> None:
        """Subscribe, then announce and republish everything before anything else is sent."""
        connection = self.connection
        await client.subscribe(connection.topic("+", "set"), qos=1)
        # Retained configs of this node that are not wanted (a slider removed while the bridges
        # were not running) arrive here and are cleared.
        await client.subscribe(config_topic(connection, self.announce.discovery_prefix, "+"), qos=1)
        async with self._lock:  # sends wait for the republish, then go out after it
            self._client = client
            await self._announce(client, again=True)
            await self._publish_all(client, self._states(list(self._latest.values())))
            await self._publish(client, connection.availability_topic, ONLINE)
        self._tried.set()
        logger.info("MQTT: board %s connected to %s", connection.board, self.broker.label)
        if self.report is not None:
            self.report(None)

    def _received(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        if topic.endswith("/config"):
            if message.payload and topic not in self._configs:
                task = asyncio.create_task(self._clear(topic))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return
        slider = topic.rsplit("/", 2)[-2]
        where = f"{self.broker.label} {topic[:200]!r}"
        routes = {s.slug: s for s in self.announce.sliders}
        if message.retain:  # a command left on the broker, not one given now
            self._bad.warning("Ignored a retained MQTT set on %s (publish sets without retain)",
                              where)  # fmt: skip
            return
        info = routes.get(slider)
        value = parse_value(message.payload)
        if info is None:
            self._bad.warning("Ignored MQTT %s: board %s has no such slider", where,
                              self.connection.board)  # fmt: skip
        elif value is None:
            self._bad.warning("Ignored MQTT %s %s: it needs one number", where,
                              shown(message.payload))  # fmt: skip
        elif not info.minimum <= value <= info.maximum:
            self._bad.warning("Ignored MQTT %s %s: out of range", where, format_value(value))
        else:
            self._waiting[slider] = value
            self._wake.set()

    async def _clear(self, topic: str) -> None:
        """Clear a stale discovery config (best effort: the next connect tries again)."""
        client = self._client
        if client is not None:
            async with self._lock:
                with contextlib.suppress(Exception):
                    await self._publish(client, topic, "")

    async def _store_values(self) -> None:
        """Store what arrived on `set`, one value at a time, the latest per slider.

        Not passed as the bridge the value came from: its state topic must show the stored
        value (see the module), and nothing is ever sent on `set`.
        """
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiting, self._waiting = self._waiting, {}
            for slider, value in waiting.items():
                try:
                    await set_from_outside(
                        board=self.connection.board, slider=slider, value=value,
                        source=AuditEntry.Source.MQTT, bridge="", address=self.broker.label,
                    )  # fmt: skip
                except services.Refusal as error:
                    self._bad.warning("Ignored MQTT value for %s/%s: %s", self.connection.board,
                                      slider, error.message)  # fmt: skip
                except Exception:
                    logger.exception("Storing an MQTT value for %s/%s failed",
                                     self.connection.board, slider)  # fmt: skip


def _described(error: BaseException) -> str:
    """What went wrong with a connection, for the admin and the log, with its cause."""
    text = str(error) or type(error).__name__
    cause = error.__cause__
    return f"{text} ({cause})" if cause is not None and str(cause) else text


class MqttTarget(Target):
    """One broker line as the outbox sees it; its connection is the bridge's `BrokerLink`."""

    model = MqttBroker

    def __init__(
        self, bridge: MqttBridge, *, connection: Connection, announce: Announce, rate: float
    ) -> None:
        self.bridge, self.connection, self.announce = bridge, connection, announce
        self.pk, self.board, self.rate = connection.pk, connection.board, rate
        self.key = f"mqtt:{connection.pk}"
        self.label = parse_broker_url(connection.url).label
        self.settings: Hashable = (connection, announce, rate)

    async def send(self, changes: Sequence[Change]) -> None:
        link = await self.bridge.link(self.connection, self.announce)
        await link.publish_states(changes)

    def watch(self, report: Report) -> None:
        self.bridge.watch(self.connection.pk, report)


class MqttBridge(Bridge):
    """Every enabled `MqttBroker`: one connection each, kept across reloads when it can be."""

    kind = "mqtt"

    def __init__(self) -> None:
        self._wanted: dict[int, tuple[Connection, Announce]] = {}
        self._links: dict[int, BrokerLink] = {}
        self._reports: dict[int, Report] = {}
        self._linking = asyncio.Lock()

    def fingerprint(self) -> Hashable:
        """The brokers' rows, and what discovery shows of their boards' sliders (a board's
        name, a slider renamed, ranged or removed where no notice reaches the bridges)."""
        brokers = MqttBroker.objects.aggregate(count=Count("pk"), latest=Max("updated_at"))
        shown = (
            Slider.objects.filter(board__mqtt_brokers__enabled=True)
            .order_by("board_id", "slug")
            .values_list("board__name", "slug", "name", "min", "max", "step", "unit")
            .distinct()
        )
        return (brokers["count"], brokers["latest"], hash(tuple(shown)))

    def load(self) -> list[Target]:
        brokers = list(MqttBroker.objects.filter(enabled=True).select_related("board"))
        sliders: dict[int, list[SliderInfo]] = {}
        for s in Slider.objects.filter(board_id__in={b.board_id for b in brokers}):
            info = SliderInfo(s.slug, s.name, s.min, s.max, s.step, s.unit)
            sliders.setdefault(s.board_id, []).append(info)
        wanted = {
            b.pk: (
                Connection(b.pk, b.board.slug, b.url.strip(), b.topic_prefix),
                Announce(
                    b.board.name,
                    tuple(sliders.get(b.board_id, [])),
                    b.discovery,
                    b.discovery_prefix,
                ),
            )
            for b in brokers
        }
        self._wanted = wanted
        return [
            MqttTarget(self, connection=c, announce=a, rate=b.rate)
            for b in brokers
            for c, a in [wanted[b.pk]]
        ]

    def watch(self, pk: int, report: Report) -> None:
        self._reports[pk] = report
        if pk in self._links:
            self._links[pk].report = report

    async def link(self, connection: Connection, announce: Announce) -> BrokerLink:
        """The running connection for `connection` (a new one if its settings changed)."""
        async with self._linking:
            link = self._links.get(connection.pk)
            if link is not None and link.connection == connection:
                return link
            if link is not None:  # a new URL, prefix or board: forget what the old one announced
                old, new = link.broker, parse_broker_url(connection.url)
                was = (old.host, old.port, link.connection.prefix, link.connection.board)
                now = (new.host, new.port, connection.prefix, connection.board)
                await link.close(forget=was != now)
            link = BrokerLink(connection, announce, self._reports.get(connection.pk))
            self._links[connection.pk] = link
            link.start()
            return link

    async def apply(self) -> None:
        wanted = dict(self._wanted)
        for pk in set(self._links) - set(wanted):
            self._reports.pop(pk, None)
            await self._links.pop(pk).close(forget=True)  # deleted or disabled: HA forgets it
        for connection, announce in wanted.values():
            link = await self.link(connection, announce)
            if link.announce != announce:
                await link.configure(announce)

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self._links.values()))  # each says offline
        self._links.clear()
