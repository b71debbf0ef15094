"""A slider's value: checking and normalising a value, and setting one or several sliders.

`write` is the one statement that writes a stored slider's value (with its version bump and
audit entry); see the package's docstring for who calls it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from django.db import transaction
from django.utils import timezone

from sliders import notices
from sliders.models import Board, Slider
from sliders.services import access, audit, statements
from sliders.services.access import Actor
from sliders.services.errors import Refusal

SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,50}")
# What the admin may change about a slider besides its value (a change sends `board:state`,
# and the bridges reload their settings).
STRUCTURE_FIELDS = (
    "board_id", "slug", "name", "min", "max", "step", "position", "unit", "precision",
    "osc_address", "osc_normalized",
)  # fmt: skip


@dataclass(frozen=True)
class SliderChange:
    """The stored state of a slider after a set; `changed` is False when nothing was written.

    A written change also says who made it and how, for the bridges (sliders.notices): `source`
    (an `AuditEntry.Source` value), `actor` (the user's name, "" if anonymous), `at` (when it
    was written, ISO 8601 in UTC) and `bridge` (the bridge target it came in from, which is
    not sent it back; "" if none, or if it was stored other than sent: clamped or snapped).
    """

    board: str
    id: str
    value: float
    version: int
    changed: bool
    source: str = ""
    actor: str = ""
    at: str = ""
    bridge: str = ""

    def as_update(self) -> dict[str, Any]:
        """The `slider:update` payload: `{"id", "value", "version"}`."""
        return {"id": self.id, "value": self.value, "version": self.version}

    def as_ack(self) -> dict[str, Any]:
        """The answer to an accepted set: `{"ok": true, "id", "value", "version"}` (socket, API)."""
        return {"ok": True, **self.as_update()}


def finite_float(value: object) -> float:
    """`value` as a float, if it can be a slider value: an int or float (not a bool), finite.

    Raises Refusal("invalid_value") saying what it is instead: not a number, too large
    for a float (an int), or not finite.
    """
    # bool is an int in Python, but `true` is not a slider value.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refusal("invalid_value", "The value must be a number.")
    try:
        number = float(value)
    except OverflowError:
        raise Refusal("invalid_value", "The value is too large.") from None
    if not math.isfinite(number):
        raise Refusal("invalid_value", "The value must be a finite number.")
    return number


def is_finite_number(value: object) -> bool:
    """Whether `value` can be a slider value (see `finite_float`)."""
    try:
        finite_float(value)
    except Refusal:
        return False
    return True


def normalize_value(value: object, *, minimum: float, maximum: float, step: float) -> float:
    """Validate `value` and return it clamped to [minimum, maximum] and snapped to the step grid.

    The grid is `minimum + k * step`; it is computed in decimal so that 0.1 steps give 0.3, not
    0.30000000000000004. Raises Refusal("invalid_value") for anything but a finite number.
    """
    number = min(max(finite_float(value), minimum), maximum)
    # Decimal throughout: floats lose the grid on wide ranges and overflow on tiny steps. The
    # step count only needs to be near; the grid point itself is computed exactly (any sum of
    # doubles fits in 1,100 digits, and Decimal only spends digits a result actually has).
    low, high, increment = Decimal(repr(minimum)), Decimal(repr(maximum)), Decimal(repr(step))
    with localcontext(prec=60):
        steps = ((Decimal(repr(number)) - low) / increment).to_integral_value(ROUND_HALF_UP)
    with localcontext(prec=1200):
        snapped = low + steps * increment
        if snapped > high:  # past the end: take the last grid point in range, counted exactly
            last = ((high - low) / increment).to_integral_value(ROUND_FLOOR)
            snapped = low + last * increment
    # Rounding to the nearest float cannot leave [minimum, maximum]: both ends are floats.
    return float(snapped)


def check_base_version(base_version: object) -> int:
    """Return `base_version` (a slider version a change is based on) if it is one.

    Raises Refusal("bad_request") unless it is an int (not a bool) >= 0.
    """
    if isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0:
        raise Refusal("bad_request", "'base_version' must be a whole number, 0 or more.")
    return base_version


def lateness(made_at: object, *, arrived: float) -> float:
    """How late a live set made at `made_at` arrived at `arrived`, in seconds (may be < 0).

    `made_at`: when the person made the change, in ms since the Unix epoch on the server's
    clock (the page estimates it from `board:state`'s `server_time`); `arrived`: seconds since
    the epoch. The realtime server compares it with the connection's usual lateness (a set
    held up in the network is held to its `base_version`). Raises Refusal("bad_request")
    unless `made_at` is a finite number.
    """
    if not is_finite_number(made_at):
        raise Refusal("bad_request", "'made_at' must be a time in milliseconds.")
    return arrived - float(made_at) / 1000  # type: ignore[arg-type]


def set_slider_value(
    *,
    board: Board | str,
    slider_id: object,
    value: object,
    actor: Actor | None = None,
    sender: str | None = None,
    base_version: object = None,
    if_match: Collection[int] | None = None,
) -> SliderChange:
    """Set one slider's value on behalf of `actor`, the way every client does.

    The accepted change is broadcast as `slider:update` to the board after commit, skipping
    `sender` (the change's sender, as in sliders.notices: the Socket.IO sid of the connection
    that sent it, which gets an ack instead, or a fade's id). A value equal to the stored one
    returns the current version and broadcasts nothing, whatever the conditions below.

    Conditions, checked under the row lock, refused with Refusal("conflict") whose details
    are the stored `{"id", "value", "version"}`:
    - `base_version` (a socket's `slider:set`): the version the sender based the change on (a
      change made while cut off, or a re-sent set). Refused if a client other than
      `actor.client` changed the slider since, or if the audit trail cannot tell (see
      `audit.changed_by_others`). Raises `bad_request` unless it is an int >= 0.
    - `if_match` (HTTP `If-Match`): the stored version must be one of these.
    """
    if base_version is not None:
        base_version = check_base_version(base_version)
    if not isinstance(slider_id, str) or not slider_id:
        raise Refusal("bad_request", "'id' must be a slider id (a non-empty string).")
    if not SLUG_PATTERN.fullmatch(slider_id):
        # Not a slug, so no slider has it; and a NUL byte must never reach PostgreSQL.
        raise Refusal("unknown_slider", f"There is no slider '{slider_id[:100]!r}' here.")
    board_slug = access.board_slug(board)

    with transaction.atomic():
        slider = statements.slider_for_change(board_slug, slider_id)
        if slider is None:
            raise Refusal("unknown_slider", f"There is no slider '{slider_id[:100]}' here.")
        actor = actor or Actor()
        access.require_edit(slider.board, actor)
        new_value = normalize_value(value, minimum=slider.min, maximum=slider.max, step=slider.step)
        if new_value == slider.value:
            # Already there: a re-sent set whose ack was lost, or nothing to do.
            return change_of(slider, changed=False)
        if (if_match is not None and slider.version not in if_match) or (
            base_version is not None
            and base_version != slider.version
            and audit.changed_by_others(slider, since=base_version, client=actor.client)
        ):
            raise Refusal(
                "conflict",
                f"Someone else changed '{slider.name}' meanwhile; it is now at {slider.value:g}.",
                change_of(slider, changed=False).as_update(),
            )
        if actor.bridge and new_value != finite_float(value):
            # Stored other than sent (clamped, snapped): the bridge target it came from must be
            # told the value it now has, so the change is not marked as coming from it.
            actor = replace(actor, bridge="")
        change = write(slider, stored=slider, new_value=new_value, actor=actor)

    return broadcast_after_commit(change, sender)


def set_slider_values(
    *,
    board: Board | str,
    values: Mapping[str, object],
    actor: Actor | None = None,
    sender: str | None = None,
    expected_versions: Mapping[str, int] | None = None,
) -> list[SliderChange]:
    """Set several sliders of one board in one transaction (a preset, a frame of a fade).

    Each changed slider's version grows by one, and open pages get all the changes in one
    message, so nobody sees half of them. Ids the board does not have are ignored; one invalid
    value refuses the whole set. With `expected_versions` (a fade's next frame), a slider someone
    else changed since refuses the whole set with `conflict`: their value stays.
    """
    actor = actor or Actor()
    with transaction.atomic():
        board_row = access.board_row(board)
        access.require_edit(board_row, actor)
        ids = [key for key in values if isinstance(key, str)]
        sliders = (
            Slider.objects.select_for_update(of=("self",))
            .select_related("board")
            .filter(board=board_row, slug__in=ids)
            .order_by("pk")  # one locking order for every writer
        )
        changes = []
        for slider in sliders:
            if expected_versions is not None and slider.version != expected_versions.get(
                slider.slug, slider.version
            ):
                raise Refusal("conflict", "Someone else moved a slider meanwhile.")
            new_value = normalize_value(
                values[slider.slug], minimum=slider.min, maximum=slider.max, step=slider.step
            )
            if new_value != slider.value:
                changes.append(write(slider, stored=slider, new_value=new_value, actor=actor))
        if changes:
            transaction.on_commit(lambda: notices.sliders_updated(changes, sender=sender))
    return changes


def write(
    slider: Slider, *, stored: Slider, new_value: float, actor: Actor, structure: bool = False
) -> SliderChange:
    """The one UPDATE that changes a stored slider's value, and its audit entry.

    The version grows by one when the value changes. With `structure`, the admin's edits to
    `slider` (range, step, name, ...) are written in the same statement: a narrower range must
    never meet the old value. Must run inside the transaction that locked `stored`; the version
    check guards against a writer that slipped past a lock the database does not enforce.
    """
    old_value, old_version = stored.value, stored.version
    changed = new_value != old_value
    version = old_version + 1 if changed else old_version
    fields = {field: getattr(slider, field) for field in STRUCTURE_FIELDS} if structure else {}
    if structure:
        written = Slider.objects.filter(pk=stored.pk, version=old_version).update(
            value=new_value, version=version, **fields
        )
    else:  # every set: the statement written once (services.statements)
        written = statements.write_value(
            stored.pk, old_version=old_version, value=new_value, version=version
        )
    if written != 1:
        raise RuntimeError(f"Slider {stored.pk} changed under a held lock.")
    slider.value, slider.version = new_value, version
    change = change_of(slider, changed=changed, actor=actor)
    if changed:
        audit.record(change, actor, old_value=old_value, old_version=old_version)
    return change


def change_of(slider: Slider, *, changed: bool, actor: Actor | None = None) -> SliderChange:
    """`slider`'s state as a SliderChange (its board must be loaded or loadable), made now by
    `actor` if given."""
    if actor is None:
        return SliderChange(slider.board.slug, slider.slug, slider.value, slider.version, changed)
    return SliderChange(
        slider.board.slug,
        slider.slug,
        slider.value,
        slider.version,
        changed,
        source=str(actor.source),
        actor=actor.name,
        at=timezone.now().isoformat(),
        bridge=actor.bridge,
    )


def broadcast_after_commit(change: SliderChange, sender: str | None) -> SliderChange:
    """Return `change`; if it changed a value, announce it after the transaction commits.

    The announcement (`slider:update`) skips `sender`, the socket that gets an ack instead.
    """
    if change.changed:
        transaction.on_commit(lambda: notices.slider_updated(change, sender=sender))
    return change
