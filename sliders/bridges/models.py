"""The bridges' settings and state: where a board's values are sent (OSC targets), how it goes.

Models of the `sliders` app (imported by sliders/models.py). A board's OSC listening port and a
slider's OSC address are fields of `Board` and `Slider` there.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class TargetState(models.Model):
    """How a bridge target (something the bridges send to) is doing: shown read-only in the admin.

    Written only by the bridge runner (sliders/bridges/outbox.py, through
    `services.record_target_state`): when the state changes, and while it is "ok" at most every
    few seconds (`last_success_at`). Each kind of target (OSC, ...) inherits it.
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
