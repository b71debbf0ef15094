"""Fault injection: drags through broken links, killed servers and restarted services.

Every scenario runs real uvicorn processes on real PostgreSQL and Redis, with python-socketio
clients that drag a slider the way the board page does (`Dragger`), some of them through a TCP
proxy the test controls (tests/support/proxies.py). After the fault, and once the drags stop, each
scenario checks against the database (`check`):

- **convergence**: every client shows the database's value and version (and how long that took);
- **no acknowledged value lost**: every acked version is in the database's history (the audit
  trail) with the acked value where an entry ends at it, the history is contiguous (each entry
  starts where the previous ended) and reaches the stored version;
- **no revert**: a set re-sent after a reconnect (its ack was lost with the connection) carries
  the version its sender held (`base_version`); if it was applied, no other client's change may
  lie between that version and the one it was applied over. Live sets of a drag carry no base
  version (as on the page) and are last-writer-wins.

Each test prints one line starting with `figures:`; docs/reliability.md gives the command that
collects them and the figures of a run. Where a private Redis or PostgreSQL cannot be started
(binaries missing), the scenario is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.support.clients import BoardClient
from tests.support.database import stored
from tests.support.proxies import TcpProxy
from tests.support.servers import LiveServer, free_port
from tests.support.services import fresh_services, manage, unavailable, widen

pytestmark = [pytest.mark.live, pytest.mark.scaleout]

SLIDER = "s1"
DRAG_HZ = 25  # the page sends at most once per animation frame; a person's drag is slower
FREEZE_SECONDS = 30.0  # the frozen link
MAX_SETS_IN_FLIGHT = 3  # as the board page (board/sending.js): more waits for an answer
CONVERGE_WITHIN = 10.0  # seconds after the drags stop (and the last ack) for every client
SETTLE_WITHIN = 20.0  # seconds for the draggers to get their last acks after the drags stop
SERVICE_SETTINGS = {
    "SOCKETIO_TRANSPORTS": "websocket",
    "PRESENCE_PROCESS_TTL": "2",
    "PRESENCE_INTERVAL": "0.1",
}


@pytest.fixture(scope="module")
def shared_services() -> Iterator[dict[str, str]]:
    """A fresh database on the shared PostgreSQL and a fresh prefix on the shared Redis."""
    with fresh_services(**SERVICE_SETTINGS) as env:
        widen(env)
        yield env


# --- Private services to restart -------------------------------------------------------------


class PrivateRedis:
    """A redis-server of the test's own on a free port, with no persistence, to kill and restart
    (the shared Redis on 6379 is never touched)."""

    def __init__(self, log_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start it and wait (up to 10 s) until it answers PING."""
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
            ],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(self.log_path.read_text(errors="replace")) from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: everything it held is gone, as after a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb into a temporary directory) on a free port,
    to restart. As root, its tools run as the `postgres` user, which owns the directory."""

    def __init__(self) -> None:
        initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        found = shutil.which("initdb")
        if not initdbs and found is None:
            unavailable("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
        self.bin = Path(initdbs[-1] if initdbs else found).parent  # type: ignore[arg-type]
        self.user: str | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="slidersync-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no `postgres` user to run PostgreSQL")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.user = "postgres"
        self.data = self.dir / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{tool} failed:\n{result.stdout}\n{result.stderr}"

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PrivatePostgres:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast`: roll back open transactions, close connections, checkpoint, exit."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            if self.user is None
            else ["runuser", "-u", self.user, "--", str(self.bin / "pg_ctl"), "-D",
                  str(self.data), "-m", "immediate", "stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Clients that drag like the page ---------------------------------------------------------


@dataclass
class Resend:
    """A set sent again after a reconnect: the version its sender held, the connection that
    sent it, and the server's answer."""

    base_version: int
    sid: str
    ack: dict[str, Any]


