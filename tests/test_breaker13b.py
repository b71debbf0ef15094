"""MQTT and webhooks with inputs of kinds their own tests do not cover: the admin's webhook
secrets, odd payloads, topics and broker URLs, receivers that misbehave, address forms."""

from __future__ import annotations

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
