"""Who makes a change, and whether they may: the permission check every write runs.

Also the board lookups the services share: a board given as a row or as its slug (text from a
client, checked by the text rule before any query uses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from sliders import sharing
from sliders.models import AuditEntry, Board
from sliders.services.errors import Refusal
from sliders.services.text import check_text


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
    # The bridge target a change came in from ("osc:3"), so the bridges do not send it back there.
    bridge: str = ""

    @property
    def name(self) -> str:
        """The user's name as the audit trail keeps it; "" for anonymous changes."""
        user = self.user
        return user.get_username() if user is not None and user.is_authenticated else ""


def current_user(user: Any) -> Any:
    """The user as the database has them now: revoked permissions and deactivation apply at once.

    A socket keeps the user it connected as for hours; its permission cache would outlive a
    change made in the admin. Anonymous users need no query. Returns None for a user who has
    been deleted since.
    """
    if user is None or not user.is_authenticated:
        return user
    # Not type(user): a request's user is a SimpleLazyObject.
    return get_user_model()._default_manager.filter(pk=user.pk).first()


def check_can_edit(*, board: Board | str, actor: Actor) -> None:
    """Raise `forbidden` (or `unknown_board`) unless `actor` may move the board's sliders."""
    require_edit(board if isinstance(board, Board) else board_row(board), actor)


def require_edit(board: Board, actor: Actor) -> None:
    """Raise Refusal("forbidden") unless `actor` may move the sliders of the row `board`.

    Operators pass; otherwise the actor's share link and the user as the database has them
    now decide (a board anyone may view and edit needs no user query).
    """
    if actor.operator:
        return
    share = sharing.share_for(actor.share_link, board) if actor.share_link else None
    board_is_open = board.edit_access == board.view_access == Board.Access.ANYONE
    user = actor.user if board_is_open else current_user(actor.user)
    if not board.user_can_edit(user, share):
        raise Refusal("forbidden", "You may not change the sliders on this board.")


def board_slug(board: Board | str) -> str:
    """The board's slug; one given as text is checked before any query uses it.

    Raises Refusal("invalid_value") for text the database cannot store.
    """
    if isinstance(board, Board):
        return board.slug
    return check_text(board, field="board's id") if isinstance(board, str) else board


def board_row(board: Board | str, *, lock: bool = False) -> Board:
    """The board's row (locked with `lock`), or Refusal("unknown_board")."""
    rows = Board.objects.select_for_update() if lock else Board.objects
    row = rows.filter(slug=board_slug(board)).first()
    if row is None:
        raise Refusal("unknown_board", f"There is no board '{board_slug(board)[:100]}'.")
    return row
