"""OSC bridges against a live server over real UDP sockets: out to desks, in from them, no echo.

The server runs without REDIS_URL, so it runs the bridges itself; it checks the bridge settings
every 0.2 s, which is how it learns of the targets these tests make (the test process has no
way to notify it). Latencies are measured and printed (`-s` shows them), never asserted beyond
correctness bounds.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import subprocess
import sys
import time

import pytest

from tests.support.clients import connect, timed_sets
from tests.support.database import stored
from tests.support.http import scrape
from tests.support.osc import add_target, close_to, free_udp_port, message
from tests.support.servers import PROJECT_DIR, BridgeRunner
from tests.support.services import manage
from tests.support.waiting import wait_until

pytestmark = pytest.mark.live


async def test_a_set_reaches_the_osc_target_at_the_sliders_address(
    make_board, connect_client, osc_server, peers
):
    board = make_board(
        sliders=[
            {"slug": "s1", "min": 0, "max": 100, "value": 50},
            {
                "slug": "gain",
                "min": -60,
                "max": 0,
                "step": 0.5,
                "value": -60,
                "osc_address": "/mixer/1/fader",
                "osc_normalized": True,
            },
        ]
    )
    desk = await peers()
    add_target(board, desk.port)
    # A new target is first sent every slider's value.
    await desk.wait_for(f"/{board.slug}/s1", 50.0)
    await desk.wait_for("/mixer/1/fader", 0.0)
    client = await connect_client(board.slug, server=osc_server)

    latencies = []
    for value in (10, 20, 30, 40, 55, 65, 75, 85, 95, 5):
        sent = time.perf_counter()
        assert (await client.set("s1", value))["ok"] is True
        arrived = await desk.wait_for(f"/{board.slug}/s1", float(value), timeout=1)
        latencies.append(arrived.at - sent)
        await asyncio.sleep(0.12)  # past the target's 30 Hz interval: each set is sent alone
    assert (await client.set("gain", -15))["ok"] is True
    await desk.wait_for("/mixer/1/fader", 0.75)  # -15 over -60..0
    print(
        f"\nset -> OSC packet: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} sets"
    )
    assert all(isinstance(m.value, float) for m in desk.received)  # float32 arguments


async def test_a_drag_is_sent_at_most_at_the_targets_rate_and_its_last_value_arrives(
    make_board, connect_client, osc_server, peers
):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 1000, "value": 0}])
    desk = await peers()
    target = add_target(board, desk.port, rate=10)
    address = f"/{board.slug}/s1"
    await desk.wait_for(address, 0.0)
    client = await connect_client(board.slug, server=osc_server)
    before = await scrape(osc_server.url)
    version_before = stored(board, "s1")[1]

    start = time.perf_counter()
    sets = []
    for value in range(1, 61):  # 60 sets in a second, as a page sends them (not waiting)
        sets.append(asyncio.create_task(client.set("s1", value)))
        await asyncio.sleep(max(0.0, start + value / 60 - time.perf_counter()))
    assert all(ack["ok"] for ack in await asyncio.gather(*sets))
    await desk.wait_for(address, 60.0, timeout=2)
    await asyncio.sleep(0.3)  # anything still on its way
    during = [m for m in desk.at(address) if m.at >= start]
    span = during[-1].at - during[0].at
    print(f"\n60 sets in {time.perf_counter() - start:.2f} s at rate 10 Hz: {len(during)} packets")
    # One send per 0.1 s at most: n packets need at least (n - 1) / 10 s (give or take the
    # receiving thread's few milliseconds).
    assert len(during) <= (span + 0.01) * 10 + 1
    assert close_to(during[-1].value, 60.0)  # the last value always arrives, and last
    assert len(during) < 60

    after = await scrape(osc_server.url)
    labels = (("target", f"osc:{target.pk}"),)

    def moved(name: str) -> float:
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert moved("slidersync_bridge_messages_sent_total") == len(during)
    # Every stored change (sets waiting in the connection's queue may be superseded there
    # already) was either sent or replaced by a newer one before it was.
    committed = stored(board, "s1")[1] - version_before
    assert moved("slidersync_bridge_messages_superseded_total") == committed - len(during)
    assert after[("slidersync_bridge_target_up", labels)] == 1


async def test_an_osc_message_moves_the_board_and_is_not_echoed_to_its_sender(
    make_board, connect_client, osc_server, peers
):
    port = free_udp_port()
    board = make_board(
        sliders=[
            {"slug": "s1", "min": 0, "max": 100, "value": 50},
            {"slug": "pan", "min": -1, "max": 1, "step": 0.01, "value": 0, "osc_normalized": True},
        ],
        osc_port=port,
    )
    desk, other = await peers(), await peers()
    add_target(board, desk.port)
    add_target(board, other.port)
    address = f"/{board.slug}/s1"
    for peer in (desk, other):
        await peer.wait_for(address, 50.0)
    watcher = await connect_client(board.slug, server=osc_server)

    desk.send(address, 33.0, to=port)
    await watcher.wait_for(lambda: watcher.values["s1"][0] == 33.0)
    await other.wait_for(address, 33.0)  # every other target hears of it
    desk.send(f"/{board.slug}/pan", 0.75, to=port)  # 0..1 over -1..1
    await watcher.wait_for(lambda: watcher.values["pan"][0] == 0.5)
    await other.wait_for(f"/{board.slug}/pan", 0.75)
    await asyncio.sleep(0.3)
    assert [m.value for m in desk.at(address)] == [50.0]  # its first value, nothing sent back
    assert [m.value for m in desk.at(f"/{board.slug}/pan")] == [0.5]

    # The same value again (a desk's feedback) changes nothing.
    version = stored(board, "s1")[1]
    desk.send(address, 33, to=port)  # an int is a number too
    await asyncio.sleep(0.3)
    assert stored(board, "s1") == (33.0, version)
    # A person's later value reaches the desk: the last write wins, everywhere.
    assert (await watcher.set("s1", 70))["ok"] is True
    await desk.wait_for(address, 70.0)
    from sliders.models import AuditEntry

    entries = AuditEntry.objects.filter(board=board.slug).order_by("id")
    assert list(entries.values_list("slider", "source", "to_value")) == [
        ("s1", "osc", 33.0),
        ("pan", "osc", 0.5),
        ("s1", "socket", 70.0),
    ]
    assert entries[0].client == f"osc:127.0.0.1:{desk.port}"


BAD_INPUT = {  # what a desk might send, given the board's address prefix
    "a string": lambda at: message(f"{at}/s1", "loud"),
    "NaN": lambda at: message(f"{at}/s1", math.nan, types="f"),
    "infinity": lambda at: message(f"{at}/s1", math.inf, types="d"),
    "true": lambda at: message(f"{at}/s1", True),
    "two numbers": lambda at: message(f"{at}/s1", 1.0, 2.0),
    "no argument": lambda at: message(f"{at}/s1"),
    "above max": lambda at: message(f"{at}/s1", 101.0),
    "below min": lambda at: message(f"{at}/s1", -0.5),
    "unknown slider": lambda at: message(f"{at}/nope", 10.0),
    "unknown address": lambda at: message("/elsewhere", 10.0),
    "not OSC": lambda at: b"not osc at all",
    "address not UTF-8": lambda at: b"/\xb3ain/s1\x00\x00\x00,f\x00\x00?\x00\x00\x00",
    "broken bundle": lambda at: b"#bundle\x00" + b"\xff" * 12,
    "bad pattern": lambda at: message(f"{at}/[s1", 10.0),
}


@pytest.mark.parametrize("bad", BAD_INPUT)
async def test_bad_osc_input_changes_nothing_and_the_port_keeps_working(
    make_board, osc_server, peers, bad
):
    port = free_udp_port()
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}], osc_port=port)
    desk = await peers()
    add_target(board, desk.port)  # so that the test knows when the server has the port
    await desk.wait_for(f"/{board.slug}/s1", 50.0)
    log_before = osc_server.log().count("Ignored")
    before = stored(board, "s1")
    for _ in range(50):
        desk.send_raw(BAD_INPUT[bad](f"/{board.slug}"), to=port)
    await asyncio.sleep(0.3)
    assert stored(board, "s1") == before
    desk.send(f"/{board.slug}/s1", 12.0, to=port)
    await wait_until(lambda: stored(board, "s1")[0] == 12.0, what="the good message")
    logged = osc_server.log().count("Ignored") - log_before
    assert logged <= 2  # fifty bad messages, logged at most every 10 s


async def test_a_dead_target_does_not_delay_sets_and_its_state_shows(
    make_board, connect_client, osc_server, peers
):
    from sliders.models import OscTarget

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    dead_port = free_udp_port()  # nothing listens: the kernel answers "port unreachable"
    target = add_target(board, dead_port)
    client = await connect_client(board.slug, server=osc_server)
    await wait_until(lambda: OscTarget.objects.get(pk=target.pk).state != "unknown", 5)

    acks = await timed_sets(client, "s1", range(1, 31))
    print(
        f"\nsets with a dead target: median ack {statistics.median(acks) * 1000:.1f} ms, "
        f"max {max(acks) * 1000:.1f} ms"
    )
    assert max(acks) < 1  # a correctness bound: nothing waits for the target

    row = await wait_until(
        lambda: (t := OscTarget.objects.get(pk=target.pk)).state == "failing" and t,
        5,
        "the target's state to show the failure",
    )
    assert "refused" in row.last_error.lower()
    assert row.last_error_at is not None
    labels = (("target", f"osc:{target.pk}"),)
    figures = await scrape(osc_server.url)
    assert figures[("slidersync_bridge_failures_total", labels)] >= 1
    assert figures[("slidersync_bridge_target_up", labels)] == 0
    assert osc_server.log().count(f"osc:{target.pk} (127.0.0.1:{dead_port}, board") == 1

    # The desk comes back: the retries find it and it gets the last value.
    desk = await peers(dead_port)
    await desk.wait_for(f"/{board.slug}/s1", 30.0, timeout=40)
    await wait_until(lambda: OscTarget.objects.get(pk=target.pk).state == "ok", 5)
    assert "works again" in osc_server.log()


def test_run_bridges_refuses_without_redis():
    result = subprocess.run(
        [sys.executable, "manage.py", "run_bridges"],
        cwd=PROJECT_DIR,
        env={**os.environ, "REDIS_URL": "", "DJANGO_SETTINGS_MODULE": "tests.live_settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "run_bridges needs REDIS_URL" in result.stderr


@pytest.mark.scaleout
async def test_two_web_processes_and_one_bridge_runner_send_each_change_once(
    cluster, services_env, clients, peers
):
    desk, other = await peers(), await peers()
    osc_port = free_udp_port()
    runner = BridgeRunner(env={**services_env, "OSC_LISTEN_HOST": "127.0.0.1"}).start()
    try:
        manage(
            "shell",
            "-c",
            "from sliders import services; from sliders.models import Board, OscTarget;"
            "board = Board.objects.get(slug='main');"
            f"board.osc_port = {osc_port}; services.save_board(board=board);"
            f"services.save_osc_target(target=OscTarget(board=board, host='127.0.0.1', "
            f"port={desk.port}));"
            f"services.save_osc_target(target=OscTarget(board=board, host='127.0.0.1', "
            f"port={other.port}))",
            env=services_env,
        )
        value, _ = stored("main", "s2", database_url=services_env["DATABASE_URL"])
        await desk.wait_for("/main/s2", value)  # its first values: the runner has the target
        on_a = await connect(cluster[0].url, clients)
        on_b = await connect(cluster[1].url, clients)

        values = [float(v) for v in range(11, 21)]
        for index, value in enumerate(values):
            setter = (on_a, on_b)[index % 2]
            assert (await setter.set("s2", value))["ok"] is True
            await desk.wait_for("/main/s2", value)
            await asyncio.sleep(0.05)  # past the target's 30 Hz interval
        await asyncio.sleep(0.5)  # duplicates would have arrived by now
        for peer in (desk, other):
            sent = [m.value for m in peer.at("/main/s2")][1:]
            assert sent == values  # each change once, in order, from the one runner

        # In through the runner's listening port: both processes' clients follow, no echo.
        desk.send("/main/s2", 42.0, to=osc_port)
        for client in (on_a, on_b):
            await client.wait_for(lambda c=client: c.values["s2"][0] == 42.0)
        await other.wait_for("/main/s2", 42.0)
        await asyncio.sleep(0.3)
        assert [m for m in desk.at("/main/s2") if close_to(m.value, 42.0)] == []
    finally:
        runner.stop()
    assert "Traceback" not in runner.log()


async def test_an_osc_target_added_in_the_admin_is_sent_to_and_shows_its_state(
    make_board, osc_server, peers, stable_content_types
):
    import aiohttp

    from sliders.models import OscTarget
    from tests.support.accounts import PASSWORD, live_superuser
    from tests.support.http import AdminSession

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 64}])
    desk = await peers()
    live_superuser("osc-admin", "osc@example.com")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = AdminSession(osc_server.url, http)
        await admin.login("osc-admin", PASSWORD)
        page = f"/admin/sliders/board/{board.pk}/change/"
        await admin.submit(
            page,
            "board_form",
            **{
                "osc_targets-TOTAL_FORMS": "1",
                "osc_targets-0-host": "127.0.0.1",
                "osc_targets-0-port": str(desk.port),
                "osc_targets-0-rate": "30",
                "osc_targets-0-enabled": "on",
            },
        )
        await desk.wait_for(f"/{board.slug}/s1", 64.0)
        target = await wait_until(
            lambda: OscTarget.objects.filter(board=board, state="ok").first(), 5, "state ok"
        )
        assert target.last_success_at is not None
        status, html = await admin.get(page)
        assert status == 200
        assert "Sending" in html  # the state, shown read-only
        assert 'name="osc_targets-0-state"' not in html
