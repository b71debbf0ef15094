"""MQTT and webhooks with inputs of kinds their own tests do not cover: the admin's webhook
secrets, odd payloads, topics and broker URLs, receivers that misbehave, address forms."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.support.http import Forms


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root"))
    return client


def _board_form(client: Client, url: str) -> dict[str, str]:
    response = client.get(url)
    assert response.status_code == 200
    return Forms(response.content.decode()).form("board_form")


def _add_rows_as_the_admin_script_does(form: dict[str, str], prefix: str, count: int) -> None:
    """Clone the inline's empty template row `count` times, as "Add another" does in the page."""
    template = {k: v for k, v in form.items() if k.startswith(f"{prefix}-__prefix__-")}
    for _ in range(count):
        index = int(form[f"{prefix}-TOTAL_FORMS"])
        form[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
        for key, value in template.items():
            form[key.replace("__prefix__", str(index))] = value
    for key in template:
        del form[key]


def _saved(response: Any) -> None:
    if response.status_code != 302:
        errors = re.findall(
            r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode()
        )
        raise AssertionError(f"The admin refused the form: {errors}")


def test_webhooks_added_in_one_save_each_get_a_secret_of_their_own(admin_client: Client) -> None:
    from sliders.models import Board, Webhook

    board = Board.objects.create(slug="hooks", name="Hooks")
    url = f"/admin/sliders/board/{board.pk}/change/"
    form = _board_form(admin_client, url)
    _add_rows_as_the_admin_script_does(form, "webhooks", 2)
    form["webhooks-0-url"] = "https://one.example.com/hook"
    form["webhooks-1-url"] = "https://two.example.com/hook"
    form = {k: v for k, v in form.items() if "__prefix__" not in k}
    _saved(admin_client.post(url, form))

    secrets = [w.secret for w in Webhook.objects.filter(board=board).order_by("url")]
    assert len(secrets) == 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in secrets), secrets
    assert secrets[0] != secrets[1]

    # Saved again as shown: each keeps its own secret; one emptied gets a new one.
    form = {k: v for k, v in _board_form(admin_client, url).items() if "__prefix__" not in k}
    assert {form["webhooks-0-secret"], form["webhooks-1-secret"]} == set(secrets)
    emptied = form["webhooks-0-secret"]
    form["webhooks-0-secret"] = ""
    _saved(admin_client.post(url, form))
    now = {w.secret for w in Webhook.objects.filter(board=board)}
    assert emptied not in now and len(now) == 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in now), now


# --- Webhooks: receivers that answer oddly ---------------------------------------------------


async def _outbox_to(receiver_url: str, board: str, **fields: Any) -> Any:
    """A webhook's outbox POSTing to `receiver_url`, started (stop it after)."""
    from sliders.bridges.webhooks import WebhookOutbox, WebhookSender

    async def store(target: Any, state: str, error: str | None) -> None:
        pass  # the state in the database is not what these tests check

    sender = WebhookSender(
        pk=0, board=board, url=receiver_url, secret="s", rate=1000.0,
        events=frozenset({"value_changed", "board_changed", "preset_recalled"}), **fields,
    )  # fmt: skip
    outbox = WebhookOutbox(sender, store)
    outbox.start()
    return outbox


