"""Faults: the database or Redis goes away (or locks up) under a live server.

Outages are simulated with a TCP proxy this test controls (`TcpProxy`, tests/support/proxies.py):
the shared PostgreSQL and Redis on 127.0.0.1 are never stopped or reconfigured. Stopping the
proxy closes its listening socket and every connection through it, the way a crashed or
restarted service looks to its clients; starting it again listens on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psycopg
import pytest
import socketio
from django.conf import settings

from sliders.models import AuditEntry
from tests.support.checks import assert_error
from tests.support.clients import BoardClient
from tests.support.database import stored
from tests.support.proxies import TcpProxy
from tests.support.servers import LiveServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.live


async def timed(coroutine: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await coroutine
    return result, time.monotonic() - started


def log_lines(server: LiveServer, level: str) -> list[str]:
    return [line for line in server.log().splitlines() if f" {level} " in line]


# --- SQLite: the write lock is held elsewhere -----------------------------------------------


async def test_sqlite_locked_set_is_refused_as_unavailable_and_nothing_is_half_written(
    start_server, make_board, connect_client
):
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the test database is not SQLite")
    server = start_server(env={"DATABASE_TIMEOUT": "0.3"})
    board = make_board()
    sender = await connect_client(board.slug, server=server)
    watcher = await connect_client(board.slug, server=server)

    locker = sqlite3.connect(database["NAME"], isolation_level=None, timeout=5)
    try:
        locker.execute("BEGIN IMMEDIATE")  # holds the write lock, as a long writer would
        ack, took = await timed(sender.set("s1", 7))
        assert_error(ack, "unavailable")
        assert took < 3, f"the refusal took {took:.1f}s"
        # Readers are not blocked (WAL): a page connecting meanwhile gets the board.
        late = await connect_client(board.slug, server=server)
        assert late.values["s1"] == (50, 0)
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert stored(board.slug, "s1") == (50, 0)
    assert not AuditEntry.objects.filter(board=board.slug).exists()
    ack = await sender.set("s1", 8)
    assert ack == {"ok": True, "id": "s1", "value": 8, "version": 1}
    await watcher.wait_for(lambda: watcher.of("slider:update"))
    assert watcher.of("slider:update") == [{"id": "s1", "value": 8, "version": 1}]
    assert AuditEntry.objects.get(board=board.slug).to_value == 8


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def postgres_proxy(services_env: dict[str, str]) -> Iterator[TcpProxy]:
    proxy = TcpProxy(urlsplit(services_env["DATABASE_URL"]).port or 5432).start()
    yield proxy
    proxy.close()


async def test_postgres_outage_refuses_quickly_and_recovers(
    services_env,
    postgres_proxy,
    start_server,
):
    env = {
        **services_env,
        "DATABASE_URL": postgres_proxy.url(services_env["DATABASE_URL"]),
        "REDIS_URL": "",
    }
    server = start_server(env=env)
    sender = BoardClient(server.url, "main")
    watcher = BoardClient(server.url, "main")
    clients = [sender, watcher]
    try:
        for client in clients:
            await client.connect()
        _, start_version = stored(database_url=services_env["DATABASE_URL"])
        accepted = [await sender.set("s1", 1001)]
        assert accepted[0]["ok"] is True, accepted

        postgres_proxy.stop()
        errors_before = len(log_lines(server, "ERROR"))
        for value in (1002, 1003, 1004):
            ack, took = await timed(sender.set("s1", value, timeout=15))
            assert_error(ack, "unavailable")
            assert took < 5, f"an ack during the outage took {took:.1f}s"
        newcomer = BoardClient(server.url, "main")
        clients.append(newcomer)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await newcomer.connect()
        assert newcomer.connect_errors[0]["data"] == {"code": "unavailable"}
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/healthz") as response:
            assert response.status == 503
            assert await response.json() == {"database": "down", "redis": "not configured"}

        postgres_proxy.start()
        attempts, deadline = 0, time.monotonic() + 10
        while True:
            attempts += 1
            ack = await sender.set("s1", 2000 + attempts)
            if ack.get("ok"):
                accepted.append(ack)
                break
            assert ack["error"] == "unavailable", ack
            assert time.monotonic() < deadline, "sets did not succeed again after the outage"
            await asyncio.sleep(0.2)
        assert attempts <= 3, f"{attempts} attempts after PostgreSQL came back"
        for value in (3001, 3002):
            accepted.append(await sender.set("s1", value))
        assert all(ack["ok"] is True for ack in accepted), accepted
        # One version per accepted change; the refused ones took none.
        assert [ack["version"] for ack in accepted] == list(
            range(start_version + 1, start_version + 1 + len(accepted))
        )
        assert stored(database_url=services_env["DATABASE_URL"]) == (3002, accepted[-1]["version"])
        await watcher.wait_for(lambda: watcher.values["s1"] == (3002, accepted[-1]["version"]))
        assert [u for u in watcher.of("slider:update") if u["id"] == "s1"] == [
            {"id": "s1", "value": a["value"], "version": a["version"]} for a in accepted
        ]
        newcomer = BoardClient(server.url, "main")
        clients.append(newcomer)
        await newcomer.connect()
        assert newcomer.values["s1"] == (3002, accepted[-1]["version"])
    finally:
        for client in clients:
            await client.disconnect()
    # Each refused set and connect logs its error once; no retry storm.
    errors = log_lines(server, "ERROR")[errors_before:]
    assert len(errors) <= 6, "\n".join(errors)


async def test_a_row_lock_held_elsewhere_does_not_stall_the_server(
    services_env,
    start_server,
):
    """Someone holds a slider's row lock in PostgreSQL (a psql session, a migration, a stuck
    transaction). A set on that slider must be refused (`unavailable`) within seconds, as it is
    when SQLite's lock is held, and the rest of the server must keep working meanwhile."""
    server = start_server(env={**services_env, "REDIS_URL": ""})
    sender = BoardClient(server.url, "main")
    other = BoardClient(server.url, "main")
    clients = [sender, other]
    try:
        for client in clients:
            await client.connect()
        problems = []
        newcomer = BoardClient(server.url, "main")
        clients.append(newcomer)
        with psycopg.connect(services_env["DATABASE_URL"]) as locker:
            locker.execute(
                "SELECT s.id FROM sliders_slider s JOIN sliders_board b ON s.board_id = b.id"
                " WHERE b.slug = 'main' AND s.slug = 's1' FOR UPDATE"
            )
            locked = asyncio.create_task(sender.set("s1", 4242, timeout=30))
            await asyncio.sleep(0.2)
            # Another client on another slider, and a page connecting: unrelated to the lock.
            unrelated = asyncio.create_task(other.set("s2", 4343, timeout=30))
            joining = asyncio.create_task(newcomer.connect())
            done, _ = await asyncio.wait({locked, unrelated, joining}, timeout=8)
            if locked not in done:
                problems.append("the set on the locked slider got no answer within 8 s")
            elif locked.result().get("error") != "unavailable":
                problems.append(f"the set on the locked slider was answered {locked.result()}")
            if unrelated not in done:
                problems.append("a set on another slider waited for the lock (8 s and counting)")
            if joining not in done or joining.exception() is not None:
                problems.append("a new connection could not get the board while the lock was held")
            locker.rollback()
        await asyncio.gather(locked, unrelated, joining, return_exceptions=True)
    finally:
        for client in clients:
            await client.disconnect()
    assert not problems, "\n".join(problems)


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture
def redis_cluster(services_env, start_server) -> Iterator[tuple[TcpProxy, LiveServer, LiveServer]]:
    """Two servers on one database whose Redis connections all go through one proxy."""
    redis_url = services_env["REDIS_URL"]
    proxy = TcpProxy(urlsplit(redis_url).port or 6379).start()
    env = {
        **services_env,
        "REDIS_URL": proxy.url(redis_url),
        "REDIS_PREFIX": f"slidersync-test-{uuid.uuid4().hex[:10]}",
    }
    try:
        yield proxy, start_server(env=env), start_server(env=env)
    finally:
        proxy.close()


