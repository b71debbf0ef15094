"""Presets (scenes): a board's values saved under a name, recalled at once or faded to.

The rules every way in keeps (page, API, admin):
- A name is unique per board regardless of case: "Start" and "start" are one preset
  (`name_key`: Unicode's canonical caseless match). Recall finds a preset the same way.
- Saving never replaces a preset silently: a name that is taken is refused with `preset_exists`
  unless the request says to overwrite it (the socket's `overwrite`, the API's `If-Match` or
  `?overwrite=true`). A replaced preset takes the name as spelled in the save.
- Saved values are checked: every id is a slider of the board, every value a finite number
  within that slider's range; they are stored snapped to its step grid, as a recall sets them.
- A recall reports what it could not take as saved: sliders removed since (`skipped`), values
  that no longer fit a slider's range or step (`adjusted`).

A recall writes through `set_slider_values`, like any other set of several sliders; a fade's
frames do too (the fade itself runs on the realtime server).
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from sliders import notices
from sliders.models import Board, Preset, Slider
from sliders.services import access
from sliders.services.access import Actor
from sliders.services.errors import Refusal
from sliders.services.structure import change_structure
from sliders.services.text import check_text
from sliders.services.values import (
    SliderChange,
    finite_float,
    is_finite_number,
    normalize_value,
    set_slider_values,
)

MAX_NAME = 80
NAMED_AT_MOST = 10  # sliders a refusal names one by one; the rest are counted


def name_key(name: str) -> str:
    """What two preset names are compared by: "Start" and "start" are one preset.

    Unicode's canonical caseless match (NFD, casefold, NFD): "Straße" and "STRASSE" are one,
    and so are "Café" typed as é and as e + a combining accent, which look the same. A dotted
    capital I (U+0130, "İstanbul") counts as an i: casefold() keeps its dot as a combining
    mark, but PostgreSQL's lower(), which the database's constraint compares with, makes it a
    plain i, so the two would otherwise disagree. Spaces around a name do not count (a saved
    name has none).
    """
    folded = unicodedata.normalize("NFD", unicodedata.normalize("NFD", name.strip()).casefold())
    return folded.replace("i\u0307", "i")


def checked_name(name: object) -> str:
    """A preset's name from a client, trimmed: 1 to 80 characters the database can store.

    Raises Refusal: `bad_request` (not text, empty, too long), `invalid_value` (a character
    no text may have, see services.text).
    """
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise Refusal("bad_request", f"A preset needs a name of 1 to {MAX_NAME} characters.")
    return check_text(name.strip(), field="preset's name")


def find_preset(board: Board | str, name: str, *, exclude: int | None = None) -> Preset | None:
    """The board's preset called `name`, ignoring case (see `name_key`), or None.

    `exclude`: a preset's pk to leave out (the one being edited in the admin).
    """
    key = name_key(name)
    rows = Preset.objects.filter(board__slug=access.board_slug(board)).values_list("pk", "name")
    pk = next((pk for pk, other in rows if pk != exclude and name_key(other) == key), None)
    return None if pk is None else Preset.objects.select_related("board").get(pk=pk)


def preset_tag(preset: Preset) -> str:
    """The preset's entity tag (the API's `ETag`): a digest of its name, values and position.

    Any change to what a client reads changes it; an unchanged preset keeps it.
    """
    content = json.dumps([preset.name, preset.values, preset.position], sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:20]


def check_preset_values(board: Board, values: object) -> dict[str, float]:
    """`values` as a preset of `board` may hold them: `{slider id: number}`, snapped to the grid.

    Every id must be one of the board's sliders and every value a finite number within that
    slider's [min, max]; each is stored as a recall would set it (snapped to min + k·step).
    Raises Refusal("invalid_value") for anything else: not an object, an id the board has no
    slider for, a value that is not a number or out of range; the message names every
    offending slider, and `details["sliders"]` lists their ids.
    """
    if not isinstance(values, Mapping) or not all(isinstance(key, str) for key in values):
        raise Refusal(
            "invalid_value",
            'A preset\'s values are an object of slider ids and numbers: {"s1": 20}.',
        )
    sliders = {s.slug: s for s in Slider.objects.filter(board=board, slug__in=list(values))}
    unknown = [key for key in values if key not in sliders]
    wrong: list[str] = []
    offending = list(unknown)
    stored: dict[str, float] = {}
    for key, value in values.items():
        slider = sliders.get(key)
        if slider is None:
            continue
        if not is_finite_number(value):
            offending.append(key)
            wrong.append(f"'{key[:100]}' must be a number (not {json.dumps(value)[:40]})")
        elif not slider.min <= finite_float(value) <= slider.max:
            offending.append(key)
            wrong.append(
                f"'{key[:100]}' must lie between {slider.min:g} and {slider.max:g} (not {value})"
            )
        else:
            stored[key] = normalize_value(
                value, minimum=slider.min, maximum=slider.max, step=slider.step
            )
    problems = []
    if unknown:
        problems.append(f"This board has no slider {_listing([repr(k[:100]) for k in unknown])}.")
    if wrong:
        problems.append(f"{_listing(wrong)}.")
    if problems:
        raise Refusal("invalid_value", " ".join(problems), {"sliders": offending})
    return stored


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:NAMED_AT_MOST])
    more = len(items) - NAMED_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


def save_preset(
    *,
    board: Board | str,
    name: object,
    actor: Actor | None = None,
    position: int | None = None,
    values: object = None,
    overwrite: bool = False,
    if_match: Collection[str] | None = None,
) -> tuple[Preset, bool]:
    """Save `values` (None: the board's current ones) as the preset `name`; (preset, created).

    A preset of that name (ignoring case) is replaced only with `overwrite`, or with `if_match`
    (tags from `preset_tag`, or "*" for any) naming it; a replaced preset keeps its position
    unless one is given, and takes the name as spelled here. Open pages get the new list.

    Raises Refusal: `bad_request` / `invalid_value` for a bad name (see `checked_name`),
    `invalid_value` for bad values (see `check_preset_values`),
    `preset_exists` (details: the stored `name`) for a taken name without `overwrite` or
    `if_match`, `conflict` when `if_match` names no preset there is, `unknown_board`,
    `forbidden`.
    """
    name = checked_name(name)
    board_slug = access.board_slug(board)
    with transaction.atomic():
        board_row = access.board_row(board, lock=True)  # one save of the board's presets at once
        access.require_edit(board_row, actor or Actor())
        if values is None:
            stored = dict(board_row.sliders.values_list("slug", "value"))
        else:
            stored = check_preset_values(board_row, values)
        preset = find_preset(board_row, name)
        if if_match is not None and (
            preset is None or ("*" not in if_match and preset_tag(preset) not in if_match)
        ):
            raise Refusal(
                "conflict",
                f"The preset '{name[:100]}' is not as you read it"
                + (" (it is gone)." if preset is None else "; read it again."),
            )
        if preset is not None and not overwrite and if_match is None:
            raise Refusal(
                "preset_exists",
                f"There is a preset '{preset.name[:100]}' already; "
                "save with overwrite to replace it.",
                {"name": preset.name},
            )
        created = preset is None
        if preset is None:
            preset = Preset(board=board_row, position=0)
        preset.name, preset.values = name, stored
        if position is not None:
            preset.position = position
        preset.save()
        who = {} if actor is None else {"actor": actor.name, "source": str(actor.source)}
        saved = functools.partial(
            notices.board_changed, board_slug, "preset_saved", preset=preset.name, **who
        )
        transaction.on_commit(saved)
    return preset, created


@dataclass(frozen=True)
class Recall:
    """A preset recalled (or about to be faded to), and what could not be taken as saved.

    `name`: the preset's name as stored. `targets`: by slider id, the values the sliders go to
    (fitted to each slider as it is now). `skipped`: ids of sliders the preset names that the
    board no longer has. `adjusted`: `{"id", "saved", "value"}` for each saved value that had
    to be clamped to the slider's range or snapped to its step. `changes`: what a recall wrote.
    """

    name: str
    targets: dict[str, float]
    skipped: list[str]
    adjusted: list[dict[str, Any]]
    changes: list[SliderChange] = field(default_factory=list)

    def as_ack(self) -> dict[str, Any]:
        """The answer to a recall (socket ack, API): `{"ok": true, name, skipped, adjusted}`."""
        return {"ok": True, "name": self.name, "skipped": self.skipped, "adjusted": self.adjusted}


def recall_preset(
    *, board: Board | str, name: object, actor: Actor | None = None, sender: str | None = None
) -> Recall:
    """Set every slider the preset names to its saved value, at once (see set_slider_values).

    The report is read in the same transaction, from the rows the recall locked. Raises
    Refusal as `plan_recall` and `set_slider_values` do.
    """
    with transaction.atomic():
        preset = _checked_preset(board, name)
        changes = set_slider_values(board=board, values=preset.values, actor=actor, sender=sender)
        plan = _fit(preset)
        who = actor or Actor()
        recalled = functools.partial(
            notices.preset_recalled,
            preset.board.slug,
            preset=preset.name,
            changes=changes,
            source=str(who.source),
            actor=who.name,
        )
        transaction.on_commit(recalled)
    return Recall(plan.name, plan.targets, plan.skipped, plan.adjusted, changes)


def plan_recall(*, board: Board | str, name: object, actor: Actor) -> Recall:
    """What a recall (a fade) of the preset will move to, refused up front as a recall would be.

    Raises Refusal: `bad_request` (a name that is not text), `invalid_value` (a name the
    database cannot store, or a saved value that is not a finite number), `unknown_preset`,
    `unknown_board`, `forbidden`.
    """
    access.check_can_edit(board=board, actor=actor)
    return _fit(_checked_preset(board, name))


def _checked_preset(board: Board | str, name: object) -> Preset:
    if not isinstance(name, str):
        raise Refusal("bad_request", "'name' must be a preset's name.")
    check_text(name, field="preset's name")
    preset = find_preset(board, name)
    if preset is None:
        raise Refusal("unknown_preset", f"There is no preset '{name[:100]}' here.")
    values = preset.values if isinstance(preset.values, dict) else {}
    if not all(is_finite_number(value) for value in values.values()):
        raise Refusal(
            "invalid_value", f"The preset '{preset.name[:100]}' holds a value that is not a number."
        )
    preset.values = values
    return preset


def _fit(preset: Preset) -> Recall:
    """The preset's values fitted to its board's sliders as they are now (see Recall)."""
    values: dict[str, Any] = preset.values
    sliders = {s.slug: s for s in Slider.objects.filter(board_id=preset.board_id, slug__in=values)}
    targets: dict[str, float] = {}
    adjusted = []
    for slug, saved in values.items():
        slider = sliders.get(slug)
        if slider is None:
            continue
        value = normalize_value(saved, minimum=slider.min, maximum=slider.max, step=slider.step)
        targets[slug] = value
        if value != saved:
            adjusted.append({"id": slug, "saved": saved, "value": value})
    skipped = [slug for slug in values if slug not in sliders]
    return Recall(preset.name, targets, skipped, adjusted)


def save_preset_from_admin(*, preset: Preset) -> None:
    """Create or edit a preset in the admin (values given); open pages get the new list.

    The admin's form shows these refusals as form errors first (see `check_admin_preset`).
    Raises Refusal as `check_admin_preset` does.
    """
    with transaction.atomic():
        access.board_row(preset.board, lock=True)
        check_admin_preset(preset)
        notice = functools.partial(notices.board_changed, change="preset_saved", preset=preset.name)
        change_structure(preset.board.slug, preset.save, notice=notice)


def check_admin_preset(preset: Preset) -> None:
    """Check an admin's preset: its name free on its board (ignoring case), its values valid.

    Snaps the values to the step grid in place. Raises Refusal: `preset_exists`,
    `invalid_value`, `bad_request`.
    """
    preset.name = checked_name(preset.name)
    taken = find_preset(preset.board, preset.name, exclude=preset.pk)
    if taken is not None:
        raise Refusal(
            "preset_exists",
            f"This board has a preset '{taken.name[:100]}' already (names ignore case).",
            {"name": taken.name},
        )
    preset.values = check_preset_values(preset.board, preset.values)


def delete_preset(*, preset: Preset) -> None:
    """Delete a preset; open pages of its board get the new list."""
    notice = functools.partial(notices.board_changed, change="preset_deleted", preset=preset.name)
    change_structure(preset.board.slug, preset.delete, notice=notice)
