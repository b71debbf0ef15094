"""Board access rules and slug uniqueness."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from sliders.models import Board, Slider, to_fixed

pytestmark = pytest.mark.django_db

EDITORS_GROUP = "board editors"


def _plain() -> User:
    return User.objects.create_user("plain")


def _inactive() -> User:
    user = _permission_holder("inactive")
    user.is_active = False
    user.save()
    return User.objects.get(pk=user.pk)


def _permission_holder(username: str = "holder") -> User:
    user = User.objects.create_user(username)
    user.user_permissions.add(
        Permission.objects.get(codename="change_slider", content_type__app_label="sliders")
    )
    return User.objects.get(pk=user.pk)


def _group_permission_holder() -> User:
    user = User.objects.create_user("via-group")
    group = Group.objects.create(name="slider changers")
    group.permissions.add(
        Permission.objects.get(codename="change_slider", content_type__app_label="sliders")
    )
    user.groups.add(group)
    return User.objects.get(pk=user.pk)


def _group_member() -> User:
    user = User.objects.create_user("member")
    user.groups.add(Group.objects.get(name=EDITORS_GROUP))
    return user


def _other_group_member() -> User:
    user = User.objects.create_user("outsider")
    user.groups.add(Group.objects.create(name="some other group"))
    return user


def _superuser() -> User:
    return User.objects.create_superuser("root")


def _view_permission_holder() -> User:
    user = User.objects.create_user("viewer")
    user.user_permissions.add(
        Permission.objects.get(codename="view_slider", content_type__app_label="sliders")
    )
    return User.objects.get(pk=user.pk)


USERS: dict[str, Callable[[], Any]] = {
    "none": lambda: None,
    "anonymous": AnonymousUser,
    "inactive": _inactive,
    "plain": _plain,
    "permission holder": _permission_holder,
    "permission via group": _group_permission_holder,
    "view-only permission": _view_permission_holder,
    "editors group member": _group_member,
    "other group member": _other_group_member,
    "superuser": _superuser,
}

# Who may edit, per access mode. Inactive users never edit on a restricted board.
EXPECTED = {
    Board.Access.ANYONE: dict.fromkeys(USERS, True),
    Board.Access.NOBODY: dict.fromkeys(USERS, False),
    Board.Access.EDITORS: {
        "none": False,
        "anonymous": False,
        "inactive": False,
        "plain": False,
        "permission holder": True,
        "permission via group": True,
        "view-only permission": False,
        "editors group member": True,
        "other group member": False,
        "superuser": True,
    },
}


@pytest.mark.parametrize("kind", list(USERS))
@pytest.mark.parametrize("access", list(Board.Access))
def test_user_can_edit(access: Board.Access, kind: str) -> None:
    group = Group.objects.create(name=EDITORS_GROUP)
    board = Board.objects.create(slug="b", name="B", edit_access=access, editors_group=group)
    user = USERS[kind]()
    assert board.user_can_edit(user) is EXPECTED[access][kind]


def test_group_member_cannot_edit_without_a_group_on_the_board() -> None:
    Group.objects.create(name=EDITORS_GROUP)
    board = Board.objects.create(slug="b", name="B", edit_access=Board.Access.EDITORS)
    assert board.user_can_edit(_group_member()) is False
    assert board.user_can_edit(_permission_holder()) is True


def test_group_member_of_another_boards_group_cannot_edit() -> None:
    mine = Group.objects.create(name=EDITORS_GROUP)
    theirs = Group.objects.create(name="their editors")
    board = Board.objects.create(
        slug="b", name="B", edit_access=Board.Access.EDITORS, editors_group=theirs
    )
    member = _group_member()
    assert member.groups.filter(pk=mine.pk).exists()
    assert board.user_can_edit(member) is False
    member.groups.add(theirs)
    assert board.user_can_edit(member) is True


def test_inactive_group_member_cannot_edit() -> None:
    group = Group.objects.create(name=EDITORS_GROUP)
    board = Board.objects.create(
        slug="b", name="B", edit_access=Board.Access.EDITORS, editors_group=group
    )
    member = _group_member()
    member.is_active = False
    member.save()
    assert board.user_can_edit(member) is False


def test_deleting_the_editors_group_leaves_the_board_restricted() -> None:
    group = Group.objects.create(name=EDITORS_GROUP)
    board = Board.objects.create(
        slug="b", name="B", edit_access=Board.Access.EDITORS, editors_group=group
    )
    member = _group_member()
    group.delete()
    board.refresh_from_db()
    assert board.editors_group is None
    assert board.edit_access == Board.Access.EDITORS
    assert board.user_can_edit(member) is False


def test_unknown_access_mode_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Board.objects.create(slug="b", name="B", edit_access="everyone")


def test_board_defaults_to_anyone() -> None:
    board = Board.objects.create(slug="b", name="B")
    assert board.edit_access == Board.Access.ANYONE
    assert board.user_can_edit(AnonymousUser()) is True


# --- Slugs ----------------------------------------------------------------------------------


def test_same_slider_slug_on_two_boards_is_fine() -> None:
    one = Board.objects.create(slug="one", name="One")
    two = Board.objects.create(slug="two", name="Two")
    Slider.objects.create(board=one, slug="volume", name="Volume")
    Slider.objects.create(board=two, slug="volume", name="Volume")
    assert Slider.objects.filter(slug="volume").count() == 2


def test_same_slider_slug_twice_on_one_board_is_refused() -> None:
    board = Board.objects.create(slug="one", name="One")
    Slider.objects.create(board=board, slug="volume", name="Volume")
    with pytest.raises(IntegrityError), transaction.atomic():
        Slider.objects.create(board=board, slug="volume", name="Another volume")
    assert board.sliders.count() == 1


def test_duplicate_slider_slug_is_a_validation_error_before_the_database() -> None:
    board = Board.objects.create(slug="one", name="One")
    Slider.objects.create(board=board, slug="volume", name="Volume")
    duplicate = Slider(board=board, slug="volume", name="Another volume")
    with pytest.raises(ValidationError) as raised:
        duplicate.full_clean()
    assert "A slider with this id already exists on this board." in str(raised.value)


def test_board_slug_is_unique() -> None:
    Board.objects.create(slug="one", name="One")
    with pytest.raises(IntegrityError), transaction.atomic():
        Board.objects.create(slug="one", name="Other")


def test_str_and_absolute_url() -> None:
    board = Board.objects.create(slug="stage-left", name="Stage left")
    slider = Slider.objects.create(board=board, slug="volume", name="Volume")
    assert str(board) == "Stage left"
    assert str(slider) == "stage-left/volume"
    assert board.get_absolute_url() == "/b/stage-left/"


def test_sliders_are_ordered_by_position_then_creation() -> None:
    board = Board.objects.create(slug="one", name="One")
    for slug, position in [("c", 2), ("a", 0), ("b2", 1), ("b1", 1)]:
        Slider.objects.create(board=board, slug=slug, name=slug, position=position)
    assert [s.slug for s in board.sliders.all()] == ["a", "b2", "b1", "c"]


# --- Units and display precision -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "value", "text"),
    [
        ({"unit": "dB", "precision": 1, "min": -60, "max": 12, "step": 0.5}, -12.5, "-12.5 dB"),
        ({"unit": "%", "min": 0, "max": 100, "step": 1}, 75, "75 %"),
        ({"min": 0, "max": 1, "step": 0.1}, 0.30000000000000004, "0.3"),  # step's decimals
        ({"min": 0, "max": 1, "step": 0.25}, 0.5, "0.50"),
        ({"precision": 0, "unit": "Hz", "min": -1, "max": 1, "step": 0.1}, -0.4, "0 Hz"),  # no -0
        ({"precision": 3, "min": 0, "max": 10, "step": 1}, 2, "2.000"),
        ({"min": 0, "max": 1, "step": 1e-7}, 1e-7, "0.000000"),  # at most 6 decimals
        # A tie rounds away from zero, as the page's script (toFixed) does.
        ({"precision": 0, "min": -10, "max": 10, "step": 0.5}, 2.5, "3"),
        ({"precision": 0, "min": -10, "max": 10, "step": 0.5}, -2.5, "-3"),
        ({"precision": 2, "min": 0, "max": 1, "step": 0.125}, 0.125, "0.13"),
        ({"precision": 2, "min": 0, "max": 2, "step": 0.005}, 1.005, "1.00"),  # 1.00499999...
    ],
)
def test_a_value_is_shown_with_its_precision_and_unit(
    fields: dict[str, Any], value: float, text: str
) -> None:
    assert Slider(**fields).format_value(value) == text


def test_more_than_six_decimals_is_refused() -> None:
    board = Board.objects.create(slug="units", name="Units")
    slider = Slider(board=board, slug="s1", name="S", precision=7)
    with pytest.raises(ValidationError) as error:
        slider.full_clean()
    assert "precision" in error.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        Slider.objects.create(board=board, slug="s2", name="S", precision=7)


# Values the page's script and the server must write alike: ties, binary fractions just below
# or above a tie, negatives, zero, and numbers too large for fixed notation.
TO_FIXED_CASES = [
    *((value, decimals) for value in (0.5, 1.5, 2.5, -2.5, 0.125, -0.125, 1.005, 1.015, 2.675)
      for decimals in (0, 1, 2)),
    (0, 3), (-0.0, 1), (-0.4, 0), (1e-7, 6), (123.456, 6), (1e20, 2), (1e21, 2), (-1.5e22, 0),
    (123456789012345680000, 0), (0.1 + 0.2, 6),
]  # fmt: skip


def test_values_are_rounded_as_javascripts_to_fixed() -> None:
    """The first paint (Slider.format_value) and board.js's formatValue round alike."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    cases = [[repr(float(value)), decimals] for value, decimals in TO_FIXED_CASES]
    script = (
        "const cases = JSON.parse(process.argv[1]);"
        "process.stdout.write(JSON.stringify(cases.map(([v, d]) => Number(v).toFixed(d))));"
    )
    written = subprocess.run(
        ["node", "-e", script, json.dumps(cases)], capture_output=True, text=True, check=True
    ).stdout
    expected = dict(zip(map(tuple, cases), json.loads(written), strict=True))
    for value, decimals in TO_FIXED_CASES:
        assert to_fixed(value, decimals) == expected[(repr(float(value)), decimals)], value


