"""The benchmark's results: medians over runs, the tables, and the targets of the performance work.

Used by bench/run.py. Every run's result is the load generator's JSON plus the server's CPU and
memory figures; a table cell is the median of one figure over the runs. Standard library only.
"""

from __future__ import annotations

import statistics
from typing import Any

# Above this much CPU used by other processes during a measurement, its table says so.
NOISE_WARNING_PERCENT = 10

SERVER_LABELS = {"slidersync": "Slider Sync", "python": "python-socketio", "node": "Node"}
RATIO_LABELS = {"python": "py", "node": "Node"}

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
    ("server CPU µs/update", "server.us_per_update", "{:.1f}"),
    ("server CPU µs/msg", "server.us_per_message", "{:.1f}"),
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
    ("server RSS before MB", "server.rss_mb_before", "{:.1f}"),
    ("server RSS idle MB", "server.rss_mb_idle", "{:.1f}"),
    ("RSS KB per idle conn", "server.kb_per_idle_connection", "{:.1f}"),
    ("other CPU % (noise)", "other_cpu_percent", "{:.0f}"),
]


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


def fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def print_table(
    name: str,
    what: str,
    connect_only: bool,
    per_server: dict[str, dict[str, Any]],
    servers: list[str],
    baseline: tuple[str, dict[str, float]] | None = None,
) -> None:
    """One scenario's table: the median of each figure per server, and Slider Sync's ratios.

    `baseline`: (name, medians) of Slider Sync in another scenario, shown next to it with the
    ratio (two processes against one).
    """
    rows = CONNECT_ROWS if connect_only else DRAG_ROWS
    columns = [(SERVER_LABELS[s], per_server[s]["median"]) for s in servers]
    ours = per_server["slidersync"]["median"] if "slidersync" in servers else None
    ratios = []
    if ours is not None:
        ratios = [
            (f"SS/{RATIO_LABELS[p]}", per_server[p]["median"])
            for p in ("python", "node")
            if p in servers
        ]
        if baseline is not None:
            columns.append((f"SS {baseline[0]}", baseline[1]))
            ratios.append((f"SS/{baseline[0]}", baseline[1]))
    headers = ["", *(header for header, _ in columns), *(header for header, _ in ratios)]
    table = [headers]
    for label, path, pattern in rows:
        row = [label, *(fmt(medians.get(path), pattern) for _, medians in columns)]
        for _, other in ratios:
            assert ours is not None
            ss, theirs = ours.get(path), other.get(path)
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
# Each: (scenario, what, check(slider_sync_medians, reference_medians) -> (figure, passed)); the
# reference is Node in the same scenario unless REFERENCES names another, and Slider Sync's
# medians also hold its worst run's figures as `worst.<path>`.
Medians = dict[str, float]


def _at_most(path: str, limit: float) -> Any:
    def check(ss: Medians, node: Medians | None) -> tuple[str, bool | None]:
        value = ss.get(path)
        return fmt(value, "{:.1f}"), None if value is None else value <= limit

    return check


def _vs(path: str, factor: float, reference: str = "Node") -> Any:
    """Slider Sync's figure at most `factor` times the reference's: Node's in the same scenario,
    or what REFERENCES names (`reference` labels it)."""

    def check(ss: Medians, ref: Medians | None) -> tuple[str, bool | None]:
        value, theirs = ss.get(path), (ref or {}).get(path)
        if value is None or theirs is None:
            return fmt(value, "{:.1f}") + f" (no {reference} figure)", None
        return f"{value:.1f} vs {reference} {theirs:.1f}", value <= factor * theirs

    return check


def _every_run_at_most(path: str, limit: float) -> Any:
    """No single run's figure above `limit`: a median hides the one run that queued."""

    def check(ss: Medians, node: Medians | None) -> tuple[str, bool | None]:
        worst = ss.get(f"worst.{path}")
        return fmt(worst, "{:.1f} (worst run)"), None if worst is None else worst <= limit

    return check


def _no_backlog_growth(ss: Medians, node: Medians | None) -> tuple[str, bool | None]:
    first, last = ss.get("freshness.first_second_p99"), ss.get("freshness.last_second_p99")
    if first is None or last is None:
        return "-", None
    return f"first s {first:.1f}, last s {last:.1f}", last <= first


