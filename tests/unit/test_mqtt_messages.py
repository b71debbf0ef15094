"""What the MQTT bridge publishes and takes (sliders/bridges/mqtt_messages.py), and the broker
settings it is given (sliders/bridges/models.py): pure functions, no broker."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from sliders.bridges.models import BrokerUrl, parse_broker_url, validate_topic_prefix
from sliders.bridges.mqtt_messages import Connection, format_value, parse_value


@pytest.mark.parametrize(
    ("payload", "value"),
    [(b"42", 42.0), (b" -12.5\n", -12.5), (b"1e3", 1000.0), (b".5", 0.5), (b"+3.", 3.0),
     ("7", 7.0)],
)  # fmt: skip
def test_a_set_payload_holding_one_number_is_read(payload: object, value: float) -> None:
    assert parse_value(payload) == value


@pytest.mark.parametrize(
    "payload",
    [b"", b"  ", b"loud", b"NaN", b"nan", b"inf", b"-Infinity", b"1e999", b"1,5", b"0x10",
     b"1_0", b"4 2", b'{"value": 5}', b"true", b"\xff\xfe", b"5" * 400, None, 5],
)  # fmt: skip
def test_a_set_payload_that_is_not_one_finite_number_is_refused(payload: object) -> None:
    assert parse_value(payload) is None


def test_state_payloads_are_short_and_read_back_exactly() -> None:
    assert [format_value(v) for v in (42.0, -12.5, 0.1, -0.0, 1e20)] == [
        "42", "-12.5", "0.1", "0", "1e+20"
    ]  # fmt: skip
    assert format_value(1e300) == "1e+300"
    assert all(parse_value(format_value(v)) == v for v in (0.1, 1 / 3, -60.0, 1e300))


def test_topics_and_the_discovery_node_id() -> None:
    connection = Connection(3, "main", "mqtt://h", "site/slidersync")
    assert connection.topic("s1", "state") == "site/slidersync/main/s1/state"
    assert connection.availability_topic == "site/slidersync/main/availability"
    assert connection.node_id == "site_slidersync_main"  # only [a-zA-Z0-9_-], as HA asks


def test_broker_urls_are_taken_apart_with_the_usual_ports() -> None:
    assert parse_broker_url("mqtt://broker.lan") == BrokerUrl(False, "broker.lan", 1883, None, None)
    assert parse_broker_url("mqtts://u:p%40ss@10.0.0.5:9883/") == BrokerUrl(
        True, "10.0.0.5", 9883, "u", "p@ss"
    )
    assert parse_broker_url("mqtts://h").port == 8883
    assert parse_broker_url("mqtt://[::1]:1884").label == "[::1]:1884"
    assert parse_broker_url("mqtt://u:secret@h:1883").label == "h:1883"  # no credentials


@pytest.mark.parametrize(
    "url",
    ["http://h", "h:1883", "mqtt://", "mqtt://:1883", "mqtt://h:0x", "mqtt://h:70000",
     "mqtt://h/topic", "mqtt://h?x=1"],
)  # fmt: skip
def test_a_broker_url_that_is_not_one_is_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        parse_broker_url(url)


@pytest.mark.parametrize("prefix", ["", "/slidersync", "slidersync/", "a//b", "a/+/b", "a/#"])
def test_a_topic_prefix_with_empty_levels_or_wildcards_is_refused(prefix: str) -> None:
    with pytest.raises(ValidationError):
        validate_topic_prefix(prefix)
    validate_topic_prefix("site/slidersync")  # levels are fine