@pytest.mark.parametrize("header", ["²", "1²", "٣", "1.5", "-1", "9" * 400])
async def test_a_retry_after_of_odd_digits_is_only_a_hint_and_the_webhook_keeps_sending(
    db: None, settings: Any, header: str
) -> None:
    from sliders.bridges.base import Change
    from tests.support.webhooks import Receiver

    settings.WEBHOOK_RETRY_FIRST, settings.WEBHOOK_RETRY_MAX = 0.05, 0.2
    settings.WEBHOOK_ATTEMPTS = 3
    receiver = await Receiver(answers=[(503, {"Retry-After": header})]).start()
    outbox = await _outbox_to(receiver.url, "b")
    try:
        outbox.put(Change("b", "s1", 1.0, 1, source="socket"))
        await receiver.wait_for(lambda p: True, what="the first attempt")
        second = await receiver.wait_for(
            lambda p: p is not receiver.posts[0], timeout=3, what="the retry"
        )
        assert second.json["value"] == 1.0
        outbox.put(Change("b", "s1", 2.0, 2, source="socket"))  # and it goes on
        await receiver.wait_for(lambda p: p.json["value"] == 2.0, timeout=3, what="the next value")
    finally:
        await outbox.stop()
        await receiver.close()


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost", "[::ffff:127.0.0.1]"]
)
async def test_loopback_written_in_any_form_is_refused_when_private_addresses_are_blocked(
    settings: Any, host: str
) -> None:
    import aiohttp

    from sliders.bridges.base import Change
    from sliders.bridges.webhooks import PrivateAddress, PublicOnlyResolver, WebhookSender
    from tests.support.webhooks import Receiver

    settings.WEBHOOK_BLOCK_PRIVATE_ADDRESSES = True
    receiver = await Receiver().start()
    sender = WebhookSender(
        pk=0, board="b", url=f"http://{host}:{receiver.port}/hook", secret="s",
        events=frozenset({"value_changed"}), rate=1.0,
    )  # fmt: skip
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver())
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            # aiohttp itself refuses IPv4 in a form other than dotted quads (InvalidURL).
            with pytest.raises((PrivateAddress, aiohttp.InvalidURL)):
                await sender.post(session, sender.delivery_of_change(Change("b", "s1", 1.0, 1)))
        assert receiver.posts == []
    finally:
        await receiver.close()


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 (RFC 6052) of 127.0.0.1
        "64:ff9b::a00:5",  # NAT64 of 10.0.0.5: a NAT64 gateway reaches the LAN with it
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "2002:a00:5::1",  # 6to4 of 10.0.0.5
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "::a00:5",  # IPv4-compatible (deprecated) 10.0.0.5
    ],
)
def test_an_ipv6_address_that_carries_a_private_ipv4_one_is_not_public(address: str) -> None:
    from sliders.bridges.webhooks import is_public

    assert is_public(address) is False


def test_ipv6_addresses_that_carry_a_public_ipv4_one_stay_public() -> None:
    from sliders.bridges.webhooks import is_public

    assert is_public("64:ff9b::5db8:d70e")  # NAT64 of 93.184.215.14
    assert is_public("::ffff:93.184.215.14")  # IPv4-mapped
    assert is_public("2002:5db8:d70e::1")  # 6to4
    assert is_public("2606:2800:21f:cb07:6820:80da:af6b:8b2c")


# --- MQTT against a real broker --------------------------------------------------------------


@pytest.fixture(scope="module")
def bridge_server(django_db_setup: None) -> Any:
    from tests.support.mqtt import require_broker
    from tests.support.servers import LiveServer

    require_broker()
    server = LiveServer(env={"BRIDGES_IN_PROCESS": "true", "BRIDGES_CHECK_INTERVAL": "0.2"})
    yield server.start()
    server.stop()


def _retained_now(*topics: str) -> dict[str, bytes]:
    """What a subscriber arriving now is given, retained, on `topics` (empty payloads left out)."""
    import time

    from tests.support.mqtt import BROKER_PORT, MqttWatcher

    watcher = MqttWatcher(BROKER_PORT, topics).open()
    time.sleep(0.5)
    watcher.close()
    return {m.topic: m.payload for m in watcher.received if m.retain and m.payload}


def _clear_retained(*topics: str) -> None:
    from tests.support.mqtt import BROKER_PORT, MqttWatcher

    left = _retained_now(*topics)
    watcher = MqttWatcher(BROKER_PORT, ()).open()
    for topic in left:
        watcher.publish(topic, b"", retain=True)
    watcher.close()


