"""Assertions on what the server answers and stores, shared by the realtime tests."""

from __future__ import annotations

import math
from typing import Any


def assert_error(ack: Any, code: str) -> None:
    """`ack` is a refusal with error `code` and a message, and nothing else."""
    assert isinstance(ack, dict), ack
    assert set(ack) == {"ok", "error", "message"}, ack
    assert ack["ok"] is False
    assert ack["error"] == code, ack
    assert isinstance(ack["message"], str)
    assert ack["message"]


def on_grid(value: float, minimum: float, maximum: float, step: float) -> bool:
    """Within 1e-9 of a grid step, allowing for float rounding at the range's magnitude."""
    steps = (value - minimum) / step
    tolerance = 1e-9 + 4 * math.ulp(max(abs(minimum), abs(maximum), abs(value))) / step
    return abs(steps - round(steps)) <= tolerance


def assert_valid_stored_value(slider: Any) -> None:
    """Invariant 1 for a `Slider` row: finite, within [min, max] and on the step grid."""
    assert math.isfinite(slider.value), slider.value
    assert slider.min <= slider.value <= slider.max, slider.value
    assert on_grid(slider.value, slider.min, slider.max, slider.step), slider.value
