"""Settings for the test process: the project's own settings on a throwaway database.

The database location is put in the environment before the project settings load, so the
uvicorn processes that the live tests start (with the real `sliderproject.settings`) share it.
Set TEST_DATABASE_URL to run against another database (e.g. PostgreSQL).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("SLIDERSYNC_TEST_DIR", tempfile.mkdtemp(prefix="slidersync-test-"))
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL") or (
    f"sqlite:///{os.environ['SLIDERSYNC_TEST_DIR']}/db.sqlite3"
)
os.environ.setdefault("DEBUG", "true")
# The servers the tests start share one database without Redis: each would run the bridges and
# send every change. Only those that a test starts for the bridges do (BRIDGES_IN_PROCESS=true).
os.environ.setdefault("BRIDGES_IN_PROCESS", "false")

from sliderproject.settings import *  # noqa: F403

# Async tests create their boards with the ORM before any client connects; allow that in the
# test process only (the live servers are started without this variable).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# A fast password hasher, as in the processes the tests start (tests/live_settings.py), so a
# user made here signs in there.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