@dataclass
class Dragger:
    """A client that drags `SLIDER` the way the board page does.

    Sets go out at `DRAG_HZ` without waiting for their acks (the page does not wait either), at
    most MAX_SETS_IN_FLIGHT unanswered at once (a step with that many skips its value). Live
    sets carry the version held and `made_at`, as the page's do. An
    accepted value or a conflict's current value is shown if its version is newer than the one
    held. When the connection drops while a set is unanswered, its value is sent again after the
    reconnect, as the first set of the new connection, with `base_version` = the version the
    client held when the connection dropped. A set refused `unavailable` is not retried: the
    drag's next value follows anyway.
    """

    url: str
    name: str
    client: BoardClient = field(init=False)
    sids: set[str] = field(default_factory=set)  # every connection's Socket.IO sid
    acked: list[tuple[float, int]] = field(default_factory=list)  # (value, version) of ok acks
    resends: list[Resend] = field(default_factory=list)
    conflicts: int = 0
    unavailable: int = 0
    refusals: list[Any] = field(default_factory=list)  # any other refusal: a failure
    disconnects: list[str] = field(default_factory=list)  # python-socketio's reasons
    sent: int = 0
    inflight: int = 0
    pending: tuple[float, int] | None = None  # (value, base_version) to send again
    _epoch: int = 0  # connections lost so far: an answer from an older one is dropped
    _last_sent: float | None = None
    _states_at_connect: int = 0

    def __post_init__(self) -> None:
        self.client = BoardClient(self.url, "main", reconnection=True)
        self.client.sio.on("connect", self._on_connect)
        self.client.sio.on("disconnect", self._on_disconnect)

    async def connect(self) -> Dragger:
        await self.client.connect()
        return self

    def _on_connect(self) -> None:
        self.sids.add(self.client.sio.get_sid())
        self._states_at_connect = len(self.client.of("board:state"))

    def _on_disconnect(self, *reason: Any) -> None:
        self.disconnects.append(str(reason[0]) if reason else "?")
        self._epoch += 1
        if self.inflight and self.pending is None and self._last_sent is not None:
            held = self.client.values.get(SLIDER, (0, 0))
            self.pending = (self._last_sent, held[1])
        self.inflight = 0

    @property
    def ready(self) -> bool:
        """Connected, and this connection's `board:state` has arrived."""
        return (
            self.client.sio.connected
            and len(self.client.of("board:state")) > self._states_at_connect
        )

    def _show(self, value: float, version: int) -> None:
        held = self.client.values.get(SLIDER)
        if held is None or version > held[1]:
            self.client.values[SLIDER] = (value, version)

    async def send(self, value: float, base_version: int | None = None) -> None:
        """Emit one `slider:set`; its ack is recorded when it comes."""
        payload: dict[str, Any] = {"id": SLIDER, "value": value}
        if base_version is not None:
            payload["base_version"] = base_version
        else:
            # A live set, as the page sends it: the version held, and when it was made on the
            # server's clock (this machine's): one the network holds up is held to its base.
            payload["base_version"] = self.client.values.get(SLIDER, (0, 0))[1]
            payload["made_at"] = round(time.time() * 1000)
        epoch, sid = self._epoch, self.client.sio.get_sid()
        self.inflight += 1
        self.sent += 1
        self._last_sent = value

        def on_ack(ack: Any) -> None:
            if epoch != self._epoch:
                return
            self.inflight -= 1
            if isinstance(ack, dict) and ack.get("ok") is True:
                self.acked.append((ack["value"], ack["version"]))
                self._show(ack["value"], ack["version"])
                if "made_at" not in payload:
                    self.resends.append(Resend(payload["base_version"], sid, ack))
            elif isinstance(ack, dict) and ack.get("error") == "conflict":
                self.conflicts += 1
                self._show(ack["value"], ack["version"])
            elif isinstance(ack, dict) and ack.get("error") == "unavailable":
                self.unavailable += 1
            else:
                self.refusals.append(ack)

        await self.client.sio.emit("slider:set", payload, callback=on_ack)

    async def _step(self, values: Iterator[float]) -> None:
        if not self.ready:
            return
        if self.pending is not None:
            value, base = self.pending
            self.pending = None
            await self.send(value, base)
        elif values is not None and self.inflight < MAX_SETS_IN_FLIGHT:
            await self.send(next(values))  # else this step's value is skipped, as the page's is

    async def drag(self, stop: asyncio.Event, values: Iterator[float]) -> None:
        """Send the next of `values` every 1/DRAG_HZ s while connected, until `stop` is set."""
        while not stop.is_set():
            # The connection may go down under an emit: the drag goes on, as a person's does.
            with contextlib.suppress(Exception):
                await self._step(values)
            await asyncio.sleep(1 / DRAG_HZ)

    async def settle(self) -> None:
        """After the drag: send a pending value again once reconnected, and wait for every
        answer (within SETTLE_WITHIN s)."""
        deadline = time.monotonic() + SETTLE_WITHIN
        while self.pending is not None or self.inflight or not self.ready:
            if self.pending is not None and self.ready:
                await self._step(iter(()))
            assert time.monotonic() < deadline, (
                f"{self.name}: no answer within {SETTLE_WITHIN} s (pending {self.pending}, "
                f"{self.inflight} in flight, connected {self.client.sio.connected})"
            )
            await asyncio.sleep(0.02)

    async def disconnect(self) -> None:
        await self.client.disconnect()


