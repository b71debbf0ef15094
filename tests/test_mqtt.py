"""The MQTT bridge against a live server and real mosquitto brokers: state, sets, discovery.

The server runs without REDIS_URL, so it runs the bridges itself; it checks the bridge settings
every 0.2 s, which is how it learns of the brokers these tests add (the test process has no
way to notify it). Each test publishes under a topic prefix of its own on the shared broker
(127.0.0.1:1883, which CI starts); the restart test runs a private mosquitto it stops and
starts. Latencies are measured and printed (`-s` shows them), never asserted beyond
correctness bounds.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.database import stored
from tests.support.mqtt import (
    BROKER_HOST,
    BROKER_PORT,
    Mosquitto,
    MqttWatcher,
    Received,
    require_broker,
)
from tests.support.servers import LiveServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.live

BRIDGE_ENV = {"BRIDGES_IN_PROCESS": "true", "BRIDGES_CHECK_INTERVAL": "0.2"}
SHARED_BROKER = f"mqtt://{BROKER_HOST}:{BROKER_PORT}"

# Every option of Home Assistant's MQTT number, as documented in "Configuration Variables" of
# https://www.home-assistant.io/integrations/number.mqtt/ (and the keys of `availability` and
# `device`). A discovery payload may use no other key.
HA_NUMBER_OPTIONS = {
    "availability", "availability_topic", "availability_mode", "command_template",
    "command_topic", "device", "device_class", "enabled_by_default", "encoding",
    "entity_category", "icon", "json_attributes_template", "json_attributes_topic", "min", "max",
    "mode", "name", "object_id", "optimistic", "payload_reset", "qos", "retain", "state_topic",
    "step", "unique_id", "unit_of_measurement", "value_template",
}  # fmt: skip
HA_AVAILABILITY_KEYS = {"payload_available", "payload_not_available", "topic"}
HA_DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip


@pytest.fixture(scope="module")
def mqtt_server(django_db_setup: None) -> Iterator[LiveServer]:
    require_broker()
    server = LiveServer(env=BRIDGE_ENV)
    yield server.start()
    server.stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of the test's own on the shared broker."""
    return f"slidersync-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def watchers() -> AsyncIterator[Any]:
    """`watchers(topics, port=...)` opens an MqttWatcher; all are closed afterwards, and the
    retained messages they saw are cleared (the shared broker keeps them otherwise)."""
    opened: list[MqttWatcher] = []

    def open_watcher(*topics: str, port: int = BROKER_PORT) -> MqttWatcher:
        watcher = MqttWatcher(port, topics or ("#",)).open()
        opened.append(watcher)
        return watcher

    yield open_watcher
    for watcher in opened:
        if watcher.connected.is_set():
            for topic in {m.topic for m in watcher.received if m.payload}:
                watcher.publish(topic, b"", retain=True)
        watcher.close()


def add_broker(board: Any, prefix: str, **fields: Any) -> Any:
    from sliders import services
    from sliders.models import MqttBroker

    broker = MqttBroker(board=board, url=fields.pop("url", SHARED_BROKER), topic_prefix=prefix,
                        **fields)  # fmt: skip
    broker.full_clean()
    services.save_mqtt_broker(broker=broker)
    return broker


def broker_row(broker: Any) -> Any:
    from sliders.models import MqttBroker

    return MqttBroker.objects.get(pk=broker.pk)


