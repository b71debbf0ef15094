"""Accounts for tests: the one test password, users who sign in to a live server, cookies.

The test process hashes passwords with MD5 (tests/settings.py), which is fast. The live
servers run with the project's settings, whose hashers cannot read an MD5 hash, so a user who
signs in to a live server with `PASSWORD` gets a hash the live servers accept
(`settings.LIVE_SERVER_PASSWORD_HASHERS`), made once per test session.
"""

from __future__ import annotations

import functools
from typing import Any

PASSWORD = "a-long-test-password-1"


@functools.cache
def live_password_hash() -> str:
    """`PASSWORD` hashed with the live servers' preferred hasher (slow: made once)."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.utils.module_loading import import_string

    hasher = import_string(settings.LIVE_SERVER_PASSWORD_HASHERS[0])()
    return make_password(PASSWORD, hasher=hasher)


def live_superuser(username: str, email: str) -> Any:
    """A superuser, saved in the shared database, who signs in to a live server with PASSWORD."""
    from django.contrib.auth.models import User

    user = User.objects.create_superuser(username, email)  # no password yet: nothing hashed
    user.password = live_password_hash()
    user.save(update_fields=["password"])
    return user


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
