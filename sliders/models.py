"""Boards and their sliders.

A slider's `value` and `version` are written only by `sliders.services` (and `version` lifted by
`sliders.keys` when a slider takes a key, see `RetiredSlider`); the database constraints below are
the last line of defence for invariant 1 (finite, in range).

Longer than 400 lines because Django takes an app's models from one module, and a board's and a
slider's fields, constraints and rules read best together; the bridges' own models are in
sliders/bridges/models.py (imported at the end).
"""

from __future__ import annotations

import hashlib
import secrets
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Abs, Lower
from django.urls import reverse

from sliders.bridges.osc_patterns import plain_osc_address

if TYPE_CHECKING:
    # The project's user model is Django's own (AUTH_USER_MODEL unset): with permissions and groups.
    from django.contrib.auth.models import AbstractUser, AnonymousUser


MAX_PRECISION = 6  # decimal places a slider's value may be shown with
# How far the database lets a step pass the range (max - min), relative to |min| + |max|: the
# database subtracts in binary floating point (1.1 - 1.0 = 0.10000000000000009), while the
# services decide in decimal (sliders/services/structure.py, `check_range`); this slack only
# keeps the constraint from refusing a step the services accept.
STEP_SLACK = 1e-12


def decimals_of(number: float) -> int:
    """Decimal places in the shortest text of `number` (0.25 -> 2, 100 -> 0, 1e-07 -> 7)."""
    exponent = Decimal(repr(float(number))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def to_fixed(number: float, decimals: int) -> str:
    """JavaScript's `Number.prototype.toFixed(decimals)` for a finite `number`.

    The float's exact value rounded to `decimals` places, ties away from zero; numbers of
    1e21 and more in the shortest form that reads back as the same float ("1e+21").
    """
    if abs(number) >= 1e21:
        return repr(float(number))
    if number == 0:
        number = 0.0  # -0 is written "0", as JavaScript does
    with localcontext(prec=60):
        exact = Decimal(float(number)).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)
    return f"{exact:f}"


