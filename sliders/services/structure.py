"""What a board is made of: boards, sliders (their range, step, name, ...) and share links.

Saved and deleted by the admin (and the demo loader); every change reaches the board's open pages
as a new `board:state` after it commits, and a slider that changes key keeps invariant 9
(sliders/keys.py).
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from sliders import keys, notices
from sliders.models import Board, ShareLink, Slider
from sliders.services.access import Actor
from sliders.services.errors import Refusal
from sliders.services.values import (
    STRUCTURE_FIELDS,
    SliderChange,
    broadcast_after_commit,
    change_of,
    normalize_value,
    write,
)


def check_range(*, minimum: object, maximum: object, step: object) -> None:
    """Refuse a slider range that would leave people nothing (or nothing sensible) to choose.

    `minimum` < `maximum`, both finite numbers; `step` a finite number > 0 and at most the
    range (`maximum - minimum`), compared in decimal as `normalize_value` builds the grid (a
    step of 0.2 fits 0.1 to 0.3). A larger step would leave `minimum` the only value. A range
    that is not a whole number of steps is allowed: its highest value is `highest_value`. And
    |min| + |max| must be a finite float (not -1e308 to 1e308): the database's step constraint
    computes it and the range, and the page and OSC's 0..1 scaling compute the range, in floats.
    Raises Refusal("invalid_value") saying which rule failed.
    """
    numbers = (minimum, maximum, step)
    if not all(
        isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n)
        for n in numbers
    ):
        raise Refusal("invalid_value", "Min, max and step must be finite numbers.")
    low, high, increment = (Decimal(repr(float(n))) for n in numbers)  # type: ignore[arg-type]
    if low >= high:
        raise Refusal("invalid_value", "Max must be greater than min.")
    # In floats, as the database's step constraint computes them (the sum bounds the range).
    if not math.isfinite(abs(float(low)) + abs(float(high))):
        raise Refusal(
            "invalid_value",
            f"Min and max are too large: |min| + |max| must be at most {sys.float_info.max:g}.",
        )
    if increment <= 0:
        raise Refusal("invalid_value", "Step must be greater than zero.")
    if increment > high - low:
        raise Refusal(
            "invalid_value",
            f"The step ({increment}) must not be larger than the range "
            f"(max - min = {high - low}): min would be the only value.",
        )


def highest_value(*, minimum: float, maximum: float, step: float) -> float:
    """The highest value a slider with this range can hold: `maximum` when the range is a whole
    number of steps, else the last step below it (0 to 10 in steps of 3: 9).

    The page's `<input type=range>` stops at the same point (HTML's step rule).
    """
    return normalize_value(maximum, minimum=minimum, maximum=maximum, step=step)


def save_slider(
    *, slider: Slider, requested_value: object = None, actor: Actor | None = None
) -> SliderChange:
    """Create or update a slider (the admin, the demo loader): structure and value in one
    transaction.

    `requested_value` None keeps the stored value (a new slider starts at min): an admin form
    opened a minute ago must not undo what people did on the board since. Either way the value
    is normalised against the (possibly new) range and step: clamped into the range, snapped to
    the grid. A new slider whose `position` is None goes after the board's last one. Open pages
    get `board:state` when the structure changed and `slider:update` when only the value did.
    A slider that takes a key (created, or given a new slug or board) starts above every
    version that key had (sliders/keys.py). Raises Refusal("invalid_value") for a range
    `check_range` refuses, and for a value that is not a finite number.
    """
    check_range(minimum=slider.min, maximum=slider.max, step=slider.step)

    def normalized(value: object) -> float:
        return normalize_value(value, minimum=slider.min, maximum=slider.max, step=slider.step)

    with transaction.atomic():
        if slider.pk is None:
            if slider.position is None:
                slider.position = next_position(slider.board_id)
            slider.value = normalized(slider.min if requested_value is None else requested_value)
            slider.version = 0
            slider.save()
            structure_changed = True
            change = change_of(slider, changed=True)
        else:
            stored = Slider.objects.select_for_update().get(pk=slider.pk)
            structure_changed = any(
                getattr(stored, field) != getattr(slider, field) for field in STRUCTURE_FIELDS
            )
            new_value = normalized(stored.value if requested_value is None else requested_value)
            if (stored.board_id, stored.slug) != (slider.board_id, slider.slug):
                _take_new_key(stored, board_id=slider.board_id, slug=slider.slug)
            change = write(
                slider, stored=stored, new_value=new_value, actor=actor or Actor(), structure=True
            )
            if stored.board_id != slider.board_id:
                gone = functools.partial(
                    notices.board_changed,
                    stored.board.slug,
                    "slider_deleted",
                    slider=stored.slug,
                    **_who(actor),
                )
                transaction.on_commit(gone)
        if structure_changed:
            saved = functools.partial(
                notices.board_changed,
                change.board,
                "slider_saved",
                slider=slider.slug,
                **_who(actor),
            )
            transaction.on_commit(saved)

    if structure_changed:
        return change
    return broadcast_after_commit(change, sender=None)


def next_position(board_id: int) -> int:
    """The position after the board's last slider (0 on an empty board)."""
    highest = Slider.objects.filter(board_id=board_id).aggregate(highest=Max("position"))
    return 0 if highest["highest"] is None else highest["highest"] + 1


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
    change_structure(board.slug, board.delete, notice=_board_change("board_deleted"))


