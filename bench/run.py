"""Benchmark Slider Sync against two peers that speak the same protocol, with one generator.

Run from the project directory with the project's virtualenv:

    .venv/bin/python bench/run.py [--quick] [--servers slidersync,python,node] [--runs 3]

Every (scenario, server, run) gets a fresh server process pinned to CPU core 0 and the load
generator (bench/loadgen.mjs) pinned to core 1. Prints one table per scenario and writes every
run, the medians and the machine to a JSON file. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

# Above this much CPU used by other processes during a measurement, its table says so.
NOISE_WARNING_PERCENT = 10

SERVER_LABELS = {"slidersync": "Slider Sync", "python": "python-socketio", "node": "Node"}
RATIO_LABELS = {"python": "py", "node": "Node"}


@dataclass(frozen=True)
class Scenario:
    clients: int
    draggers: int = 0
    rate: float = 30.0
    connect_only: bool = False


SCENARIOS = {
    "100x1": Scenario(100, 1),
    "1000x1": Scenario(1000, 1),
    "200x8": Scenario(200, 8),
    "1000x8": Scenario(1000, 8),  # overload
    "connect1000": Scenario(1000, connect_only=True),
}
QUICK_SCENARIOS = {
    "20x1": Scenario(20, 1),
    "20x2": Scenario(20, 2),
    "connect50": Scenario(50, connect_only=True),
}

# (label, path into a run's result, format); the table shows the median over the runs.
DRAG_ROWS = [
    ("connect p50 ms", "connect.p50", "{:.1f}"),
    ("connect p99 ms", "connect.p99", "{:.1f}"),
    ("ack p50 ms", "ack.p50", "{:.2f}"),
    ("ack p99 ms", "ack.p99", "{:.2f}"),
    ("ack errors", "ack.error_count", "{:.0f}"),
    ("fresh p50 ms", "freshness.p50", "{:.2f}"),
    ("fresh p90 ms", "freshness.p90", "{:.2f}"),
    ("fresh p99 ms", "freshness.p99", "{:.2f}"),
    ("fresh max ms", "freshness.max", "{:.1f}"),
    ("fresh p99 1st s", "freshness.first_second_p99", "{:.2f}"),
    ("fresh p99 last s", "freshness.last_second_p99", "{:.2f}"),
    ("fresh samples", "freshness.samples", "{:.0f}"),
    ("stale pairs", "stale", "{:.0f}"),
    ("never delivered", "undelivered", "{:.0f}"),
    ("msgs/s delivered", "delivered.messages_per_s", "{:.0f}"),
    ("updates/s", "delivered.updates_per_s", "{:.0f}"),
    ("disconnects", "disconnects", "{:.0f}"),
    ("server CPU %", "server.cpu_percent", "{:.0f}"),
    ("server peak RSS MB", "server.peak_rss_mb", "{:.0f}"),
    ("generator CPU %", "generator.cpu_percent", "{:.0f}"),
    ("gen send lag p99 ms", "send_lag.p99", "{:.1f}"),
    ("other CPU % (noise)", "other_cpu_percent", "{:.0f}"),
]
CONNECT_ROWS = [
    ("connect p50 ms", "connect.p50", "{:.1f}"),
    ("connect p99 ms", "connect.p99", "{:.1f}"),
    ("connect max ms", "connect.max", "{:.1f}"),
    ("connect failed", "connect.failed", "{:.0f}"),
    ("disconnects", "disconnects", "{:.0f}"),
    ("server CPU % (run)", "server.cpu_percent", "{:.0f}"),
    ("server peak RSS MB", "server.peak_rss_mb", "{:.0f}"),
    ("other CPU % (noise)", "other_cpu_percent", "{:.0f}"),
]


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


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) summed over the process tree, in MB."""
    total_kb = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


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


@dataclass(frozen=True)
class Mark:
    """CPU counters at one moment of a run."""

    at: float
    server: float
    generator: float
    machine: float

    @classmethod
    def now(cls, server_pid: int, generator_pid: int) -> Mark:
        return cls(
            time.monotonic(),
            cpu_seconds(server_pid),
            cpu_seconds(generator_pid),
            machine_busy_seconds(),
        )