async def test_a_set_is_published_retained_on_the_state_topic(
    make_board, connect_client, mqtt_server, prefix, watchers
):
    board = make_board(
        sliders=[
            {"slug": "s1", "min": 0, "max": 100, "value": 50},
            {"slug": "gain", "min": -60, "max": 0, "step": 0.5, "value": -12.5, "unit": "dB"},
        ]
    )
    base = f"{prefix}/{board.slug}"
    watcher = watchers(f"{prefix}/#")
    broker = add_broker(board, prefix)
    # A new broker is first sent every slider's value, and the bridge says it is online.
    await watcher.wait_for(f"{base}/s1/state", "50")
    await watcher.wait_for(f"{base}/gain/state", "-12.5")
    await watcher.wait_for(f"{base}/availability", "online")
    client = await connect_client(board.slug, server=mqtt_server)

    latencies = []
    for value in (10, 20, 30, 40, 55, 65, 75, 85, 95, 5):
        sent = time.perf_counter()
        assert (await client.set("s1", value))["ok"] is True
        arrived = await watcher.wait_for(f"{base}/s1/state", str(value), timeout=2)
        latencies.append(arrived.at - sent)
        await asyncio.sleep(0.05)  # past the broker line's 30 Hz interval: each set alone
    print(
        f"\nset -> MQTT state message: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} sets "
        f"({', '.join(f'{latency * 1000:.0f}' for latency in latencies)})"
    )
    assert not watcher.at(f"{base}/s1/set")  # nothing is ever published on set

    # Someone who subscribes later gets the last value at once, retained.
    late = watchers(f"{base}/+/state")
    retained = await late.wait_for(f"{base}/s1/state", "5")
    assert retained.retain is True
    assert [m.text for m in late.at(f"{base}/gain/state")] == ["-12.5"]
    await wait_until(lambda: broker_row(broker).state == "ok", 5, "the broker line's state")
    # Counted as OSC targets are: the first two values and the ten sets.
    with urllib.request.urlopen(f"{mqtt_server.url}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    sent = re.search(rf'^slidersync_bridge_messages_sent_total{{target="mqtt:{broker.pk}"}} (\S+)$',
                     metrics, re.MULTILINE)  # fmt: skip
    assert sent is not None and float(sent.group(1)) == 12
    assert f'slidersync_bridge_target_up{{target="mqtt:{broker.pk}"}} 1.0' in metrics
    assert "Traceback" not in mqtt_server.log()


async def test_a_set_message_moves_a_connected_client_and_the_state_follows(
    make_board, connect_client, mqtt_server, prefix, watchers
):
    from sliders.models import AuditEntry

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    base = f"{prefix}/{board.slug}"
    watcher = watchers(f"{prefix}/#")
    add_broker(board, prefix)
    await watcher.wait_for(f"{base}/availability", "online")
    await watcher.wait_for(f"{base}/s1/state", "50")
    client = await connect_client(board.slug, server=mqtt_server)

    watcher.publish(f"{base}/s1/set", "33")
    await client.wait_for(lambda: client.values["s1"][0] == 33.0)
    # The state shows the stored value after a set (what Home Assistant waits for) ...
    await watcher.wait_for(f"{base}/s1/state", "33")
    watcher.publish(f"{base}/s1/set", " 42.4 ")
    await watcher.wait_for(f"{base}/s1/state", "42")  # ... snapped to the step grid
    assert client.values["s1"][0] == 42.0
    # ... and nothing is published on the set topic: what is there is the watcher's own.
    await asyncio.sleep(0.3)
    assert [m.text for m in watcher.at(f"{base}/s1/set")] == ["33", " 42.4 "]

    # The same value again changes nothing: no version, no state message.
    version = stored(board, "s1")[1]
    states = len(watcher.at(f"{base}/s1/state"))
    watcher.publish(f"{base}/s1/set", "42")
    await asyncio.sleep(0.5)
    assert stored(board, "s1") == (42.0, version)
    assert len(watcher.at(f"{base}/s1/state")) == states

    # One broker's quick sets to one slider are one entry of the audit trail, as a drag is.
    entries = AuditEntry.objects.filter(board=board.slug)
    assert [(e.source, e.from_value, e.to_value, e.changes) for e in entries] == [
        ("mqtt", 50.0, 42.0, 2)
    ]
    assert entries[0].client == f"mqtt:{BROKER_HOST}:{BROKER_PORT}"


BAD_PAYLOADS = [
    "loud", "NaN", "nan", "inf", "-Infinity", "1e999", "", "   ", "101", "-0.5", "1,5", "0x10",
    "1_0", "4 2", '{"value": 5}', "true", b"\xff\xfe", "5" * 400,
]  # fmt: skip


async def test_bad_set_payloads_change_nothing_and_are_logged_at_a_bounded_rate(
    make_board, mqtt_server, prefix, watchers
):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    base = f"{prefix}/{board.slug}"
    watcher = watchers(f"{prefix}/#")
    # A set left retained on the broker is an old command: not taken when the bridge subscribes.
    watcher.publish(f"{base}/s1/set", "20", retain=True)
    log_before = mqtt_server.log().count("Ignored")
    add_broker(board, prefix)
    await watcher.wait_for(f"{base}/availability", "online")
    before = stored(board, "s1")
    assert before[0] == 50.0

    for payload in BAD_PAYLOADS:
        watcher.publish(f"{base}/s1/set", payload)
    watcher.publish(f"{base}/nope/set", "10")  # no such slider
    await asyncio.sleep(0.5)
    assert stored(board, "s1") == before
    watcher.publish(f"{base}/s1/set", "12")
    await wait_until(lambda: stored(board, "s1")[0] == 12.0, what="the good message")
    logged = mqtt_server.log().count("Ignored") - log_before
    assert 1 <= logged <= 2  # twenty bad messages, logged at most every 10 s
    assert "Traceback" not in mqtt_server.log()