FRESH, ACK, CPU, RSS = "freshness.p99", "ack.p99", "server.us_per_update", "server.peak_rss_mb"
TARGETS = [
    ("100x1", "freshness p99 <= 15 ms", _at_most(FRESH, 15)),
    ("1000x1", "freshness p99 <= 100 ms", _at_most(FRESH, 100)),
    ("1000x1", "freshness p99 <= 1.2x Node's", _vs(FRESH, 1.2)),
    ("1000x1", "nothing stale at the end", _at_most("stale", 0)),
    ("1000x1", "CPU per delivered update <= Node's", _vs(CPU, 1)),
    ("200x8", "freshness p99 <= 100 ms", _at_most(FRESH, 100)),
    ("200x8", "freshness p99 <= 1.2x Node's", _vs(FRESH, 1.2)),
    ("200x8", "ack p99 <= 50 ms (committed)", _at_most(ACK, 50)),
    ("200x8", "CPU per delivered update <= Node's", _vs(CPU, 1)),
    ("200x8", "no run's freshness p99 above 100 ms", _every_run_at_most(FRESH, 100)),
    ("200x8shared", "freshness p99 <= 1.2x Node's", _vs(FRESH, 1.2)),
    ("200x8shared", "ack p99 <= 50 ms (committed)", _at_most(ACK, 50)),
    ("200x8shared", "nothing stale at the end", _at_most("stale", 0)),
    ("200x8shared", "no run's freshness p99 above 100 ms", _every_run_at_most(FRESH, 100)),
    ("1000x1x2", "CPU per delivered update <= 1.15x one process's", _vs(CPU, 1.15, "one process")),
    ("1000x8", "freshness p99 <= 250 ms", _at_most(FRESH, 250)),
    ("1000x8", "last second's p99 no worse than the first's", _no_backlog_growth),
    ("1000x8", "no disconnects", _at_most("disconnects", 0)),
    ("1000x8", "nothing stale at the end", _at_most("stale", 0)),
    ("connect1000", "connect p99 <= 1500 ms", _at_most("connect.p99", 1500)),
    ("connect1000", "connect p99 <= 1.2x Node's", _vs("connect.p99", 1.2)),
    ("connect1000", "all connected", _at_most("connect.failed", 0)),
    ("5000x1", "freshness p99 <= 2x Node's", _vs(FRESH, 2)),
    ("5000x1", "no disconnects", _at_most("disconnects", 0)),
    ("5000x1", "nothing stale at the end", _at_most("stale", 0)),
    ("1000x1", "peak RSS <= 150 MB", _at_most(RSS, 150)),
    ("1000x8", "peak RSS <= 150 MB", _at_most(RSS, 150)),
    ("connect1000", "peak RSS <= 150 MB", _at_most(RSS, 150)),
    ("1000x1", "peak RSS <= Node's", _vs(RSS, 1)),
    ("1000x8", "peak RSS <= Node's", _vs(RSS, 1)),
    ("connect1000", "peak RSS <= Node's", _vs(RSS, 1)),
]


# What a target's check compares with, where it is not Node in the same scenario:
# scenario -> (scenario, server).
REFERENCES = {"1000x1x2": ("1000x1", "slidersync")}


def worst_runs(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The largest value of every numeric metric over the runs, keyed `worst.<path>`."""
    worst: dict[str, float] = {}
    for run in runs:
        if "error" in run:
            continue
        for path, value in flatten(run).items():
            worst[f"worst.{path}"] = max(value, worst.get(f"worst.{path}", value))
    return worst


def print_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Slider Sync's medians against the targets, for the scenarios that were run."""
    checked = []
    for name, what, check in TARGETS:
        servers = report["scenarios"].get(name, {}).get("servers", {})
        if "slidersync" not in servers:
            continue
        ref_scenario, ref_server = REFERENCES.get(name, (name, "node"))
        ref_servers = report["scenarios"].get(ref_scenario, {}).get("servers", {})
        reference = ref_servers.get(ref_server, {}).get("median")
        ours = dict(servers["slidersync"]["median"])
        ours.update(worst_runs(servers["slidersync"]["runs"]))
        figure, passed = check(ours, reference)
        checked.append({"scenario": name, "target": what, "figure": figure, "met": passed})
    if checked:
        print("\n== Targets (Slider Sync, medians)")
        for row in checked:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[row["met"]]
            print(f"  {verdict:6}  {row['scenario']:11}  {row['target']:50}  {row['figure']}")
    return checked
