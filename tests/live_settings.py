"""Settings for the processes the tests start (uvicorn servers, manage.py commands).

The project's own settings, read from the environment as in production, with one change: a fast
password hasher. Django's default (PBKDF2, 1,000,000 iterations in Django 5.2) takes about a
second per sign-in on a 2-core machine, and the live tests sign in some fifty times; the
hasher is the one thing no test here is about.
"""

from __future__ import annotations

from sliderproject.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
