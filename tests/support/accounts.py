"""Accounts for tests: the one test password, users who sign in to a live server, cookies.

The test process and the processes it starts hash passwords alike, with a fast hasher
(tests/settings.py, tests/live_settings.py), so a user made here signs in there with `PASSWORD`.
"""

from __future__ import annotations

from typing import Any

PASSWORD = "a-long-test-password-1"


def live_superuser(username: str, email: str) -> Any:
    """A superuser, saved in the shared database, who signs in to a live server with PASSWORD."""
    from django.contrib.auth.models import User

    return User.objects.create_superuser(username, email, PASSWORD)


def session_cookie(user: Any) -> str:
    """A `Cookie` header that signs a socket or page request in as `user`.

    The session is created the way a login creates it (Django's test client `force_login`) and
    stored in the shared database, where the live servers find it.
    """
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def share_cookie(link: Any) -> str:
    """A `Cookie` header for a browser that opened the share link `link` (sliders.sharing)."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    from sliders import sharing

    session = SessionStore()
    sharing.remember(session, link)
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
