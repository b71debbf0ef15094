"""Django's database sessions, refusing session keys the database cannot look up.

A quoted cookie value may carry octal escapes, which Django's cookie parser decodes, so
`sessionid="\\000abcdefgh"` arrives as a key holding NUL; Django looks any key of 8 characters
or more up in the database, where PostgreSQL's driver refuses NUL with a DataError: a server
error on every page and `unavailable` for a socket. Such a key is no session at all here.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from sliders.services import unstorable_character


class SessionStore(DatabaseSessionStore):
    """The database session store (SESSION_ENGINE = "sliders.sessions")."""

    def _validate_session_key(self, key: Any) -> bool:
        valid = super()._validate_session_key(key)  # type: ignore[misc]  # missing in django-stubs
        return bool(valid) and unstorable_character(key) is None