@pytest.fixture
async def clients() -> Any:
    made: list[BoardClient] = []

    async def connect(server: LiveServer) -> BoardClient:
        client = BoardClient(server.url, "main")
        made.append(client)
        await client.connect()
        return client

    yield connect
    for client in made:
        await client.disconnect()


async def test_redis_outage_each_process_keeps_serving_and_broadcasts_resume(
    redis_cluster, clients
):
    proxy, a, b = redis_cluster
    on_a, also_on_a, on_b = await clients(a), await clients(a), await clients(b)
    ack = await on_a.set("s1", 11)
    await on_b.wait_for(lambda: on_b.values["s1"][1] == ack["version"])

    proxy.stop()
    outage_started = time.monotonic()
    on_a_ack, took = await timed(on_a.set("s1", 12))
    assert on_a_ack["ok"] is True and took < 2, (on_a_ack, took)
    expected = (12, on_a_ack["version"])
    await also_on_a.wait_for(lambda: also_on_a.values["s1"] == expected, timeout=2)
    ack, took = await timed(on_b.set("s2", 13))
    assert ack["ok"] is True and took < 2, (ack, took)
    newcomer, took = await timed(clients(a))
    assert newcomer.values["s1"] == expected
    assert took < 3, f"connecting during the outage took {took:.1f}s"
    await wait_until(
        lambda: "Redis is unavailable" in a.log() and "Redis is unavailable" in b.log(),
        timeout=5,
        what="both processes to log that Redis is unavailable",
    )

    await asyncio.sleep(max(0.0, 2 - (time.monotonic() - outage_started)))  # a 2 s outage
    proxy.start()
    restored = time.monotonic()
    value = 100
    while True:  # A moves s1 every 200 ms until B hears it
        value += 1
        ack = await on_a.set("s1", value)
        assert ack["ok"] is True, ack
        try:
            await on_b.wait_for(lambda v=ack["version"]: on_b.values["s1"][1] >= v, timeout=0.2)
            break
        except AssertionError:
            assert time.monotonic() - restored < 15, "A's broadcasts did not reach B again"
    a_to_b = time.monotonic() - restored
    ack = await on_b.set("s1", value + 1)
    await on_a.wait_for(lambda: on_a.values["s1"][1] >= ack["version"], timeout=10)
    print(f"\nafter a 2 s Redis outage, A's updates reached B again {a_to_b * 1000:.0f} ms later")


