"""Bridge settings and the state of bridge targets (sliders.bridges sends to them).

The admin saves and deletes OSC targets and MQTT brokers here; the bridge runner hears of it (a
"bridges" notice after commit) and reloads without a restart. The runner records how each target is
doing (`record_target_state`), shown read-only in the admin.
"""

from __future__ import annotations

from datetime import datetime

from sliders import notices
from sliders.models import MqttBroker, OscTarget, TargetState
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
