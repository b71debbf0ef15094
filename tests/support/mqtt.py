"""MQTT in tests: a client on a real broker that records what it gets, and a private broker.

`MqttWatcher` stands for Home Assistant, Node-RED or `mosquitto_sub`: it subscribes (by
default to everything) on a broker, records each message with its arrival time
(`time.perf_counter()`, taken on paho-mqtt's own network thread, so the test's event loop does
not hold it up), and publishes. It resubscribes after a reconnect, so it survives a broker
restart. `Mosquitto` runs a broker of our own (Debian's /usr/sbin/mosquitto, no configuration:
127.0.0.1 only, no persistence) on a free port, to stop and start. The shared broker is
`MQTT_TEST_BROKER` (default 127.0.0.1:1883, which CI starts); where it is missing the tests are
skipped, except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.servers import free_port
from tests.support.services import unavailable
from tests.support.waiting import wait_until, wait_until_blocking

BROKER_HOST, _, _port = os.environ.get("MQTT_TEST_BROKER", "127.0.0.1:1883").partition(":")
BROKER_PORT = int(_port or 1883)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def require_broker(host: str = BROKER_HOST, port: int = BROKER_PORT) -> None:
    """Skip (fail under CI) when no broker answers at host:port."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        unavailable(f"No MQTT broker at {host}:{port} ({error}); .ci/run starts mosquitto")


@dataclass(frozen=True)
class Received:
    at: float  # time.perf_counter() on arrival
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode()


class MqttWatcher:
    """A client that records every message on `topics` and can publish (see module)."""

    def __init__(self, port: int = BROKER_PORT, topics: tuple[str, ...] = ("#",)) -> None:
        self.port, self.topics = port, topics
        self.received: list[Received] = []
        self.connected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:12]}"
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.client.on_message = self._on_message

    def open(self) -> MqttWatcher:
        self.client.connect(BROKER_HOST, self.port, keepalive=10)
        self.client.loop_start()
        wait_until_blocking(self.connected.is_set, 5, f"connected to the broker on {self.port}")
        time.sleep(0.1)  # the subscription's retained messages
        return self

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        for topic in self.topics:
            client.subscribe(topic, qos=1)
        self.connected.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        self.received.append(Received(now, message.topic, message.payload, bool(message.retain)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def at(self, topic: str) -> list[Received]:
        """What arrived on `topic`, in order."""
        return [message for message in list(self.received) if message.topic == topic]

    async def wait_for(
        self, topic: str, payload: str | Callable[[Received], bool], timeout: float = 5
    ) -> Received:
        """The first message on `topic` whose text is `payload` (or that satisfies it)."""

        def matches(message: Received) -> bool:
            return payload(message) if callable(payload) else message.payload == payload.encode()

        return await wait_until(
            lambda: next((m for m in self.at(topic) if matches(m)), None),
            timeout,
            f"MQTT {topic} {payload if isinstance(payload, str) else ''} on port {self.port}",
        )

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


class Mosquitto:
    """A private mosquitto on a free port of 127.0.0.1, logging to `log_path`."""

    def __init__(self, log_dir: Path) -> None:
        if not Path(MOSQUITTO).exists():
            unavailable(f"mosquitto is not installed ({MOSQUITTO})")
        self.port = free_port()
        self.log_path = log_dir / f"mosquitto-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until_blocking(self._answers, 10, f"mosquitto on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
