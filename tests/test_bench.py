"""A smoke run of the load benchmark (bench/run.py): it still works against all three servers.

The benchmark itself is too slow and too noisy for the test suite (docs/performance.md); this
runs its smallest scenarios once and checks the counting end to end: every value sent reached
every other client, nothing is stale, every client connected. It does not judge speed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import PROJECT_DIR
from tests.support.services import unavailable

SERVERS = ("slidersync", "python", "node")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("node") is None:
        unavailable("Node.js is not installed")
    if not (PROJECT_DIR / "bench" / "node_modules" / "ws").is_dir():
        unavailable("the benchmark's Node packages are missing: npm ci --prefix bench")
    out: Path = tmp_path_factory.mktemp("bench") / "quick.json"
    command = [sys.executable, "bench/run.py", "--quick", "--scenarios", "20x2,connect50"]
    finished = subprocess.run(
        [*command, "--json", str(out)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "== 20x2" in finished.stdout and "SS/Node" in finished.stdout, finished.stdout
    return json.loads(out.read_text())


@pytest.mark.parametrize("server", SERVERS)
def test_every_value_reaches_every_other_client(report: dict, server: str) -> None:
    [run] = report["scenarios"]["20x2"]["servers"][server]["runs"]
    assert "error" not in run, run
    sends = run["sends"]
    assert sends >= 2 * 50  # two draggers at 30 Hz for 2 s (a few may fall off the end)
    assert run["ack"]["count"] == sends and not run["ack"]["errors"]
    # 19 receivers per value: each holds it, or a newer one, by the end.
    assert run["freshness"]["samples"] == 19 * sends
    assert run["stale"] == 0 and run["undelivered"] == 0 and run["disconnects"] == 0
    assert run["freshness"]["p99"] is not None and run["server"]["peak_rss_mb"] > 0


@pytest.mark.parametrize("server", SERVERS)
def test_a_crowd_connects(report: dict, server: str) -> None:
    [run] = report["scenarios"]["connect50"]["servers"][server]["runs"]
    assert "error" not in run, run
    assert run["connect"]["ok"] == 50 and run["connect"]["failed"] == 0
