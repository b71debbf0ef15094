"""Webhooks' rules that need no server: Retry-After, which addresses are public, the delivery
log's pruning, and the events notices stand for (the live behaviour: tests/test_webhooks.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from sliders.bridges.base import event_of_notice
from sliders.bridges.webhooks import is_public, retry_after, sign


def test_retry_after_takes_seconds_or_a_date_and_ignores_the_rest():
    assert retry_after("120") == 120.0
    assert retry_after(" 3 ") == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after(later) or 0) <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert retry_after(past) == 0.0
    for unusable in (None, "", "soon", "-5", "1.5e9x"):
        assert retry_after(unusable) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("192.168.1.20", False),
        ("172.16.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("fe80::1%eth0", False),
        ("fd00::1", False),
    ],
)
def test_only_public_addresses_count_as_public(address, public):
    assert is_public(address) is public


def test_the_signature_is_the_hex_hmac_sha256_of_the_body():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_board_and_preset_notices_become_events_and_others_do_not():
    board = event_of_notice(
        "board", "main", {"change": "slider_saved", "slider": "s1", "actor": "ada",
                          "source": "admin", "at": "2026-01-01T00:00:00+00:00"},
    )  # fmt: skip
    assert board is not None
    assert (board.kind, board.details, board.actor, board.source) == (
        "board_changed", {"change": "slider_saved", "slider": "s1"}, "ada", "admin",
    )  # fmt: skip
    preset = event_of_notice("preset", "main", {"preset": "A", "fade": 0, "sliders": []})
    assert preset is not None and preset.kind == "preset_recalled" and preset.actor == ""
    assert event_of_notice("board", "main", None) is None  # a change it does not describe
    assert event_of_notice("bridges", "main", None) is None


@pytest.mark.django_db
def test_the_delivery_log_keeps_the_newest_attempts_of_each_webhook():
    from django.utils import timezone

    from sliders import services
    from sliders.models import Board, Webhook, WebhookDelivery

    board = Board.objects.create(slug="hooks", name="Hooks")
    first, other = (Webhook.objects.create(board=board, url=f"http://h{n}/") for n in (1, 2))

    def attempt(n: int) -> dict[str, object]:
        return {"at": timezone.now(), "delivery": f"d{n}", "event": "value_changed",
                "attempt": 1, "status": 204, "error": "", "duration_ms": 1.0,
                "result": "delivered"}  # fmt: skip

    services.record_webhook_deliveries(webhook=other.pk, attempts=[attempt(0)], keep=3)
    services.record_webhook_deliveries(webhook=first.pk, attempts=[attempt(1), attempt(2)], keep=3)
    services.record_webhook_deliveries(webhook=first.pk, attempts=[attempt(3), attempt(4)], keep=3)
    kept = WebhookDelivery.objects.filter(webhook=first).values_list("delivery", flat=True)
    assert sorted(kept) == ["d2", "d3", "d4"]
    assert WebhookDelivery.objects.filter(webhook=other).count() == 1  # its own log, untouched
    pk = first.pk
    first.delete()
    services.record_webhook_deliveries(webhook=pk, attempts=[attempt(5)], keep=3)  # no error
    assert not WebhookDelivery.objects.filter(webhook_id=pk).exists()
