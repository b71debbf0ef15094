"""The bridges' settings and state: where a board's values are sent (OSC targets, MQTT brokers),
and how it goes.

Models of the `sliders` app (imported by sliders/models.py). A board's OSC listening port and a
slider's OSC address are fields of `Board` and `Slider` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class TargetState(models.Model):
    """How a bridge target (something the bridges send to) is doing: shown read-only in the admin.

    Written only by the bridge runner (sliders/bridges/outbox.py, through
    `services.record_target_state`): when the state changes, and while it is "ok" at most every
    few seconds (`last_success_at`). Each kind of target (OSC, MQTT, ...) inherits it.
    """

    class State(models.TextChoices):
        UNKNOWN = "unknown", "Not tried yet"
        OK = "ok", "Sending"
        FAILING = "failing", "Failing (retrying)"

    state = models.CharField(
        max_length=16, choices=State.choices, default=State.UNKNOWN, editable=False
    )
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, help_text="When its settings last changed.")

    class Meta:
        abstract = True


class OscTarget(TargetState):
    """Where the bridges send a board's values over OSC (UDP): a desk, a console, a synth.

    Each slider goes to its OSC address (`Slider.osc_path`) as one float, raw or 0..1
    (`Slider.osc_normalized`); at most `rate` flushes a second, the latest value of each slider
    in each. A board may have several targets. See docs/integrations.md.
    """

    board = models.ForeignKey("sliders.Board", on_delete=models.CASCADE, related_name="osc_targets")
    host = models.CharField(max_length=253, help_text="A host name or IP address.")
    port = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(65535)], help_text="Its UDP port."
    )
    rate = models.FloatField(
        "rate (Hz)",
        default=30.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
        help_text="At most this many sends a second; the last value is always sent.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name = "OSC target"
        constraints = [
            models.UniqueConstraint(
                fields=["board", "host", "port"],
                name="osc_target_unique_per_board",
                violation_error_message="This board already sends to this host and port.",
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="osc_target_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def key(self) -> str:
        """The target's name in the bridges: `osc:<id>` (notices, metrics, logs)."""
        return f"osc:{self.pk}"


# --- MQTT ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerUrl:
    """A broker URL taken apart: `mqtt://user:password@host:1883` (`mqtts://` for TLS)."""

    tls: bool
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def label(self) -> str:
        """How people know it, without the credentials: "host:port"."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerUrl:
    """`url` taken apart (see `BrokerUrl`); the port defaults to 1883 (8883 with mqtts).

    Raises ValidationError when it is not an mqtt:// or mqtts:// URL with a host (and nothing
    after it but an optional "/"), or its port is not 1..65535.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValidationError("Use mqtt://host:port, or mqtts://host:port for TLS.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as error:  # a port that is not a number or out of range
        raise ValidationError(f"Not a usable port: {error}.") from None
    if not host:
        raise ValidationError("The URL needs a host: mqtt://host:1883.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationError("Only mqtt://user:password@host:port: no path, query or fragment.")
    tls = parts.scheme == "mqtts"
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return BrokerUrl(tls, host, port or (8883 if tls else 1883), username, password)


def validate_broker_url(url: str) -> None:
    parse_broker_url(url)


def validate_topic_prefix(prefix: str) -> None:
    """An MQTT topic prefix: levels separated by "/", none empty, no wildcards ("+", "#")."""
    if not prefix or any(level == "" for level in prefix.split("/")):
        raise ValidationError('Levels separated by "/", none of them empty: "slidersync".')
    if any(character in prefix for character in "+#\x00"):
        raise ValidationError('A topic prefix cannot hold "+" or "#" (MQTT wildcards).')


class MqttBroker(TargetState):
    """An MQTT broker a board's sliders are published to, and set from (docs/integrations.md).

    Each slider's value goes retained to `<topic_prefix>/<board>/<slider>/state`; a message to
    `.../set` sets it. With `discovery`, each slider is announced to Home Assistant as a
    `number` entity under `discovery_prefix`. At most `rate` flushes a second. The password,
    if any, is part of `url`, stored as given.
    """

    board = models.ForeignKey(
        "sliders.Board", on_delete=models.CASCADE, related_name="mqtt_brokers"
    )
    url = models.CharField(
        "broker URL",
        max_length=500,
        validators=[validate_broker_url],
        help_text="mqtt://user:password@host:1883, or mqtts://… for TLS (port 8883 by default).",
    )
    topic_prefix = models.CharField(
        max_length=200,
        default="slidersync",
        validators=[validate_topic_prefix],
        help_text="Topics are <prefix>/<board>/<slider>/state and …/set.",
    )
    rate = models.FloatField(
        "rate (Hz)",
        default=30.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
        help_text="At most this many sends a second; the last value is always sent.",
    )
    discovery = models.BooleanField(
        "Home Assistant discovery",
        default=False,
        help_text="Announce each slider to Home Assistant as a number entity.",
    )
    discovery_prefix = models.CharField(
        max_length=200,
        default="homeassistant",
        validators=[validate_topic_prefix],
        help_text="Home Assistant's discovery prefix (its default: homeassistant).",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name = "MQTT broker"
        constraints = [
            models.UniqueConstraint(
                fields=["board", "url", "topic_prefix"],
                name="mqtt_broker_unique_per_board",
                violation_error_message="This board already publishes there with this prefix.",
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="mqtt_broker_rate_positive"),
        ]

    def __str__(self) -> str:
        try:
            return parse_broker_url(self.url).label
        except ValidationError:
            return "(invalid URL)"

    @property
    def key(self) -> str:
        """The broker's name in the bridges: `mqtt:<id>` (metrics, logs)."""
        return f"mqtt:{self.pk}"
