"""Read queries (sliders/selectors.py): the `board:state` payload and what a fade starts from.

On the (rolled back) test database; no server runs here.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User

from sliders.models import Board, Preset, Slider
from sliders.selectors import board_state, get_board, slider_payload, values_and_versions


@pytest.fixture
def board(db: None) -> Board:
    board = Board.objects.create(slug="stage", name="Stage", edit_access=Board.Access.EDITORS)
    fields: dict[str, Any] = {"board": board, "min": 0, "max": 10}
    Slider.objects.create(slug="b", name="Second", position=2, value=3, **fields)
    Slider.objects.create(
        slug="a", name="First", position=1, value=7, step=0.5, unit="dB", **fields
    )
    Preset.objects.create(board=board, name="Intro", values={"a": 1})
    return board


def test_a_slider_payload_is_what_the_wire_protocol_shows() -> None:
    slider = Slider(slug="s1", name="Gain", min=-1, max=1, step=0.1, value=0.3, version=4)
    assert slider_payload(slider) == {
        "id": "s1", "name": "Gain", "min": -1, "max": 1, "step": 0.1, "value": 0.3,
        "version": 4, "unit": "", "precision": None,
    }  # fmt: skip


def test_board_state_has_the_sliders_in_display_order_and_the_presets(board: Board) -> None:
    state = board_state(board, user=None, clients=3)
    assert {key: state[key] for key in ("board", "name", "clients", "presets")} == {
        "board": "stage", "name": "Stage", "clients": 3, "presets": [{"name": "Intro"}],
    }  # fmt: skip
    assert [s["id"] for s in state["sliders"]] == ["a", "b"]
    assert state["sliders"][0] == slider_payload(Slider.objects.get(board=board, slug="a"))


def test_board_state_says_whether_the_viewer_may_edit(board: Board) -> None:
    editor = User.objects.create_user("editor")
    editor.user_permissions.add(Permission.objects.get(codename="change_slider"))
    plain = User.objects.create_user("plain")
    assert board_state(board, user=None, clients=0)["can_edit"] is False
    assert board_state(board, user=AnonymousUser(), clients=0)["can_edit"] is False
    assert board_state(board, user=plain, clients=0)["can_edit"] is False
    assert board_state(board, user=User.objects.get(pk=editor.pk), clients=0)["can_edit"] is True


def test_values_and_versions_of_the_named_sliders(board: Board) -> None:
    Slider.objects.filter(board=board, slug="b").update(version=5)
    assert values_and_versions("stage", ["a", "b", "gone"]) == ({"a": 7, "b": 3}, {"a": 0, "b": 5})
    assert values_and_versions("elsewhere", ["a"]) == ({}, {})


def test_get_board_by_slug(board: Board) -> None:
    assert get_board("stage") == board
    assert get_board("elsewhere") is None