@pytest.mark.live
async def test_a_board_given_a_new_slug_leaves_nothing_retained_under_the_old_one(
    make_board: Any, bridge_server: Any, stable_content_types: None
) -> None:
    import uuid

    import aiohttp

    from sliders import services
    from sliders.models import MqttBroker
    from tests.support.accounts import PASSWORD, live_superuser
    from tests.support.http import AdminSession
    from tests.support.mqtt import BROKER_HOST, BROKER_PORT, MqttWatcher

    prefix = f"slidersync-test-{uuid.uuid4().hex[:8]}"
    topics = (f"{prefix}/#", f"{prefix}-ha/#")
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    old, new = board.slug, f"{board.slug}-renamed"
    watcher = MqttWatcher(BROKER_PORT, topics).open()
    try:
        broker = MqttBroker(
            board=board, url=f"mqtt://{BROKER_HOST}:{BROKER_PORT}", topic_prefix=prefix,
            discovery=True, discovery_prefix=f"{prefix}-ha",
        )  # fmt: skip
        services.save_mqtt_broker(broker=broker)
        await watcher.wait_for(f"{prefix}/{old}/availability", "online")
        await watcher.wait_for(f"{prefix}/{old}/s1/state", "50")

        live_superuser("slug-admin", "slug@example.com")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            admin = AdminSession(bridge_server.url, http)
            await admin.login("slug-admin", PASSWORD)
            await admin.submit(f"/admin/sliders/board/{board.pk}/change/", "board_form", slug=new)
        await watcher.wait_for(f"{prefix}/{new}/availability", "online")
        await watcher.wait_for(f"{prefix}/{new}/s1/state", "50")
        await asyncio.sleep(0.5)

        retained = await asyncio.to_thread(_retained_now, *topics)
        assert not [topic for topic in retained if topic.startswith(f"{prefix}/{old}/")]
        assert {t for t in retained if t.startswith(f"{prefix}/")} == {
            f"{prefix}/{new}/availability", f"{prefix}/{new}/s1/state",
        }  # fmt: skip
        assert len([t for t in retained if t.endswith("/config")]) == 1
    finally:
        watcher.close()
        await asyncio.to_thread(_clear_retained, *topics)


@pytest.mark.live
async def test_a_slider_deleted_leaves_no_retained_state_behind(
    make_board: Any, bridge_server: Any
) -> None:
    import uuid

    from sliders import services
    from sliders.models import MqttBroker
    from tests.support.mqtt import BROKER_HOST, BROKER_PORT, MqttWatcher

    prefix = f"slidersync-test-{uuid.uuid4().hex[:8]}"
    topics = (f"{prefix}/#", f"{prefix}-ha/#")
    board = make_board(sliders=[{"slug": "s1", "value": 10}, {"slug": "s2", "value": 20}])
    watcher = MqttWatcher(BROKER_PORT, topics).open()
    try:
        broker = MqttBroker(
            board=board, url=f"mqtt://{BROKER_HOST}:{BROKER_PORT}", topic_prefix=prefix,
            discovery=True, discovery_prefix=f"{prefix}-ha",
        )  # fmt: skip
        services.save_mqtt_broker(broker=broker)
        await watcher.wait_for(f"{prefix}/{board.slug}/s2/state", "20")
        services.delete_slider(slider=board.sliders.get(slug="s2"))
        config = f"{prefix}-ha/number/{prefix}_{board.slug}/s2/config"
        await watcher.wait_for(config, "")  # the bridges took the deletion
        await asyncio.sleep(0.5)
        retained = await asyncio.to_thread(_retained_now, *topics)
        assert f"{prefix}/{board.slug}/s1/state" in retained
        assert f"{prefix}/{board.slug}/s2/state" not in retained
    finally:
        watcher.close()
        await asyncio.to_thread(_clear_retained, *topics)
