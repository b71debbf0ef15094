"""The value service: normalisation, the one write path, access checks and broadcast scheduling.

Unit tests on the (rolled back) test database; no server runs here.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.db import IntegrityError, transaction

from sliders import services
from sliders.models import Board, Slider
from sliders.services import Actor, Refusal, normalize_value, set_slider_value
from tests.support.database import stored

# --- Helpers --------------------------------------------------------------------------------


def make_slider(board: Board, slug: str = "s1", **fields: Any) -> Slider:
    """A slider written straight through the ORM (the value must already be valid)."""
    fields = {"name": slug, "min": 0, "max": 100, "step": 1, "value": 50, **fields}
    return Slider.objects.create(board=board, slug=slug, **fields)


@pytest.fixture
def board(db: None) -> Board:
    return Board.objects.create(slug="stage", name="Stage")


@pytest.fixture
def slider(board: Board) -> Slider:
    return make_slider(board)


def user_with_permission(username: str, codename: str = "change_slider") -> User:
    user = User.objects.create_user(username)
    user.user_permissions.add(
        Permission.objects.get(codename=codename, content_type__app_label="sliders")
    )
    return User.objects.get(pk=user.pk)  # a fresh object: no stale permission cache


def norm(value: object, minimum: float = 0, maximum: float = 100, step: float = 1) -> float:
    return normalize_value(value, minimum=minimum, maximum=maximum, step=step)


# --- normalize_value ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1, 0), (-1e300, 0), (101, 100), (1e300, 100), (0, 0), (100, 100), (42, 42)],
)
def test_normalize_clamps_to_range(value: float, expected: float) -> None:
    assert norm(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(50.4, 50), (50.6, 51), (0.2, 0), (99.9, 100), (73, 73), (-0.4, 0)],
)
def test_normalize_snaps_to_whole_steps(value: float, expected: float) -> None:
    assert norm(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (0, 5),  # clamped to min, which is on the grid
        (9, 5),
        (11, 15),
        (14, 15),
        (50, 55),  # 50 is 4.5 steps from 5: half-way rounds up
        (49, 45),
        (96, 95),
        (100, 95),  # max 100 is not on the grid 5, 15, ..., 95
    ],
)
def test_normalize_grid_starts_at_min(value: float, expected: float) -> None:
    assert norm(value, minimum=5, maximum=100, step=10) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(10, 9), (9.6, 9), (9, 9), (7.4, 6), (7.6, 9), (1000, 9)],
)
def test_normalize_range_not_a_multiple_of_step_stays_on_grid(
    value: float, expected: float
) -> None:
    assert norm(value, minimum=0, maximum=10, step=3) == expected


def test_normalize_max_half_way_between_grid_points_goes_down_into_range() -> None:
    # 10 is exactly between 8 and 12; 12 is out of range, so 8.
    assert norm(10, minimum=0, maximum=10, step=4) == 8


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.3, 0.3), (0.7, 0.7), (0.1 + 0.2, 0.3), (0.29, 0.3), (0.66, 0.7), (1.0, 1.0)],
)
def test_normalize_tenth_steps_do_not_drift(value: float, expected: float) -> None:
    result = norm(value, minimum=0, maximum=1, step=0.1)
    assert result == expected  # exactly, not approximately
    assert repr(result) == repr(expected)


def test_normalize_hundredth_steps_give_exact_decimals() -> None:
    for k in range(0, 1001):
        expected = float(Decimal(k) / 100)  # 0.0, 0.01, ..., 10.0 as the nearest doubles
        for value in (k * 0.01, k / 100, k / 100 + 0.004, k / 100 - 0.004):
            result = norm(value, minimum=0, maximum=10, step=0.01)
            assert result == expected, (k, value, result)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1, -1),
        (-2, -1),
        (-0.9, -1),
        (-0.6, -0.5),
        (-0.3, -0.25),
        (0, 0),
        (0.1, 0),
        (0.13, 0.25),
        (0.8, 0.75),
        (1, 1),
        (3, 1),
    ],
)
def test_normalize_negative_min_quarter_steps(value: float, expected: float) -> None:
    assert norm(value, minimum=-1, maximum=1, step=0.25) == expected


def test_normalize_results_always_on_grid_and_in_range() -> None:
    cases = [(-1, 1, 0.25), (0, 1, 0.1), (5, 100, 10), (0, 10, 3), (-3.3, 7.7, 0.7)]
    for minimum, maximum, step in cases:
        for i in range(-50, 151):
            value = minimum + (maximum - minimum) * i / 100
            result = norm(value, minimum, maximum, step)
            assert minimum <= result <= maximum
            k = (Decimal(repr(result)) - Decimal(repr(minimum))) / Decimal(repr(step))
            assert k == k.to_integral_value(), (minimum, maximum, step, value, result)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Exactly half-way between two grid points rounds up (towards max), also below zero.
        (50.5, 51),
        (2.5, 3),
        (0.5, 1),
        (99.5, 100),
    ],
)
def test_normalize_half_way_rounds_up(value: float, expected: float) -> None:
    assert norm(value) == expected


def test_normalize_half_way_rounds_up_with_negative_min_and_fraction_steps() -> None:
    assert norm(-5.5, minimum=-10, maximum=10, step=1) == -5
    assert norm(0.125, minimum=0, maximum=1, step=0.25) == 0.25
    assert norm(0.375, minimum=0, maximum=1, step=0.25) == 0.5


def test_normalize_accepts_ints_and_returns_floats() -> None:
    result = norm(7)
    assert result == 7
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        "50",
        "",
        [],
        [50],
        {},
        {"value": 50},
        float("nan"),
        float("inf"),
        float("-inf"),
        10**400,
        -(10**400),
        object(),
    ],
    ids=repr,
)
def test_normalize_refuses_non_numbers(value: object) -> None:
    with pytest.raises(Refusal) as raised:
        norm(value)
    assert raised.value.code == "invalid_value"
    assert raised.value.message


# --- set_slider_value -----------------------------------------------------------------------


def test_set_stores_normalized_value_and_bumps_version(slider: Slider) -> None:
    change = set_slider_value(board="stage", slider_id="s1", value=73.4)
    assert change.changed is True
    assert (change.board, change.id, change.value, change.version) == ("stage", "s1", 73.0, 1)
    assert change.as_update() == {"id": "s1", "value": 73.0, "version": 1}
    assert stored(slider) == (73.0, 1)


def test_set_accepts_a_board_object(board: Board, slider: Slider) -> None:
    change = set_slider_value(board=board, slider_id="s1", value=10)
    assert (change.value, change.version) == (10.0, 1)
    assert stored(slider) == (10.0, 1)


def test_version_grows_by_one_per_accepted_change(slider: Slider) -> None:
    for version, value in enumerate([1, 2, 3, 60, 0, 100, 99], start=1):
        change = set_slider_value(board="stage", slider_id="s1", value=value)
        assert (change.value, change.version, change.changed) == (value, version, True)
        assert stored(slider) == (value, version)


def test_equal_value_is_not_reversioned(slider: Slider) -> None:
    set_slider_value(board="stage", slider_id="s1", value=20)
    change = set_slider_value(board="stage", slider_id="s1", value=20)
    assert (change.value, change.version, change.changed) == (20.0, 1, False)
    assert stored(slider) == (20.0, 1)


@pytest.mark.parametrize(("first", "second"), [(100, 150), (0, -5), (40, 40.3), (40, 39.7)])
def test_equal_after_normalizing_is_not_reversioned(
    slider: Slider, first: float, second: float
) -> None:
    set_slider_value(board="stage", slider_id="s1", value=first)
    change = set_slider_value(board="stage", slider_id="s1", value=second)
    assert (change.value, change.version, change.changed) == (first, 1, False)
    assert stored(slider) == (first, 1)


def test_same_as_initial_value_is_not_a_change(slider: Slider) -> None:
    change = set_slider_value(board="stage", slider_id="s1", value=50)
    assert (change.value, change.version, change.changed) == (50.0, 0, False)
    assert stored(slider) == (50.0, 0)


def assert_refused(code: str, slider: Slider | None, **kwargs: Any) -> None:
    before = stored(slider) if slider is not None else None
    with pytest.raises(Refusal) as raised:
        set_slider_value(**{"board": "stage", "slider_id": "s1", "value": 10, **kwargs})
    assert raised.value.code == code
    assert raised.value.message
    if slider is not None:
        assert stored(slider) == before


def test_unknown_slider_is_refused(slider: Slider) -> None:
    assert_refused("unknown_slider", slider, slider_id="nope")


def test_slider_of_another_board_is_unknown(board: Board, slider: Slider) -> None:
    other = Board.objects.create(slug="other", name="Other")
    make_slider(other, "only-there")
    assert_refused("unknown_slider", slider, slider_id="only-there")
    assert_refused("unknown_slider", slider, board="nowhere")


def test_unknown_slider_message_is_bounded(slider: Slider) -> None:
    with pytest.raises(Refusal) as raised:
        set_slider_value(board="stage", slider_id="x" * 100_000, value=1)
    assert raised.value.code == "unknown_slider"
    assert len(raised.value.message) < 300


@pytest.mark.parametrize("slider_id", ["", None, 1, 1.5, True, ["s1"], {"id": "s1"}], ids=repr)
def test_bad_slider_id_is_a_bad_request(slider: Slider, slider_id: object) -> None:
    assert_refused("bad_request", slider, slider_id=slider_id)


@pytest.mark.parametrize(
    "value", [True, None, "10", float("nan"), float("inf"), 10**400, [10]], ids=repr
)
def test_invalid_value_changes_nothing(slider: Slider, value: object) -> None:
    set_slider_value(board="stage", slider_id="s1", value=30)
    assert_refused("invalid_value", slider, value=value)
    assert stored(slider) == (30.0, 1)


def test_read_only_board_refuses_everyone(board: Board, slider: Slider) -> None:
    board.edit_access = Board.Access.NOBODY
    board.save()
    admin = User.objects.create_superuser("root")
    for user in (None, AnonymousUser(), admin, user_with_permission("editor")):
        assert_refused("forbidden", slider, actor=Actor(user=user))


@pytest.fixture
def editors_board(board: Board) -> Board:
    board.edit_access = Board.Access.EDITORS
    board.editors_group = Group.objects.create(name="stage editors")
    board.save()
    return board


def test_editors_board_refuses_anonymous(editors_board: Board, slider: Slider) -> None:
    assert_refused("forbidden", slider, actor=Actor(user=None))
    assert_refused("forbidden", slider, actor=Actor(user=AnonymousUser()))


def test_editors_board_refuses_other_signed_in_users(editors_board: Board, slider: Slider) -> None:
    plain = User.objects.create_user("plain")
    assert_refused("forbidden", slider, actor=Actor(user=plain))
    other_group = Group.objects.create(name="other")
    plain.groups.add(other_group)
    assert_refused("forbidden", slider, actor=Actor(user=User.objects.get(pk=plain.pk)))
    # A permission other than change_slider is not enough either.
    assert_refused(
        "forbidden", slider, actor=Actor(user=user_with_permission("viewer", "view_slider"))
    )


def test_editors_board_allows_permission_holder(editors_board: Board, slider: Slider) -> None:
    change = set_slider_value(
        board="stage", slider_id="s1", value=12, actor=Actor(user=user_with_permission("editor"))
    )
    assert (change.value, change.version) == (12.0, 1)
    assert stored(slider) == (12.0, 1)


def test_editors_board_allows_group_member(editors_board: Board, slider: Slider) -> None:
    member = User.objects.create_user("member")
    member.groups.add(editors_board.editors_group)
    change = set_slider_value(board="stage", slider_id="s1", value=13, actor=Actor(user=member))
    assert (change.value, change.version) == (13.0, 1)
    assert stored(slider) == (13.0, 1)


def test_editors_board_refuses_inactive_permission_holder(
    editors_board: Board, slider: Slider
) -> None:
    editor = user_with_permission("editor")
    editor.is_active = False
    editor.save()
    assert_refused("forbidden", slider, actor=Actor(user=editor))


# --- Broadcast scheduling -------------------------------------------------------------------


def test_accepted_change_schedules_exactly_one_broadcast(
    slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        set_slider_value(board="stage", slider_id="s1", value=60, sender="abc")
    assert len(callbacks) == 1


def test_each_accepted_change_schedules_its_own_broadcast(
    slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for value in (1, 2, 3):
            set_slider_value(board="stage", slider_id="s1", value=value)
    assert len(callbacks) == 3


@pytest.mark.parametrize("value", [50, 50.2, 49.9], ids=repr)
def test_equal_value_schedules_nothing(
    slider: Slider, django_capture_on_commit_callbacks: Any, value: float
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change = set_slider_value(board="stage", slider_id="s1", value=value)
    assert change.changed is False
    assert callbacks == []


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"value": "x"}, "invalid_value"),
        ({"value": float("nan")}, "invalid_value"),
        ({"slider_id": "nope"}, "unknown_slider"),
        ({"slider_id": ""}, "bad_request"),
    ],
    ids=repr,
)
def test_refused_change_schedules_nothing(
    slider: Slider, django_capture_on_commit_callbacks: Any, kwargs: dict[str, Any], code: str
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(Refusal) as raised,
    ):
        set_slider_value(**{"board": "stage", "slider_id": "s1", "value": 10, **kwargs})
    assert raised.value.code == code
    assert callbacks == []


def test_forbidden_change_schedules_nothing(
    board: Board, slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    board.edit_access = Board.Access.NOBODY
    board.save()
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(Refusal),
    ):
        set_slider_value(board="stage", slider_id="s1", value=1)
    assert callbacks == []


def test_scheduled_broadcast_without_a_server_is_harmless(
    slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    # In a process without a realtime server (shell, management command) there is nobody to tell.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        set_slider_value(board="stage", slider_id="s1", value=61)
    assert len(callbacks) == 1
    assert stored(slider) == (61.0, 1)


# --- save_slider ----------------------------------------------------------------------------


def test_save_slider_create_normalizes_requested_value(board: Board) -> None:
    new = Slider(board=board, slug="new", name="New", min=5, max=100, step=10, value=0)
    change = services.save_slider(slider=new, requested_value=48)
    row = Slider.objects.get(board=board, slug="new")
    assert (row.value, row.version) == (45.0, 0)
    assert (change.value, change.version, change.changed) == (45.0, 0, True)


@pytest.mark.parametrize(("requested", "expected"), [(-50, 0.0), (1e9, 10.0), (6.5, 7.0)])
def test_save_slider_create_clamps(board: Board, requested: float, expected: float) -> None:
    new = Slider(board=board, slug="new", name="New", min=0, max=10, step=1)
    change = services.save_slider(slider=new, requested_value=requested)
    assert change.value == expected
    assert Slider.objects.get(slug="new").value == expected


@pytest.mark.parametrize("requested", [10**400, float("nan"), True, "5", []], ids=repr)
def test_save_slider_create_refuses_non_numbers(board: Board, requested: object) -> None:
    new = Slider(board=board, slug="new", name="New", min=0, max=10, step=1)
    with pytest.raises(Refusal) as raised:
        services.save_slider(slider=new, requested_value=requested)
    assert raised.value.code == "invalid_value"
    assert not Slider.objects.filter(slug="new").exists()


def test_save_slider_create_without_a_value_starts_at_min(board: Board) -> None:
    new = Slider(board=board, slug="new", name="New", min=-3, max=10, step=2)
    change = services.save_slider(slider=new)
    assert (change.value, change.version) == (-3.0, 0)
    assert Slider.objects.get(slug="new").value == -3.0


def test_save_slider_without_a_value_keeps_the_stored_one(slider: Slider) -> None:
    edited = Slider.objects.get(pk=slider.pk)  # an admin form opened at value 50, version 0
    set_slider_value(board="stage", slider_id="s1", value=70)  # meanwhile, on the board
    edited.name = "Renamed"
    change = services.save_slider(slider=edited, requested_value=None)
    row = Slider.objects.get(pk=slider.pk)
    assert (row.name, row.value, row.version) == ("Renamed", 70.0, 1)
    assert (change.value, change.version, change.changed) == (70.0, 1, False)


def test_save_slider_without_a_value_still_moves_it_into_a_narrower_range(
    slider: Slider,
) -> None:
    edited = Slider.objects.get(pk=slider.pk)
    set_slider_value(board="stage", slider_id="s1", value=90)  # version 1
    edited.max = 60
    services.save_slider(slider=edited, requested_value=None)
    assert stored(slider) == (60.0, 2)


def test_save_slider_create_schedules_one_board_state(
    board: Board, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.save_slider(slider=Slider(board=board, slug="new", name="New"), requested_value=3)
    assert len(callbacks) == 1


def test_save_slider_narrowing_range_moves_value_into_it(slider: Slider) -> None:
    set_slider_value(board="stage", slider_id="s1", value=80)  # version 1
    edited = Slider.objects.get(pk=slider.pk)
    edited.max = 50
    change = services.save_slider(slider=edited, requested_value=edited.value)
    row = Slider.objects.get(pk=slider.pk)
    assert (row.min, row.max, row.value, row.version) == (0.0, 50.0, 50.0, 2)
    assert (change.value, change.version, change.changed) == (50.0, 2, True)


def test_save_slider_raising_min_above_value_moves_value_into_it(slider: Slider) -> None:
    set_slider_value(board="stage", slider_id="s1", value=10)  # version 1
    edited = Slider.objects.get(pk=slider.pk)
    edited.min = 30
    services.save_slider(slider=edited, requested_value=edited.value)
    row = Slider.objects.get(pk=slider.pk)
    assert (row.min, row.value, row.version) == (30.0, 30.0, 2)


def test_save_slider_coarser_step_resnaps_value(slider: Slider) -> None:
    set_slider_value(board="stage", slider_id="s1", value=37)  # version 1
    edited = Slider.objects.get(pk=slider.pk)
    edited.step = 10
    services.save_slider(slider=edited, requested_value=edited.value)
    row = Slider.objects.get(pk=slider.pk)
    assert (row.step, row.value, row.version) == (10.0, 40.0, 2)


def test_save_slider_widening_range_keeps_value_and_version(slider: Slider) -> None:
    set_slider_value(board="stage", slider_id="s1", value=80)  # version 1
    edited = Slider.objects.get(pk=slider.pk)
    edited.min, edited.max = -100, 1000
    change = services.save_slider(slider=edited, requested_value=edited.value)
    row = Slider.objects.get(pk=slider.pk)
    assert (row.min, row.max, row.value, row.version) == (-100.0, 1000.0, 80.0, 1)
    assert change.changed is False


def test_save_slider_name_only_keeps_value_and_version(
    slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    set_slider_value(board="stage", slider_id="s1", value=70)  # version 1
    edited = Slider.objects.get(pk=slider.pk)
    edited.name = "Renamed"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change = services.save_slider(slider=edited, requested_value=edited.value)
    row = Slider.objects.get(pk=slider.pk)
    assert (row.name, row.value, row.version) == ("Renamed", 70.0, 1)
    assert (change.value, change.version, change.changed) == (70.0, 1, False)
    assert len(callbacks) == 1  # board:state for the new name; no slider:update


def test_save_slider_value_only_bumps_version_once(
    slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    edited = Slider.objects.get(pk=slider.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change = services.save_slider(slider=edited, requested_value=50.4 + 10)
    assert stored(slider) == (60.0, 1)
    assert (change.value, change.version, change.changed) == (60.0, 1, True)
    assert len(callbacks) == 1  # slider:update


def test_save_slider_unchanged_schedules_nothing(
    slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    edited = Slider.objects.get(pk=slider.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change = services.save_slider(slider=edited, requested_value=50.3)
    assert stored(slider) == (50.0, 0)
    assert change.changed is False
    assert callbacks == []


def test_save_slider_ignores_a_stale_version_on_the_instance(slider: Slider) -> None:
    edited = Slider.objects.get(pk=slider.pk)  # read at version 0
    set_slider_value(board="stage", slider_id="s1", value=5)  # meanwhile: version 1
    edited.name = "Renamed"
    services.save_slider(slider=edited, requested_value=20)
    row = Slider.objects.get(pk=slider.pk)
    assert (row.name, row.value, row.version) == ("Renamed", 20.0, 2)


def test_save_slider_invalid_value_changes_nothing(slider: Slider) -> None:
    edited = Slider.objects.get(pk=slider.pk)
    edited.name = "Renamed"
    with pytest.raises(Refusal):
        services.save_slider(slider=edited, requested_value=float("inf"))
    row = Slider.objects.get(pk=slider.pk)
    assert (row.name, row.value, row.version) == ("s1", 50.0, 0)


def test_save_slider_moves_between_boards(
    board: Board, slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    other = Board.objects.create(slug="other", name="Other")
    edited = Slider.objects.get(pk=slider.pk)
    edited.board = other
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change = services.save_slider(slider=edited, requested_value=edited.value)
    assert change.board == "other"
    assert list(board.sliders.all()) == []
    assert [s.slug for s in other.sliders.all()] == ["s1"]
    assert stored(slider) == (50.0, 0)
    assert len(callbacks) == 2  # board:state for the old board and for the new one
    # The moved slider is now set through its new board only.
    with pytest.raises(Refusal):
        set_slider_value(board="stage", slider_id="s1", value=1)
    assert set_slider_value(board="other", slider_id="s1", value=1).version == 1


def test_save_slider_move_onto_a_board_with_the_same_slug_is_refused(
    board: Board, slider: Slider
) -> None:
    other = Board.objects.create(slug="other", name="Other")
    make_slider(other, "s1", value=7)
    edited = Slider.objects.get(pk=slider.pk)
    edited.board = other
    with pytest.raises(IntegrityError), transaction.atomic():
        services.save_slider(slider=edited, requested_value=edited.value)
    assert Slider.objects.get(pk=slider.pk).board_id == board.pk


# --- delete / save_board --------------------------------------------------------------------


def test_delete_slider_schedules_board_state(
    slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.delete_slider(slider=slider)
    assert not Slider.objects.filter(pk=slider.pk).exists()
    assert len(callbacks) == 1


def test_save_board_renaming_slug_tells_old_and_new_boards(
    board: Board, django_capture_on_commit_callbacks: Any
) -> None:
    board.slug = "renamed"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.save_board(board=board)
    assert Board.objects.get(pk=board.pk).slug == "renamed"
    assert len(callbacks) == 2


# --- Database constraints (the last line of defence) ----------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"min": 10, "max": 10, "value": 10},
        {"min": 10, "max": 5, "value": 7},
        {"step": 0},
        {"step": -1},
        {"value": -0.5},
        {"value": 100.5},
        {"value": float("inf")},
        {"value": float("-inf")},
    ],
    ids=repr,
)
def test_database_refuses_invalid_slider(board: Board, fields: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        make_slider(board, "bad", **fields)
    assert not Slider.objects.filter(slug="bad").exists()


def test_database_refuses_update_that_breaks_range(slider: Slider) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Slider.objects.filter(pk=slider.pk).update(value=1000)
    assert stored(slider) == (50.0, 0)


def test_database_constraints_accept_a_valid_slider(board: Board) -> None:
    created = make_slider(board, "ok", min=-1, max=1, step=0.25, value=-1)
    assert math.isclose(Slider.objects.get(pk=created.pk).value, -1)
