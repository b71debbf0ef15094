"""Presets (scenes): a board's values saved under a name, recalled at once or faded to.

A recall writes through `set_slider_values`, like any other set of several sliders; a fade's
frames do too (the fade itself runs on the realtime server).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from sliders import notices
from sliders.models import Board, Preset
from sliders.services import access
from sliders.services.access import Actor
from sliders.services.errors import Refusal
from sliders.services.structure import change_structure
from sliders.services.text import check_text
from sliders.services.values import SliderChange, is_finite_number, set_slider_values


def save_preset(
    *, board: Board | str, name: object, actor: Actor | None = None, position: int | None = None
) -> Preset:
    """Save the board's current values as the preset `name` (replacing one of that name).

    Raises Refusal: `bad_request` for a name that is not 1 to 80 characters,
    `invalid_value` for one the database cannot store, `unknown_board`, `forbidden`.
    """
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 80:
        raise Refusal("bad_request", "A preset needs a name of 1 to 80 characters.")
    name = check_text(name.strip(), field="preset's name")
    board_slug = access.board_slug(board)
    with transaction.atomic():
        board_row = access.board_row(board, lock=True)
        access.require_edit(board_row, actor or Actor())
        values = dict(board_row.sliders.values_list("slug", "value"))
        defaults: dict[str, Any] = {"values": values}
        if position is not None:
            defaults["position"] = position
        preset, _ = Preset.objects.update_or_create(board=board_row, name=name, defaults=defaults)
        transaction.on_commit(lambda: notices.board_changed(board_slug))
    return preset


def recall_preset(
    *, board: Board | str, name: object, actor: Actor | None = None, sender: str | None = None
) -> list[SliderChange]:
    """Set every slider the preset names to its saved value, at once (see set_slider_values)."""
    return set_slider_values(
        board=board,
        values=preset_values(board=board, name=name),
        actor=actor,
        sender=sender,
    )


def preset_values(*, board: Board | str, name: object) -> dict[str, object]:
    """A preset's saved values, checked to be numbers (the sliders' own limits apply later).

    Raises Refusal: `bad_request`, `invalid_value` (a name the database cannot store, or
    a saved value that is not a finite number), `unknown_preset`.
    """
    if not isinstance(name, str):
        raise Refusal("bad_request", "'name' must be a preset's name.")
    check_text(name, field="preset's name")
    preset = Preset.objects.filter(board__slug=access.board_slug(board), name=name).first()
    if preset is None:
        raise Refusal("unknown_preset", f"There is no preset '{name[:100]}' here.")
    values = preset.values if isinstance(preset.values, dict) else {}
    if not all(is_finite_number(value) for value in values.values()):
        raise Refusal(
            "invalid_value", f"The preset '{name[:100]}' holds a value that is not a number."
        )
    return dict(values)


def fade_targets(*, board: Board | str, name: object, actor: Actor) -> dict[str, object]:
    """What a fade to the preset will move to, refused up front as a recall would be."""
    access.check_can_edit(board=board, actor=actor)
    return preset_values(board=board, name=name)


def save_preset_from_admin(*, preset: Preset) -> None:
    """Create or edit a preset in the admin; open pages of its board get the new list."""
    change_structure(preset.board.slug, preset.save)


def delete_preset(*, preset: Preset) -> None:
    """Delete a preset; open pages of its board get the new list."""
    change_structure(preset.board.slug, preset.delete)
