"""Who is on the other end of a socket: an API token's user, or the session cookie's.

A connection that sends an API token (`auth.token`, the same tokens as the HTTP API's
`Authorization: Bearer`) is that token's user, with exactly the rights the API gives the token:
the user's, no share links, the session cookie ignored. A wrong or revoked token is refused,
never treated as anonymous. Without a token, the session cookie decides, as for a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.cookie import parse_cookie

from sliders import services, sharing
from sliders.models import ApiToken


@dataclass
class Visitor:
    """The signed-in user (or AnonymousUser), and the share links opened in this browser."""

    user: Any = field(default_factory=AnonymousUser)
    share_links: dict[str, int] = field(default_factory=dict)  # board slug -> ShareLink id
    api_token: ApiToken | None = None  # the token the connection signed in with, if any


def has_session_cookie(environ: dict[str, Any]) -> bool:
    """Whether the request carries a session cookie (if not, the user is anonymous: no query)."""
    return bool(parse_cookie(environ.get("HTTP_COOKIE", "")).get(settings.SESSION_COOKIE_NAME))


def visitor_from_environ(environ: dict[str, Any]) -> Visitor:
    """The visitor behind the request's session cookie.

    Runs the same session and auth backends as a page request, so logging out (or changing the
    password) on the site takes effect for new socket connections too. Must run in a sync thread.
    """
    cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return Visitor()
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return Visitor(user=get_user(request), share_links=sharing.links_in(request.session))


def visitor_from_token(token: str) -> Visitor | None:
    """The visitor an API token signs in: its user, no share links; None if it is not valid.

    Wrong, revoked, or a deactivated user's: None. Only reads (the caller records the use).
    Must run in a sync thread.
    """
    if not services.looks_like_api_token(token):
        return None  # not one we could have issued: no query (and no text the digest cannot take)
    row = services.find_api_token(token)
    return None if row is None else Visitor(user=row.user, api_token=row)