# Grids whose shortest text has an exponent: JavaScript writes 1.5e-7 and 1.5e+21 where Python
# writes 1.5e-07 and 1.5e+21, and the decimals must be counted from the mantissa and exponent.
GRID_CASES = [
    {"min": 0, "max": 1, "step": 0.25, "value": 0.5},
    {"min": -5.5, "max": 5, "step": 1, "value": 2},
    {"min": 0, "max": 1, "step": 1.5e-7, "value": 3e-7},
    {"min": 1e-8, "max": 1, "step": 1, "value": 0.5},
    {"min": 0, "max": 1e22, "step": 1.5e21, "value": 3e21},
    {"min": 0, "max": 1e22, "step": 2.5e20, "value": 5e20},
    {"min": -1.5e21, "max": 1.5e21, "step": 1.5e21, "value": 0},
    {"min": -1e21, "max": 1e21, "step": 0.5, "value": 2.5},
    {"min": 0, "max": 100, "step": 1e-3, "value": 12.345, "unit": "dB"},
]


def test_the_page_and_the_first_paint_write_a_value_alike() -> None:
    """board/format.js's formatValue and Slider.format_value agree, exponent grids included."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    module = (Path(settings.BASE_DIR) / "sliders/static/sliders/board/format.js").as_uri()
    script = (
        f"const {{ formatValue }} = await import({json.dumps(module)});"
        "const cases = JSON.parse(process.argv[1]);"
        "process.stdout.write(JSON.stringify(cases.map((c) => formatValue("
        "{ ...c, precision: null, unit: c.unit ?? '' }, c.value))));"
    )
    written = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(GRID_CASES)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for case, page_text in zip(GRID_CASES, json.loads(written), strict=True):
        fields = {key: case[key] for key in ("min", "max", "step")}
        slider = Slider(**fields, unit=case.get("unit", ""), precision=None)
        assert slider.format_value(case["value"]) == page_text, case


# --- Ranges: the step fits the range ----------------------------------------------------------


def test_a_step_larger_than_the_range_is_refused_by_the_service_and_the_database() -> None:
    from sliders import services

    board = Board.objects.create(slug="b", name="B")
    with pytest.raises(services.Refusal) as refused:
        services.save_slider(slider=Slider(board=board, slug="s", name="S", min=0, max=1, step=5))
    assert refused.value.code == "invalid_value"
    assert "must not be larger than the range" in refused.value.message
    assert not board.sliders.exists()

    slider = Slider(board=board, slug="s", name="S", min=0, max=1, step=0.5)
    services.save_slider(slider=slider)
    slider.step = 2
    with pytest.raises(services.Refusal):
        services.save_slider(slider=slider)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slider.objects.filter(pk=slider.pk).update(step=1.01)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slider.objects.filter(pk=slider.pk).update(max=0.4)
    assert Slider.objects.get(pk=slider.pk).step == 0.5


def test_the_database_takes_every_step_the_service_takes() -> None:
    # The database subtracts in binary floating point: 0.3 - 0.1 = 0.19999999999999998 and
    # (1e12 + 0.5) - (1e12 + 0.3) = 0.199951171875, so an exact comparison would refuse them.
    from sliders import services

    board = Board.objects.create(slug="b", name="B")
    ranges = [
        (0.1, 0.3, 0.2),
        (1.0, 1.1, 0.1),
        (1e9 + 0.1, 1e9 + 0.3, 0.2),
        (1e12 + 0.3, 1e12 + 0.5, 0.2),
    ]
    for index, (low, high, step) in enumerate(ranges):
        services.save_slider(
            slider=Slider(board=board, slug=f"s{index}", name="S", min=low, max=high, step=step),
            requested_value=high,
        )
    assert [s.value for s in board.sliders.order_by("slug")] == [high for _, high, _ in ranges]


def test_the_migration_fits_existing_steps_to_their_range(tmp_path: Any) -> None:
    """Sliders saved before the rule (a step larger than the range) get step = max - min."""
    import sqlite3
    import sys

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/old.sqlite3", "DEBUG": "true"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            env=env,
            cwd=settings.BASE_DIR,
            check=True,
            capture_output=True,
        )

    manage("migrate", "sliders", "0007", "--no-input", "-v", "0")
    database = sqlite3.connect(tmp_path / "old.sqlite3")
    with database:
        database.execute(
            "INSERT INTO sliders_board (id, slug, name, view_access, edit_access, position)"
            " VALUES (1, 'b', 'B', 'anyone', 'anyone', 0)"
        )
        rows = [  # slug, min, max, step, value, version
            ("stuck", 0, 1, 5, 0, 3),  # only ever 0: now 0 or 1
            ("raw", 0, 1, 5, 0.8, 4),  # written around the services: snapped to 1
            ("decimal", 1.0, 1.1, 0.2, 1.0, 0),
            ("fine", 0, 10, 3, 9, 2),  # not a whole number of steps, but the step fits
        ]
        database.executemany(
            "INSERT INTO sliders_slider (board_id, slug, name, min, max, step, value, version,"
            " position, unit, precision) VALUES (1, ?, ?, ?, ?, ?, ?, ?, 0, '', NULL)",
            [(slug, slug, *numbers) for slug, *numbers in rows],
        )
    database.close()

    manage("migrate", "--no-input", "-v", "0")

    database = sqlite3.connect(tmp_path / "old.sqlite3")
    found = {
        slug: (step, value, version)
        for slug, step, value, version in database.execute(
            "SELECT slug, step, value, version FROM sliders_slider"
        )
    }
    with pytest.raises(sqlite3.IntegrityError):
        database.execute("UPDATE sliders_slider SET step = 11 WHERE slug = 'fine'")
    database.close()
    assert found == {
        "stuck": (1.0, 0.0, 3),
        "raw": (1.0, 1.0, 5),
        "decimal": (0.1, 1.0, 0),
        "fine": (3.0, 9.0, 2),
    }
