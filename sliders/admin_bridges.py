"""The admin of the bridges: OSC targets, MQTT brokers and webhooks (with their delivery logs).

Each kind is edited inline on its board's page and has a list page of its own showing how every
target is doing (the state is the bridge runner's, read-only). Saves and deletes go through the
services, so the runner reloads after commit. Registered with the admin site when
sliders/admin.py imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import Model, QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from sliders import services
from sliders.admin_text import StorableTextAdmin
from sliders.models import Board, MqttBroker, OscTarget, Webhook, WebhookDelivery

TARGET_STATE_FIELDS = ("state", "last_success_at", "last_error", "last_error_at")
OSC_FIELDS = ("host", "port", "rate", "enabled")
MQTT_FIELDS = ("url", "topic_prefix", "rate", "discovery", "discovery_prefix", "enabled")
WEBHOOK_FIELDS = (
    "url", "secret", "value_changed", "preset_recalled", "board_changed", "rate", "enabled",
)  # fmt: skip

# Each kind's (save, delete) services, which take the target by keyword.
_SERVICES: dict[type[Model], tuple[Callable[..., None], Callable[..., None], str]] = {
    OscTarget: (services.save_osc_target, services.delete_osc_target, "target"),
    MqttBroker: (services.save_mqtt_broker, services.delete_mqtt_broker, "broker"),
    Webhook: (services.save_webhook, services.delete_webhook, "webhook"),
}


def _save(target: Model) -> None:
    save, _, keyword = _SERVICES[type(target)]
    save(**{keyword: target})


def _delete(target: Model) -> None:
    _, delete, keyword = _SERVICES[type(target)]
    delete(**{keyword: target})


def save_bridge_formset(formset: BaseInlineFormSet[Any, Board, Any]) -> bool:
    """Save a board page's inline of bridge targets through the services; False for other
    inlines (the caller saves those)."""
    if formset.model not in _SERVICES:
        return False
    formset.save(commit=False)
    for target in formset.deleted_objects:
        _delete(target)
    for target in formset.new_objects + [target for target, _ in formset.changed_objects]:
        _save(target)
    return True


# A URL typed without a scheme is taken as https (Django 6's default; 5.2 warns about its own).
_URL_FIELDS: dict[type[models.Field[Any, Any]], Mapping[str, Any]] = {
    models.URLField: {"assume_scheme": "https"}
}


class _TargetInline(StorableTextAdmin, admin.TabularInline[Any, Board]):
    extra = 0
    readonly_fields = TARGET_STATE_FIELDS
    formfield_overrides = {**StorableTextAdmin.formfield_overrides, **_URL_FIELDS}


class OscTargetInline(_TargetInline):
    """Where the board's values go over OSC (docs/integrations.md); the state is read-only."""

    model = OscTarget
    fields = (*OSC_FIELDS, *TARGET_STATE_FIELDS)


class MqttBrokerInline(_TargetInline):
    """Where the board's values go over MQTT (docs/integrations.md); the state is read-only."""

    model = MqttBroker
    fields = (*MQTT_FIELDS, *TARGET_STATE_FIELDS)


class WebhookInline(_TargetInline):
    """Where the board's events are POSTed (docs/integrations.md); the state is read-only, the
    delivery log is on each webhook's own page."""

    model = Webhook
    fields = (*WEBHOOK_FIELDS, *TARGET_STATE_FIELDS)
    show_change_link = True


BRIDGE_INLINES = [OscTargetInline, MqttBrokerInline, WebhookInline]


class _TargetAdmin(StorableTextAdmin, admin.ModelAdmin[Any]):
    """Every board's targets of one kind and how each is doing."""

    list_select_related = ("board",)
    readonly_fields = TARGET_STATE_FIELDS
    formfield_overrides = {**StorableTextAdmin.formfield_overrides, **_URL_FIELDS}

    def save_model(
        self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool
    ) -> None:
        _save(obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        _delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for target in queryset.select_related("board"):
            _delete(target)


@admin.register(OscTarget)
class OscTargetAdmin(_TargetAdmin):
    list_display = ("__str__", "board", "rate", "enabled", *TARGET_STATE_FIELDS)
    list_filter = ("state", "enabled", "board")
    fields = ("board", *OSC_FIELDS, *TARGET_STATE_FIELDS)


@admin.register(MqttBroker)
class MqttBrokerAdmin(_TargetAdmin):
    list_display = (
        "__str__", "board", "topic_prefix", "discovery", "enabled", *TARGET_STATE_FIELDS,
    )  # fmt: skip
    list_filter = ("state", "enabled", "discovery", "board")
    fields = ("board", *MQTT_FIELDS, *TARGET_STATE_FIELDS)


class WebhookDeliveryInline(admin.TabularInline[WebhookDelivery, Webhook]):
    """The webhook's delivery log: its newest attempts, written by the bridge runner."""

    model = WebhookDelivery
    fields = ("at", "event", "delivery", "attempt", "result", "status", "error", "duration_ms")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Webhook)
class WebhookAdmin(_TargetAdmin):
    """Every board's webhooks, how each is doing and its delivery log (the runner's)."""

    list_display = ("__str__", "board", "enabled", *TARGET_STATE_FIELDS)
    list_filter = ("state", "enabled", "board")
    fields = ("board", *WEBHOOK_FIELDS, *TARGET_STATE_FIELDS)
    inlines = [WebhookDeliveryInline]

    def save_formset(
        self,
        request: HttpRequest,
        form: ModelForm[Any],
        formset: BaseInlineFormSet[Any, Any, Any],
        change: bool,
    ) -> None:
        pass  # the delivery log is read-only
