"""Read queries shared by the pages, the HTTP API and the realtime server.

Nothing here writes: which boards a user may see, what a user may do on a board, and the board
as its payloads show it (`board:state`, the API's board).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from sliders import sharing
from sliders.models import Board, ShareLink, Slider

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

    User = AbstractUser | AnonymousUser | None


def visible_boards(user: User) -> QuerySet[Board]:
    """The boards `user` may view (`Board.user_can_view` without a share link), in display order.

    Anyone sees the boards open to anyone; an active signed-in user sees them all.
    """
    boards = Board.objects.order_by("position", "name")
    if user is not None and user.is_authenticated and user.is_active:
        return boards
    return boards.filter(view_access=Board.Visibility.ANYONE)


@dataclass(frozen=True)
class Rights:
    """What a viewer may do on a board: `share` is the share link that still opens it, if any."""

    share: ShareLink | None
    can_view: bool
    can_edit: bool


def viewer_rights(board: Board, *, user: User, share_link: int | None) -> Rights:
    """What `user`, maybe holding the share link with id `share_link`, may do on `board`.

    A revoked link (or one for another board) counts as none. Pass the user as the database
    has them now (`services.current_user`) where a login may be hours old.
    """
    share = sharing.share_for(share_link, board)
    can_view = board.user_can_view(user, share)
    return Rights(share, can_view, can_view and board.user_can_edit(user, share))


def slider_payload(slider: Slider) -> dict[str, Any]:
    """A slider as the protocol and the API show it (`board:state`'s `sliders` items)."""
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


def board_payload(board: Board, *, user: User, clients: int | None = None) -> dict[str, Any]:
    """The board as `user` sees it: `{board, name, can_edit, [clients,] sliders, presets}`.

    Sliders in display order; `clients` (how many are connected) only when given, as
    `board:state` has it and the HTTP API does not. Key order is the wire's.
    """
    payload: dict[str, Any] = {
        "board": board.slug,
        "name": board.name,
        "can_edit": board.user_can_edit(user),
    }
    if clients is not None:
        payload["clients"] = clients
    payload["sliders"] = [slider_payload(slider) for slider in board.sliders.all()]
    payload["presets"] = [{"name": name} for name in board.presets.values_list("name", flat=True)]
    return payload


def board_state(board: Board, *, user: User, clients: int) -> dict[str, Any]:
    """The `board:state` payload: the board as `user` sees it, sliders in display order."""
    return board_payload(board, user=user, clients=clients)


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
    """The board with this slug, or None."""
    return Board.objects.filter(slug=slug).first()