async def test_discovery_configs_match_home_assistants_number_schema(
    make_board, mqtt_server, prefix, watchers
):
    from sliders import services
    from sliders.models import Slider

    board = make_board(
        name="Stage",
        sliders=[
            {"slug": "master", "name": "Master", "min": -60, "max": 6, "step": 0.5,
             "unit": "dB", "value": 0},
            {"slug": "fine", "name": "Fine", "min": 0, "max": 1, "step": 0.0001, "value": 0.5},
        ],
    )  # fmt: skip
    discovery = f"{prefix}-ha"  # not the real "homeassistant" of a shared broker
    watcher = watchers(f"{prefix}/#", f"{discovery}/#")
    add_broker(board, prefix, discovery=True, discovery_prefix=discovery)
    node = f"{prefix}_{board.slug}".replace(".", "_")
    topic = f"{discovery}/number/{node}/master/config"
    config = json.loads((await watcher.wait_for(topic, lambda m: bool(m.payload))).payload)

    base = f"{prefix}/{board.slug}"
    assert config == {
        "name": "Master",
        "unique_id": f"{node}_master",
        "command_topic": f"{base}/master/set",
        "state_topic": f"{base}/master/state",
        "min": -60,
        "max": 6,
        "step": 0.5,
        "unit_of_measurement": "dB",
        "mode": "slider",
        "availability": [
            {"topic": f"{base}/availability", "payload_available": "online",
             "payload_not_available": "offline"}
        ],
        "device": {"identifiers": [node], "name": "Stage", "manufacturer": "Slider Sync",
                   "model": "Board"},
    }  # fmt: skip
    assert set(config) <= HA_NUMBER_OPTIONS
    assert set(config["availability"][0]) <= HA_AVAILABILITY_KEYS
    assert set(config["device"]) <= HA_DEVICE_KEYS
    late = watchers(topic)  # retained: Home Assistant reads it whenever it starts
    assert [(json.loads(m.payload), m.retain) for m in late.at(topic)] == [(config, True)]

    fine_topic = f"{discovery}/number/{node}/fine/config"
    fine = json.loads((await watcher.wait_for(fine_topic, lambda m: bool(m.payload))).payload)
    assert "unit_of_measurement" not in fine  # no unit: left out (HA's default, None)
    assert fine["step"] == 0.001  # HA's smallest step; the slider keeps its own grid
    # The state HA reads is on the state topic, and "online" on the availability topic.
    await watcher.wait_for(f"{base}/master/state", "0")
    await watcher.wait_for(f"{base}/availability", "online")

    # Renamed or given another range: announced again. Removed: its config is cleared.
    master = Slider.objects.get(board=board, slug="master")
    master.name, master.max = "Main", 12
    services.save_slider(slider=master, requested_value=None)
    renamed = await watcher.wait_for(topic, lambda m: b'"Main"' in m.payload)
    assert json.loads(renamed.payload)["max"] == 12
    services.delete_slider(slider=Slider.objects.get(board=board, slug="fine"))
    await watcher.wait_for(fine_topic, "")  # an empty retained message: HA removes it


