"""Numbers in the page as the script writes them: 50 rather than 50.0, never localised."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import template

if TYPE_CHECKING:
    from sliders.models import Slider

register = template.Library()


@register.filter
def value_text(slider: Slider) -> str:
    """A slider's value with its precision and unit, as the page's script shows it."""
    return slider.format_value(slider.value)


@register.filter
def plain_number(value: float | int) -> str:
    """The shortest text that reads back as the same float (what JavaScript's String() gives)."""
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
