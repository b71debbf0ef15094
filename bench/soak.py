"""Soak run: one Slider Sync process under steady load for a long time (docs/performance.md).

Run from the project directory with the project's virtualenv (or through scripts/soak):

    .venv/bin/python bench/soak.py [--minutes 30] [--clients 1000] [--baseline-minute 5]

Reuses the benchmark (bench/run.py): the same server start-up, CPU pinning (server on core 0,
generator on core 1) and load generator (bench/loadgen.mjs), with 2 draggers at 10 Hz for the
whole run. Samples the server's RSS once a minute from the start of the drag, then prints and
writes JSON: RSS at the baseline minute and at the end, disconnects, freshness p99 of the first
and the last minute, and the error lines of the server's log. Exit status: 0 when every target
is met, 1 when one is missed, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from processes import BENCH_DIR, Server, exit_on_sigterm, raise_open_files_limit
from run import Scenario, machine_info, run_generator

DRAGGERS, RATE = 2, 10.0
# RSS at the end may exceed the baseline minute's by this much.
RSS_GROWTH_PERCENT = 5.0
# Run-to-run noise of a minute's freshness p99 on this machine: the last minute may be worse
# than the first by this factor plus this many ms before it counts as a backlog or a leak
# (docs/performance.md, "Soak", says where the figures come from).
P99_NOISE_FACTOR = 1.25
P99_NOISE_MS = 5.0
# A log line is an error when it matches (Python logging's and uvicorn's formats, tracebacks).
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|^Traceback ")


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` and its descendants, in MB (0 once it is gone)."""
    try:
        process = psutil.Process(pid)
        tree = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in tree:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return round(total / 2**20, 1)


def stolen_seconds() -> float:
    """CPU time the hypervisor took from this machine since boot, all cores, in seconds.

    The `steal` column of /proc/stat's `cpu` line (proc(5)), in clock ticks. A virtual machine
    paused or starved by its host shows here and nowhere else: every process on it, the load
    generator included, stops for that long, which a minute's freshness p99 then shows.
    0 where /proc/stat has no such column.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class RssSampler:
    """Samples the server's RSS at each whole minute after the drag starts, and at its end.

    Also the CPU time the hypervisor stole in each minute (`stolen_seconds`), so that a minute
    spoiled by the machine, not by the server, can be told apart.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.by_minute: list[float] = []
        self.stolen_by_minute: list[float] = []
        self.at_end: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def on_marker(self, name: str) -> None:
        if name == "drag-start":
            self._thread.start()
        elif name == "drag-end":
            self.at_end = rss_mb(self.pid)
            self._stop.set()

    def _run(self) -> None:
        start = time.monotonic()
        stolen = stolen_seconds()
        minute = 1
        while not self._stop.wait(max(0.0, start + 60 * minute - time.monotonic())):
            self.by_minute.append(rss_mb(self.pid))
            stolen, before = stolen_seconds(), stolen
            self.stolen_by_minute.append(round(stolen - before, 2))
            print(
                f"  minute {minute}: server RSS {self.by_minute[-1]:.1f} MB,"
                f" CPU stolen by the host {self.stolen_by_minute[-1]:.2f} s",
                file=sys.stderr,
            )
            minute += 1

    def join(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def error_lines(log_path: Path) -> list[str]:
    """The lines of the server's log that report an error."""
    text = log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if ERROR_LINE.search(line)]


