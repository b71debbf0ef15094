"""Webhooks against a live server and a real HTTP receiver: signed bodies, retries, giving up,
a slow receiver, presets and board changes.

The server runs without REDIS_URL, so it runs the bridges itself; it checks the bridge settings
every 0.2 s, which is how it learns of the webhooks these tests make (the test process has no
way to notify it); a webhook runs once its metrics appear. Retries start at 0.1 s and give up
after 3 attempts here. Latencies are measured and printed (`-s` shows them), never asserted
beyond correctness bounds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.clients import timed_sets
from tests.support.http import scrape
from tests.support.servers import PROJECT_DIR, LiveServer
from tests.support.waiting import wait_until
from tests.support.webhooks import ATTEMPTS, SERVER_ENV, add_webhook, deliveries

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def hook_server(django_db_setup: None) -> Iterator[LiveServer]:
    server = LiveServer(env=SERVER_ENV)
    yield server.start()
    server.stop()


async def test_a_set_posts_one_signed_event_with_the_value(
    make_board, connect_client, hook_server, receivers
):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    receiver = await receivers()
    webhook = await add_webhook(hook_server, board, receiver.url)
    assert len(webhook.secret) == 64  # generated
    client = await connect_client(board.slug, server=hook_server)

    ack = await client.set("s1", 42)
    post = await receiver.wait_for(lambda p: p.json["value"] == 42.0)
    await asyncio.sleep(0.3)
    assert len(receiver.posts) == 1  # nothing for the value the board had, one for the set
    body = post.json
    assert body == {
        "event": "value_changed",
        "delivery": body["delivery"],
        "board": board.slug,
        "slider": "s1",
        "value": 42.0,
        "version": ack["version"],
        "actor": None,  # anonymous
        "source": "socket",
        "time": body["time"],
    }
    written = datetime.fromisoformat(body["time"])
    assert written.utcoffset() is not None and written.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - written).total_seconds()) < 60
    assert post.signed_with(webhook.secret)
    assert not post.signed_with("another secret")
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["X-SliderSync-Event"] == "value_changed"
    assert post.headers["X-SliderSync-Delivery"] == body["delivery"]
    assert abs(int(post.headers["X-SliderSync-Timestamp"]) - time.time()) < 60

    latencies = []
    for value in (10, 20, 30, 40, 55, 65, 75, 85, 95, 5):
        sent = time.perf_counter()
        assert (await client.set("s1", value))["ok"] is True
        arrived = await receiver.wait_for(lambda p, v=value: p.json["value"] == v, timeout=2)
        latencies.append(arrived.at - sent)
        await asyncio.sleep(0.05)  # past the webhook's 30 Hz interval: each set is sent alone
    print(
        f"\nset -> webhook POST: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} sets"
    )
    await wait_until(lambda: len(deliveries(webhook)) == 11, what="the delivery log")
    assert {row[1:] for row in deliveries(webhook)} == {("delivered", 204)}


async def test_a_500_is_retried_with_the_same_delivery_until_it_succeeds(
    make_board, connect_client, hook_server, receivers
):
    from sliders.models import Webhook

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    receiver = await receivers(answers=[500, (503, {"Retry-After": "1"})])
    webhook = await add_webhook(hook_server, board, receiver.url)
    client = await connect_client(board.slug, server=hook_server)

    assert (await client.set("s1", 60))["ok"] is True
    await wait_until(lambda: len(receiver.posts) == 3, 10, "three attempts")
    first, second, third = receiver.posts
    assert first.body == second.body == third.body  # one delivery, signed alike each time
    assert len({p.headers["X-SliderSync-Delivery"] for p in receiver.posts}) == 1
    assert third.signed_with(webhook.secret)
    assert third.at - second.at >= 0.9  # the receiver's Retry-After, not the 0.2 s back-off
    await wait_until(lambda: len(deliveries(webhook)) == 3, what="the delivery log")
    assert deliveries(webhook) == [
        (1, "retrying", 500),
        (2, "retrying", 503),
        (3, "delivered", 204),
    ]
    row = await wait_until(lambda: (w := Webhook.objects.get(pk=webhook.pk)).state == "ok" and w)
    assert row.last_error == "ReceiverAnswered: HTTP 500 Internal Server Error"
    labels = (("target", webhook.key),)
    figures = await scrape(hook_server.url)
    assert figures[("slidersync_bridge_failures_total", labels)] == 2
    assert figures[("slidersync_bridge_messages_sent_total", labels)] == 1


async def test_a_failing_receiver_is_given_up_on_after_n_attempts_logged_once_and_shown(
    make_board, connect_client, hook_server, receivers, stable_content_types
):
    import aiohttp

    from sliders.models import Webhook
    from tests.support.accounts import PASSWORD, live_superuser
    from tests.support.http import AdminSession

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    receiver = await receivers(default=500)
    webhook = await add_webhook(hook_server, board, receiver.url)
    client = await connect_client(board.slug, server=hook_server)

    assert (await client.set("s1", 70))["ok"] is True
    await wait_until(lambda: len(receiver.posts) == ATTEMPTS, 10, "every attempt")
    await asyncio.sleep(1)  # 0.1 + 0.2 s back-off: a fourth attempt would have come by now
    assert len(receiver.posts) == ATTEMPTS
    await wait_until(lambda: len(deliveries(webhook)) == ATTEMPTS, what="the delivery log")
    assert deliveries(webhook) == [
        *[(n, "retrying", 500) for n in range(1, ATTEMPTS)],
        (ATTEMPTS, "gave_up", 500),
    ]
    row = Webhook.objects.get(pk=webhook.pk)
    assert row.state == "failing"
    assert "HTTP 500" in row.last_error
    log = hook_server.log()
    assert log.count(f"Webhook {webhook.key} (http://127.0.0.1:{receiver.port}, board") == 1
    assert f"gave up on value_changed {receiver.posts[0].json['delivery']} after 3" in log
    assert "from=slidersync" not in log  # no path or query in the log
    figures = await scrape(hook_server.url)
    dropped = (("reason", "gave_up"), ("target", webhook.key))
    assert figures[("slidersync_webhook_deliveries_dropped_total", dropped)] == 1

    # A 4xx other than 429 is not tried again.
    receiver.default = 410
    assert (await client.set("s1", 71))["ok"] is True
    await wait_until(lambda: len(deliveries(webhook)) == ATTEMPTS + 1, what="the 410")
    await asyncio.sleep(0.5)
    assert deliveries(webhook)[-1] == (1, "gave_up", 410)
    assert len(receiver.posts) == ATTEMPTS + 1

    # Staff see the log, read-only, on the webhook's page.
    live_superuser("hook-admin", "hook@example.com")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = AdminSession(hook_server.url, http)
        await admin.login("hook-admin", PASSWORD)
        status, html = await admin.get(f"/admin/sliders/webhook/{webhook.pk}/change/")
        assert status == 200
        assert html.count("Failed, gave up") == 2
        assert "Failed, will retry" in html
        assert "HTTP 410 Gone" in html
        assert webhook.secret in html  # staff see the secret to give it to the receiver
        assert 'name="deliveries-0-status"' not in html  # read-only


async def test_a_receiver_that_is_down_does_not_delay_sets_and_gets_events_once_back(
    make_board, connect_client, hook_server, receivers
):
    from sliders.models import Webhook, WebhookDelivery
    from tests.support.servers import free_port

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 0}])
    port = free_port()  # nothing listens: connections are refused
    webhook = await add_webhook(hook_server, board, f"http://127.0.0.1:{port}/hook")
    client = await connect_client(board.slug, server=hook_server)

    acks = await timed_sets(client, "s1", range(1, 31))
    print(
        f"\nsets while the receiver is down: median ack {statistics.median(acks) * 1000:.1f} ms,"
        f" max {max(acks) * 1000:.1f} ms"
    )
    assert max(acks) < 1  # a correctness bound: nothing waits for the receiver
    row = await wait_until(
        lambda: (w := Webhook.objects.get(pk=webhook.pk)).state == "failing" and w,
        what="the failing state",
    )
    assert "ClientConnectorError" in row.last_error
    # Each value's attempts stop when a newer value of the slider comes; the last is given up.
    await wait_until(
        lambda: WebhookDelivery.objects.filter(webhook=webhook, result="gave_up").exists(),
        10,
        "the last value given up",
    )
    results = {result for _, result, _ in deliveries(webhook)}
    assert results <= {"retrying", "superseded", "gave_up"}
    assert hook_server.log().count(f"Bridge target {webhook.key} (") == 1

    receiver = await receivers(port=port)  # back
    assert (await client.set("s1", 99))["ok"] is True
    post = await receiver.wait_for(lambda p: p.json["value"] == 99.0)
    assert [p.json["value"] for p in receiver.posts] == [99.0]  # nothing given up comes back
    assert post.signed_with(webhook.secret)
    await wait_until(lambda: Webhook.objects.get(pk=webhook.pk).state == "ok", what="ok again")
    assert f"Bridge target {webhook.key} (http://127.0.0.1:{port}, board" in hook_server.log()
    assert "works again" in hook_server.log()


async def test_a_slow_receiver_does_not_delay_sets_and_the_latest_value_arrives(
    make_board, connect_client, hook_server, receivers
):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 0}])
    receiver = await receivers(delays=[5.0])
    webhook = await add_webhook(hook_server, board, receiver.url)
    client = await connect_client(board.slug, server=hook_server)
    before = await scrape(hook_server.url)

    acks = await timed_sets(client, "s1", range(1, 31))
    print(
        f"\nsets while the receiver takes 5 s: median ack {statistics.median(acks) * 1000:.1f} ms,"
        f" max {max(acks) * 1000:.1f} ms"
    )
    assert max(acks) < 1  # a correctness bound: nothing waits for the receiver
    assert [p.json["value"] for p in receiver.posts] == [1.0]  # still answering that one
    await receiver.wait_for(lambda p: p.json["value"] == 30.0, timeout=10)
    await asyncio.sleep(0.3)
    # The first value, then the latest: the 28 in between were superseded while waiting.
    assert [p.json["value"] for p in receiver.posts] == [1.0, 30.0]
    after = await scrape(hook_server.url)
    labels = ("slidersync_bridge_messages_superseded_total", (("target", webhook.key),))
    assert after[labels] - before.get(labels, 0) == 28


async def test_a_preset_recall_and_a_board_change_are_posted(
    make_board, connect_client, hook_server, receivers
):
    board = make_board(
        sliders=[
            {"slug": "s1", "min": 0, "max": 100, "value": 10},
            {"slug": "s2", "min": 0, "max": 100, "value": 20},
        ]
    )
    receiver = await receivers()
    values_only = await receivers()
    webhook = await add_webhook(hook_server, board, receiver.url)
    await add_webhook(
        hook_server, board, values_only.url, preset_recalled=False, board_changed=False
    )
    client = await connect_client(board.slug, server=hook_server)

    saved = await client.call("preset:save", {"name": "Scene A"})
    assert saved["ok"] is True
    changed = await receiver.wait_for(lambda p: p.json["event"] == "board_changed")
    assert changed.json == {
        "event": "board_changed",
        "delivery": changed.json["delivery"],
        "board": board.slug,
        "change": "preset_saved",
        "slider": None,
        "preset": "Scene A",
        "actor": None,
        "source": "socket",
        "time": changed.json["time"],
    }
    assert changed.signed_with(webhook.secret)

    assert (await client.set("s1", 90))["ok"] is True
    recalled = await client.call("preset:recall", {"name": "scene a"})
    assert recalled["ok"] is True
    post = await receiver.wait_for(lambda p: p.json["event"] == "preset_recalled")
    body = post.json
    assert body["preset"] == "Scene A"  # as stored
    assert body["fade"] == 0
    assert body["source"] == "preset"
    assert [(s["id"], s["value"]) for s in body["sliders"]] == [("s1", 10.0)]  # what moved
    assert isinstance(body["sliders"][0]["version"], int)

    # A fade is announced once it ends, with what it moved.
    assert (await client.set("s2", 80))["ok"] is True
    faded = await client.call("preset:recall", {"name": "Scene A", "fade": 0.5})
    assert faded["ok"] is True
    post = await receiver.wait_for(
        lambda p: p.json["event"] == "preset_recalled" and p.json["fade"] == 0.5, timeout=5
    )
    assert [(s["id"], s["value"]) for s in post.json["sliders"]] == [("s2", 20.0)]
    await receiver.wait_for(lambda p: p.json.get("slider") == "s2" and p.json["value"] == 20.0)

    await asyncio.sleep(0.3)
    kinds = [p.json["event"] for p in receiver.posts]
    assert kinds.count("preset_recalled") == 2
    assert kinds.count("board_changed") == 1
    assert {p.json["event"] for p in values_only.posts} == {"value_changed"}
    assert [p.json["value"] for p in values_only.posts if p.json["slider"] == "s1"] == [90.0, 10.0]


async def test_a_board_change_in_the_admin_is_posted(
    make_board, hook_server, receivers, stable_content_types
):
    import aiohttp

    from tests.support.accounts import PASSWORD, live_superuser
    from tests.support.http import AdminSession

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    receiver = await receivers()
    await add_webhook(hook_server, board, receiver.url, value_changed=False)
    live_superuser("board-admin", "board@example.com")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = AdminSession(hook_server.url, http)
        await admin.login("board-admin", PASSWORD)
        await admin.submit(
            f"/admin/sliders/board/{board.pk}/change/", "board_form", **{"sliders-0-name": "Gain"}
        )
    post = await receiver.wait_for(lambda p: p.json["event"] == "board_changed")
    assert post.json["change"] == "slider_saved"
    assert post.json["slider"] == "s1"
    assert post.json["actor"] == "board-admin"
    assert post.json["source"] == "admin"
    await asyncio.sleep(0.3)
    assert len(receiver.posts) == 1  # the board's own fields did not change: no board_saved


def documented_receiver() -> str:
    """The ten-line receiver of docs/integrations.md."""
    text = (Path(PROJECT_DIR) / "docs" / "integrations.md").read_text()
    found = re.search(r"```python\n(# webhook_receiver\.py.*?)```", text, re.S)
    assert found, "docs/integrations.md shows webhook_receiver.py"
    return found.group(1)


async def test_the_documented_receiver_verifies_the_signature(
    make_board, connect_client, hook_server, tmp_path
):
    import aiohttp

    from tests.support.servers import free_port

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    script = tmp_path / "webhook_receiver.py"
    script.write_text(documented_receiver())
    port = free_port()
    secret = "a shared secret"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script),
        env={**os.environ, "WEBHOOK_SECRET": secret, "PORT": str(port)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"

        async def answers() -> bool:
            try:
                async with aiohttp.ClientSession() as http, http.get(url):
                    return True
            except aiohttp.ClientError:
                return False

        started = time.monotonic()
        while not await answers():
            assert time.monotonic() - started < 10, "the documented receiver did not start"
            await asyncio.sleep(0.05)
        await add_webhook(hook_server, board, url, secret=secret)
        client = await connect_client(board.slug, server=hook_server)
        assert (await client.set("s1", 33))["ok"] is True
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 5)
        printed = line.decode()
        assert "'value_changed'" in printed and "33.0" in printed

        # A body that is not the one signed is refused.
        body = json.dumps({"event": "value_changed", "value": 1}).encode()
        forged = {"X-SliderSync-Signature": "sha256=" + "0" * 64}
        async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=forged) as r:
            assert r.status == 401
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.scaleout
async def test_two_web_processes_and_one_bridge_runner_post_each_event_once(
    cluster, services_env, clients, receivers
):
    from tests.support.clients import connect
    from tests.support.servers import BridgeRunner
    from tests.support.services import manage

    receiver = await receivers()
    runner = BridgeRunner(env={**services_env, "WEBHOOK_RETRY_FIRST": "0.1"}).start()
    try:
        manage(
            "shell",
            "-c",
            "from sliders import services; from sliders.models import Board, Webhook;"
            "board = Board.objects.get(slug='main');"
            f"services.save_webhook(webhook=Webhook(board=board, url={receiver.url!r}, "
            "secret='shared'))",
            env=services_env,
        )
        on_a = await connect(cluster[0].url, clients)
        on_b = await connect(cluster[1].url, clients)
        # The runner has the webhook once a set reaches it (its first values are not sent).
        started = time.monotonic()
        for probe in itertools.count(1):
            assert (await on_a.set("s2", probe % 2 * 10))["ok"] is True
            await asyncio.sleep(0.2)
            if receiver.posts:
                break
            assert time.monotonic() - started < 10, "the runner never posted"

        values = [float(v) for v in range(21, 31)]
        for index, value in enumerate(values):
            setter = (on_a, on_b)[index % 2]
            assert (await setter.set("s1", value))["ok"] is True
            await receiver.wait_for(lambda p, v=value: p.json.get("value") == v)
            await asyncio.sleep(0.05)  # past the webhook's 30 Hz interval
        assert (await on_b.call("preset:save", {"name": "Both"}))["ok"] is True
        assert (await on_a.set("s1", 5))["ok"] is True
        # Within the webhook's 30 Hz interval the recall would replace 5 (latest value wins).
        await receiver.wait_for(lambda p: p.json.get("value") == 5.0)
        await asyncio.sleep(0.05)
        assert (await on_b.call("preset:recall", {"name": "Both"}))["ok"] is True
        await receiver.wait_for(lambda p: p.json["event"] == "preset_recalled")
        await asyncio.sleep(0.5)  # duplicates would have arrived by now

        sent = [p.json["value"] for p in receiver.of("value_changed") if p.json["slider"] == "s1"]
        assert sent == [*values, 5.0, 30.0]  # each change once, in order, from the one runner
        assert [p.json["change"] for p in receiver.of("board_changed")] == ["preset_saved"]
        assert len(receiver.of("preset_recalled")) == 1
        assert all(p.signed_with("shared") for p in receiver.posts)
    finally:
        runner.stop()
    assert "Traceback" not in runner.log()