async def test_a_broker_restart_reconnects_and_republishes_state_and_discovery(
    make_board, connect_client, mqtt_server, watchers, tmp_path
):
    broker_process = Mosquitto(tmp_path).start()
    try:
        board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
        base = f"slidersync/{board.slug}"
        watcher = watchers("#", port=broker_process.port)
        broker = add_broker(board, "slidersync", url=broker_process.url, discovery=True)
        config = f"homeassistant/number/slidersync_{board.slug}/s1/config"
        await watcher.wait_for(f"{base}/s1/state", "50")
        await watcher.wait_for(config, lambda m: bool(m.payload))
        await watcher.wait_for(f"{base}/availability", "online")
        client = await connect_client(board.slug, server=mqtt_server)

        broker_process.stop()
        row = await wait_until(
            lambda: (b := broker_row(broker)).state == "failing" and b, 10, "state failing"
        )
        print(f"\nbroker down: the line says {row.last_error!r}")
        acks = []
        for value in (61, 62, 63):  # sets never wait for the broker
            sent = time.perf_counter()
            assert (await client.set("s1", value))["ok"] is True
            acks.append(time.perf_counter() - sent)
        print(f"sets with the broker down: acks in {', '.join(f'{a * 1000:.1f}' for a in acks)} ms")
        assert max(acks) < 1  # a correctness bound: nothing waits for the broker

        broker_process.start()  # the same port, and no retained messages: it kept nothing
        restarted = time.perf_counter()

        async def again(topic: str, payload: Any) -> Received:
            """The first message on `topic` since the restart that matches `payload`."""

            def matches(m: Received) -> bool:
                return m.at > restarted and (payload(m) if callable(payload) else m.text == payload)

            return await watcher.wait_for(topic, matches, timeout=40)

        await again(f"{base}/s1/state", "63")
        await again(config, lambda m: bool(m.payload))
        await again(f"{base}/availability", "online")
        print(f"republished {time.perf_counter() - restarted:.1f} s after the broker restarted")
        await wait_until(lambda: broker_row(broker).state == "ok", 5, "the state back to ok")
        assert "works again" in mqtt_server.log()
        late = watchers(f"{base}/#", port=broker_process.port)  # retained on the new broker
        assert (await late.wait_for(f"{base}/s1/state", "63")).retain is True
    finally:
        broker_process.stop()


async def test_availability_goes_offline_when_the_bridges_stop_or_are_killed(
    make_board, mqtt_server, prefix, watchers
):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    topic = f"{prefix}/{board.slug}/availability"
    watcher = watchers(f"{prefix}/#")
    add_broker(board, prefix)
    await watcher.wait_for(topic, "online")
    try:
        # The only process running bridges here. Stopped (SIGTERM), the bridges say goodbye.
        stopped = time.perf_counter()
        mqtt_server.stop()
        await watcher.wait_for(topic, lambda m: m.at > stopped and m.text == "offline")
        mqtt_server.start()
        await watcher.wait_for(topic, lambda m: m.at > stopped and m.text == "online")
        # SIGKILL: no goodbye; the broker publishes the connection's last will.
        killed = time.perf_counter()
        mqtt_server.kill()
        offline = await watcher.wait_for(
            topic, lambda m: m.at > killed and m.text == "offline", timeout=60
        )
        print(f"\navailability offline {offline.at - killed:.2f} s after the bridge was killed")
        late = watchers(topic)
        assert [(m.text, m.retain) for m in late.at(topic)] == [("offline", True)]
    finally:
        mqtt_server.start()  # for the tests after this one
    await watcher.wait_for(topic, lambda m: m.at > killed and m.text == "online")


async def test_an_mqtt_broker_added_in_the_admin_is_published_to_and_shows_its_state(
    make_board, mqtt_server, prefix, watchers, stable_content_types
):
    import aiohttp

    from sliders.models import MqttBroker
    from tests.support.accounts import PASSWORD, live_superuser
    from tests.support.http import AdminSession

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 64}])
    watcher = watchers(f"{prefix}/#")
    live_superuser("mqtt-admin", "mqtt@example.com")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = AdminSession(mqtt_server.url, http)
        await admin.login("mqtt-admin", PASSWORD)
        page = f"/admin/sliders/board/{board.pk}/change/"
        await admin.submit(
            page,
            "board_form",
            **{
                "mqtt_brokers-TOTAL_FORMS": "1",
                "mqtt_brokers-0-url": SHARED_BROKER,
                "mqtt_brokers-0-topic_prefix": prefix,
                "mqtt_brokers-0-rate": "30",
                "mqtt_brokers-0-discovery_prefix": "homeassistant",
                "mqtt_brokers-0-enabled": "on",
            },
        )
        await watcher.wait_for(f"{prefix}/{board.slug}/s1/state", "64")
        broker = await wait_until(
            lambda: MqttBroker.objects.filter(board=board, state="ok").first(), 5, "state ok"
        )
        assert broker.last_success_at is not None and not broker.discovery
        status, html = await admin.get(page)
        assert status == 200
        assert "Sending" in html  # the state, shown read-only
        assert 'name="mqtt_brokers-0-state"' not in html
