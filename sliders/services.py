"""The only code that writes a slider's value.

`set_slider_value` serves every caller that moves a slider (socket, and later the HTTP API);
`save_slider` serves the admin, which may also change a slider's range or step. Both validate,
clamp, snap to the step grid, bump `version` by exactly one in the same transaction as the write,
and broadcast only after the transaction commits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from sliders import keys, notices, sharing
from sliders.models import AuditEntry, Board, Preset, ShareLink, Slider

SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,50}")
# What the admin may change about a slider besides its value (a change sends `board:state`).
STRUCTURE_FIELDS = (
    "board_id", "slug", "name", "min", "max", "step", "position", "unit", "precision",
)  # fmt: skip


class SliderError(Exception):
    """A refused change. `code` is the wire protocol's error code.

    `details` are extra fields for the refusal (a `conflict` carries the slider's stored
    `{"id", "value", "version"}`); the socket ack and the HTTP API both add them to the error.
    """

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


@dataclass(frozen=True)
class Actor:
    """Who makes a change and through what: for the permission check and the audit trail.

    The default is an anonymous change from the command line. `client` identifies where the
    change comes from: a page (the id it connects with, which survives its reconnects, else the
    socket's sid) or an API caller. Consecutive changes from one client are merged in the trail,
    and a set based on an older version conflicts only with changes of other clients.
    """

    user: Any = None
    source: str = AuditEntry.Source.COMMAND
    address: str = ""
    client: str = ""
    share_link: int | None = None  # the share link (its id) the change is made through
    # An operator (the admin, the command line): the board's edit access does not apply, as the
    # admin's own permissions (or shell access) already decided.
    operator: bool = False


@dataclass(frozen=True)
class SliderChange:
    """The stored state of a slider after a set; `changed` is False when nothing was written."""

    board: str
    id: str
    value: float
    version: int
    changed: bool

    def as_update(self) -> dict[str, Any]:
        return {"id": self.id, "value": self.value, "version": self.version}


# Characters no text of ours may hold (names, labels, units, lookups by name):
# - U+D800..U+DFFF, lone surrogates ("\\ud83c", half an emoji, as JSON.stringify writes it): not
#   encodable in UTF-8, so neither SQLite's driver nor PostgreSQL's can send them;
# - U+0000 (NUL): PostgreSQL refuses it in text, and it ends C strings;
# - the other C0 controls (tab and newline included), DEL and the C1 controls: our texts are
#   one-line labels, and these only serve to forge log lines or terminal output.
_UNSTORABLE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def unstorable_character(text: str) -> str | None:
    """Why `text` cannot be stored, naming its first refused character; None if it can.

    The message reads like "character 6 is U+D83C, half of a surrogate pair (an emoji cut in
    two?)": positions count from 1, in code points.
    """
    found = _UNSTORABLE_TEXT.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        kind = "half of a surrogate pair (an emoji cut in two?)"
    elif code == 0:
        kind = "a NUL character"
    else:
        kind = "a control character"
    return f"character {found.start() + 1} is U+{code:04X}, {kind}"


def check_text(text: str, *, field: str) -> str:
    """Return `text` if it can be stored and looked up, else raise SliderError("invalid_value").

    For every text a client sends that reaches the database, before it does: a lone surrogate
    would make the database driver raise UnicodeEncodeError and NUL a DataError, neither of
    which may pass for a malformed packet or an unavailable database.
    """
    problem = unstorable_character(text)
    if problem is not None:
        raise SliderError("invalid_value", f"The {field} cannot be stored: {problem}.")
    return text


def validate_storable_text(value: object) -> None:
    """Django validator: refuse text (or JSON holding text, keys included) `check_text` refuses.

    Raises django.core.exceptions.ValidationError. For the admin's form fields; a validator on
    a model field would need a migration.
    """
    from django.core.exceptions import ValidationError

    for text in _texts_in(value):
        problem = unstorable_character(text)
        if problem is not None:
            raise ValidationError(
                "This text cannot be stored: %(problem)s.",
                code="unstorable_text",
                params={"problem": problem},
            )


def _texts_in(value: object) -> list[str]:
    """The strings in `value`: itself, or those in a JSON structure (keys and values)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (*_texts_in(key), *_texts_in(item))]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts_in(item)]
    return []


