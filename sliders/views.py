"""Pages: the board index and one board, rendered with current values for a correct first paint."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from sliders import addresses, redis_sync, selectors, sharing
from sliders.cluster import get_cluster
from sliders.models import Board, ShareLink
from sliders.services import unstorable_character

logger = logging.getLogger(__name__)


def index(request: HttpRequest) -> HttpResponse:
    boards = selectors.visible_boards(request.user).annotate(slider_count=Count("sliders"))
    return render(request, "sliders/index.html", {"boards": boards})


async def presence(request: HttpRequest) -> JsonResponse:
    """How many are on each board the user may see: `{"boards": {"main": 3}}`, for the index.

    Async, so it reads the realtime server's counts (across processes with Redis) on its loop.
    """
    boards = selectors.visible_boards(await request.auser())
    slugs = [slug async for slug in boards.values_list("slug", flat=True)]
    counts = {slug: await get_cluster().total_count(slug) for slug in slugs}
    return JsonResponse({"boards": counts}, headers={"Cache-Control": "no-store"})


def board(request: HttpRequest, slug: str) -> HttpResponse:
    board = get_object_or_404(Board, slug=slug)
    rights = selectors.viewer_rights(
        board, user=request.user, share_link=sharing.links_in(request.session).get(slug)
    )
    if not rights.can_view:
        return redirect_to_login(request.get_full_path())
    return render(
        request,
        "sliders/board.html",
        {
            "board": board,
            "sliders": list(board.sliders.all()),
            "presets": list(board.presets.all()),
            "can_edit": rights.can_edit,
            "share": rights.share,
            "sign_in_may_help": _sign_in_may_help(request, board, rights),
        },
    )


def _sign_in_may_help(request: HttpRequest, board: Board, rights: selectors.Rights) -> bool:
    """Whether a read-only page should suggest signing in: only where it can give the right to
    edit (a board for signed-in editors, a visitor who is not signed in and holds no share link;
    a share link's role is what its holder gets)."""
    return (
        not rights.can_edit
        and not request.user.is_authenticated
        and rights.share is None
        and board.edit_access == Board.Access.EDITORS
    )


def share(request: HttpRequest, token: str) -> HttpResponse:
    """Open a board through a share link: this browser gets the link's role on the board."""
    link = (
        # A token the database cannot look up (`%00` in the address) is no link either.
        ShareLink.objects.select_related("board").filter(token=token, revoked=False).first()
        if unstorable_character(token) is None
        else None
    )
    if link is None:
        return render(request, "sliders/share_invalid.html", status=404)
    sharing.remember(request.session, link)
    return redirect(link.board)


def healthz(request: HttpRequest) -> JsonResponse:
    """Is this process able to serve? 200 when every configured service answers, else 503.

    For load balancers and monitors: `{"database": "up", "redis": "up" | "down" | "not
    configured"}`. Nothing about the data is revealed.
    """
    checks = {"database": _database_status(), "redis": _redis_status()}
    healthy = all(status in ("up", "not configured") for status in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


async def metrics(request: HttpRequest) -> HttpResponse:
    """This process's figures in Prometheus's text format, for `METRICS_ALLOWED_IPS` only.

    Async, so it reads the realtime server's state on the server's own thread.
    """
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    from sliders import metrics as _registered  # noqa: F401  (registers the collectors)

    if not _metrics_allowed(addresses.request_ip(request)):
        return HttpResponseForbidden("Metrics are not served to this address.\n")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _metrics_allowed(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if client in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.warning("Health check: the database is down", exc_info=True)
        return "down"
    return "up"


def _redis_status() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    import redis

    try:
        client = redis_sync.client(connect_timeout=1, timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError:
        logger.warning("Health check: Redis is down")
        return "down"
    return "up"