class Board(models.Model):
    class Access(models.TextChoices):
        ANYONE = "anyone", "Anyone"
        EDITORS = "editors", "Signed-in editors only"
        NOBODY = "nobody", "Nobody (read-only from the page)"

    class Visibility(models.TextChoices):
        ANYONE = "anyone", "Anyone with the link"
        SIGNED_IN = "signed_in", "Signed-in users only"

    slug = models.SlugField(unique=True, help_text="Used in the address: /b/<slug>/")
    name = models.CharField(max_length=120)
    view_access = models.CharField(
        max_length=16,
        choices=Visibility.choices,
        default=Visibility.ANYONE,
        help_text="Who may open the board and watch it.",
    )
    edit_access = models.CharField(
        max_length=16,
        choices=Access.choices,
        default=Access.ANYONE,
        help_text=(
            "Who may move the sliders from the page. Editors are signed-in users with the "
            "'Can change slider' permission or members of the editors group."
        ),
    )
    editors_group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Members of this group may edit this board when access is 'editors'.",
    )
    position = models.PositiveIntegerField(default=0)
    osc_port = models.PositiveIntegerField(
        "OSC listening port",
        null=True,
        blank=True,
        unique=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text=(
            "A UDP port where OSC messages to this board's slider addresses set the sliders "
            "(as an operator: anyone who can reach the port can move them). Empty: none."
        ),
    )

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(edit_access__in=["anyone", "editors", "nobody"]),
                name="board_edit_access_valid",
            ),
            models.CheckConstraint(
                condition=Q(view_access__in=["anyone", "signed_in"]),
                name="board_view_access_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("sliders:board", kwargs={"slug": self.slug})

    def user_can_view(
        self, user: AbstractUser | AnonymousUser | None, share: ShareLink | None = None
    ) -> bool:
        if share is not None and share.opens(self):
            return True
        if self.view_access == self.Visibility.ANYONE:
            return True
        return user is not None and user.is_authenticated and user.is_active

    def user_can_edit(
        self, user: AbstractUser | AnonymousUser | None, share: ShareLink | None = None
    ) -> bool:
        """Whether `user` may move the sliders.

        An editor link lets anyone edit. A viewer link makes the board read-only for anonymous
        visitors (a wall screen); it takes nothing away from a signed-in user.
        """
        if share is not None and share.opens(self):
            if share.kind == ShareLink.Kind.EDIT:
                return True
            if user is None or not user.is_authenticated:
                return False
        if not self.user_can_view(user, share):
            return False
        if self.edit_access == self.Access.ANYONE:
            return True
        if self.edit_access == self.Access.NOBODY or user is None:
            return False
        if not user.is_authenticated or not user.is_active:
            return False
        if user.has_perm("sliders.change_slider"):
            return True
        return (
            self.editors_group_id is not None
            and user.groups.filter(pk=self.editors_group_id).exists()
        )


class Slider(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="sliders")
    slug = models.SlugField("id", help_text="The slider's id on the wire; unique within its board.")
    name = models.CharField(max_length=120)
    min = models.FloatField(default=0)
    max = models.FloatField(default=100)
    step = models.FloatField(
        default=1,
        help_text=(
            "Values snap to min + a whole number of steps. At most max - min. When the range is "
            "not a whole number of steps, max itself cannot be reached: the highest value is "
            "the last step below it (0 to 10 in steps of 3: 0, 3, 6, 9)."
        ),
    )
    value = models.FloatField(default=0)
    version = models.PositiveBigIntegerField(default=0, editable=False)
    position = models.PositiveIntegerField(default=0)
    unit = models.CharField(
        max_length=16, blank=True, help_text='Shown after the value, e.g. "dB" or "%".'
    )
    precision = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_PRECISION)],
        help_text="Decimal places shown (0 to 6). Empty: as many as the step needs.",
    )
    osc_address = models.CharField(
        "OSC address",
        max_length=200,
        blank=True,
        validators=[plain_osc_address],
        help_text="Where OSC sends and takes this slider's value. Empty: /<board>/<slider>.",
    )
    osc_normalized = models.BooleanField(
        "OSC 0..1",
        default=False,
        help_text="OSC sends and takes the value scaled to 0..1 (min..max), not the raw value.",
    )

    class Meta:
        ordering = ["board", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["board", "slug"],
                name="slider_slug_unique_per_board",
                violation_error_message="A slider with this id already exists on this board.",
            ),
            models.CheckConstraint(
                condition=Q(min__lt=F("max")),
                name="slider_min_below_max",
                violation_error_message="Max must be greater than min.",
            ),
            models.CheckConstraint(
                condition=Q(step__gt=0),
                name="slider_step_positive",
                violation_error_message="Step must be greater than zero.",
            ),
            models.CheckConstraint(
                condition=Q(step__lte=F("max") - F("min") + (Abs("min") + Abs("max")) * STEP_SLACK),
                name="slider_step_within_range",
                violation_error_message="The step must not be larger than the range (max - min).",
            ),
            models.CheckConstraint(
                condition=Q(value__gte=F("min"), value__lte=F("max")),
                name="slider_value_in_range",
                violation_error_message="The value must lie between min and max.",
            ),
            models.CheckConstraint(
                condition=Q(precision__isnull=True) | Q(precision__lte=MAX_PRECISION),
                name="slider_precision_at_most_6",
                violation_error_message="Show at most 6 decimal places.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.board.slug}/{self.slug}"

    @property
    def osc_path(self) -> str:
        """The slider's OSC address: `osc_address`, or `/<board>/<slider>` when it is empty."""
        return self.osc_address or f"/{self.board.slug}/{self.slug}"

    @property
    def display_decimals(self) -> int:
        """`precision`, or as many decimals as the step grid has (board/format.js does the same)."""
        if self.precision is not None:
            return self.precision
        return min(MAX_PRECISION, max(decimals_of(self.step), decimals_of(self.min)))

    def format_value(self, value: float) -> str:
        """The value as people read it: "-12.5 dB", "75 %" (formatValue in board/format.js).

        Rounded as JavaScript's `toFixed` rounds, so the first paint shows what the page's
        script writes at the next update: a tie goes away from zero (2.5 -> "3"; Python's
        format would give "2"), and from 1e21 on the number is written as `String(x)` would.
        """
        text = to_fixed(value, self.display_decimals)
        if text.startswith("-") and float(text) == 0:
            text = text[1:]  # no "-0.0"
        return f"{text} {self.unit}" if self.unit else text


class RetiredSlider(models.Model):
    """The highest version a slider key reached while a slider held it.

    A slider key is (board slug, slider slug): what clients and server processes know a slider
    by. They drop an update whose version is not above the one they hold for the key, so the
    versions under a key must never go back (invariant 9): a slider that takes a key (created,
    renamed or moved into it, or its board renamed onto a slug) gets a version above this one,
    or it would go unheard until its version passed its predecessor's. Written (as a maximum)
    whenever a slider stops holding a key: deleted by any path, renamed or moved, or its board
    renamed. A row stays when the key is taken again; it only grows. See sliders/keys.py.
    """

    board = models.SlugField(help_text="The board's slug.")
    slider = models.SlugField(help_text="The slider's slug (its id on the wire).")
    version = models.PositiveBigIntegerField(help_text="The highest version the key reached.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["board", "slider"], name="retired_slider_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.board}/{self.slider} (version {self.version})"


def _new_share_token() -> str:
    """A share link's secret: 24 random bytes, 32 characters of URL-safe base64."""
    return secrets.token_urlsafe(24)


class ShareLink(models.Model):
    """A link that opens a board without an account: as a viewer (read-only) or an editor.

    Whoever opens it gets that role on that board in their browser session, until the link is
    revoked. A viewer link makes the board read-only in that browser even where anyone may edit
    (a wall screen should not move sliders by accident).
    """

    class Kind(models.TextChoices):
        VIEW = "view", "Viewer (read-only)"
        EDIT = "edit", "Editor"

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="share_links")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.VIEW)
    label = models.CharField(
        max_length=100, blank=True, help_text="Who it is for, e.g. 'lobby screen'."
    )
    token = models.CharField(max_length=64, unique=True, editable=False, default=_new_share_token)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked = models.BooleanField(default=False, help_text="A revoked link opens nothing.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["board", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["view", "edit"]), name="share_link_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} link to {self.board}" + (
            f" ({self.label})" if self.label else ""
        )

    def get_absolute_url(self) -> str:
        return reverse("sliders:share", kwargs={"token": self.token})

    def opens(self, board: Board) -> bool:
        return not self.revoked and self.board_id == board.pk