def current_user(user: Any) -> Any:
    """The user as the database has them now: revoked permissions and deactivation apply at once.

    A socket keeps the user it connected as for hours; its permission cache would outlive a
    change made in the admin. Anonymous users need no query.
    """
    if user is None or not user.is_authenticated:
        return user
    # Not type(user): a request's user is a SimpleLazyObject.
    return get_user_model()._default_manager.filter(pk=user.pk).first()


def is_finite_number(value: object) -> bool:
    """Whether `value` can be a slider value: an int or float (not a bool), and finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def normalize_value(value: object, *, minimum: float, maximum: float, step: float) -> float:
    """Validate `value` and return it clamped to [minimum, maximum] and snapped to the step grid.

    The grid is `minimum + k * step`; it is computed in decimal so that 0.1 steps give 0.3, not
    0.30000000000000004. Raises SliderError("invalid_value") for anything but a finite number.
    """
    # bool is an int in Python, but `true` is not a slider value.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SliderError("invalid_value", "The value must be a number.")
    try:
        number = float(value)
    except OverflowError:
        raise SliderError("invalid_value", "The value is too large.") from None
    if not math.isfinite(number):
        raise SliderError("invalid_value", "The value must be a finite number.")

    number = min(max(number, minimum), maximum)
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

    Raises SliderError("bad_request") unless it is an int (not a bool) >= 0.
    """
    if isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0:
        raise SliderError("bad_request", "'base_version' must be a whole number, 0 or more.")
    return base_version


def lateness(made_at: object, *, arrived: float) -> float:
    """How late a live set made at `made_at` arrived at `arrived`, in seconds (may be < 0).

    `made_at`: when the person made the change, in ms since the Unix epoch on the server's
    clock (the page estimates it from `board:state`'s `server_time`); `arrived`: seconds since
    the epoch. The realtime server compares it with the connection's usual lateness (a set
    held up in the network is held to its `base_version`). Raises SliderError("bad_request")
    unless `made_at` is a finite number.
    """
    if not is_finite_number(made_at):
        raise SliderError("bad_request", "'made_at' must be a time in milliseconds.")
    return arrived - float(made_at) / 1000  # type: ignore[arg-type]


def set_slider_value(
    *,
    board: Board | str,
    slider_id: object,
    value: object,
    actor: Actor | None = None,
    sender_sid: str | None = None,
    base_version: object = None,
    if_match: Collection[int] | None = None,
) -> SliderChange:
    """Set one slider's value on behalf of `actor`, the way every client does.

    The accepted change is broadcast as `slider:update` to the board after commit, skipping
    `sender_sid` (the socket that sent it gets an ack instead). A value equal to the stored one
    returns the current version and broadcasts nothing, whatever the conditions below.

    Conditions, checked under the row lock, refused with SliderError("conflict") whose details
    are the stored `{"id", "value", "version"}`:
    - `base_version` (a socket's `slider:set`): the version the sender based the change on (a
      change made while cut off, or a re-sent set). Refused if a client other than
      `actor.client` changed the slider since, or if the audit trail cannot tell (see
      `_changed_by_others`). Raises `bad_request` unless it is an int >= 0.
    - `if_match` (HTTP `If-Match`): the stored version must be one of these.
    """
    if base_version is not None:
        base_version = check_base_version(base_version)
    if not isinstance(slider_id, str) or not slider_id:
        raise SliderError("bad_request", "'id' must be a slider id (a non-empty string).")
    if not SLUG_PATTERN.fullmatch(slider_id):
        # Not a slug, so no slider has it; and a NUL byte must never reach PostgreSQL.
        raise SliderError("unknown_slider", f"There is no slider '{slider_id[:100]!r}' here.")
    board_slug = _slug(board)

    with transaction.atomic():
        slider = (
            Slider.objects.select_for_update(of=("self",))
            .select_related("board")
            .filter(board__slug=board_slug, slug=slider_id)
            .first()
        )
        if slider is None:
            raise SliderError("unknown_slider", f"There is no slider '{slider_id[:100]}' here.")
        actor = actor or Actor()
        _check_can_edit(slider.board, actor)
        new_value = normalize_value(value, minimum=slider.min, maximum=slider.max, step=slider.step)
        if new_value == slider.value:
            # Already there: a re-sent set whose ack was lost, or nothing to do.
            return _change_of(slider, changed=False)
        if (if_match is not None and slider.version not in if_match) or (
            base_version is not None
            and base_version != slider.version
            and _changed_by_others(slider, since=base_version, client=actor.client)
        ):
            raise SliderError(
                "conflict",
                f"Someone else changed '{slider.name}' meanwhile; it is now at {slider.value:g}.",
                _change_of(slider, changed=False).as_update(),
            )
        change = _write(slider, stored=slider, new_value=new_value, actor=actor)

    return _after_commit(change, sender_sid)