def delete_slider(*, slider: Slider) -> None:
    """Delete a slider; open pages of its board get the new `board:state`."""
    notice = _board_change("slider_deleted", slider=slider.slug)
    change_structure(slider.board.slug, slider.delete, notice=notice)


def save_board(*, board: Board, changed: bool = True, actor: Actor | None = None) -> None:
    """Create or update a board (name, access); its open pages get the new `board:state`.

    `changed` False: the caller knows nothing of the board's own fields changed (the admin
    saving its page for an inline): the pages still get their state, but the bridges are not
    told of a "board_saved" change. `actor`: who saved it, for the bridges.
    """
    change = "board_saved" if changed else ""
    with transaction.atomic():
        old_slug = (
            Board.objects.filter(pk=board.pk).values_list("slug", flat=True).first()
            if board.pk
            else None
        )
        board.save()
        for slug in {s for s in (board.slug, old_slug) if s is not None}:
            announce = functools.partial(notices.board_changed, slug, change, **_who(actor))
            transaction.on_commit(announce)


def save_share_link(*, link: ShareLink) -> None:
    """Create, edit, revoke or restore a share link; open pages of its board get their rights
    again. `revoked_at` follows `revoked`: set when the link is revoked, cleared when restored.
    """
    if not link.revoked:
        link.revoked_at = None
    elif link.revoked_at is None:
        link.revoked_at = timezone.now()
    change_structure(link.board.slug, link.save, notice=_board_change("share_link_saved"))


def delete_share_link(*, link: ShareLink) -> None:
    """Delete a share link; open pages of its board get their rights again."""
    change_structure(link.board.slug, link.delete, notice=_board_change("share_link_deleted"))


def change_structure(
    board_slug: str,
    save_or_delete: Callable[[], Any],
    *,
    notice: Callable[[str], None] = notices.board_changed,
) -> None:
    """Run `save_or_delete` in a transaction, then `notice(board_slug)` after it commits (by
    default: open pages of the board get `board:state`)."""
    with transaction.atomic():
        save_or_delete()
        transaction.on_commit(lambda: notice(board_slug))


def _board_change(change: str, **details: str) -> Callable[[str], None]:
    """A `change_structure` notice that says what changed (see notices.board_changed)."""
    return functools.partial(notices.board_changed, change=change, **details)


def _who(actor: Actor | None) -> dict[str, str]:
    """Who made a board change, for its notice: `actor` and `source` when known."""
    return {} if actor is None else {"actor": actor.name, "source": str(actor.source)}
