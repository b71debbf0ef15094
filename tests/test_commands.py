"""Management commands: `slider get|set` (the same service as the board page, from a shell) and
`prune_audit` (the audit trail's retention)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sliders import services
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


# --- prune_audit ----------------------------------------------------------------------------


def entry_ended(days_ago: float, slider: str) -> AuditEntry:
    ended = timezone.now() - timedelta(days=days_ago)
    return AuditEntry.objects.create(
        board="main", slider=slider, source=AuditEntry.Source.SOCKET, from_value=0,
        to_value=1, from_version=0, to_version=1, started_at=ended, ended_at=ended,
    )  # fmt: skip


def prune(*args: str) -> str:
    out = StringIO()
    call_command("prune_audit", *args, stdout=out)
    return out.getvalue().strip()


def test_prune_audit_deletes_only_entries_older_than_asked(db: None) -> None:
    for days_ago, slider in [(400, "a"), (91, "b"), (89, "c"), (0, "d")]:
        entry_ended(days_ago, slider)

    assert prune("--older-than", "90d", "--dry-run").startswith("Would delete 2 ")
    assert AuditEntry.objects.count() == 4  # a dry run deletes nothing

    assert prune("--older-than", "90d").startswith("Deleted 2 ")
    assert sorted(AuditEntry.objects.values_list("slider", flat=True)) == ["c", "d"]
    assert prune("--older-than", "12w").startswith("Deleted 1 ")  # 84 days
    assert prune("--older-than", "36h").startswith("Deleted 0 ")
    assert list(AuditEntry.objects.values_list("slider", flat=True)) == ["d"]


def test_prune_audit_deletes_in_batches_oldest_first(db: None) -> None:
    for n in range(5):
        entry_ended(100 + n, f"s{n}")
    entry_ended(1, "recent")
    before = timezone.now() - timedelta(days=90)
    assert services.prune_audit_trail(before=before, batch_size=2) == 5
    assert list(AuditEntry.objects.values_list("slider", flat=True)) == ["recent"]


@pytest.mark.parametrize("older_than", ["90", "90m", "d", "ninety days", "1.5d", "0x5d"])
def test_prune_audit_refuses_an_age_it_cannot_read(db: None, older_than: str) -> None:
    entry_ended(400, "a")
    with pytest.raises(CommandError, match="whole number with h, d or w"):
        prune("--older-than", older_than)
    assert AuditEntry.objects.count() == 1