async def test_changes_made_during_a_redis_outage_reach_the_other_process_afterwards(
    redis_cluster,
    clients,
    services_env,
):
    """Invariant 5 (convergence) across an outage: when Redis is back and changes stop, every
    client shows the database's value, including changes whose broadcast Redis dropped."""
    proxy, a, b = redis_cluster
    on_a, on_b = await clients(a), await clients(b)
    proxy.stop()
    ack = await on_a.set("s2", 77)  # B's clients cannot hear this one
    assert ack["ok"] is True
    await asyncio.sleep(1)
    proxy.start()
    # Prove the link works again with a change on another slider...
    deadline = time.monotonic() + 15
    value = 500
    while True:
        value += 1
        probe = await on_a.set("s1", value)
        try:
            await on_b.wait_for(lambda v=probe["version"]: on_b.values["s1"][1] >= v, timeout=0.2)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "A's broadcasts did not reach B again"
    # ...then the change made during the outage must show on B too.
    database = stored("main", "s2", database_url=services_env["DATABASE_URL"])
    assert database == (77, ack["version"])
    with contextlib.suppress(AssertionError):
        await wait_until(lambda: on_b.values["s2"] == database, timeout=3, interval=0.02)
    assert on_b.values["s2"] == database, (
        f"B's client still shows s2 = {on_b.values['s2']} while the database holds {database}: "
        "the update published during the outage was lost and nothing resyncs"
    )