class Preset(models.Model):
    """A board's values saved under a name (a scene), to recall all at once, maybe with a fade."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="presets")
    name = models.CharField(max_length=80)
    values = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            'Slider id to value, e.g. {"s1": 20, "s2": 75}; sliders left out keep theirs. '
            "Leave empty on a new preset to save the board's current values."
        ),
    )
    position = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["board", "position", "name"]
        constraints = [
            # "Start" and "start" are one preset. The services compare names more strictly
            # (services/presets.py, name_key): letters beyond ASCII that SQLite's lower() leaves
            # alone, and names that look the same but are spelled with combining accents.
            models.UniqueConstraint(
                Lower("name"),
                "board",
                name="preset_name_unique_per_board_ignoring_case",
                violation_error_message="This board already has a preset with this name.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.board.slug}/{self.name}"


class ApiToken(models.Model):
    """A secret that lets a script use the HTTP API as its user (see docs/api.md).

    Only a hash is stored: the token is shown once, when it is made in the admin. Issued and
    checked by sliders/services/tokens.py.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'lighting desk'.")
    prefix = models.CharField(max_length=12, editable=False, help_text="Its first characters.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False, help_text="A revoked token is refused.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def digest_of(token: str) -> str:
        """What is stored of `token`: its SHA-256, in hex."""
        return hashlib.sha256(token.encode()).hexdigest()


class AuditEntry(models.Model):
    """A change of a slider's value made by someone: who, from, to, when and where.

    A drag sends many values; the entries of one client on one slider within a few seconds are
    merged into one (from the first value to the last), so the trail reads like what people did.
    `username` is who made it as the trail names them (sliders/services/audit.py, `who`): the
    user's name, "share link: <label>", "command line (<login>@<machine>)", or "" (anonymous).
    """

    class Source(models.TextChoices):
        SOCKET = "socket", "Board page (socket)"
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Command line"
        PRESET = "preset", "Preset recall"
        API = "api", "HTTP API"
        OSC = "osc", "OSC"
        MQTT = "mqtt", "MQTT"

    board = models.SlugField()
    slider = models.SlugField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(
        max_length=150, blank=True, help_text="Kept if the user is deleted."
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    address = models.CharField(max_length=64, blank=True, help_text="The client's IP address.")
    client = models.CharField(
        max_length=64, blank=True, help_text="The connection or session the change came from."
    )
    from_value = models.FloatField()
    to_value = models.FloatField()
    from_version = models.PositiveBigIntegerField()
    to_version = models.PositiveBigIntegerField()
    changes = models.PositiveIntegerField(default=1, help_text="Sets merged into this entry.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()

    class Meta:
        ordering = ["-ended_at", "-id"]
        verbose_name = "audit trail entry"
        verbose_name_plural = "audit trail entries"
        indexes = [models.Index(fields=["board", "slider", "-id"], name="audit_latest_per_slider")]

    def __str__(self) -> str:
        who = self.username or "anonymous"
        return (
            f"{who} moved {self.board}/{self.slider} from {self.from_value:g} to {self.to_value:g}"
        )


# The bridges' models live with the bridges; Django finds them through this import.
from sliders.bridges.models import (  # noqa: E402
    MqttBroker,
    OscTarget,
    TargetState,
    Webhook,
    WebhookDelivery,
)

__all__ = [
    "ApiToken", "AuditEntry", "Board", "MqttBroker", "OscTarget", "Preset", "RetiredSlider",
    "ShareLink", "Slider", "TargetState",
]  # fmt: skip
__all__ += ["Webhook", "WebhookDelivery"]