def sweep(offset: int, step: int = 4) -> Iterator[float]:
    """Distinct values for one dragger (offset modulo `step`), so every set is a change."""
    return (float((offset + step * n) % 1_000_000) for n in itertools.count(1))


async def drag_for(
    seconds: float, draggers: list[tuple[Dragger, Iterator[float]]], during: Any = None
) -> None:
    """Drag with every dragger for `seconds`; `during` (a coroutine) runs meanwhile, and the
    drags go on for the rest of the time once it is done."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.drag(stop, values)) for d, values in draggers]
    started = time.monotonic()
    try:
        if during is not None:
            await during
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return time.monotonic()


# --- What the database says ------------------------------------------------------------------


@dataclass
class Entry:
    client: str
    from_value: float
    to_value: float
    from_version: int
    to_version: int


def history(database_url: str, after_version: int) -> list[Entry]:
    """The slider's audit entries that end after `after_version`, oldest first."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT client, from_value, to_value, from_version, to_version"
            " FROM sliders_auditentry WHERE board = 'main' AND slider = %s AND to_version > %s"
            " ORDER BY from_version",
            [SLIDER, after_version],
        ).fetchall()
    return [Entry(r[0], float(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in rows]


def covering(entries: list[Entry], version: int) -> Entry | None:
    return next((e for e in entries if e.from_version < version <= e.to_version), None)


async def check(
    scenario: str,
    database_url: str,
    start_version: int,
    draggers: list[Dragger],
    watchers: list[BoardClient],
    *,
    stopped: float,
    extra: str = "",
) -> None:
    """Settle the draggers, then assert convergence, no acked value lost and no revert, and
    print the scenario's figures. `stopped` is when the drags stopped (time.monotonic()); the
    convergence time is counted from then, the limit from the last answer to a set."""
    await asyncio.gather(*(d.settle() for d in draggers))
    final = stored("main", SLIDER, database_url=database_url)
    everyone = [d.client for d in draggers] + watchers
    settled = time.monotonic()
    while not all(c.sio.connected and c.values.get(SLIDER) == final for c in everyone):
        if time.monotonic() - settled > CONVERGE_WITHIN:
            shown = {d.name: d.client.values.get(SLIDER) for d in draggers}
            shown.update({f"watcher {i}": w.values.get(SLIDER) for i, w in enumerate(watchers)})
            raise AssertionError(
                f"{scenario}: not converged on {final} within {CONVERGE_WITHIN} s: {shown}"
            )
        await asyncio.sleep(0.01)
    converged_in = time.monotonic() - stopped

    entries = history(database_url, start_version)
    problems = [f"refused: {r}" for d in draggers for r in d.refusals]
    # The history is contiguous from where the scenario started to the stored version.
    expected_from, expected_value = start_version, None
    for entry in entries:
        if entry.from_version != expected_from or (
            expected_value is not None and entry.from_value != expected_value
        ):
            problems.append(f"the history has a gap or a jump before {entry}")
        expected_from, expected_value = entry.to_version, entry.to_value
    if expected_from != final[1] or (expected_value is not None and expected_value != final[0]):
        problems.append(f"the history ends at {expected_from}, the slider is at {final}")

    acked = [(d, value, version) for d in draggers for value, version in d.acked]
    lost = 0
    for dragger, value, version in acked:
        entry = covering(entries, version)
        if (
            version > final[1]
            or entry is None
            or (entry.to_version == version and entry.to_value != value)
        ):
            lost += 1
            problems.append(f"{dragger.name}'s acked ({value}, {version}) is not in the history")

    reverts = 0
    for dragger in draggers:
        for resend in dragger.resends:
            applied = covering(entries, resend.ack["version"])
            if applied is None or applied.client != resend.sid:
                continue  # not a change: the value was already there
            over = [
                e
                for e in entries
                if e.from_version < resend.ack["version"] - 1
                and e.to_version > resend.base_version
                and e.client not in dragger.sids
            ]
            if over:
                reverts += 1
                problems.append(
                    f"{dragger.name} re-sent {resend.ack['value']} based on version "
                    f"{resend.base_version}; it was applied as version {resend.ack['version']}, "
                    f"reverting {len(over)} newer change(s) by others, e.g. {over[-1]}"
                )

    conflicts = sum(d.conflicts for d in draggers)
    resent = sum(len(d.resends) for d in draggers)
    print(
        f"\nfigures: {scenario} | converged {converged_in:.2f} s after the drags stopped | "
        f"acked {len(acked)} of {sum(d.sent for d in draggers)} sent | lost {lost} | "
        f"reverts {reverts} | conflicts {conflicts} | resent {resent}"
        f" | refused unavailable {sum(d.unavailable for d in draggers)}"
        + (f" | {extra}" if extra else "")
    )
    assert not problems, "\n".join(problems)
    assert len(acked) >= 20, "too few acked sets to prove anything"


@pytest.fixture
async def made() -> Any:
    """Clients made by a test (Dragger or BoardClient), disconnected afterwards."""
    clients: list[Any] = []
    yield clients
    for client in clients:
        await client.disconnect()


def dragger(url: str, name: str, made: list[Any]) -> Dragger:
    made.append(d := Dragger(url, name))
    return d


def watcher(url: str, made: list[Any]) -> BoardClient:
    made.append(client := BoardClient(url, "main", reconnection=True))
    return client


@dataclass
class TwoProcesses:
    """Processes A and B, a dragger and a watcher on each, and the slider's version before."""

    a: LiveServer
    b: LiveServer
    on_a: Dragger
    on_b: Dragger
    watchers: list[BoardClient]
    start_version: int


async def two_processes(start_server: Any, env: dict[str, str], made: list[Any]) -> TwoProcesses:
    """Start two processes sharing `env` (database, Redis) and connect their clients."""
    a, b = start_server(env=env), start_server(env=env)
    on_a = await dragger(a.url, "on A", made).connect()
    on_b = await dragger(b.url, "on B", made).connect()
    watchers = [watcher(a.url, made), watcher(b.url, made)]
    for client in watchers:
        await client.connect()
    start_version = stored("main", SLIDER, database_url=env["DATABASE_URL"])[1]
    return TwoProcesses(a, b, on_a, on_b, watchers, start_version)


# --- Scenarios -------------------------------------------------------------------------------


async def test_a_silently_frozen_link_converges_without_reverting(
    shared_services, start_server, made
):
    """A client's link freezes for 30 s (nothing forwarded either way, nothing closed) while
    another client drags the slider; the frozen client goes on dragging for the first 2 s of
    it, unaware. When the link thaws, those held-up sets are seconds late: none may apply over
    the other client's changes (they are refused `conflict`, or sent again on their base after
    a reconnect and refused then), and the frozen client catches up with the latest value."""
    server = start_server(env=shared_services)
    proxy = TcpProxy(server.port).start()
    try:
        frozen = await dragger(proxy.url(server.url), "frozen", made).connect()
        mover = await dragger(server.url, "mover", made).connect()
        other = watcher(server.url, made)
        await other.connect()
        start_version = stored("main", SLIDER, database_url=shared_services["DATABASE_URL"])[1]
        frozen_values, mover_values = sweep(1), sweep(2)
        await drag_for(1, [(frozen, frozen_values), (mover, mover_values)])
        await frozen.settle()

        proxy.freeze()
        sent_before = frozen.sent
        await drag_for(2, [(frozen, frozen_values), (mover, mover_values)])
        held_up = frozen.sent - sent_before
        await drag_for(FREEZE_SECONDS - 2, [(mover, mover_values)])
        await mover.settle()
        before_thaw = stored("main", SLIDER, database_url=shared_services["DATABASE_URL"])
        behind = frozen.client.values[SLIDER][1] < before_thaw[1]
        proxy.resume()
        thawed = time.monotonic()
        await frozen.client.wait_for(
            lambda: frozen.client.values[SLIDER] == mover.client.values[SLIDER], timeout=10
        )
        caught_up = time.monotonic() - thawed
        await frozen.settle()  # every held-up set is answered (or sent again and answered)
        assert behind, "the freeze did not stop updates reaching the frozen client"
        assert held_up >= 1, "the frozen client sent nothing during the freeze"
        after_thaw = stored("main", SLIDER, database_url=shared_services["DATABASE_URL"])
        assert after_thaw == before_thaw, (
            "a set held up by the frozen link applied over newer changes"
        )
        assert frozen.conflicts >= 1, "no held-up set was answered `conflict`"
        # The person goes on dragging on the thawed link, and so does the other.
        stopped = await drag_for(1, [(frozen, frozen_values), (mover, mover_values)])
        reconnects = len(frozen.sids) - 1
        await check(
            "frozen link 30 s",
            shared_services["DATABASE_URL"],
            start_version,
            [frozen, mover],
            [other],
            stopped=stopped,
            extra=f"{held_up} sets held up by the freeze, caught up {caught_up:.2f} s after the"
            f" thaw, {reconnects} reconnects"
            f" {frozen.disconnects}",
        )
    finally:
        proxy.close()


async def test_a_slow_throttled_link_during_a_drag_loses_and_reverts_nothing(
    shared_services, start_server, made
):
    """A client drags through a link with 300 ms latency each way, throttled to 1,000 bytes/s
    each way (a very poor mobile link), while a client on a good link drags the same slider."""
    server = start_server(env=shared_services)
    proxy = TcpProxy(server.port).start()
    try:
        slow = await dragger(proxy.url(server.url), "slow", made).connect()
        fast = await dragger(server.url, "fast", made).connect()
        slow_watcher = watcher(proxy.url(server.url), made)
        await slow_watcher.connect()
        start_version = stored("main", SLIDER, database_url=shared_services["DATABASE_URL"])[1]
        proxy.shape(latency=0.3, rate=1000)
        stopped = await drag_for(5, [(slow, sweep(1)), (fast, sweep(2))])
        await check(
            "300 ms latency, 1,000 bytes/s",
            shared_services["DATABASE_URL"],
            start_version,
            [slow, fast],
            [slow_watcher],
            stopped=stopped,
        )
    finally:
        proxy.close()


async def test_a_server_killed_mid_drag_and_restarted_loses_and_reverts_nothing(
    shared_services, start_server, made
):
    """Two processes; A is killed (SIGKILL) while a client on it drags with a set unanswered,
    and restarted on the same port; a client on B drags on meanwhile."""
    two = await two_processes(start_server, shared_services, made)
    a, on_a, on_b, watchers = two.a, two.on_a, two.on_b, two.watchers
    start_version = two.start_version
    restarted: list[LiveServer] = []

    async def kill_and_restart() -> None:
        await asyncio.sleep(1.5)
        await on_a.client.wait_for(lambda: on_a.inflight > 0, timeout=5)
        a.kill()
        await asyncio.sleep(0.5)  # B's client drags on while A is down
        restarted.append(await asyncio.to_thread(start_server, port=a.port, env=a.env))
        await on_a.client.wait_for(lambda: on_a.ready, timeout=10)

    stopped = await drag_for(5, [(on_a, sweep(1)), (on_b, sweep(2))], during=kill_and_restart())
    await check(
        "server SIGKILLed and restarted",
        shared_services["DATABASE_URL"],
        start_version,
        [on_a, on_b],
        watchers,
        stopped=stopped,
    )


async def test_redis_restarted_mid_drag_with_two_processes_loses_and_reverts_nothing(
    shared_services, start_server, made, tmp_path
):
    """Two processes share a private Redis, which is killed mid-drag and started again a second
    later (empty: nothing persisted); a client on each process drags the slider."""
    private = PrivateRedis(tmp_path).start()
    try:
        env = {
            **shared_services,
            "REDIS_URL": private.url,
            "REDIS_PREFIX": f"slidersync-test-{uuid.uuid4().hex[:10]}",
        }
        two = await two_processes(start_server, env, made)
        on_a, on_b, watchers = two.on_a, two.on_b, two.watchers
        start_version = two.start_version

        async def restart() -> None:
            await asyncio.sleep(1.5)
            private.kill()
            await asyncio.sleep(1)  # Redis is down for a second
            await asyncio.to_thread(private.start)

        stopped = await drag_for(5, [(on_a, sweep(1)), (on_b, sweep(2))], during=restart())
        await check(
            "Redis restarted, 2 processes", env["DATABASE_URL"], start_version,
            [on_a, on_b], watchers, stopped=stopped,
        )  # fmt: skip
    finally:
        private.kill()


@pytest.fixture
def private_postgres() -> Iterator[tuple[PrivatePostgres, dict[str, str]]]:
    """A private PostgreSQL cluster with a migrated database holding the demo board, and a
    fresh prefix on the shared Redis."""
    postgres = PrivatePostgres().start()
    try:
        with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
            admin.execute('CREATE DATABASE "slidersync"')
        env = {
            **SERVICE_SETTINGS,
            "DATABASE_URL": postgres.admin_url.rsplit("/", 1)[0] + "/slidersync",
            "REDIS_URL": os.environ.get("SCALEOUT_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "REDIS_PREFIX": f"slidersync-test-{uuid.uuid4().hex[:10]}",
        }
        manage("migrate", "--no-input", "-v", "0", env=env)
        manage("load_demo", env=env)
        widen(env)
        yield postgres, env
    finally:
        postgres.destroy()


async def test_postgres_restarted_mid_drag_loses_and_reverts_nothing(
    private_postgres, start_server, made
):
    """Two processes on a private PostgreSQL, which is restarted (fast shutdown: open
    transactions rolled back, connections closed) mid-drag; sets meanwhile are refused
    `unavailable`, and the drag goes on when it is back."""
    postgres, env = private_postgres
    two = await two_processes(start_server, env, made)
    on_a, on_b, watchers = two.on_a, two.on_b, two.watchers
    start_version = two.start_version
    took: list[float] = []

    async def restart() -> None:
        await asyncio.sleep(1.5)
        started = time.monotonic()
        await asyncio.to_thread(postgres.stop)
        await asyncio.to_thread(postgres.start)
        took.append(time.monotonic() - started)

    stopped = await drag_for(6, [(on_a, sweep(1)), (on_b, sweep(2))], during=restart())
    await check(
        "PostgreSQL restarted, 2 processes", env["DATABASE_URL"], start_version,
        [on_a, on_b], watchers, stopped=stopped, extra=f"restart took {took[0]:.2f} s",
    )  # fmt: skip
