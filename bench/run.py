"""Benchmark Slider Sync against two peers that speak the same protocol, with one generator.

Run from the project directory with the project's virtualenv:

    .venv/bin/python bench/run.py [--quick] [--servers slidersync,python,node] [--runs 3]

Every (scenario, server, run) gets a fresh server process (two for 1000x1x2) pinned to CPU
core 0 and the load generator (bench/loadgen.mjs) pinned to core 1. Prints one table per
scenario, checks the targets, and writes every run, the medians and the machine to a JSON file.
Standard library only (the servers are in processes.py, the tables in tables.py).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from processes import (
    BENCH_DIR,
    BOARD,
    GENERATOR_CORE,
    NODE,
    SERVER_CORE,
    Server,
    cpu_seconds,
    exit_on_sigterm,
    machine_busy_seconds,
    memory_kb,
    peak_rss_mb,
    pinned,
    raise_open_files_limit,
    slidersync_command,
)
from tables import SERVER_LABELS, medians, print_table, print_targets


@dataclass(frozen=True)
class Scenario:
    """What the generator does: `clients` connect; `draggers` of them set sliders at `rate` Hz.

    `sliders`: how many sliders the draggers move (dragger i moves slider i % sliders); None is
    one slider each. Fewer sliders than draggers make shared sliders (bench/shared.mjs).
    """

    clients: int
    draggers: int = 0
    rate: float = 30.0
    connect_only: bool = False
    sliders: int | None = None
    connect_rate: float = 0.0  # clients started per second; 0: all at once
    idle: float = 0.0  # connect-only: seconds every client stays connected, quiet, before closing
    processes: int = 1  # Slider Sync only: its processes, sharing one database and Redis
    compare_to: str | None = None  # the scenario whose Slider Sync column the table repeats

    def describe(self) -> str:
        """One line for the table's title."""
        arriving = f"{self.connect_rate:g} a second" if self.connect_rate else "at once"
        if self.connect_only:
            what = f"{self.clients} clients connecting {arriving}"
            return what + (f", then idle for {self.idle:g} s" if self.idle else "")
        what = f"{self.clients} clients, {self.draggers} dragger(s) at {self.rate:g} Hz"
        if self.sliders is not None and self.sliders < self.draggers:
            what += f" sharing {self.sliders} slider(s)"
        if self.connect_rate:
            what += f", connecting {arriving}"
        if self.processes > 1:
            what += (
                f"; {self.processes} Slider Sync processes on one core, the dragger on the first"
                ", the others spread over all"
            )
        return what


SCENARIOS = {
    "100x1": Scenario(100, 1),
    "1000x1": Scenario(1000, 1),
    "200x8": Scenario(200, 8),
    "200x8shared": Scenario(200, 8, sliders=3),  # dragger i on slider i % 3
    "1000x8": Scenario(1000, 8),  # overload
    "connect1000": Scenario(1000, connect_only=True),
    "1000x1x2": Scenario(1000, 1, processes=2, compare_to="1000x1"),  # Slider Sync only
    "5000x1": Scenario(5000, 1, rate=10, connect_rate=500),
    "idle5000": Scenario(5000, connect_only=True, connect_rate=500, idle=5),
}
QUICK_SCENARIOS = {
    "20x1": Scenario(20, 1),
    "20x2": Scenario(20, 2),
    "20x3shared": Scenario(20, 3, sliders=2),  # one slider shared by two, one by one
    "connect50": Scenario(50, connect_only=True),
}


