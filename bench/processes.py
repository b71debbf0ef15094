"""The benchmark's processes: the servers under test, CPU pinning, and CPU and memory counters.

Used by bench/run.py and bench/soak.py. Every server runs as a fresh process on a free port,
pinned to core 0 (the generator goes to core 1); counters come from /proc. Standard library
only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
PYTHON = sys.executable
NODE = shutil.which("node") or "node"
SERVER_CORE, GENERATOR_CORE = "0", "1"
BOARD = "bench"


def slidersync_command(port: int) -> list[str]:
    """How Slider Sync is served in the benchmark (extra flags: BENCH_SLIDERSYNC_UVICORN_ARGS)."""
    extra = shlex.split(os.environ.get("BENCH_SLIDERSYNC_UVICORN_ARGS", ""))
    return [
        PYTHON,
        "-m",
        "uvicorn",
        "sliderproject.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws-per-message-deflate",  # as docs/deploy.md runs it
        "false",
        *extra,
    ]


# Creates the bench board through the service layer, as the admin would.
CREATE_BOARD = f"""
from sliders import services
from sliders.models import Board, Slider
board = Board.objects.create(slug={BOARD!r}, name="Bench")
for i in range(1, 9):
    services.save_slider(
        slider=Slider(board=board, slug=f"s{{i}}", name=f"Slider {{i}}", min=0,
                      max=1_000_000_000, step=1, position=i),
        requested_value=0,
    )
"""

# --- Processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the server did not accept connections on port {port} in {timeout} s")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a server started with --workers has several processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process tree, in seconds."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / CLOCK_TICKS


def memory_kb(pid: int, field: str) -> int:
    """A memory field of /proc/PID/status (VmRSS, VmHWM) summed over the process tree, in KB."""
    total_kb = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total_kb += int(line.split()[1])
    return total_kb


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) summed over the process tree, in MB."""
    return memory_kb(pid, "VmHWM") / 1024


def stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pinned(core: str, command: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", core, *command] if pin else command


class Server:
    """One fresh server process on a free port, with its own log file."""

    def __init__(self, kind: str, log_path: Path, pin: bool) -> None:
        self.kind = kind
        self.port = free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
        self.log = log_path.open("w")
        try:
            env, command, cwd = self._prepare(pin)
        except Exception:
            self.log.close()
            self.tmp.cleanup()
            raise
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port, self.process)
        except Exception:
            self.close()
            raise

    def _prepare(self, pin: bool) -> tuple[dict[str, str], list[str], Path]:
        env = dict(os.environ)
        if self.kind == "python":
            command = [PYTHON, str(BENCH_DIR / "peer_python.py"), str(self.port)]
        elif self.kind == "node":
            command = [NODE, str(BENCH_DIR / "peer_node.mjs"), str(self.port)]
        else:
            env = slidersync_env(Path(self.tmp.name))
            manage = [PYTHON, "manage.py"]
            for args in (["migrate", "--noinput", "-v", "0"], ["shell", "-c", CREATE_BOARD]):
                subprocess.run(
                    [*manage, *args],
                    cwd=PROJECT_DIR,
                    env=env,
                    check=True,
                    stdout=self.log,
                    stderr=subprocess.STDOUT,
                )
            command = slidersync_command(self.port)
        return env, pinned(SERVER_CORE, command, pin), PROJECT_DIR

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        stop(self.process)
        self.log.close()
        self.tmp.cleanup()


def slidersync_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="sliderproject.settings",  # not a caller's (the tests')
        VAR_DIR=str(var_dir),
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Every bench client comes from 127.0.0.1; the default limit is 200 per address.
        SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS="10000",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
    )
    return env


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores, steal included), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / CLOCK_TICKS
