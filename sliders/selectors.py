"""Read queries shared by the pages and the realtime server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sliders.models import Board, Slider

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser


def slider_payload(slider: Slider) -> dict[str, Any]:
    return {
        "id": slider.slug,
        "name": slider.name,
        "min": slider.min,
        "max": slider.max,
        "step": slider.step,
        "value": slider.value,
        "version": slider.version,
        "unit": slider.unit,
        "precision": slider.precision,
    }


def board_state(
    board: Board, *, user: AbstractBaseUser | AnonymousUser | None, clients: int
) -> dict[str, Any]:
    """The `board:state` payload: the board as `user` sees it, sliders in display order."""
    return {
        "board": board.slug,
        "name": board.name,
        "can_edit": board.user_can_edit(user),
        "clients": clients,
        "sliders": [slider_payload(slider) for slider in board.sliders.all()],
        "presets": [{"name": name} for name in board.presets.values_list("name", flat=True)],
    }


def values_and_versions(
    board_slug: str, slugs: list[str]
) -> tuple[dict[str, float], dict[str, int]]:
    """The named sliders' values and versions (where a fade starts)."""
    found = Slider.objects.filter(board__slug=board_slug, slug__in=slugs).values_list(
        "slug", "value", "version"
    )
    rows = list(found)
    return {s: value for s, value, _ in rows}, {s: version for s, _, version in rows}


def get_board(slug: str) -> Board | None:
    return Board.objects.filter(slug=slug).first()