def _changed_by_others(slider: Slider, *, since: int, client: str) -> bool:
    """Whether anyone but `client` changed `slider` after version `since` (under its lock).

    Read from the audit trail, which records every value change with its versions and client
    (one client's consecutive changes merged into one entry). When in doubt, say yes: a base
    newer than the stored version, no client to compare, or versions after `since` that the
    trail does not account for (entries missing, or left by an earlier slider of that id).
    Only sets based on an older version pay for this one aggregate query.
    """
    if since > slider.version or not client:
        return True
    trail = AuditEntry.objects.filter(
        board=slider.board.slug, slider=slider.slug, to_version__gt=since
    ).aggregate(
        others=Count("pk", filter=~Q(client=client)),
        lowest=Min("from_version"),
        highest=Max("to_version"),
        span=Sum(F("to_version") - F("from_version")),
    )
    if trail["others"] or trail["lowest"] is None:
        return True
    # The entries must chain from `since` (or before it) to the stored version without a gap.
    covered = trail["span"] - max(0, since - trail["lowest"])
    return not (
        trail["lowest"] <= since
        and trail["highest"] == slider.version
        and covered == slider.version - since
    )


def set_slider_values(
    *,
    board: Board | str,
    values: Mapping[str, object],
    actor: Actor | None = None,
    sender_sid: str | None = None,
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
        board_row = _board_row(board)
        _check_can_edit(board_row, actor)
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
                raise SliderError("conflict", "Someone else moved a slider meanwhile.")
            new_value = normalize_value(
                values[slider.slug], minimum=slider.min, maximum=slider.max, step=slider.step
            )
            if new_value != slider.value:
                changes.append(_write(slider, stored=slider, new_value=new_value, actor=actor))
        if changes:
            transaction.on_commit(lambda: notices.sliders_updated(changes, sender=sender_sid))
    return changes


def save_preset(
    *, board: Board | str, name: object, actor: Actor | None = None, position: int | None = None
) -> Preset:
    """Save the board's current values as the preset `name` (replacing one of that name)."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 80:
        raise SliderError("bad_request", "A preset needs a name of 1 to 80 characters.")
    name = check_text(name.strip(), field="preset's name")
    board_slug = _slug(board)
    with transaction.atomic():
        board_row = _board_row(board, lock=True)
        _check_can_edit(board_row, actor or Actor())
        values = dict(board_row.sliders.values_list("slug", "value"))
        defaults: dict[str, Any] = {"values": values}
        if position is not None:
            defaults["position"] = position
        preset, _ = Preset.objects.update_or_create(board=board_row, name=name, defaults=defaults)
        transaction.on_commit(lambda: notices.board_changed(board_slug))
    return preset


def recall_preset(
    *, board: Board | str, name: object, actor: Actor | None = None, sender_sid: str | None = None
) -> list[SliderChange]:
    """Set every slider the preset names to its saved value, at once (see set_slider_values)."""
    return set_slider_values(
        board=board,
        values=preset_values(board=board, name=name),
        actor=actor,
        sender_sid=sender_sid,
    )


def preset_values(*, board: Board | str, name: object) -> dict[str, object]:
    """A preset's saved values, checked to be numbers (the sliders' own limits apply later)."""
    if not isinstance(name, str):
        raise SliderError("bad_request", "'name' must be a preset's name.")
    check_text(name, field="preset's name")
    preset = Preset.objects.filter(board__slug=_slug(board), name=name).first()
    if preset is None:
        raise SliderError("unknown_preset", f"There is no preset '{name[:100]}' here.")
    values = preset.values if isinstance(preset.values, dict) else {}
    if not all(is_finite_number(value) for value in values.values()):
        raise SliderError(
            "invalid_value", f"The preset '{name[:100]}' holds a value that is not a number."
        )
    return dict(values)


def fade_targets(*, board: Board | str, name: object, actor: Actor) -> dict[str, object]:
    """What a fade to the preset will move to, refused up front as a recall would be."""
    check_can_edit(board=board, actor=actor)
    return preset_values(board=board, name=name)


def save_preset_from_admin(*, preset: Preset) -> None:
    """Create or edit a preset in the admin; open pages of its board get the new list."""
    _structure_change(preset.board.slug, preset.save)


def delete_preset(*, preset: Preset) -> None:
    _structure_change(preset.board.slug, preset.delete)


def save_share_link(*, link: ShareLink) -> None:
    """Create, edit or revoke a share link; open pages of its board get their rights again."""
    _structure_change(link.board.slug, link.save)


def delete_share_link(*, link: ShareLink) -> None:
    _structure_change(link.board.slug, link.delete)


def save_slider(
    *, slider: Slider, requested_value: object = None, actor: Actor | None = None
) -> SliderChange:
    """Create or update a slider from the admin: structure and value in one transaction.

    `requested_value` None keeps the stored value: an admin form opened a minute ago must not
    undo what people did on the board since. Either way the value is normalised against the
    (possibly new) range and step. Open pages get `board:state` when the structure changed and
    `slider:update` when only the value did. A slider that takes a key (created, or given a new
    slug or board) starts above every version that key had (sliders/keys.py).
    """

    def normalized(value: object) -> float:
        return normalize_value(value, minimum=slider.min, maximum=slider.max, step=slider.step)

    with transaction.atomic():
        if slider.pk is None:
            slider.value = normalized(slider.min if requested_value is None else requested_value)
            slider.version = 0
            slider.save()
            structure_changed = True
            change = _change_of(slider, changed=True)
        else:
            stored = Slider.objects.select_for_update().get(pk=slider.pk)
            structure_changed = any(
                getattr(stored, field) != getattr(slider, field) for field in STRUCTURE_FIELDS
            )
            new_value = normalized(stored.value if requested_value is None else requested_value)
            if (stored.board_id, stored.slug) != (slider.board_id, slider.slug):
                _take_new_key(stored, board_id=slider.board_id, slug=slider.slug)
            change = _write(
                slider, stored=stored, new_value=new_value, actor=actor or Actor(), structure=True
            )
            if stored.board_id != slider.board_id:
                old_board = stored.board.slug
                transaction.on_commit(lambda: notices.board_changed(old_board))
        if structure_changed:
            transaction.on_commit(lambda: notices.board_changed(change.board))

    if structure_changed:
        return change
    return _after_commit(change, sender_sid=None)


def _take_new_key(stored: Slider, *, board_id: int, slug: str) -> None:
    """Move the locked row `stored` to the key (board, slug), retiring its old one.

    Its version is lifted above the new key's retired version (sliders/keys.py), before the
    admin's write, so that write's version and audit entry follow on from the lifted one.
    """
    keys.retire(board=stored.board.slug, slider=stored.slug, version=stored.version)
    Slider.objects.filter(pk=stored.pk).update(board_id=board_id, slug=slug)
    new_board = Board.objects.values_list("slug", flat=True).get(pk=board_id)
    stored.version = keys.take(pk=stored.pk, board=new_board, slider=slug, version=stored.version)


def delete_board(*, board: Board) -> None:
    """Delete a board; its open pages are disconnected (they cannot rejoin a missing board)."""
    _structure_change(board.slug, board.delete)


def delete_slider(*, slider: Slider) -> None:
    """Delete a slider; open pages of its board get the new `board:state`."""
    _structure_change(slider.board.slug, slider.delete)


def save_board(*, board: Board) -> None:
    """Create or update a board (name, access); its open pages get the new `board:state`."""
    with transaction.atomic():
        old_slug = (
            Board.objects.filter(pk=board.pk).values_list("slug", flat=True).first()
            if board.pk
            else None
        )
        board.save()
        for slug in {board.slug, old_slug} - {None}:
            transaction.on_commit(lambda slug=slug: notices.board_changed(slug))


def _write(
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
    written = Slider.objects.filter(pk=stored.pk, version=old_version).update(
        value=new_value, version=version, **fields
    )
    if written != 1:
        raise RuntimeError(f"Slider {stored.pk} changed under a held lock.")
    slider.value, slider.version = new_value, version
    change = _change_of(slider, changed=changed)
    if changed:
        _record_audit(change, actor, old_value=old_value, old_version=old_version)
    return change


@dataclass(frozen=True)
class _AuditTail:
    """The newest audit entry of a slider written by this process: the one a set may extend."""

    pk: int
    client: str
    to_version: int
    ended_at: Any


# (board, slider) -> its newest entry from this process. Saves a query per set; the UPDATE below
# re-checks in the database, so a stale or rolled-back tail only means a new entry.
_audit_tails: dict[tuple[str, str], _AuditTail] = {}


def _record_audit(
    change: SliderChange, actor: Actor, *, old_value: float, old_version: int
) -> None:
    """Add the change to the audit trail, merging it into the same client's ongoing drag.

    A page names its client itself (sliders.realtime), so a merge also needs the same user and
    address: a forged client id never adds someone's change to another person's entry.
    """
    now = timezone.now()
    key = (change.board, change.id)
    tail = _audit_tails.get(key)
    user = actor.user if actor.user is not None and actor.user.is_authenticated else None
    if (
        tail is not None
        and actor.client
        and tail.client == actor.client
        and tail.to_version == old_version  # nobody else moved it in between
        and (now - tail.ended_at).total_seconds() <= settings.AUDIT_MERGE_SECONDS
    ):
        merged = AuditEntry.objects.filter(
            pk=tail.pk,
            client=actor.client,
            to_version=old_version,
            user=user,
            address=actor.address[:64],
        ).update(
            to_value=change.value,
            to_version=change.version,
            changes=F("changes") + 1,
            ended_at=now,
        )
        if merged:
            _audit_tails[key] = _AuditTail(tail.pk, actor.client, change.version, now)
            return
    entry = AuditEntry.objects.create(
        board=change.board,
        slider=change.id,
        user=user,
        username=user.get_username() if user is not None else "",
        source=actor.source,
        address=actor.address[:64],
        client=actor.client[:64],
        from_value=old_value,
        to_value=change.value,
        from_version=old_version,
        to_version=change.version,
        started_at=now,
        ended_at=now,
    )
    _audit_tails[key] = _AuditTail(entry.pk, entry.client, change.version, now)


def check_can_edit(*, board: Board | str, actor: Actor) -> None:
    """Raise `forbidden` (or `unknown_board`) unless `actor` may move the board's sliders."""
    _check_can_edit(board if isinstance(board, Board) else _board_row(board), actor)


