"""Real PostgreSQL and Redis for tests that run several server processes (scale-out, nginx).

These use the services on 127.0.0.1 (PostgreSQL on 5432, Redis on 6379, or the URLs in
SCALEOUT_POSTGRES_URL / SCALEOUT_REDIS_URL). Each user gets its own database and its own Redis
key prefix. Where the services (or tools) are missing, tests are skipped, except under CI, where
they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import pytest
import redis

from tests.support.servers import LIVE_SETTINGS, PROJECT_DIR

POSTGRES_URL = os.environ.get("SCALEOUT_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SCALEOUT_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for a missing service or tool; under CI, fail it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run these tests against real services")
    pytest.skip(reason)


@contextmanager
def fresh_services(**settings: str) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database, migrated, with the demo board, and a fresh Redis prefix.

    Yields the environment for servers and `manage()` (DATABASE_URL, REDIS_URL, REDIS_PREFIX and
    the given settings); drops the database and the prefix's keys afterwards.
    """
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL} ({error})")
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_URL} ({error})")

    name = f"slidersync_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    env = {
        "DATABASE_URL": POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}",
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": f"slidersync-test-{uuid.uuid4().hex[:10]}",
        **settings,
    }
    try:
        manage("migrate", "--no-input", "-v", "0", env=env)
        manage("load_demo", env=env)
        yield env
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
        keys = redis.Redis.from_url(REDIS_URL)
        for key in keys.scan_iter(f"{env['REDIS_PREFIX']}:*"):
            keys.delete(key)


def manage(*args: str, env: dict[str, str]) -> str:
    """Run `manage.py` with the project's settings and `env`; return its output."""
    full_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": LIVE_SETTINGS}
    full_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR, env=full_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def widen(env: dict[str, str]) -> None:
    """Give s1 of the demo board room for a long drag of distinct values (0 to 1,000,000)."""
    manage(
        "shell",
        "-c",
        "from sliders.models import Slider;"
        "Slider.objects.filter(board__slug='main', slug='s1').update(max=1000000)",
        env=env,
    )
