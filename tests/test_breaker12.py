"""Inputs of the kinds users and attackers bring that the other tests did not try: preset names
that fold to the same letters in Unicode, numbers at the edge of what a float holds, ages beyond
the calendar, machine names that are not host names."""

from __future__ import annotations

import socket
import unicodedata
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http.request import split_domain_port
from django.test import Client

from sliders import lan, services
from sliders.models import Preset, Slider

SLIDERS = [{"slug": "s1", "name": "Master", "min": 0, "max": 100, "value": 10}]
NFD_CAFE = unicodedata.normalize("NFD", "Café")  # e and a combining acute: looks like "Café"


def presets_of(board: Any) -> dict[str, dict[str, float]]:
    return dict(Preset.objects.filter(board=board).values_list("name", "values"))


# --- Preset names that fold to the same letters -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("saved", "again"),
    [
        # PostgreSQL's lower() makes a dotted capital I a plain i: the database refused what
        # the services let through, and the save failed as "the database cannot be reached".
        ("İstanbul", "istanbul"),
        ("istanbul", "İSTANBUL"),
        # The same letters, one with é, one with e and a combining accent: the same on screen.
        ("Café", NFD_CAFE),
        (NFD_CAFE, "CAFÉ"),
    ],
)
def test_preset_names_that_fold_to_the_same_letters_are_one_preset(
    make_board, saved: str, again: str
) -> None:
    board = make_board(sliders=SLIDERS)
    services.save_preset(board=board, name=saved)
    with pytest.raises(services.Refusal) as error:
        services.save_preset(board=board, name=again)
    assert (error.value.code, error.value.details) == ("preset_exists", {"name": saved})
    assert services.recall_preset(board=board, name=again).name == saved
    services.save_preset(board=board, name=again, overwrite=True)
    assert list(presets_of(board)) == [again]


@pytest.mark.django_db
def test_the_api_and_the_admin_refuse_a_name_that_folds_to_a_taken_one(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    Preset.objects.create(board=board, name="İstanbul", values={"s1": 5})
    api = Client()
    taken = api.put(f"/api/boards/{board.slug}/presets/istanbul", "{}", "application/json")
    assert (taken.status_code, taken.json()["error"]) == (428, "preset_exists")
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    response = admin.post(
        "/admin/sliders/preset/add/",
        {"board": board.pk, "name": "ISTANBUL", "position": 0, "values": '{"s1": 7}'},
    )
    assert response.status_code == 200
    assert "has a preset &#x27;İstanbul&#x27; already" in response.content.decode()
    assert presets_of(board) == {"İstanbul": {"s1": 5}}


@pytest.mark.django_db
def test_a_preset_is_found_by_its_name_with_spaces_around_it(make_board) -> None:
    """A saved name is trimmed; reading or recalling it by the name as typed finds it too."""
    board = make_board(sliders=SLIDERS)
    services.save_preset(board=board, name="  Start ")
    assert services.recall_preset(board=board, name=" Start  ").name == "Start"
    found = Client().get(f"/api/boards/{board.slug}/presets/%20start%20")
    assert (found.status_code, found.json()["name"]) == (200, "Start")


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_names_that_fold_to_the_same_letters(make_board) -> None:
    before = [("sliders", "0007_retired_sliders")]
    board = make_board(sliders=SLIDERS)
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_preset = executor.loader.project_state(before).apps.get_model("sliders", "Preset")
        for number, name in enumerate(["istanbul", "İstanbul", NFD_CAFE, "Café"]):
            row = old_preset.objects.create(board_id=board.pk, name=name, values={"s1": number})
            old_preset.objects.filter(pk=row.pk).update(updated_at=f"2026-01-01T00:00:{number:02}Z")
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert presets_of(board) == {
        "İstanbul": {"s1": 1},  # the newest keeps its name
        "istanbul (2)": {"s1": 0},
        "Café": {"s1": 3},
        f"{NFD_CAFE} (2)": {"s1": 2},
    }


# --- Numbers at the edge of a float -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("minimum", "maximum", "step"),
    [(-1e308, 1e308, 1e307), (1e308, 1.7e308, 1e307), (-1.7e308, -1e308, 1)],
)
def test_a_range_too_wide_for_a_float_is_refused(
    make_board, minimum: float, maximum: float, step: float
) -> None:
    """|min| + |max| beyond the largest float: PostgreSQL's step constraint overflowed on it
    (a 500 in the admin), and max - min is infinite on the page."""
    board = make_board(sliders=SLIDERS)
    slider = Slider(board=board, slug="wide", name="Wide", min=minimum, max=maximum, step=step)
    with pytest.raises(services.Refusal) as error:
        services.save_slider(slider=slider)
    assert error.value.code == "invalid_value"
    assert "too large" in error.value.message
    assert not Slider.objects.filter(board=board, slug="wide").exists()
    # The largest range that still fits is fine.
    services.save_slider(
        slider=Slider(board=board, slug="big", name="Big", min=-8e307, max=8e307, step=1e307)
    )


@pytest.mark.django_db
def test_the_admin_refuses_a_range_too_wide_for_a_float(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    response = admin.post(
        "/admin/sliders/slider/add/",
        {
            "board": board.pk, "slug": "wide", "name": "Wide", "min": "-1e308", "max": "1e308",
            "step": "1e307", "value": "0", "position": "", "unit": "", "precision": "",
            "osc_address": "",
        },
    )  # fmt: skip
    assert response.status_code == 200
    assert "too large" in response.content.decode()
    assert not Slider.objects.filter(board=board, slug="wide").exists()


# --- prune_audit's age --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("age", ["999999d", "999999w"])
def test_prune_audit_an_age_beyond_the_calendar_is_a_clear_error(age: str) -> None:
    """Thousands of years back: said plainly, not an OverflowError's traceback."""
    with pytest.raises(CommandError, match="before the year 1"):
        call_command("prune_audit", "--older-than", age, "--dry-run", stdout=StringIO())


# --- serve_lan's host names ---------------------------------------------------------------------


@pytest.mark.parametrize("hostname", ["stage_pc", "Bühne", "stage_pc.example.org"])
def test_serve_lan_offers_no_host_name_that_django_refuses(monkeypatch, hostname: str) -> None:
    """A machine named with an underscore or a letter beyond ASCII: its URL (printed for phones,
    `http://stage_pc.local:8000/`) was answered 400 Bad Request, since Django refuses such a
    Host header. The machine's name is the one thing here a test cannot set, so it is faked."""
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    monkeypatch.setattr(socket, "getfqdn", lambda: hostname)
    for name in lan.machine_names():
        assert split_domain_port(f"{name}:8000") == (name, "8000"), name
    monkeypatch.setattr(socket, "gethostname", lambda: "Stage-PC")
    monkeypatch.setattr(socket, "getfqdn", lambda: "Stage-PC.example.org")
    assert lan.machine_names() == ["stage-pc", "stage-pc.local", "stage-pc.example.org"]
