"""The benchmark's processes: the servers under test, CPU pinning, and CPU and memory counters.

Used by bench/run.py and bench/soak.py. Every server runs as a fresh process on a free port,
pinned to core 0 (the generator goes to core 1); counters come from /proc. Standard library
only.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
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


def exit_on_sigterm() -> None:
    """Make SIGTERM end a run as Ctrl-C does, through its `finally` blocks and context managers.

    Python's default for SIGTERM ends the process at once: a run stopped with kill(1) or
    timeout(1) left its servers, nginx and load generator running and its database behind.
    """

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


def raise_open_files_limit() -> int | None:
    """Raise this process's open-file limit to its hard limit, which its children inherit:
    1,000 clients are 1,000 sockets on each side. Returns the limit, None when unlimited."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return None if hard == resource.RLIM_INFINITY else hard


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
    """A fresh server on free ports, each process with its own log file.

    `processes` > 1 (Slider Sync only) runs that many uvicorn processes the way docs/deploy.md
    runs several behind nginx, here on one SQLite file (one VAR_DIR) and one Redis, with a key
    prefix of their own that is deleted afterwards; every process is pinned to the server's core.
    """

    def __init__(self, kind: str, log_path: Path, pin: bool, processes: int = 1) -> None:
        if processes > 1 and kind != "slidersync":
            raise ValueError("only Slider Sync runs as several processes")
        self.kind = kind
        self.ports = [free_port() for _ in range(processes)]
        self.tmp = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
        self.redis_prefix = f"slidersync-bench-{secrets.token_hex(6)}" if processes > 1 else ""
        self.logs = [
            (log_path if i == 0 else log_path.with_name(f"{log_path.stem}-p{i + 1}.log")).open("w")
            for i in range(processes)
        ]
        self.processes: list[subprocess.Popen] = []
        try:
            env = self._prepare()
            for port, log in zip(self.ports, self.logs, strict=True):
                command = pinned(SERVER_CORE, self._command(port), pin)
                self.processes.append(
                    subprocess.Popen(
                        command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
            for port, process in zip(self.ports, self.processes, strict=True):
                wait_for_port(port, process)
        except Exception:
            self.close()
            raise

    def _prepare(self) -> dict[str, str]:
        """The servers' environment; for Slider Sync, a migrated database with the bench board."""
        if self.kind != "slidersync":
            return dict(os.environ)
        env = slidersync_env(Path(self.tmp.name))
        if self.redis_prefix:
            redis("ping", env=env)  # a clear error now rather than a log full of them
            env.update(REDIS_URL=REDIS_URL, REDIS_PREFIX=self.redis_prefix)
        manage = [PYTHON, "manage.py"]
        for args in (["migrate", "--noinput", "-v", "0"], ["shell", "-c", CREATE_BOARD]):
            subprocess.run(
                [*manage, *args],
                cwd=PROJECT_DIR,
                env=env,
                check=True,
                stdout=self.logs[0],
                stderr=subprocess.STDOUT,
            )
        return env

    def _command(self, port: int) -> list[str]:
        if self.kind == "python":
            return [PYTHON, str(BENCH_DIR / "peer_python.py"), str(port)]
        if self.kind == "node":
            return [NODE, str(BENCH_DIR / "peer_node.mjs"), str(port)]
        return slidersync_command(port)

    @property
    def process(self) -> subprocess.Popen:
        """The (first) server process."""
        return self.processes[0]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    @property
    def url(self) -> str:
        return self.urls[0]

    def close(self) -> None:
        for process in self.processes:
            stop(process)
        for log in self.logs:
            log.close()
        if self.redis_prefix:
            with contextlib.suppress(RuntimeError):
                redis("delete", self.redis_prefix, env=os.environ)
        self.tmp.cleanup()


# Several Slider Sync processes share this Redis (BENCH_REDIS_URL), each run under a key prefix
# of its own.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SCRIPT = """
import sys
import redis
client = redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3)
if sys.argv[2] == "ping":
    client.ping()
else:
    for key in client.scan_iter(sys.argv[3] + ":*"):
        client.delete(key)
"""


def redis(command: str, *args: str, env: Mapping[str, str]) -> None:
    """`ping` REDIS_URL, or `delete` a prefix's keys, with the redis package of the project."""
    done = subprocess.run(
        [PYTHON, "-c", REDIS_SCRIPT, REDIS_URL, command, *args],
        env=dict(env),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"Redis at {REDIS_URL}: {last}")


def slidersync_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="sliderproject.settings",  # not a caller's (the tests')
        VAR_DIR=str(var_dir),
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Every bench client comes from 127.0.0.1: the default limit (1,000 per address and
        # process) would refuse most of idle5000 and 5000x1.
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
