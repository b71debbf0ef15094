"""Who is on the other end of a socket: the user of the Django session cookie, if any."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.cookie import parse_cookie


def has_session_cookie(environ: dict[str, Any]) -> bool:
    """Whether the request carries a session cookie (if not, the user is anonymous: no query)."""
    return bool(parse_cookie(environ.get("HTTP_COOKIE", "")).get(settings.SESSION_COOKIE_NAME))


def user_from_environ(environ: dict[str, Any]) -> Any:
    """Return the signed-in user for the request's session cookie, or AnonymousUser.

    Runs the same session and auth backends as a page request, so logging out (or changing the
    password) on the site takes effect for new socket connections too. Must run in a sync thread.
    """
    cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return AnonymousUser()
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(request)