def _check_can_edit(board: Board, actor: Actor) -> None:
    if actor.operator:
        return
    share = sharing.share_for(actor.share_link, board) if actor.share_link else None
    board_is_open = board.edit_access == board.view_access == Board.Access.ANYONE
    user = actor.user if board_is_open else current_user(actor.user)
    if not board.user_can_edit(user, share):
        raise SliderError("forbidden", "You may not change the sliders on this board.")


def _slug(board: Board | str) -> str:
    """The board's slug; one given as text is checked before any query uses it."""
    if isinstance(board, Board):
        return board.slug
    return check_text(board, field="board's id") if isinstance(board, str) else board


def _board_row(board: Board | str, *, lock: bool = False) -> Board:
    """The board's row (locked with `lock`), or `unknown_board`."""
    rows = Board.objects.select_for_update() if lock else Board.objects
    board_row = rows.filter(slug=_slug(board)).first()
    if board_row is None:
        raise SliderError("unknown_board", f"There is no board '{_slug(board)[:100]}'.")
    return board_row


def _structure_change(board_slug: str, write: Callable[[], Any]) -> None:
    """Run `write` in a transaction; the board's open pages get `board:state` after commit."""
    with transaction.atomic():
        write()
        transaction.on_commit(lambda: notices.board_changed(board_slug))


def _change_of(slider: Slider, *, changed: bool) -> SliderChange:
    return SliderChange(slider.board.slug, slider.slug, slider.value, slider.version, changed)


def _after_commit(change: SliderChange, sender_sid: str | None) -> SliderChange:
    if change.changed:
        transaction.on_commit(lambda: notices.slider_updated(change, sender=sender_sid))
    return change
