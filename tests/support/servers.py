"""Live servers: uvicorn processes serving `sliderproject.asgi:application` on a free port.

Each runs with the project's own settings (tests/live_settings.py: `sliderproject.settings` with a
fast password hasher; not the test process's tests/settings.py) and shares the test
database through `DATABASE_URL` in the environment; its output goes to a log file under
`SLIDERSYNC_TEST_DIR` that `LiveServer.log()` reads.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
# The settings of every process the tests start: the project's own, with a fast password hasher.
LIVE_SETTINGS = "tests.live_settings"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_start(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    timeout: float,
    name: str,
    log: Callable[[], str],
) -> None:
    """Poll `ready()` every 50 ms until it is true.

    Raises RuntimeError (with `log()`) when `process` exits first or `timeout` seconds pass;
    in the second case the process is stopped first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log()}")
        if ready():
            return
        time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"{name} did not start within {timeout}s:\n{log()}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL when it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class LiveServer:
    """One uvicorn process serving sliderproject.asgi:application."""

    def __init__(self, *, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(os.environ["SLIDERSYNC_TEST_DIR"]) / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Polled until the server answers; a subclass may choose a path that never redirects.
    ready_path = "/"

    def start(self, timeout: float = 20.0) -> LiveServer:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": LIVE_SETTINGS}
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "sliderproject.asgi:application",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                "--ws-per-message-deflate", "false",  # as docs/deploy.md runs it
            ],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_start(self.process, self._answers, timeout=timeout, name="Server", log=self.log)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answers, whatever the status
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing; what was committed must survive."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it; SIGKILL after 10 s."""
        if self.process:
            stop_process(self.process)


class ProductionServer(LiveServer):
    """A LiveServer probed at /healthz: with SECURE_SSL_REDIRECT every other plain-HTTP path
    redirects to https, which this test server does not speak."""

    ready_path = "/healthz"


class BridgeRunner:
    """`manage.py run_bridges` as a process (it needs REDIS_URL in `env`), logging to a file."""

    def __init__(self, *, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": LIVE_SETTINGS}
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.log_path = Path(os.environ["SLIDERSYNC_TEST_DIR"]) / f"bridges-{free_port()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> BridgeRunner:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_bridges"],
            cwd=PROJECT_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_start(
            self.process,
            lambda: "run_bridges is running" in self.log(),
            timeout=timeout,
            name="run_bridges",
            log=self.log,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)
