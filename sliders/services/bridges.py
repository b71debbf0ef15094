"""Bridge settings and the state of bridge targets (sliders.bridges sends to them).

The admin saves and deletes OSC targets, MQTT brokers and webhooks here; the bridge runner hears
of it (a "bridges" notice after commit) and reloads without a restart. The runner records how each
target is doing (`record_target_state`) and each webhook's delivery log
(`record_webhook_deliveries`), shown read-only in the admin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from sliders import notices
from sliders.bridges.models import new_webhook_secret
from sliders.models import MqttBroker, OscTarget, TargetState, Webhook, WebhookDelivery
from sliders.services.structure import change_structure


def save_osc_target(*, target: OscTarget) -> None:
    """Create or update an OSC target (admin); the bridge runner reloads after commit."""
    change_structure(target.board.slug, target.save, notice=notices.bridges_changed)


def delete_osc_target(*, target: OscTarget) -> None:
    """Delete an OSC target (admin); the bridge runner stops sending to it after commit."""
    change_structure(target.board.slug, target.delete, notice=notices.bridges_changed)


def save_mqtt_broker(*, broker: MqttBroker) -> None:
    """Create or update an MQTT broker of a board (admin); the bridge runner reloads after
    commit (reconnecting only if the URL or topic prefix changed)."""
    change_structure(broker.board.slug, broker.save, notice=notices.bridges_changed)


def delete_mqtt_broker(*, broker: MqttBroker) -> None:
    """Delete an MQTT broker of a board (admin); the bridge runner disconnects after commit."""
    change_structure(broker.board.slug, broker.delete, notice=notices.bridges_changed)


def record_target_state(
    *,
    model: type[TargetState],
    pk: int,
    state: str,
    error: str | None = None,
    error_at: datetime | None = None,
    success_at: datetime | None = None,
) -> None:
    """Store how the target `pk` of `model` is doing: its `state` (a `TargetState.State`), and
    the error and times given (None leaves a field as it is). A target deleted meanwhile is
    left alone; its settings (and `updated_at`) are never touched."""
    fields: dict[str, object] = {"state": state}
    if error is not None:
        fields["last_error"] = error[:1000]
    if error_at is not None:
        fields["last_error_at"] = error_at
    if success_at is not None:
        fields["last_success_at"] = success_at
    model._default_manager.filter(pk=pk).update(**fields)


# --- Webhooks -------------------------------------------------------------------------------


def save_webhook(*, webhook: Webhook) -> None:
    """Create or update a webhook (admin); the bridge runner reloads after commit.

    An empty `secret` gets a new one of its own (`new_webhook_secret`, set on `webhook`): a
    secret is never a shared default, however many webhooks one admin page adds at once.
    """
    if not webhook.secret.strip():
        webhook.secret = new_webhook_secret()
    change_structure(webhook.board.slug, webhook.save, notice=notices.bridges_changed)


def delete_webhook(*, webhook: Webhook) -> None:
    """Delete a webhook and its delivery log (admin); the runner stops sending to it."""
    change_structure(webhook.board.slug, webhook.delete, notice=notices.bridges_changed)


def record_webhook_deliveries(*, webhook: int, attempts: list[dict[str, Any]], keep: int) -> None:
    """Add delivery `attempts` (dicts of `WebhookDelivery` fields, oldest first) to the log of
    the webhook `webhook` (its pk) and keep only its newest `keep` (>= 0) attempts.

    One transaction, the webhook's row locked, so a webhook deleted meanwhile gets none (and
    raises nothing).
    """
    with transaction.atomic():
        if not Webhook.objects.select_for_update().filter(pk=webhook).exists():
            return
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(webhook_id=webhook, **attempt) for attempt in attempts
        )
        mine = WebhookDelivery.objects.filter(webhook_id=webhook)
        oldest_kept = mine.order_by("-id").values_list("id", flat=True)[keep - 1 : keep]
        if keep <= 0:
            mine.delete()
        elif oldest_kept:
            mine.filter(id__lt=oldest_kept[0]).delete()