def run_generator(
    server: Server,
    scenario: Scenario,
    duration: float,
    pin: bool,
    label: str,
    deflate: bool,
    on_marker: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run loadgen.mjs against `server`; sample CPU counters at the generator's phase markers.

    `on_marker`, if given, is also called with each marker's name ("drag-start", ...) from the
    thread that reads the generator's stderr (bench/soak.py times its memory samples by it).
    """
    args = ["--url", server.url, "--board", BOARD, "--clients", str(scenario.clients)]
    if scenario.connect_only:
        args.append("--connect-only")
    else:
        args += ["--draggers", str(scenario.draggers), "--rate", str(scenario.rate)]
        args += ["--duration", str(duration)]
    if deflate:
        args.append("--deflate")
    command = pinned(GENERATOR_CORE, [NODE, str(BENCH_DIR / "loadgen.mjs"), *args], pin)
    generator = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BENCH_DIR
    )
    pids = (server.process.pid, generator.pid)  # taskset execs, so the pid is node's
    marks = {"start": Mark.now(*pids)}

    def read_stderr() -> None:
        assert generator.stderr is not None
        for line in generator.stderr:
            if line.startswith("@@BENCH "):
                marks[line.split()[1]] = Mark.now(*pids)
                if on_marker is not None:
                    on_marker(line.split()[1])
            else:
                sys.stderr.write(f"  {label} {line}")

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert generator.stdout is not None
    stdout = generator.stdout.read()
    marks["end"] = Mark.now(*pids)
    generator.wait()
    reader.join(5)

    def percent(first: str, last: str, what: str) -> float | None:
        """CPU use between two marks, as % of one core."""
        if first not in marks or last not in marks or marks[last].at <= marks[first].at:
            return None
        a, b = marks[first], marks[last]
        if what == "other":  # neither the server nor the generator: noise on the machine
            used = (b.machine - a.machine) - (b.server - a.server) - (b.generator - a.generator)
        else:
            used = getattr(b, what) - getattr(a, what)
        return round(max(used, 0.0) / (b.at - a.at) * 100, 1)

    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": f"the generator printed no result (exit code {generator.returncode})"}
    if generator.returncode != 0:
        result.setdefault("error", f"the generator exited with code {generator.returncode}")
    window = ("start", "end") if scenario.connect_only else ("drag-start", "drag-end")
    result["server"] = {
        "cpu_percent": percent(*window, "server"),
        "cpu_percent_settle": percent("drag-start", "settle-end", "server"),
        "cpu_percent_run": percent("start", "end", "server"),
        "peak_rss_mb": round(peak_rss_mb(server.process.pid), 1),
    }
    # Other processes on the machine during the measured window: a busy machine skews results.
    result["other_cpu_percent"] = percent(*window, "other")
    if result.get("ack"):
        result["ack"]["error_count"] = sum(result["ack"].get("errors", {}).values())
    return result


# --- Results ------------------------------------------------------------------------------


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[path] = value
    return flat


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The median of every numeric metric over the runs that produced it."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for path, value in flatten(run).items():
            values.setdefault(path, []).append(value)
    return {path: statistics.median(v) for path, v in values.items()}


def machine_info(pin: bool) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("Django", "python-socketio", "python-engineio", "uvicorn", "uvloop", "websockets"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    for name in ("socket.io", "ws"):
        with contextlib.suppress(OSError, ValueError):
            package = BENCH_DIR / "node_modules" / name / "package.json"
            versions[f"npm:{name}"] = json.loads(package.read_text())["version"]
    node = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "packages": versions,
        "pinned": pin,
        "slidersync_command": shlex.join(slidersync_command(0)).replace("--port 0", "--port N"),
    }


def fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def print_table(
    name: str, scenario: Scenario, per_server: dict[str, dict[str, Any]], servers: list[str]
) -> None:
    rows = CONNECT_ROWS if scenario.connect_only else DRAG_ROWS
    what = (
        f"{scenario.clients} clients connecting at once"
        if scenario.connect_only
        else f"{scenario.clients} clients, {scenario.draggers} dragger(s) at {scenario.rate:g} Hz"
    )
    headers = ["", *(SERVER_LABELS[s] for s in servers)]
    peers = [p for p in ("python", "node") if "slidersync" in servers and p in servers]
    headers += [f"SS/{RATIO_LABELS[p]}" for p in peers]
    table = [headers]
    for label, path, pattern in rows:
        row = [label]
        for server in servers:
            row.append(fmt(per_server[server]["median"].get(path), pattern))
        for peer in peers:
            ss = per_server["slidersync"]["median"].get(path)
            theirs = per_server[peer]["median"].get(path)
            comparable = ss is not None and theirs and path != "other_cpu_percent"
            row.append(f"{ss / theirs:.2f}x" if comparable else "-")
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    print(f"\n== {name}: {what}")
    for row in table:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
    for server in servers:
        for run in per_server[server]["runs"]:
            if "error" in run:
                print(f"   ! {SERVER_LABELS[server]}: {run['error']}")
        noise = per_server[server]["median"].get("other_cpu_percent")
        if noise is not None and noise > NOISE_WARNING_PERCENT:
            print(f"   ! {SERVER_LABELS[server]}: other processes used {noise:.0f}% CPU meanwhile")


# The targets of the performance work (docs/performance.md), checked on Slider Sync's medians.
# Each: (scenario, what, check(slider_sync_medians, node_medians) -> (figure, passed)).
Medians = dict[str, float]


def _at_most(path: str, limit: float) -> Any:
    def check(ss: Medians, node: Medians | None) -> tuple[str, bool | None]:
        value = ss.get(path)
        return fmt(value, "{:.1f}"), None if value is None else value <= limit

    return check


def _fresh_vs_node(ss: Medians, node: Medians | None) -> tuple[str, bool | None]:
    value, theirs = ss.get("freshness.p99"), (node or {}).get("freshness.p99")
    if value is None or theirs is None:
        return fmt(value, "{:.1f}") + " (no Node figure)", None
    return f"{value:.1f} vs Node {theirs:.1f}", value <= 2 * theirs


def _no_backlog_growth(ss: Medians, node: Medians | None) -> tuple[str, bool | None]:
    first, last = ss.get("freshness.first_second_p99"), ss.get("freshness.last_second_p99")
    if first is None or last is None:
        return "-", None
    return f"first s {first:.1f}, last s {last:.1f}", last <= first


TARGETS = [
    ("100x1", "freshness p99 <= 15 ms", _at_most("freshness.p99", 15)),
    ("1000x1", "freshness p99 <= 100 ms", _at_most("freshness.p99", 100)),
    ("1000x1", "freshness p99 <= 2x Node's", _fresh_vs_node),
    ("1000x1", "nothing stale at the end", _at_most("stale", 0)),
    ("200x8", "freshness p99 <= 100 ms", _at_most("freshness.p99", 100)),
    ("200x8", "ack p99 <= 50 ms (committed)", _at_most("ack.p99", 50)),
    ("1000x8", "freshness p99 <= 250 ms", _at_most("freshness.p99", 250)),
    ("1000x8", "last second's p99 no worse than the first's", _no_backlog_growth),
    ("1000x8", "no disconnects", _at_most("disconnects", 0)),
    ("1000x8", "nothing stale at the end", _at_most("stale", 0)),
    ("connect1000", "connect p99 <= 1500 ms", _at_most("connect.p99", 1500)),
    ("connect1000", "all connected", _at_most("connect.failed", 0)),
    ("1000x1", "peak RSS <= 150 MB", _at_most("server.peak_rss_mb", 150)),
    ("1000x8", "peak RSS <= 150 MB", _at_most("server.peak_rss_mb", 150)),
    ("connect1000", "peak RSS <= 150 MB", _at_most("server.peak_rss_mb", 150)),
]


def print_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Slider Sync's medians against the targets, for the scenarios that were run."""
    checked = []
    for name, what, check in TARGETS:
        servers = report["scenarios"].get(name, {}).get("servers", {})
        if "slidersync" not in servers:
            continue
        node = servers.get("node", {}).get("median")
        figure, passed = check(servers["slidersync"]["median"], node)
        checked.append({"scenario": name, "target": what, "figure": figure, "met": passed})
    if checked:
        print("\n== Targets (Slider Sync, medians)")
        for row in checked:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[row["met"]]
            print(f"  {verdict:6}  {row['scenario']:11}  {row['target']:45}  {row['figure']}")
    return checked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", default="slidersync,python,node")
    parser.add_argument("--scenarios", help="comma-separated (default: all)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="drag seconds")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes, 2 s, 1 run")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "latest.json")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPU cores")
    parser.add_argument(
        "--deflate", action="store_true", help="clients offer permessage-deflate, as browsers do"
    )
    args = parser.parse_args()

    if not (BENCH_DIR / "node_modules" / "ws").is_dir():
        print("bench/node_modules is missing; run: npm ci --prefix bench", file=sys.stderr)
        return 2
    pin = not args.no_pin
    if pin and (shutil.which("taskset") is None or (os.cpu_count() or 1) < 2):
        print("pinning needs taskset and 2 cores; use --no-pin", file=sys.stderr)
        return 2
    available = QUICK_SCENARIOS if args.quick else SCENARIOS
    if args.quick:
        args.runs, args.duration = 1, 2.0
    names = args.scenarios.split(",") if args.scenarios else list(available)
    servers = args.servers.split(",")
    unknown = [n for n in names if n not in available] + [
        s for s in servers if s not in SERVER_LABELS
    ]
    if unknown:
        print(f"unknown scenario or server: {', '.join(unknown)}", file=sys.stderr)
        print(f"scenarios: {', '.join(available)}; servers: {', '.join(SERVER_LABELS)}")
        return 2

    # 1,000 clients are 1,000 sockets on each side.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    most_clients = max(available[n].clients for n in names)
    if hard != resource.RLIM_INFINITY and hard < most_clients + 1024:
        print(
            f"warning: at most {hard} open files; {most_clients} clients may fail", file=sys.stderr
        )

    logs = args.json.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    machine = machine_info(pin)
    report: dict[str, Any] = {
        "machine": machine,
        "settings": {
            "runs": args.runs,
            "duration": args.duration,
            "quick": args.quick,
            "deflate": args.deflate,
        },
        "scenarios": {},
    }
    for name in names:
        scenario = available[name]
        per_server: dict[str, dict[str, Any]] = {}
        for server_kind in servers:
            runs = []
            for run in range(1, args.runs + 1):
                label = f"[{name} {server_kind} {run}/{args.runs}]"
                print(label, file=sys.stderr, flush=True)
                log_path = logs / f"{name}-{server_kind}-{run}.log"
                try:
                    server = Server(server_kind, log_path, pin)
                except (RuntimeError, subprocess.CalledProcessError) as error:
                    runs.append({"error": f"server did not start: {error} (see {log_path})"})
                    continue
                try:
                    runs.append(
                        run_generator(server, scenario, args.duration, pin, label, args.deflate)
                    )
                finally:
                    server.close()
            ok_runs = [r for r in runs if "error" not in r]
            per_server[server_kind] = {"runs": runs, "median": medians(ok_runs)}
        report["scenarios"][name] = {"scenario": scenario.__dict__, "servers": per_server}
        print_table(name, scenario, per_server, servers)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")  # after every scenario

    report["targets"] = print_targets(report)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nmachine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"Python {machine['python']}, Node {machine['node']}"
    )
    print("packages: " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()))
    pinning = f"server on core {SERVER_CORE}, generator on core {GENERATOR_CORE}"
    print(f"pinning: {pinning if pin else 'off'}; medians of {args.runs} run(s); JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