@dataclass(frozen=True)
class Mark:
    """CPU counters (seconds) and the server's resident memory (KB) at one moment of a run."""

    at: float
    server: float
    generator: float
    machine: float
    server_rss_kb: int

    @classmethod
    def now(cls, server_pids: list[int], generator_pid: int) -> Mark:
        """The counters now; the server's are summed over its processes."""
        return cls(
            time.monotonic(),
            sum(cpu_seconds(pid) for pid in server_pids),
            cpu_seconds(generator_pid),
            machine_busy_seconds(),
            sum(memory_kb(pid, "VmRSS") for pid in server_pids),
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
    urls = ",".join(server.urls)  # several: the draggers on the first, the others spread
    args = ["--url", urls, "--board", BOARD, "--clients", str(scenario.clients)]
    if scenario.connect_rate:
        args += ["--connect-rate", str(scenario.connect_rate)]
    if scenario.connect_only:
        args += ["--connect-only", "--idle", str(scenario.idle)]
    else:
        args += ["--draggers", str(scenario.draggers), "--rate", str(scenario.rate)]
        if scenario.sliders is not None:
            args += ["--sliders", str(scenario.sliders)]
        args += ["--duration", str(duration)]
    if deflate:
        args.append("--deflate")
    command = pinned(GENERATOR_CORE, [NODE, str(BENCH_DIR / "loadgen.mjs"), *args], pin)
    generator = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BENCH_DIR
    )
    pids = (server.pids, generator.pid)  # taskset execs, so the pids are the servers' and node's
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

    def cpu(first: str, last: str, what: str) -> float | None:
        """CPU seconds used between two marks, by the server, the generator or the others."""
        if first not in marks or last not in marks or marks[last].at <= marks[first].at:
            return None
        a, b = marks[first], marks[last]
        if what == "other":  # neither the server nor the generator: noise on the machine
            used = (b.machine - a.machine) - (b.server - a.server) - (b.generator - a.generator)
        else:
            used = getattr(b, what) - getattr(a, what)
        return max(used, 0.0)

    def percent(first: str, last: str, what: str) -> float | None:
        """CPU use between two marks, as % of one core."""
        used = cpu(first, last, what)
        return None if used is None else round(used / (marks[last].at - marks[first].at) * 100, 1)

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
        "peak_rss_mb": round(sum(peak_rss_mb(pid) for pid in server.pids), 1),
    }
    # Memory per idle connection: the server's RSS once every client has been connected and
    # quiet for a while, minus its RSS before the first one connected.
    connected = result.get("connect", {}).get("ok")
    if "connect-start" in marks and "idle-end" in marks and connected:
        before, idle = marks["connect-start"].server_rss_kb, marks["idle-end"].server_rss_kb
        result["server"]["rss_mb_before"] = round(before / 1024, 1)
        result["server"]["rss_mb_idle"] = round(idle / 1024, 1)
        result["server"]["kb_per_idle_connection"] = round((idle - before) / connected, 2)
    # CPU per delivery: drag and settle, the window in which the generator counts deliveries.
    busy = cpu("drag-start", "settle-end", "server")
    delivered = result.get("delivered", {})
    for key, count in (("update", "updates"), ("message", "messages")):
        if busy is not None and delivered.get(count):
            result["server"][f"us_per_{key}"] = round(busy * 1e6 / delivered[count], 2)
    # Other processes on the machine during the measured window: a busy machine skews results.
    result["other_cpu_percent"] = percent(*window, "other")
    if result.get("ack"):
        result["ack"]["error_count"] = sum(result["ack"].get("errors", {}).values())
    return result


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


def run_server(
    name: str, scenario: Scenario, kind: str, args: argparse.Namespace, pin: bool, logs: Path
) -> dict[str, Any]:
    """Every run of one scenario on one server (a fresh server each): the runs and the medians."""
    runs = []
    for run in range(1, args.runs + 1):
        label = f"[{name} {kind} {run}/{args.runs}]"
        print(label, file=sys.stderr, flush=True)
        log_path = logs.with_name(f"{logs.name}-{run}.log")
        try:
            server = Server(kind, log_path, pin, scenario.processes)
        except (RuntimeError, subprocess.CalledProcessError) as error:
            runs.append({"error": f"server did not start: {error} (see {log_path})"})
            continue
        try:
            runs.append(run_generator(server, scenario, args.duration, pin, label, args.deflate))
        finally:
            server.close()
    ok_runs = [r for r in runs if "error" not in r]
    return {"runs": runs, "median": medians(ok_runs)}


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", default="slidersync,python,node")
    parser.add_argument("--scenarios", help="comma-separated (default: all)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="drag seconds")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes, 2 s, 1 run")
    parser.add_argument(
        "--clients", type=int, help="every scenario with this many clients (targets not judged)"
    )
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
    available = dict(QUICK_SCENARIOS if args.quick else SCENARIOS)
    if args.clients is not None:  # a smaller (or larger) try of the same scenarios
        available = {n: replace(s, clients=args.clients) for n, s in available.items()}
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

    hard = raise_open_files_limit()
    most_clients = max(available[n].clients for n in names)
    if hard is not None and hard < most_clients + 1024:
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
            "clients": args.clients,
        },
        "scenarios": {},
    }
    for name in names:
        scenario = available[name]
        # Several processes: Slider Sync's scale-out; the peers have none.
        kinds = [s for s in servers if scenario.processes == 1 or s == "slidersync"]
        per_server = {
            kind: run_server(name, scenario, kind, args, pin, logs / f"{name}-{kind}")
            for kind in kinds
        }
        report["scenarios"][name] = {"scenario": scenario.__dict__, "servers": per_server}
        compared = report["scenarios"].get(scenario.compare_to, {}).get("servers", {})
        baseline = None
        if "slidersync" in compared:
            baseline = (str(scenario.compare_to), compared["slidersync"]["median"])
        if kinds:
            print_table(
                name, scenario.describe(), scenario.connect_only, per_server, kinds, baseline
            )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")  # after every scenario

    if args.clients is None:
        report["targets"] = print_targets(report)
    else:
        print("\n(targets not judged: --clients changed the scenarios' sizes)")
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
