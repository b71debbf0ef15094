"""Saving presets safely: no silent overwrite, one name regardless of case, values checked on
save, and a recall that says what it could not take as saved; through the services, the
socket, the HTTP API, the admin and the migration that made names case-insensitive."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from sliders import services
from sliders.models import Preset
from tests.support.database import stored_board

SLIDERS = [
    {"slug": "s1", "name": "Master", "min": 0, "max": 100, "value": 10},
    {"slug": "s2", "name": "Pan", "min": -1, "max": 1, "step": 0.5, "value": 0},
]


def presets_of(board: Any) -> dict[str, dict[str, float]]:
    return dict(Preset.objects.filter(board=board).values_list("name", "values"))


def admin_client() -> Client:
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    return admin


# --- Never overwritten silently ----------------------------------------------------------------


@pytest.mark.django_db
def test_saving_under_a_taken_name_is_refused_unless_overwrite_is_asked_for(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    services.save_preset(board=board, name="Intro")
    services.set_slider_value(board=board, slider_id="s1", value=90)
    with pytest.raises(services.Refusal) as error:
        services.save_preset(board=board, name="Intro")
    assert (error.value.code, error.value.details) == ("preset_exists", {"name": "Intro"})
    assert presets_of(board) == {"Intro": {"s1": 10, "s2": 0}}

    _, created = services.save_preset(board=board, name="Intro", overwrite=True)
    assert not created and presets_of(board) == {"Intro": {"s1": 90, "s2": 0}}


@pytest.mark.live
async def test_a_socket_save_over_a_taken_name_needs_overwrite(make_board, connect_client):
    """Old clients send no `overwrite`: they get the refusal, the safe side."""
    board = make_board(sliders=SLIDERS)
    Preset.objects.create(board=board, name="Intro", values={"s1": 1})
    client = await connect_client(board.slug)
    ack = await client.call("preset:save", {"name": "Intro"})
    assert (ack["ok"], ack["error"], ack["name"]) == (False, "preset_exists", "Intro")
    bad = await client.call("preset:save", {"name": "Intro", "overwrite": "yes"})
    assert bad["error"] == "bad_request"
    assert presets_of(board) == {"Intro": {"s1": 1}}

    ack = await client.call("preset:save", {"name": "Intro", "overwrite": True})
    assert ack == {"ok": True, "name": "Intro", "created": False}
    assert presets_of(board) == {"Intro": {"s1": 10, "s2": 0}}


@pytest.mark.django_db
def test_an_api_save_over_a_taken_name_needs_if_match_or_overwrite(client: Client, make_board):
    board = make_board(sliders=SLIDERS)
    url = f"/api/boards/{board.slug}/presets/Intro"

    def put(body: dict[str, Any], query: str = "", **headers: str) -> Any:
        return client.put(url + query, json.dumps(body), "application/json", headers=headers)

    created = put({"values": {"s1": 20}})
    assert (created.status_code, created.json()) == (
        201,
        {"ok": True, "created": True, "name": "Intro", "values": {"s1": 20.0}, "position": 0},
    )
    first_tag = created["ETag"]
    assert client.get(url)["ETag"] == first_tag

    again = put({"values": {"s1": 30}})
    assert (again.status_code, again.json()["error"]) == (428, "preset_exists")
    assert presets_of(board) == {"Intro": {"s1": 20}}

    replaced = put({"values": {"s1": 30}}, **{"If-Match": first_tag})
    assert (replaced.status_code, replaced.json()["created"]) == (200, False)
    assert replaced["ETag"] != first_tag
    stale = put({"values": {"s1": 40}}, **{"If-Match": first_tag})
    assert (stale.status_code, stale.json()["error"]) == (412, "conflict")
    weak = put({"values": {"s1": 40}}, **{"If-Match": f"W/{replaced['ETag']}"})
    assert weak.status_code == 412
    assert presets_of(board) == {"Intro": {"s1": 30}}

    assert put({"values": {"s1": 50}}, **{"If-Match": "*"}).status_code == 200
    assert put({}, "?overwrite=true").status_code == 200  # the board's current values
    assert presets_of(board) == {"Intro": {"s1": 10, "s2": 0}}
    missing = client.put(
        f"/api/boards/{board.slug}/presets/Other",
        "{}",
        "application/json",
        headers={"If-Match": "*"},
    )
    assert (missing.status_code, missing.json()["error"]) == (412, "conflict")
    assert set(presets_of(board)) == {"Intro"}


# --- One name regardless of case ---------------------------------------------------------------


@pytest.mark.django_db
def test_names_differing_only_in_case_are_one_preset(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    services.save_preset(board=board, name="Start")
    for name in ("start", "START", "\u017ftart"):  # casefold: the long s (U+017F) is an s
        with pytest.raises(services.Refusal) as error:
            services.save_preset(board=board, name=name)
        assert error.value.details == {"name": "Start"}
    services.set_slider_value(board=board, slider_id="s1", value=70)
    services.save_preset(board=board, name="start", overwrite=True)
    assert presets_of(board) == {"start": {"s1": 70, "s2": 0}}  # the spelling of the save

    services.set_slider_value(board=board, slider_id="s1", value=0)
    recall = services.recall_preset(board=board, name="START")
    assert recall.name == "start" and stored_board(board)["s1"][0] == 70
    assert services.plan_recall(board=board, name="StArT", actor=services.Actor()).name == "start"


@pytest.mark.django_db
def test_the_database_refuses_names_differing_only_in_case(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    Preset.objects.create(board=board, name="Start")
    with pytest.raises(IntegrityError), transaction.atomic():
        Preset.objects.create(board=board, name="sTART")
    Preset.objects.create(board=make_board(sliders=SLIDERS), name="start")  # another board


@pytest.mark.live
async def test_a_socket_recall_and_save_match_names_ignoring_case(make_board, connect_client):
    board = make_board(sliders=SLIDERS)
    Preset.objects.create(board=board, name="Loud", values={"s1": 99})
    client = await connect_client(board.slug)
    assert (await client.call("preset:recall", {"name": "lOUD"}))["name"] == "Loud"
    assert stored_board(board)["s1"][0] == 99
    ack = await client.call("preset:save", {"name": "loud"})
    assert (ack["error"], ack["name"]) == ("preset_exists", "Loud")


@pytest.mark.django_db
def test_the_api_matches_preset_names_ignoring_case(client: Client, make_board) -> None:
    board = make_board(sliders=SLIDERS)
    Preset.objects.create(board=board, name="Loud", values={"s1": 99})
    read = client.get(f"/api/boards/{board.slug}/presets/LOUD")
    assert read.json() == {"name": "Loud", "values": {"s1": 99}, "position": 0}
    taken = client.put(f"/api/boards/{board.slug}/presets/loud", "{}", "application/json")
    assert (taken.status_code, taken.json()["error"]) == (428, "preset_exists")
    recall = client.post(f"/api/boards/{board.slug}/presets/loud/recall", "{}", "application/json")
    assert recall.json()["name"] == "Loud" and stored_board(board)["s1"][0] == 99


@pytest.mark.django_db
def test_the_admin_refuses_a_name_taken_in_another_case(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    intro = Preset.objects.create(board=board, name="Intro", values={"s1": 5})
    admin = admin_client()
    for values in ("", '{"s1": 7}'):
        response = admin.post(
            "/admin/sliders/preset/add/",
            {"board": board.pk, "name": "INTRO", "position": 0, "values": values},
        )
        assert response.status_code == 200
        assert "has a preset &#x27;Intro&#x27; already" in response.content.decode()
    assert presets_of(board) == {"Intro": {"s1": 5}}
    # Its own name in another case is no clash: that renames it.
    response = admin.post(
        f"/admin/sliders/preset/{intro.pk}/change/",
        {"board": board.pk, "name": "intro", "position": 0, "values": '{"s1": 6}'},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert presets_of(board) == {"intro": {"s1": 6}}


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_case_duplicate_under_a_free_name(make_board) -> None:
    before = [("sliders", "0007_retired_sliders")]
    board, other = make_board(sliders=SLIDERS), make_board(sliders=SLIDERS)
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_preset = executor.loader.project_state(before).apps.get_model("sliders", "Preset")
        for number, (on, name) in enumerate(
            [(board, "start"), (board, "Start (2)"), (board, "START"), (board, "Start"),
             (other, "start"), (board, "x" * 80), (board, "X" * 80)]
        ):  # fmt: skip
            row = old_preset.objects.create(board_id=on.pk, name=name, values={"s1": number})
            # Saved in this order, one second apart: the last one saved is the newest.
            old_preset.objects.filter(pk=row.pk).update(updated_at=f"2026-01-01T00:00:{number:02}Z")
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert presets_of(board) == {
        "Start": {"s1": 3},  # the newest keeps its name
        "START (3)": {"s1": 2},  # "(2)" is taken
        "start (4)": {"s1": 0},
        "Start (2)": {"s1": 1},
        "X" * 80: {"s1": 6},
        "x" * 76 + " (2)": {"s1": 5},  # cut to stay within 80 characters
    }
    assert presets_of(other) == {"start": {"s1": 4}}


# --- Values checked on save ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "code", "named"),
    [
        ({"s1": 50, "gone": 5, "also": 1}, "invalid_value", ["no slider 'gone', 'also'"]),
        ({"s1": 250, "s2": -3}, "invalid_value", ["'s1'", "between 0 and 100", "'s2'", "-1 and 1"]),
        ({"s1": "loud"}, "invalid_value", ["'s1' must be a number"]),
        ({"s1": True}, "invalid_value", ["'s1' must be a number"]),
        ([50], "invalid_value", ["slider ids and numbers"]),
    ],
)
def test_a_preset_naming_missing_sliders_or_values_out_of_range_is_refused(
    make_board, values: Any, code: str, named: list[str]
) -> None:
    board = make_board(sliders=SLIDERS)
    with pytest.raises(services.Refusal) as error:
        services.save_preset(board=board, name="Bad", values=values)
    assert error.value.code == code
    for text in named:
        assert text in error.value.message
    assert presets_of(board) == {}


@pytest.mark.django_db
def test_saved_values_are_stored_on_the_step_grid(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    preset, _ = services.save_preset(board=board, name="A", values={"s1": 33.3, "s2": 0.7})
    assert presets_of(board) == {"A": {"s1": 33, "s2": 0.5}} and preset.values["s1"] == 33


@pytest.mark.django_db
def test_the_admin_refuses_missing_sliders_and_values_out_of_range(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    admin = admin_client()
    response = admin.post(
        "/admin/sliders/preset/add/",
        {"board": board.pk, "name": "Bad", "position": 0, "values": '{"s1": 250, "gone": 1}'},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "no slider &#x27;gone&#x27;" in page and "between 0 and 100 (not 250)" in page
    assert presets_of(board) == {}
    response = admin.post(
        "/admin/sliders/preset/add/",
        {"board": board.pk, "name": "Good", "position": 0, "values": '{"s1": 12.4}'},
    )
    assert response.status_code == 302 and presets_of(board) == {"Good": {"s1": 12}}


@pytest.mark.django_db
def test_the_api_refuses_missing_sliders_and_values_out_of_range(client: Client, make_board):
    board = make_board(sliders=SLIDERS)
    url = f"/api/boards/{board.slug}/presets/Bad"
    for values in ({"gone": 1, "s1": 1}, {"s1": 101, "s2": 0}):
        response = client.put(url, json.dumps({"values": values}), "application/json")
        assert (response.status_code, response.json()["error"]) == (400, "invalid_value")
        assert response.json()["sliders"] == [next(iter(values))]
        assert f"'{next(iter(values))}'" in response.json()["message"]
    assert presets_of(board) == {}


# --- A recall says what it skipped ---------------------------------------------------------------


def old_scene(board: Any) -> None:
    """A preset saved before a slider was removed and another's range narrowed."""
    Preset.objects.create(board=board, name="Old", values={"s1": 250, "s2": 0.7, "gone": 5})


