"""Share links: a board opened without an account, as a viewer or an editor.

Opening `/s/<token>/` records the link in the browser's session, under the board's slug. Pages,
sockets and services then ask `share_for` for that board's link, which is only returned while it
is not revoked: revoking a link in the admin ends the access it gave at the next check.
"""

from __future__ import annotations

from typing import Any

SESSION_KEY = "share_links"


def remember(session: Any, link: Any) -> None:
    links = dict(session.get(SESSION_KEY, {}))
    links[link.board.slug] = link.pk
    session[SESSION_KEY] = links


def links_in(session: Any) -> dict[str, int]:
    links = session.get(SESSION_KEY, {})
    if not isinstance(links, dict):
        return {}
    return {slug: pk for slug, pk in links.items() if isinstance(pk, int)}


def share_for(link_id: int | None, board: Any) -> Any:
    """The share link `link_id` if it still opens `board`, else None."""
    from sliders.models import ShareLink

    if link_id is None:
        return None
    return ShareLink.objects.filter(pk=link_id, board=board, revoked=False).first()
