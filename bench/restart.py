"""Rolling restart under load: two Slider Sync processes behind nginx, restarted one at a time.

Run from the project directory with the project's virtualenv (or through scripts/restart):

    .venv/bin/python bench/restart.py [--clients 1000] [--draggers 4] [--rate 10]

Deploys as docs/deploy.md says for several processes: PostgreSQL (a fresh database
`restart_<random>`, dropped afterwards), Redis (a database number and key prefix of its own,
the keys deleted afterwards), two uvicorn processes started with the command of the guide's
systemd unit, and nginx running docs/nginx/slidersync.conf (bench/nginx.py). The clients
(bench/restartgen.mjs) connect through nginx from 64 source addresses, so ip_hash spreads them
over both processes; the draggers drag for the whole run. Each process in turn gets SIGTERM, is
started again on its port, must answer /healthz and then waits as the guide's upgrade loop does
(`--between`, read from the guide) before the next one's turn. Prints and writes to JSON: each
process's time from SIGTERM to exit, the time each client took from losing its connection to
holding `board:state` again (p50/p99/max), the clients that never came back, whether every
client holds the final values, whether each slider's stored value is its last acknowledged one,
and the error lines of the servers' logs.
Exit status: 0 when every target is met, 1 when one is missed, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import psycopg
import redis
from deployment import (
    Backend,
    deploy_command,
    fresh_services,
    production_env,
    stored_values,
    upgrade_pause_s,
)
from nginx import CONFIG, Nginx, find_nginx, render, self_signed_certificate
from processes import (
    BENCH_DIR,
    BOARD,
    CREATE_BOARD,
    NODE,
    PROJECT_DIR,
    PYTHON,
    exit_on_sigterm,
    free_port,
    raise_open_files_limit,
)
from run import machine_info
from soak import error_lines

# Clients connect from 127.0.k.1 for k below this: distinct to ip_hash, which hashes the first
# three bytes of an address, so nginx spreads them over the processes as it spreads an audience.
SOURCE_ADDRESSES = 64


class Generator:
    """bench/restartgen.mjs: commands on its stdin, markers and progress from its stderr."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [NODE, str(BENCH_DIR / "restartgen.mjs"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=BENCH_DIR,
        )
        self.markers: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True).start()

    def _event(self, name: str) -> threading.Event:
        with self._lock:
            return self.markers.setdefault(name, threading.Event())

    def _read(self, stderr: IO[str]) -> None:
        for line in stderr:
            if line.startswith("@@RESTART "):
                self._event(line.split()[1]).set()
            else:
                sys.stderr.write(f"  {line}")

    def wait_for(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._event(name).wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the generator did not reach {name!r}")

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        try:
            stdout, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise RuntimeError("the generator did not finish") from None
        try:
            return dict(json.loads(stdout.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            code = self.process.returncode
            raise RuntimeError(f"the generator printed no result (exit code {code})") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# --- Figures and targets ------------------------------------------------------------------

NGINX_MESSAGE = re.compile(r"\[(\w+)\] \d+#\d+: (?:\*\d+ )?([^,]*)")
ACCESS_STATUS = re.compile(r'"[A-Z]+ /socket\.io/[^"]*" (\d{3}) ')


def nginx_summary(error_log: Path, access_log: Path) -> dict[str, Any]:
    """nginx's error log lines counted by level and message, and /socket.io/ responses by status.

    Refused connections to a stopped backend are how nginx notices it (and tries the other):
    expected during a restart, and not judged.
    """
    messages: dict[str, int] = {}
    for line in _text(error_log).splitlines():
        found = NGINX_MESSAGE.search(line)
        if found and found[1] not in ("notice", "info", "debug"):
            key = f"[{found[1]}] {found[2].strip()}"
            messages[key] = messages.get(key, 0) + 1
    statuses: dict[str, int] = {}
    for line in _text(access_log).splitlines():
        found = ACCESS_STATUS.search(line)
        if found:
            statuses[found[1]] = statuses.get(found[1], 0) + 1
    return {"error_log": messages, "socketio_responses_by_status": statuses}


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def slider_outcomes(
    dragged: list[dict[str, Any]], stored: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """For each dragged slider: its last sent and acked values, what is stored, whether lost.

    Lost: the stored value or version is below the last set acked OK. A stored value above it
    is a later set committed whose ack never came (the connection dropped): not a loss.
    """
    outcomes = []
    for slider in dragged:
        acked, held = slider["last_acked"], stored.get(slider["id"])
        lost = held is None or (
            acked is not None
            and (held["value"] < acked["value"] or held["version"] < acked["version"])
        )
        outcomes.append(
            {
                **slider,
                "stored": held,
                "stored_is_last_acked": acked is not None and held == acked,
                "lost": lost,
            }
        )
    return outcomes


def judge(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its figure and whether it was met."""
    gen, sliders = report["generator"], report["sliders"]
    lost = [s["id"] for s in sliders if s["lost"]]
    equal = sum(s["stored_is_last_acked"] for s in sliders)
    return [
        {
            "target": "every client connected, and back after each restart",
            "figure": f"{gen['connect']['failed']} never connected, {gen['never_back']} not back",
            "met": gen["connect"]["failed"] == 0 and gen["never_back"] == 0,
        },
        {
            "target": "every client holds every slider's final (stored) value",
            "figure": f"{gen['converged']} of {gen['clients']} clients; "
            + (
                "no fresh client could connect"
                if not gen["probe_ok"]
                else "a fresh client's state = the database"
                if report["final_state_matches_database"]
                else "a fresh client's state != the database"
            ),
            "met": gen["converged"] == gen["clients"] and report["final_state_matches_database"],
        },
        {
            "target": "no acknowledged value lost",
            "figure": f"{equal} of {len(sliders)} dragged sliders store their last acked value"
            + (f"; lost on {', '.join(lost)}" if lost else ""),
            "met": not lost and all(s["last_acked"] is not None for s in sliders),
        },
        {
            "target": "no error in the servers' logs",
            "figure": f"{len(report['error_lines'])} line(s)",
            "met": not report["error_lines"],
        },
    ]


def _ms(summary: dict[str, Any]) -> str:
    """A generator summary's p50/p99/max as `p50 … p99 … max … ms` (whole ms; `-` when none)."""

    def whole(key: str) -> str:
        value = summary.get(key)
        return "-" if value is None else f"{value:.0f}"

    return f"p50 {whole('p50')} p99 {whole('p99')} max {whole('max')} ms"


def print_report(report: dict[str, Any], json_path: Path) -> None:
    gen, settings = report["generator"], report["settings"]
    print(
        f"\n== Rolling restart: {settings['clients']} clients from {SOURCE_ADDRESSES} addresses, "
        f"{settings['draggers']} draggers at {settings['rate']:g} Hz, 2 processes behind nginx, "
        f"{settings['between_s']:g} s between restarts"
    )
    by_mark = gen["reconnect"]["by_mark"]
    for restart in report["restarts"]:
        back = by_mark.get(restart["mark"], {})
        print(
            f"  {restart['mark']}: SIGTERM -> exit {restart['sigterm_to_exit_s']:.2f} s "
            f"(code {restart['exit_code']}{', KILLED' if restart['killed'] else ''}); healthy "
            f"{restart['start_to_healthy_s']:.1f} s after start; clients back in {_ms(back)} "
            f"({back.get('count', 0)} back, {back.get('not_back', 0)} not)"
        )
    rec = gen["reconnect"]
    print(
        f"  reconnects: {rec['count']} of {gen['connections_lost']} lost connections back, "
        f"{_ms(rec)}; never back {gen['never_back']}; "
        f"failed attempts {gen['attempt_failures'] or 'none'}"
    )
    sets = gen["sets"]
    print(
        f"  sets: {sets['sent']} sent, {sets['acked_ok']} acked OK, refused "
        f"{sets['errors'] or 'none'}, {sets['unanswered']} unanswered, "
        f"{sets['not_sent_disconnected']} not sent (dragger disconnected); ack {_ms(sets['ack'])}"
    )
    for s in report["sliders"]:
        print(
            f"  {s['id']}: last sent {s['last_sent']}, last acked {s['last_acked']}, "
            f"stored {s['stored']}{' LOST' if s['lost'] else ''}"
        )
    for message, count in report["nginx"]["error_log"].items():
        print(f"  nginx: {count} x {message}")
    print(f"  nginx /socket.io/ responses: {report['nginx']['socketio_responses_by_status']}")
    for line in report["error_lines"][:20]:
        print(f"  log: {line}")
    for row in report["targets"]:
        print(f"  {'met' if row['met'] else 'MISSED':6}  {row['target']:55}  {row['figure']}")
    print(f"JSON: {json_path}; logs: {', '.join(report['server_logs'])}")


# --- The run ------------------------------------------------------------------------------


def restart_run(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Deploy, load, restart each process in turn, settle; the figures before judging."""
    https_port, http_port = free_port(), free_port()
    backend_logs = [logs / f"restart-backend-{i}.log" for i in (1, 2)]
    nginx_logs = [logs / f"restart-nginx-{name}" for name in ("error.log", "access.log")]
    for path in backend_logs + nginx_logs:
        path.write_text("")
    with (
        tempfile.TemporaryDirectory(prefix="restart-") as tmp,
        fresh_services(args.redis_db) as (database_url, redis_url, prefix),
    ):
        env = production_env(database_url, redis_url, prefix, https_port)
        with backend_logs[0].open("ab") as log:
            for command in (["migrate", "--noinput", "-v", "0"], ["shell", "-c", CREATE_BOARD]):
                subprocess.run(
                    [PYTHON, "manage.py", *command], cwd=PROJECT_DIR, env=env, check=True,
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
        backends = [Backend(free_port(), env, path) for path in backend_logs]
        nginx: Nginx | None = None
        generator: Generator | None = None
        try:
            for backend in backends:
                backend.start()
            cert, key = self_signed_certificate(Path(tmp))
            site = render(
                CONFIG.read_text(), http_port=http_port, https_port=https_port,
                backends=[b.port for b in backends], cert=cert, key=key,
            )  # fmt: skip
            # Each proxied client takes two of nginx's connections: its own and the backend's.
            nginx = Nginx(Path(tmp) / "nginx", site, worker_connections=2 * args.clients + 256)
            nginx.start(https_port)
            generator = Generator(
                [
                    "--url", f"https://127.0.0.1:{https_port}", "--board", BOARD,
                    "--ca", str(cert), "--addresses", str(SOURCE_ADDRESSES),
                    "--clients", str(args.clients), "--draggers", str(args.draggers),
                    "--rate", str(args.rate), "--settle", str(args.settle),
                ]
            )  # fmt: skip
            generator.wait_for("connected", 90)
            generator.wait_for("dragging", 10)
            time.sleep(args.steady)
            restarts = []
            for number, backend in enumerate(backends, 1):
                mark = f"restart {number} (port {backend.port})"
                print(f"[restart] SIGTERM to {mark}", file=sys.stderr, flush=True)
                generator.tell(f"mark {mark}")
                record = backend.terminate()
                record["start_to_healthy_s"] = round(backend.start(), 3)
                restarts.append({"mark": mark, **record})
                if number < len(backends):
                    time.sleep(args.between)
            generator.tell("mark after the restarts")
            time.sleep(args.after)
            generator.tell("stop")
            result = generator.result(args.settle + 60)
            stored = stored_values(database_url, BOARD)
        finally:
            if generator is not None:
                generator.close()
            if nginx is not None:
                nginx.stop()
                for copy in nginx_logs:  # nginx's directory goes with the run
                    with contextlib.suppress(OSError):
                        shutil.copy(nginx.prefix / copy.name.removeprefix("restart-nginx-"), copy)
            for backend in backends:
                backend.stop()
    final = result["final_state"]
    return {
        "restarts": restarts,
        "generator": result,
        "sliders": slider_outcomes(result["dragged"], stored),
        "stored": stored,
        "final_state_matches_database": all(final.get(k) == v for k, v in stored.items())
        and len(final) == len(stored),
        "nginx": nginx_summary(*nginx_logs),
        "error_lines": [line for path in backend_logs for line in error_lines(path)],
        "server_logs": [str(path) for path in backend_logs],
        "nginx_logs": [str(path) for path in nginx_logs],
    }


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--draggers", type=int, default=4, help="at most 8 (the board's sliders)")
    parser.add_argument("--rate", type=float, default=10.0, help="sets per second per dragger")
    parser.add_argument("--steady", type=float, default=5.0, help="seconds before the first")
    parser.add_argument(
        "--between",
        type=float,
        default=None,
        help="seconds from a healthy process to the next (default: docs/deploy.md's loop's)",
    )
    parser.add_argument("--after", type=float, default=5.0, help="seconds after the last")
    parser.add_argument("--settle", type=float, default=30.0, help="most seconds to converge")
    parser.add_argument("--redis-db", type=int, default=9, help="the Redis database number")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "restart.json")
    args = parser.parse_args()
    if args.between is None:
        args.between = upgrade_pause_s()

    if not (BENCH_DIR / "node_modules" / "ws").is_dir():
        print("bench/node_modules is missing; run: npm ci --prefix bench", file=sys.stderr)
        return 2
    missing = [
        name
        for name, found in (("nginx", find_nginx()), ("openssl", shutil.which("openssl")))
        if found is None
    ]
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install nginx openssl)", file=sys.stderr)
        return 2
    if not 1 <= args.draggers <= 8 or args.clients < args.draggers:
        print("--draggers must be 1 to 8, and at most --clients", file=sys.stderr)
        return 2
    raise_open_files_limit()

    logs = args.json.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    try:
        report = restart_run(args, logs)
    except (RuntimeError, ValueError, OSError, psycopg.Error, redis.RedisError) as error:
        print(f"the run could not be made: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"the run could not be made: {error} (see {logs})", file=sys.stderr)
        return 2
    report["settings"] = {
        "clients": args.clients,
        "draggers": args.draggers,
        "rate": args.rate,
        "source_addresses": SOURCE_ADDRESSES,
        "steady_s": args.steady,
        "between_s": args.between,
        "after_s": args.after,
        "settle_s": args.settle,
        "uvicorn": "uvicorn " + shlex.join(deploy_command(8000)[3:]).replace("8000", "N"),
        "run_s": round(time.monotonic() - began, 1),
    }
    report["machine"] = machine_info(False)
    report["targets"] = judge(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report, args.json)
    return 0 if all(row["met"] for row in report["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