@pytest.mark.live
async def test_a_socket_recall_says_what_was_skipped_or_fitted(make_board, connect_client):
    board = make_board(sliders=SLIDERS)
    old_scene(board)
    client = await connect_client(board.slug)
    expected = {
        "ok": True,
        "name": "Old",
        "skipped": ["gone"],
        "adjusted": [
            {"id": "s1", "saved": 250, "value": 100},
            {"id": "s2", "saved": 0.7, "value": 0.5},
        ],
    }
    assert await client.call("preset:recall", {"name": "Old"}) == expected
    assert await client.call("preset:recall", {"name": "Old", "fade": 0.2}) == expected
    assert {slug: v for slug, (v, _) in stored_board(board).items()} == {"s1": 100, "s2": 0.5}


@pytest.mark.django_db
def test_an_api_recall_says_what_was_skipped_or_fitted(client: Client, make_board) -> None:
    board = make_board(sliders=SLIDERS)
    old_scene(board)
    response = client.post(f"/api/boards/{board.slug}/presets/Old/recall", "{}", "application/json")
    assert response.json() == {
        "ok": True,
        "name": "Old",
        "skipped": ["gone"],
        "adjusted": [
            {"id": "s1", "saved": 250.0, "value": 100.0},
            {"id": "s2", "saved": 0.7, "value": 0.5},
        ],
    }


@pytest.mark.django_db
def test_an_admin_recall_says_what_was_skipped_or_fitted(make_board) -> None:
    board = make_board(sliders=SLIDERS)
    old_scene(board)
    response = admin_client().post(
        "/admin/sliders/preset/",
        {"action": "recall", "_selected_action": [Preset.objects.get(board=board).pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Skipped gone (no longer on the board)" in page
    assert "s1 250 → 100" in page and "s2 0.7 → 0.5" in page
