"""What the MQTT bridge publishes and takes, without any I/O: topics and payloads.

Topics (`Connection`), the state payload (`format_value`), a `set` payload read
(`parse_value`), and Home Assistant's discovery config of a slider (`discovery_config`, checked
against HA's documented MQTT `number` options). sliders/bridges/mqtt.py does the sending.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

ONLINE, OFFLINE = "online", "offline"
HA_MIN_STEP = 0.001  # Home Assistant refuses a number entity whose step is smaller
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Connection:
    """What a broker connection depends on: a change makes a new one."""

    pk: int
    board: str
    url: str
    prefix: str

    @property
    def availability_topic(self) -> str:
        return f"{self.prefix}/{self.board}/availability"

    def topic(self, slider: str, leaf: str) -> str:
        """`<prefix>/<board>/<slider>/<leaf>` (leaf "state" or "set")."""
        return f"{self.prefix}/{self.board}/{slider}/{leaf}"

    @property
    def node_id(self) -> str:
        """The discovery topics' node id: prefix and board, in `[a-zA-Z0-9_-]` as HA wants."""
        return re.sub(r"[^a-zA-Z0-9_-]", "_", f"{self.prefix}_{self.board}")


@dataclass(frozen=True)
class SliderInfo:
    slug: str
    name: str
    minimum: float
    maximum: float
    step: float
    unit: str


@dataclass(frozen=True)
class Announce:
    """What the sliders look like to MQTT and Home Assistant; a change is announced again."""

    board_name: str
    sliders: tuple[SliderInfo, ...]
    discovery: bool
    discovery_prefix: str


def format_value(value: float) -> str:
    """A stored value as a state payload: "42" for whole numbers, else Python's shortest repr."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def parse_value(payload: Any) -> float | None:
    """The number a `set` payload holds (text such as "42", " -1.5", "1e3"), or None."""
    if isinstance(payload, bytes | bytearray):
        try:
            payload = payload.decode()
        except UnicodeDecodeError:
            return None
    if not isinstance(payload, str) or not NUMBER.fullmatch(text := payload.strip()):
        return None
    value = float(text)  # the pattern admits no "nan" or "inf", but "1e999" is infinite
    return value if math.isfinite(value) else None


def shown(payload: Any) -> str:
    """A payload as a log line shows it: its first 40 characters or bytes, escaped."""
    return repr(payload[:40] if isinstance(payload, bytes | bytearray | str) else payload)


def discovery_config(
    connection: Connection, announce: Announce, slider: SliderInfo
) -> dict[str, Any]:
    """The retained config that makes `slider` a Home Assistant MQTT `number` entity.

    Every key is one of the MQTT number's documented options
    (https://www.home-assistant.io/integrations/number.mqtt/, "Configuration Variables"):
    `name`, `unique_id` (required for `device`), `command_topic` (required), `state_topic`,
    `min`, `max`, `step` (at least 0.001 there: a finer step is sent as 0.001, and the stored
    value stays on the slider's own grid), `unit_of_measurement` (only when the slider has a
    unit), `mode` "slider", `availability` (a list of {topic, payload_available,
    payload_not_available}) and `device` ({identifiers, name, manufacturer, model}: one
    device per board and topic prefix). Published on `config_topic`, whose format is HA's
    `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`
    (https://www.home-assistant.io/integrations/mqtt/#discovery-topic).
    """
    config: dict[str, Any] = {
        "name": slider.name,
        "unique_id": f"{connection.node_id}_{slider.slug}",
        "command_topic": connection.topic(slider.slug, "set"),
        "state_topic": connection.topic(slider.slug, "state"),
        "min": slider.minimum,
        "max": slider.maximum,
        "step": max(slider.step, HA_MIN_STEP),
        "mode": "slider",
        "availability": [
            {
                "topic": connection.availability_topic,
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            }
        ],
        "device": {
            "identifiers": [connection.node_id],
            "name": announce.board_name,
            "manufacturer": "Slider Sync",
            "model": "Board",
        },
    }
    if slider.unit:
        config["unit_of_measurement"] = slider.unit
    return config


def config_topic(connection: Connection, discovery_prefix: str, slider: str) -> str:
    return f"{discovery_prefix}/number/{connection.node_id}/{slider}/config"
