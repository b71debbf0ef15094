"""docs/deploy.md's deployment of several processes, on one machine, for benchmark runs.

PostgreSQL and Redis as the guide sets them up for processes behind nginx (a fresh database and
a key prefix of their own, removed afterwards: `fresh_services`), the guide's production
settings (`production_env`), and uvicorn processes started with the command of the guide's
systemd unit, read from docs/deploy.md so the two cannot drift (`deploy_command`, `Backend`), and
the pause of its upgrade loop (`upgrade_pause_s`).
Used by the rolling-restart run (bench/restart.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import redis
from processes import PROJECT_DIR, PYTHON

POSTGRES_URL = os.environ.get("RESTART_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_HOST_URL = os.environ.get("RESTART_REDIS_URL", "redis://127.0.0.1:6379")
GUIDE = PROJECT_DIR / "docs" / "deploy.md"
STOP_TIMEOUT = 30.0  # the guide's TimeoutStopSec: SIGKILL after this long, in seconds
HEALTHY_TIMEOUT = 60.0  # seconds a started process may take to answer /healthz


def deploy_command(port: int) -> list[str]:
    """The uvicorn command of docs/deploy.md's systemd unit, on 127.0.0.1:`port`, this venv."""
    found = re.search(r"^ExecStart=\S*/uvicorn ((?:.*\\\n)*.*)$", GUIDE.read_text(), re.MULTILINE)
    if found is None:
        raise ValueError(f"{GUIDE.name}: no ExecStart=.../uvicorn line; update bench/deployment.py")
    args = shlex.split(found[1].replace("\\\n", " "))
    if args[args.index("--port") + 1] != "8000" or args[args.index("--host") + 1] != "127.0.0.1":
        raise ValueError(f"{GUIDE.name}: the unit no longer serves 127.0.0.1:8000")
    args[args.index("--port") + 1] = str(port)
    return [PYTHON, "-m", "uvicorn", *args]


def upgrade_pause_s() -> float:
    """The seconds docs/deploy.md's upgrade loop waits after a process is healthy, before the next.

    Read from the `sleep N  # ...` line inside the guide's `for port in ...; do ... done` loop,
    so a rolling restart run waits as the guide does. Raises ValueError when the guide has no
    such loop or the loop no such line.
    """
    loop = re.search(r"^for port in .*; do\n((?:.*\n)*?)done$", GUIDE.read_text(), re.MULTILINE)
    pause = (
        None if loop is None else re.search(r"^[ \t]+sleep (\d+(?:\.\d+)?)[ \t]+#", loop[1], re.M)
    )
    if pause is None:
        raise ValueError(f"{GUIDE.name}: the upgrade loop has no pause; update bench/deployment.py")
    return float(pause[1])


class Backend:
    """One Slider Sync process on a fixed port, started again after each stop; one log file."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path) -> None:
        self.port, self.env, self.log_path = port, env, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start it and wait until /healthz answers 200; returns the seconds that took."""
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                deploy_command(self.port),
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"port {self.port}: exited with code {self.process.returncode}")
            if time.monotonic() - began > HEALTHY_TIMEOUT:
                raise RuntimeError(f"port {self.port}: not healthy in {HEALTHY_TIMEOUT:g} s")
            time.sleep(0.1)
        return time.monotonic() - began

    def healthy(self) -> bool:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/healthz", headers={"Host": "127.0.0.1"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def terminate(self) -> dict[str, Any]:
        """SIGTERM as systemd sends it; SIGKILL after STOP_TIMEOUT. How long it took to exit."""
        assert self.process is not None
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        killed = False
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            killed = True
        return {
            "port": self.port,
            "sigterm_to_exit_s": round(time.monotonic() - began, 3),
            "exit_code": self.process.returncode,
            "killed": killed,
        }

    def stop(self) -> None:
        """Stop it if it runs (at the end of a run)."""
        if self.process is not None and self.process.poll() is None:
            self.terminate()


@contextlib.contextmanager
def fresh_services(redis_db: int) -> Iterator[tuple[str, str, str]]:
    """A new PostgreSQL database and a Redis key prefix; (DATABASE_URL, REDIS_URL, prefix).

    The database is dropped and the prefix's keys deleted afterwards.
    """
    name = f"restart_{secrets.token_hex(5)}"
    admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    redis_url = f"{REDIS_HOST_URL}/{redis_db}"
    keys = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    keys.ping()
    prefix = f"slidersync-{name}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", redis_url, prefix
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
        for key in keys.scan_iter(f"{prefix}:*"):
            keys.delete(key)


def production_env(
    database_url: str, redis_url: str, prefix: str, https_port: int
) -> dict[str, str]:
    """docs/deploy.md's production settings for processes behind nginx on this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SOCKETIO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="sliderproject.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        BEHIND_HTTPS_PROXY="true",
        # nginx listens on a port other than 443 here: its origin must be trusted (deploy.md).
        CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{https_port}",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
        SOCKETIO_TRANSPORTS="websocket,polling",
        PRESENCE_PROCESS_TTL="15",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )
    return env


def stored_values(database_url: str, board: str) -> dict[str, dict[str, float]]:
    """Each slider of `board` as the database holds it: {id: {value, version}}."""
    with psycopg.connect(database_url, connect_timeout=3) as db:
        rows = db.execute(
            "SELECT s.slug, s.value, s.version FROM sliders_slider s"
            " JOIN sliders_board b ON b.id = s.board_id WHERE b.slug = %s",
            [board],
        ).fetchall()
    return {slug: {"value": value, "version": version} for slug, value, version in rows}
