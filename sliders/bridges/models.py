"""The bridges' settings and state: where a board's values are sent (OSC targets, MQTT brokers,
webhooks), and how it goes (a target's state, a webhook's delivery log).

Models of the `sliders` app (imported by sliders/models.py). A board's OSC listening port and a
slider's OSC address are fields of `Board` and `Slider` there.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q


class TargetState(models.Model):
    """How a bridge target (something the bridges send to) is doing: shown read-only in the admin.

    Written only by the bridge runner (sliders/bridges/outbox.py, through
    `services.record_target_state`): when the state changes, and while it is "ok" at most every
    few seconds (`last_success_at`). Each kind of target (OSC, MQTT, webhooks) inherits it.
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


# --- Webhooks (sliders/bridges/webhooks.py) -------------------------------------------------------


def new_webhook_secret() -> str:
    """A fresh webhook secret: 64 hex digits (256 random bits)."""
    return secrets.token_hex(32)


class Webhook(TargetState):
    """Where the bridges POST a board's events as signed JSON: any service that takes a webhook.

    Each event it wants (`value_changed`, `preset_recalled`, `board_changed`) is one POST to
    `url`, its body signed with HMAC-SHA256 under `secret`; at most `rate` POSTs a second,
    a value superseded while waiting is not sent. Configured by staff in the admin; the
    last attempts are kept in `WebhookDelivery`. See docs/integrations.md.
    """

    board = models.ForeignKey("sliders.Board", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(
        "URL",
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Where the events are POSTed (http or https).",
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="Signs every body (X-SliderSync-Signature); the receiver checks it with this. "
        "Left empty, a new one is made when saved (shown here after saving).",
    )
    value_changed = models.BooleanField(
        "value changed", default=True, help_text="A slider's value changed."
    )
    preset_recalled = models.BooleanField(
        "preset recalled", default=True, help_text="A preset was recalled (at once or faded)."
    )
    board_changed = models.BooleanField(
        "board changed",
        default=True,
        help_text="The board, a slider, a preset or a share link was saved or deleted.",
    )
    rate = models.FloatField(
        "rate (Hz)",
        default=30.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
        help_text="At most this many POSTs a second; the last value is always sent.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name = "webhook"
        constraints = [
            models.CheckConstraint(condition=Q(rate__gt=0), name="webhook_rate_positive"),
        ]

    def __str__(self) -> str:
        return self.url

    @property
    def key(self) -> str:
        """The webhook's name in the bridges: `webhook:<id>` (metrics, logs)."""
        return f"webhook:{self.pk}"

    @property
    def events(self) -> frozenset[str]:
        """The events it wants, by name: "value_changed", "preset_recalled", "board_changed"."""
        return frozenset(name for name in WEBHOOK_EVENTS if getattr(self, name))


WEBHOOK_EVENTS = ("value_changed", "preset_recalled", "board_changed")  # Webhook's fields too


class WebhookDelivery(models.Model):
    """One attempt to deliver an event to a webhook: the delivery log, read-only in the admin.

    Written only by the bridge runner, in batches off the send path, and pruned to the newest
    `WEBHOOK_LOG_SIZE` per webhook (`services.record_webhook_deliveries`). All attempts of one
    event share its `delivery` id (the X-SliderSync-Delivery header). A value whose next
    attempt was not made because a newer value replaced it gets a row of its own for that
    attempt ("superseded": no status, no duration).
    """

    class Result(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        RETRYING = "retrying", "Failed, will retry"
        GAVE_UP = "gave_up", "Failed, gave up"
        SUPERSEDED = "superseded", "Not tried again: a newer value replaced it"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    at = models.DateTimeField(help_text="When the attempt started.")
    delivery = models.CharField(max_length=36, help_text="The event's delivery id.")
    event = models.CharField(max_length=32)
    attempt = models.PositiveSmallIntegerField(help_text="1 for the first try.")
    status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The HTTP status code; empty if there was no answer."
    )
    error = models.TextField(blank=True, help_text="Why it failed (no answer, or the status).")
    duration_ms = models.FloatField("duration (ms)")
    result = models.CharField(max_length=16, choices=Result.choices)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        indexes = [models.Index(fields=["webhook", "-id"], name="webhook_delivery_newest")]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery} #{self.attempt}"
