"""`manage.py slider get|set`: the same service as the board page, from a shell."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sliders.models import AuditEntry, Slider

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("slider", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_get_prints_the_value_and_version(make_board) -> None:
    board = make_board(sliders=[{"slug": "gain", "min": -60, "max": 12, "step": 0.5, "value": -6}])
    assert run("get", board.slug, "gain") == "-6 (version 0)"
    assert json.loads(run("get", board.slug, "gain", "--json")) == {"value": -6.0, "version": 0}


def test_set_is_clamped_snapped_versioned_and_audited(make_board) -> None:
    board = make_board(sliders=[{"slug": "gain", "min": -60, "max": 12, "step": 0.5, "value": -6}])
    assert run("set", board.slug, "gain", "-3.3") == "-3.5 (version 1)"
    assert run("set", board.slug, "gain", "1e9") == "12 (version 2)"
    slider = Slider.objects.get(board=board, slug="gain")
    assert (slider.value, slider.version) == (12.0, 2)
    entries = AuditEntry.objects.filter(board=board.slug, slider="gain").order_by("id")
    assert [(e.source, e.from_value, e.to_value) for e in entries] == [
        ("command", -6.0, -3.5),
        ("command", -3.5, 12.0),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "{board}", "gain", "loud"), "'loud' is not a number."),
        (("set", "{board}", "gain", "nan"), "The value must be a finite number."),
        (("set", "{board}", "nope", "1"), "There is no slider 'nope' here."),
        (("get", "{board}", "nope"), "There is no slider 'nope' on that board."),
        (("get", "no-such-board", "gain"), "There is no slider 'gain' on that board."),
    ],
)
def test_mistakes_are_refused_and_change_nothing(make_board, args, message) -> None:
    board = make_board(sliders=[{"slug": "gain", "value": 5}])
    with pytest.raises(CommandError, match=message.replace(".", r"\.")):
        run(*(arg.format(board=board.slug) for arg in args))
    slider = Slider.objects.get(board=board, slug="gain")
    assert (slider.value, slider.version) == (5.0, 0)


def test_the_command_is_an_operators_tool_on_any_board(make_board) -> None:
    board = make_board(sliders=[{"slug": "gain", "value": 5}], edit_access="nobody")
    assert run("set", board.slug, "gain", "7") == "7 (version 1)"
