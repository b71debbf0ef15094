"""Several uvicorn processes on one PostgreSQL database and one Redis: every client converges.

These tests use the real services on 127.0.0.1 (see tests/support/services.py): each test run
gets its own database and its own Redis key prefix. Where the services are missing they are
skipped, except under CI, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time

import aiohttp
import pytest

from tests.support.accounts import PASSWORD
from tests.support.clients import BoardClient, connect, presence
from tests.support.database import stored
from tests.support.http import AdminSession
from tests.support.proxies import Balancer, TcpProxy
from tests.support.services import manage
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.live, pytest.mark.scaleout]


async def test_a_set_on_one_process_reaches_clients_on_the_other(cluster, clients):
    a, b = cluster
    on_a = await connect(a.url, clients)
    on_b = await connect(b.url, clients)
    ack = await on_a.set("s2", 42)
    assert ack["ok"] is True
    await on_b.wait_for(lambda: on_b.values["s2"] == (42.0, ack["version"]))
    ack = await on_b.set("s2", 7)
    await on_a.wait_for(lambda: on_a.values["s2"] == (7.0, ack["version"]))
    # The sender gets its ack, not an echo, whichever process it is on.
    assert [u for u in on_a.of("slider:update") if u["value"] == 42] == []
    assert [u for u in on_b.of("slider:update") if u["value"] == 7] == []


async def test_presence_counts_clients_on_every_process(cluster, clients):
    a, b = cluster
    first = await connect(a.url, clients)
    second = await connect(b.url, clients)
    await first.wait_for(lambda: presence(first) == 2)
    await second.wait_for(lambda: presence(second) == 2)
    third = await connect(b.url, clients)
    assert third.state["clients"] == 3
    await first.wait_for(lambda: presence(first) == 3)
    await third.disconnect()
    await first.wait_for(lambda: presence(first) == 2)
    await second.wait_for(lambda: presence(second) == 2)


async def test_presence_behind_a_slow_redis_reaches_a_newcomer(services_env, clients, start_server):
    """One client joins and another leaves within one interval, behind a Redis 0.2 s a round
    trip away: the count stays 2, but the newcomer's board:state was read before the leave and
    only the change's emit corrects it. The refresh the change's own notice started took the
    count first and, finding it unchanged, swallowed that emit."""
    proxy = TcpProxy(6379).start()
    try:
        proxy.shape(latency=0.1)  # each way
        redis_url = proxy.url(services_env["REDIS_URL"])
        server = start_server(
            env={**services_env, "REDIS_URL": redis_url, "PRESENCE_INTERVAL": "0.25"}
        )
        first = await connect(server.url, clients)
        leaving = await connect(server.url, clients)
        await first.wait_for(lambda: presence(first) == 2, 10)
        await leaving.wait_for(lambda: presence(leaving) == 2, 10)
        newcomer = BoardClient(server.url, "main")
        clients.append(newcomer)
        await newcomer.connect(wait_state=False)
        await leaving.disconnect()
        await newcomer.wait_for(lambda: presence(newcomer) == 2, 10)
        assert presence(first) == 2
    finally:
        proxy.close()


async def test_an_admin_save_reaches_clients_on_both_processes(cluster, clients, services_env):
    a, b = cluster
    manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User;"
        f"User.objects.filter(username='ops').exists() or "
        f"User.objects.create_superuser('ops', 'ops@example.com', '{PASSWORD}')",
        env=services_env,
    )
    on_a = await connect(a.url, clients)
    on_b = await connect(b.url, clients)
    slider_id = manage(
        "shell",
        "--no-imports",
        "-c",
        "from sliders.models import Slider;"
        "print(Slider.objects.get(board__slug='main', slug='s2').pk)",
        env=services_env,
    ).strip()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = AdminSession(a.url, http)
        await admin.login("ops", PASSWORD)
        await admin.submit(f"/admin/sliders/slider/{slider_id}/change/", "slider_form", value="88")
        value, version = stored("main", "s2", database_url=services_env["DATABASE_URL"])
        assert value == 88.0
        for client in (on_a, on_b):
            await client.wait_for(lambda c=client: c.values["s2"] == (88.0, version))
        # A structural change (a new name) reaches both as a fresh board:state.
        await admin.submit(
            f"/admin/sliders/slider/{slider_id}/change/", "slider_form", name="Renamed"
        )
        for client in (on_a, on_b):
            await client.wait_for(
                lambda c=client: [s["name"] for s in c.state["sliders"]] == ["Slider 1", "Renamed"]
            )


async def test_a_change_from_a_process_without_a_server_reaches_everyone(
    cluster, clients, services_env
):
    """A shell or management command publishes through Redis (write-only)."""
    a, b = cluster
    on_a = await connect(a.url, clients)
    on_b = await connect(b.url, clients)
    manage(
        "shell",
        "-c",
        "from sliders import services;"
        "services.set_slider_value(board='main', slider_id='s2', value=13)",
        env=services_env,
    )
    value, version = stored("main", "s2", database_url=services_env["DATABASE_URL"])
    assert value == 13.0
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: c.values["s2"] == (13.0, version))


async def test_the_slider_command_reaches_everyone(cluster, clients, services_env):
    a, b = cluster
    on_a = await connect(a.url, clients)
    on_b = await connect(b.url, clients)
    assert manage("slider", "set", "main", "s2", "21.4", env=services_env).strip().startswith("21")
    value, version = stored("main", "s2", database_url=services_env["DATABASE_URL"])
    assert value == 21.0  # snapped to the step, like any set
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: c.values["s2"] == (21.0, version))
    shown = json.loads(manage("slider", "get", "main", "s2", "--json", env=services_env))
    assert shown == {"value": 21.0, "version": version}


async def test_a_hand_on_one_process_shows_on_the_other(cluster, clients):
    a, b = cluster
    mover = await connect(a.url, clients)
    watcher = await connect(b.url, clients)

    def hands(client: BoardClient) -> list | None:
        lists = [h["hands"] for h in client.of("slider:hands") if h["id"] == "s2"]
        return lists[-1] if lists else None

    assert await mover.call("slider:grab", {"id": "s2"}) == {"ok": True}
    await watcher.wait_for(
        lambda: hands(watcher) == [{"hand": mover.state["hand"], "by": "someone"}]
    )
    late = await connect(b.url, clients)
    assert late.state["hands"]["s2"][0]["hand"] == mover.state["hand"]
    await mover.disconnect()
    await watcher.wait_for(lambda: hands(watcher) == [])


async def test_convergence_under_contention(cluster, clients, services_env):
    """Six clients on two processes hammer one slider; afterwards all agree with the database."""
    a, b = cluster
    senders = [await connect(server.url, clients) for server in (a, b, a, b, a, b)]
    watchers = [await connect(server.url, clients) for server in (a, b)]
    _, start_version = stored(database_url=services_env["DATABASE_URL"])
    acked_versions: list[int] = []
    sent = 0
    deadline = time.monotonic() + 3

    async def hammer(index: int, client: BoardClient) -> None:
        nonlocal sent
        counter = 0
        while time.monotonic() < deadline:
            # Ten sets in flight at a time, like a fast drag on a slow link.
            values = [1 + index * 100_000 + counter + k for k in range(10)]
            counter += 10  # distinct everywhere: every set is a change
            acks = await asyncio.gather(*(client.set("s1", value) for value in values))
            sent += len(values)
            for value, ack in zip(values, acks, strict=True):
                assert ack["ok"] is True, ack
                # A set still waiting behind the client's previous one is superseded by a newer
                # one of the batch and shares its ack.
                assert ack["value"] in values and ack["value"] >= value
            acked_versions.extend({ack["version"] for ack in acks})

    started = time.monotonic()
    await asyncio.gather(*(hammer(i, c) for i, c in enumerate(senders)))
    stopped = time.monotonic()
    final_value, final_version = stored(database_url=services_env["DATABASE_URL"])

    # Invariant 2 across processes: one version per accepted change, none lost, none repeated.
    assert sorted(acked_versions) == list(range(start_version + 1, final_version + 1))
    assert sent >= 200, "the load was too light to prove anything"

    # Invariant 5: every client converges on the database's value.
    everyone = senders + watchers
    waiting_since = time.monotonic()
    await wait_until(
        lambda: all(c.values["s1"] == (final_value, final_version) for c in everyone),
        timeout=10,
        what="all clients to hold the database's value",
    )
    converged_in = time.monotonic() - waiting_since
    stale = sum(c.stale_updates for c in everyone)
    print(
        f"\nconvergence: {sent} sets ({len(acked_versions)} written) from {len(senders)} clients "
        f"on 2 processes in {stopped - started:.2f}s ({sent / (stopped - started):.0f}/s); "
        f"all {len(everyone)} clients agreed {converged_in * 1000:.0f} ms after the last ack; "
        f"{stale} out-of-order deliveries dropped by the clients"
    )


async def test_killing_a_process_moves_its_clients_to_the_other(cluster, clients, services_env):
    a, b = cluster
    to_a = await Balancer([a.port, b.port]).start()
    to_b = await Balancer([b.port, a.port]).start()
    try:
        dragging = [
            await connect(balancer.url, clients, reconnection=True)
            for balancer in (to_a, to_a, to_b, to_b)
        ]
        for client in dragging:
            await client.wait_for(lambda c=client: presence(c) == 4)
        stop = asyncio.Event()

        async def drag(index: int, client: BoardClient) -> None:
            value = index
            while not stop.is_set():
                value = (value + 4) % 1_000_000
                try:
                    await client.set("s1", value, timeout=1)
                except Exception:  # the connection is down for a moment: keep dragging
                    await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(drag(i, c)) for i, c in enumerate(dragging)]
        await asyncio.sleep(1)
        a.kill()
        killed_at = time.monotonic()
        # The clients of A come back through their balancer, now to B, and resync.
        await wait_until(
            lambda: all(len(c.of("board:state")) >= 2 for c in dragging[:2]),
            timeout=10,
            what="A's clients to reconnect to B",
        )
        reconnected_in = time.monotonic() - killed_at
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*tasks)

        final = stored(database_url=services_env["DATABASE_URL"])
        await wait_until(
            lambda: all(c.values["s1"] == final for c in dragging),
            timeout=10,
            what="all clients to converge after the kill",
        )
        # A's presence entry dies with its heartbeat: the count settles to the true four.
        waiting_since = time.monotonic()
        await wait_until(
            lambda: all(presence(c) == 4 and c.sio.connected for c in dragging),
            timeout=15,
            what="presence to settle at 4",
        )
        settled_in = time.monotonic() - waiting_since
        print(
            f"\nafter SIGKILL: clients back on B in {reconnected_in * 1000:.0f} ms, "
            f"presence settled {settled_in * 1000:.0f} ms after convergence"
        )
    finally:
        await to_a.close()
        await to_b.close()


async def test_sigterm_closes_cleanly_and_clients_resync_elsewhere(cluster, clients, services_env):
    a, b = cluster
    to_b = await Balancer([b.port, a.port]).start()
    try:
        client = await connect(to_b.url, clients, reconnection=True)
        watcher = await connect(a.url, clients)
        b.stop()  # SIGTERM, and wait for the process to exit
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells.
        assert b.process is not None and b.process.returncode == -signal.SIGTERM, b.log()
        assert "Realtime server stopping" in b.log(), b.log()
        assert "shutdown failed" not in b.log(), b.log()
        await client.wait_for(lambda: len(client.of("board:state")) >= 2, timeout=10)
        ack = await client.set("s2", random.randint(1, 99))
        assert ack["ok"] is True
        await watcher.wait_for(lambda: watcher.values["s2"][1] == ack["version"])
    finally:
        await to_b.close()


async def test_healthz_reports_the_services(cluster, services_env, start_server):
    a, _ = cluster
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{a.url}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"database": "up", "redis": "up"}
        broken = start_server(env={**services_env, "REDIS_URL": "redis://127.0.0.1:1/0"})
        async with http.get(f"{broken.url}/healthz") as response:
            assert response.status == 503
            assert await response.json() == {"database": "up", "redis": "down"}
