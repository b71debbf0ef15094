"""A smoke run of the load benchmark (bench/run.py): it still works against all three servers.

The benchmark itself is too slow and too noisy for the test suite (docs/performance.md); this
runs its smallest scenarios once and checks the counting end to end: every value sent reached
every other client, nothing is stale, every client connected, also on a slider two people drag
at once. It does not judge speed. The shared sliders' accounting (bench/shared.mjs) is also
checked on its own with two sets that the server stores in the opposite order.
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
    scenarios = "20x2,20x3shared,connect50"
    command = [sys.executable, "bench/run.py", "--quick", "--scenarios", scenarios]
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
def test_every_value_reaches_every_other_client_on_a_shared_slider(
    report: dict, server: str
) -> None:
    [run] = report["scenarios"]["20x3shared"]["servers"][server]["runs"]
    assert "error" not in run, run
    assert run["shared_sliders"] == 1  # draggers 0 and 2 on the first slider, 1 on the second
    sends = run["sends"]
    assert sends >= 3 * 50
    assert run["ack"]["count"] == sends and not run["ack"]["errors"]
    # Each value: the 19 other clients (the other dragger of a shared slider included).
    assert run["freshness"]["samples"] == 19 * sends
    assert run["freshness"]["unresolved"] == 0
    assert run["stale"] == 0 and run["undelivered"] == 0 and run["disconnects"] == 0


# Two draggers A (0) and B (1) and a watcher C (2) on one slider. A sends value 1 at t=0, B
# value 2 at t=1; the server stores B's first (version 5), then A's (version 6).
CROSSING_SETS = """
import { SharedTrack } from "./shared.mjs";
const track = new SharedTrack("s1", 1, 4);
for (const ci of [0, 1, 2]) track.addReceiver(ci);
const held = new Map([[0, 4], [1, 4], [2, 4]]);
const hold = (ci, value, version, at) => {
  held.set(ci, version);
  track.held(ci, { value, version }, at);
};
track.sent(0, track.nextValue(), 0, 0);
track.sent(1, track.nextValue(), 1, 0);
track.acked(1, { ok: true, id: "s1", value: 2, version: 5 });
hold(1, 2, 5, 2); // B's ack
hold(0, 2, 5, 3); // A and C get B's update
hold(2, 2, 5, 3);
hold(2, 1, 6, 4); // C gets A's
track.acked(0, { ok: true, id: "s1", value: 1, version: 6 });
hold(0, 1, 6, 4.5); // A's ack
const staleBefore = track.stale((ci) => held.get(ci));
hold(1, 1, 6, 5); // B gets A's
const samples = [];
const counts = track.freshness((second, ms) => samples.push(ms));
const stale = track.stale((ci) => held.get(ci));
console.log(JSON.stringify({ samples, counts, staleBefore, stale }));
"""


def test_a_shared_slider_follows_the_versions_not_the_values() -> None:
    if shutil.which("node") is None:
        unavailable("Node.js is not installed")
    finished = subprocess.run(
        ["node", "--input-type=module", "-e", CROSSING_SETS],
        cwd=PROJECT_DIR / "bench",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    # A's value 1 (version 6): B holds 6 at t=5, C at t=4. B's value 2 (version 5): A holds it
    # at t=3, C at t=3. By value, B's 2 would never have been delivered: 1 stayed.
    assert result["samples"] == [5, 4, 2, 2]
    assert result["counts"] == {"undelivered": 0, "unresolved": 0, "reordered": 1}
    assert result["staleBefore"] == 1 and result["stale"] == 0


@pytest.mark.parametrize("server", SERVERS)
def test_a_crowd_connects(report: dict, server: str) -> None:
    [run] = report["scenarios"]["connect50"]["servers"][server]["runs"]
    assert "error" not in run, run
    assert run["connect"]["ok"] == 50 and run["connect"]["failed"] == 0
