"""Who is on the other end of a socket: the Django session cookie's user and share links."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.cookie import parse_cookie

from sliders import sharing


@dataclass
class Visitor:
    """The signed-in user (or AnonymousUser), and the share links opened in this browser."""

    user: Any = field(default_factory=AnonymousUser)
    share_links: dict[str, int] = field(default_factory=dict)  # board slug -> ShareLink id


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