def judge(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its figure and whether it was met (None: no figure)."""
    rss_change = report["rss_change_percent"]
    first, last = report["freshness_p99_first_minute_ms"], report["freshness_p99_last_minute_ms"]
    p99_limit = None if first is None else first * P99_NOISE_FACTOR + P99_NOISE_MS
    return [
        {
            "target": f"RSS at the end within {RSS_GROWTH_PERCENT:g} % of minute "
            f"{report['settings']['baseline_minute']}'s",
            "figure": f"{report['rss_mb_at_baseline']} -> {report['rss_mb_at_end']} MB "
            f"({rss_change:+.1f} %)"
            if rss_change is not None
            else "-",
            "met": None if rss_change is None else rss_change <= RSS_GROWTH_PERCENT,
        },
        {
            "target": "every client connected, no disconnects",
            "figure": f"{report['connect_failed']} failed, {report['disconnects']} disconnects",
            "met": report["connect_failed"] == 0 and report["disconnects"] == 0,
        },
        {
            "target": "last minute's freshness p99 no worse than the first's (within noise)",
            "figure": f"first {first} ms, last {last} ms, limit "
            + ("-" if p99_limit is None else f"{p99_limit:.1f} ms"),
            "met": None if last is None or p99_limit is None else last <= p99_limit,
        },
        {
            "target": "nothing stale at the end",
            "figure": str(report["stale"]),
            "met": report["stale"] == 0,
        },
        {
            "target": "no error in the server's log",
            "figure": f"{len(report['error_lines'])} line(s)",
            "met": not report["error_lines"],
        },
    ]


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the drag")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--baseline-minute", type=int, default=5, help="the RSS sample the end is compared to"
    )
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "soak.json")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPU cores")
    args = parser.parse_args()

    if not (BENCH_DIR / "node_modules" / "ws").is_dir():
        print("bench/node_modules is missing; run: npm ci --prefix bench", file=sys.stderr)
        return 2
    if not 1 <= args.baseline_minute < args.minutes:  # the end is sampled at the drag's end
        print("--baseline-minute must be at least 1 and less than --minutes", file=sys.stderr)
        return 2
    pin = not args.no_pin
    if pin and shutil.which("taskset") is None:
        print("pinning needs taskset; use --no-pin", file=sys.stderr)
        return 2
    raise_open_files_limit()

    logs = args.json.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "soak-slidersync.log"
    scenario = Scenario(args.clients, DRAGGERS, RATE)
    try:
        server = Server("slidersync", log_path, pin)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"the server did not start: {error} (see {log_path})", file=sys.stderr)
        return 2
    sampler = RssSampler(server.process.pid)
    try:
        result = run_generator(
            server, scenario, args.minutes * 60, pin, "[soak]", False, sampler.on_marker
        )
    finally:
        sampler.join()
        server.close()
    if "error" in result:
        print(f"the load generator failed: {result['error']}", file=sys.stderr)
        return 2

    samples = sampler.by_minute
    baseline = samples[args.baseline_minute - 1] if len(samples) >= args.baseline_minute else None
    end = sampler.at_end
    by_minute = result["freshness"]["p99_by_minute"]
    report: dict[str, Any] = {
        "settings": {
            "minutes": args.minutes,
            "clients": args.clients,
            "draggers": DRAGGERS,
            "rate": RATE,
            "baseline_minute": args.baseline_minute,
            "rss_growth_percent": RSS_GROWTH_PERCENT,
            "p99_noise_factor": P99_NOISE_FACTOR,
            "p99_noise_ms": P99_NOISE_MS,
        },
        "rss_mb_by_minute": sampler.by_minute,
        "cpu_stolen_s_by_minute": sampler.stolen_by_minute,
        "rss_mb_at_baseline": baseline,
        "rss_mb_at_end": end,
        "rss_change_percent": round((end - baseline) / baseline * 100, 2)
        if baseline and end
        else None,
        "connect_failed": result["connect"]["failed"],
        "disconnects": result["disconnects"],
        "freshness_p99_by_minute_ms": by_minute,
        "freshness_p99_first_minute_ms": by_minute[0] if by_minute else None,
        "freshness_p99_last_minute_ms": by_minute[-1] if by_minute else None,
        "stale": result["stale"],
        "error_lines": error_lines(log_path),
        "server_log": str(log_path),
        "generator": result,
        "machine": machine_info(pin),
    }
    report["targets"] = judge(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"\n== Soak: {args.clients} clients, {DRAGGERS} draggers at {RATE:g} Hz, "
        f"{args.minutes:g} min, one process"
    )
    print("RSS MB by minute: " + ", ".join(f"{x:.1f}" for x in sampler.by_minute))
    print("freshness p99 ms by minute: " + ", ".join(str(x) for x in by_minute))
    print(
        "CPU s stolen by the host by minute: " + ", ".join(str(x) for x in sampler.stolen_by_minute)
    )
    for line in report["error_lines"][:20]:
        print(f"  log: {line}")
    for row in report["targets"]:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[row["met"]]
        print(f"  {verdict:6}  {row['target']:70}  {row['figure']}")
    print(f"JSON: {args.json}; server log: {log_path}")
    return 0 if all(row["met"] for row in report["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
