"""The admin goes through the services, and its changes reach live sockets.

Part A uses Django's test client (no server). Part B logs in to a live uvicorn over real HTTP and
checks that a connected Socket.IO client hears about what the admin saved.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from django.contrib.auth.models import User
from django.test import Client

from sliders import services
from sliders.models import Board, Slider
from tests.support.accounts import live_superuser
from tests.support.admin_pages import admin_page, page_width
from tests.support.browser import shows
from tests.support.clients import BoardClient
from tests.support.database import slider_row
from tests.support.http import AdminSession, Forms, error_summary
from tests.support.waiting import wait_until_blocking

HOSTILE = '<script>alert(1)</script> & "double"'


# --- Helpers --------------------------------------------------------------------------------


def slider_url(slider: Slider, action: str = "change") -> str:
    return f"/admin/sliders/slider/{slider.pk}/{action}/"


def board_url(board: Board, action: str = "change") -> str:
    return f"/admin/sliders/board/{board.pk}/{action}/"


def snapshot(slider: Slider) -> dict[str, Any]:
    row = Slider.objects.get(pk=slider.pk)
    fields = ("board_id", "slug", "name", "min", "max", "step", "value", "version", "position")
    return {field: getattr(row, field) for field in fields}


def new_slider(board: Board, slug: str, requested: float, **fields: Any) -> Slider:
    slider = Slider(board=board, slug=slug, name=fields.pop("name", slug.upper()), **fields)
    services.save_slider(slider=slider, requested_value=requested)
    return Slider.objects.get(pk=slider.pk)


def inline_data(client: Client, board: Board) -> dict[str, str]:
    """The board change form as the admin renders it, without the empty template form."""
    response = client.get(board_url(board))
    assert response.status_code == 200
    fields = Forms(response.content.decode()).form("board_form")
    return {k: v for k, v in fields.items() if "__prefix__" not in k}


def inline_index(data: dict[str, str], slug: str) -> int:
    for key, value in data.items():
        match = re.fullmatch(r"sliders-(\d+)-slug", key)
        if match and value == slug:
            return int(match.group(1))
    raise AssertionError(f"No inline form for {slug}")


def add_inline(data: dict[str, str], **fields: Any) -> None:
    index = int(data["sliders-TOTAL_FORMS"])
    data["sliders-TOTAL_FORMS"] = str(index + 1)
    defaults = {"position": 0, "min": 0, "max": 100, "step": 1, "value": 0}
    for key, value in {**defaults, **fields}.items():
        data[f"sliders-{index}-{key}"] = str(value)


def assert_saved(response: Any) -> None:
    """The admin redirects after a successful save; a 200 means the form came back with errors."""
    if response.status_code == 200:
        errors = re.findall(
            r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode()
        )
        raise AssertionError(f"The admin refused the form: {errors}")
    assert response.status_code == 302


# --- Part A: the admin through Django's test client -----------------------------------------


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root"))
    return client


@pytest.fixture
def board(db: None) -> Board:
    board = Board.objects.create(slug="stage", name="Stage")
    new_slider(board, "s1", 10, name="Volume", position=0)
    new_slider(board, "s2", 20, name="Pan", position=1)
    return board


@pytest.fixture
def slider(board: Board) -> Slider:
    return board.sliders.get(slug="s1")


def test_admin_pages_open(admin_client: Client, board: Board, slider: Slider) -> None:
    for url in (
        "/admin/",
        "/admin/sliders/board/",
        "/admin/sliders/board/add/",
        board_url(board),
        "/admin/sliders/slider/",
        "/admin/sliders/slider/add/",
        f"/admin/sliders/slider/?board__id__exact={board.pk}",
        "/admin/sliders/slider/?q=Volume",
        slider_url(slider),
        slider_url(slider, "delete"),
        board_url(board, "delete"),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_admin_changelists_list_the_objects(
    admin_client: Client, board: Board, slider: Slider
) -> None:
    html = admin_client.get("/admin/sliders/board/").content.decode()
    assert board_url(board) in html
    assert "Stage" in html
    html = admin_client.get("/admin/sliders/slider/").content.decode()
    for each in board.sliders.all():
        assert slider_url(each) in html


def test_admin_requires_staff(client: Client, board: Board, slider: Slider) -> None:
    for url in ("/admin/sliders/board/", slider_url(slider)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    client.force_login(User.objects.create_user("plain"))  # signed in, but not staff
    assert client.get(slider_url(slider)).status_code == 302
    before = snapshot(slider)
    response = client.post(slider_url(slider), {"value": "99", "_save": "Save"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert snapshot(slider) == before


def test_admin_save_snaps_value_and_bumps_version_once(
    admin_client: Client, slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    assert float(data["value"]) == 10
    data.update(value="50.4", _save="Save")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert_saved(admin_client.post(slider_url(slider), data))
    after = snapshot(slider)
    assert (after["value"], after["version"]) == (50.0, 1)
    assert len(callbacks) == 1  # one slider:update after commit


def test_admin_save_without_changes_keeps_the_version(
    admin_client: Client, slider: Slider, django_capture_on_commit_callbacks: Any
) -> None:
    before = snapshot(slider)
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert_saved(admin_client.post(slider_url(slider), {**data, "_save": "Save"}))
    assert snapshot(slider) == before
    assert callbacks == []


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"min": "100", "max": "100"}, "Max must be greater than min."),
        ({"min": "60", "max": "5", "value": "10"}, "Max must be greater than min."),
        ({"step": "0"}, "Step must be greater than zero."),
        ({"step": "-1"}, "Step must be greater than zero."),
        ({"value": "nan"}, "Enter a number."),
        ({"value": "abc"}, "Enter a number."),
    ],
)
def test_admin_invalid_form_shows_an_error_and_changes_nothing(
    admin_client: Client, slider: Slider, changes: dict[str, str], error: str
) -> None:
    before = snapshot(slider)
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    data.update(changes, name="Changed name", _save="Save")
    response = admin_client.post(slider_url(slider), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "errornote" in html
    assert error in html
    assert snapshot(slider) == before


def test_admin_narrowing_range_keeps_value_in_it(admin_client: Client, slider: Slider) -> None:
    services.set_slider_value(board="stage", slider_id="s1", value=80)  # version 1
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    data.update(max="50", value="40.2", _save="Save")
    assert_saved(admin_client.post(slider_url(slider), data))
    after = snapshot(slider)
    assert (after["max"], after["value"], after["version"]) == (50.0, 40.0, 2)


def test_admin_stale_form_does_not_undo_a_newer_value(admin_client: Client, slider: Slider) -> None:
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    assert float(data["value"]) == 10
    services.set_slider_value(board="stage", slider_id="s1", value=70)  # someone drags meanwhile
    data.update(name="Renamed", _save="Save")
    assert_saved(admin_client.post(slider_url(slider), data))
    after = snapshot(slider)
    assert (after["name"], after["value"], after["version"]) == ("Renamed", 70.0, 1)


def test_admin_stale_form_narrowing_moves_the_current_value(
    admin_client: Client, slider: Slider
) -> None:
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    services.set_slider_value(board="stage", slider_id="s1", value=80)  # version 1
    data.update(max="50", _save="Save")  # the form still shows 10, which fits
    assert_saved(admin_client.post(slider_url(slider), data))
    after = snapshot(slider)
    assert (after["max"], after["value"], after["version"]) == (50.0, 50.0, 2)


def test_admin_rename_keeps_value_and_version(admin_client: Client, slider: Slider) -> None:
    before = snapshot(slider)
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    data.update(name="Master volume", _save="Save")
    assert_saved(admin_client.post(slider_url(slider), data))
    assert snapshot(slider) == {**before, "name": "Master volume"}


def test_admin_add_slider_normalizes_value(admin_client: Client, board: Board) -> None:
    data = Forms(admin_client.get("/admin/sliders/slider/add/").content.decode()).form(
        "slider_form"
    )
    data.update(
        board=str(board.pk), slug="gain", name="Gain", min="5", max="100", step="10",
        value="48", position="5", _save="Save",
    )  # fmt: skip
    assert_saved(admin_client.post("/admin/sliders/slider/add/", data))
    created = board.sliders.get(slug="gain")
    assert (created.value, created.version) == (45.0, 0)


def test_admin_refuses_duplicate_slug_on_a_board(admin_client: Client, board: Board) -> None:
    data = Forms(admin_client.get("/admin/sliders/slider/add/").content.decode()).form(
        "slider_form"
    )
    data.update(board=str(board.pk), slug="s1", name="Copy", value="1", _save="Save")
    response = admin_client.post("/admin/sliders/slider/add/", data)
    assert response.status_code == 200
    assert "A slider with this id already exists on this board." in response.content.decode()
    assert board.sliders.count() == 2


def test_admin_delete_slider(admin_client: Client, board: Board, slider: Slider) -> None:
    response = admin_client.post(slider_url(slider, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert [s.slug for s in board.sliders.all()] == ["s2"]


def test_admin_bulk_delete_sliders(admin_client: Client, board: Board) -> None:
    pks = [str(s.pk) for s in board.sliders.all()]
    response = admin_client.post(
        "/admin/sliders/slider/",
        {"action": "delete_selected", "_selected_action": pks, "post": "yes"},
    )
    assert response.status_code == 302
    assert board.sliders.count() == 0


def test_admin_inline_edit_goes_through_the_service(
    admin_client: Client, board: Board, slider: Slider
) -> None:
    data = inline_data(admin_client, board)
    index = inline_index(data, "s1")
    data[f"sliders-{index}-value"] = "33.3"
    data[f"sliders-{index}-name"] = "Renamed"
    data["_save"] = "Save"
    assert_saved(admin_client.post(board_url(board), data))
    after = snapshot(slider)
    assert (after["name"], after["value"], after["version"]) == ("Renamed", 33.0, 1)
    assert snapshot(board.sliders.get(slug="s2"))["version"] == 0  # untouched


def test_admin_inline_stale_rows_do_not_undo_newer_values(
    admin_client: Client, board: Board
) -> None:
    data = inline_data(admin_client, board)
    services.set_slider_value(board="stage", slider_id="s2", value=77)  # version 1
    services.set_slider_value(board="stage", slider_id="s1", value=5)  # version 1
    data[f"sliders-{inline_index(data, 's1')}-name"] = "Renamed"
    data["_save"] = "Save"
    assert_saved(admin_client.post(board_url(board), data))
    s1, s2 = board.sliders.all()
    assert (s1.name, s1.value, s1.version) == ("Renamed", 5.0, 1)
    assert (s2.name, s2.value, s2.version) == ("Pan", 77.0, 1)


def test_admin_inline_add(admin_client: Client, board: Board) -> None:
    data = inline_data(admin_client, board)
    add_inline(data, slug="s3", name="Added", min=-1, max=1, step=0.25, value=0.3, position=2)
    data["_save"] = "Save"
    assert_saved(admin_client.post(board_url(board), data))
    added = board.sliders.get(slug="s3")
    assert (added.name, added.min, added.max, added.step) == ("Added", -1.0, 1.0, 0.25)
    assert (added.value, added.version) == (0.25, 0)
    assert [s.slug for s in board.sliders.all()] == ["s1", "s2", "s3"]


def test_admin_inline_delete(admin_client: Client, board: Board) -> None:
    data = inline_data(admin_client, board)
    data[f"sliders-{inline_index(data, 's2')}-DELETE"] = "on"
    data["_save"] = "Save"
    assert_saved(admin_client.post(board_url(board), data))
    assert [s.slug for s in board.sliders.all()] == ["s1"]


def test_admin_inline_invalid_row_changes_nothing(admin_client: Client, board: Board) -> None:
    before = [snapshot(s) for s in board.sliders.all()]
    data = inline_data(admin_client, board)
    data[f"sliders-{inline_index(data, 's1')}-value"] = "60"
    data[f"sliders-{inline_index(data, 's2')}-min"] = "500"  # min >= max
    data["name"] = "Renamed board"
    data["_save"] = "Save"
    response = admin_client.post(board_url(board), data)
    assert response.status_code == 200
    assert "Max must be greater than min." in response.content.decode()
    assert [snapshot(s) for s in board.sliders.all()] == before
    assert Board.objects.get(pk=board.pk).name == "Stage"


def test_admin_names_are_escaped_in_changelists(admin_client: Client) -> None:
    board = Board.objects.create(slug="evil", name=HOSTILE)
    new_slider(board, "s1", 1, name=HOSTILE)
    for url in ("/admin/sliders/board/", "/admin/sliders/slider/", board_url(board)):
        html = admin_client.get(url).content.decode()
        assert "<script>alert(1)" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def test_admin_board_save_goes_through_the_service(
    admin_client: Client, board: Board, django_capture_on_commit_callbacks: Any
) -> None:
    data = inline_data(admin_client, board)
    data.update(name="Main stage", edit_access="nobody", _save="Save")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert_saved(admin_client.post(board_url(board), data))
    saved = Board.objects.get(pk=board.pk)
    assert (saved.name, saved.edit_access) == ("Main stage", "nobody")
    assert len(callbacks) == 1  # one board:state


# --- Ranges: a step that fits, a value that follows a new range, the next position ------------


@pytest.mark.parametrize(
    ("low", "high", "step"),
    [("0", "1", "5"), ("0", "10", "10.5"), ("-1", "1", "2.000001"), ("0.1", "0.3", "0.21")],
)
def test_a_step_larger_than_the_range_is_refused_on_the_slider_page(
    admin_client: Client, slider: Slider, low: str, high: str, step: str
) -> None:
    before = snapshot(slider)
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    data.update(min=low, max=high, step=step, value=low, _save="Save")
    response = admin_client.post(slider_url(slider), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "must not be larger than the range" in html
    assert html.count("must not be larger than the range") == 1  # one message, on the step
    assert snapshot(slider) == before


def test_a_step_larger_than_the_range_is_refused_for_a_new_slider_and_inline(
    admin_client: Client, board: Board
) -> None:
    data = Forms(admin_client.get("/admin/sliders/slider/add/").content.decode()).form(
        "slider_form"
    )
    data.update(board=str(board.pk), slug="stuck", name="Stuck", min="0", max="1", step="5")
    response = admin_client.post("/admin/sliders/slider/add/", {**data, "_save": "Save"})
    assert response.status_code == 200
    assert "must not be larger than the range" in response.content.decode()

    data = inline_data(admin_client, board)
    add_inline(data, slug="stuck", name="Stuck", min=0, max=1, step=5, value=0)
    response = admin_client.post(board_url(board), {**data, "_save": "Save"})
    assert response.status_code == 200
    assert "must not be larger than the range" in response.content.decode()
    assert not board.sliders.filter(slug="stuck").exists()


@pytest.mark.parametrize(
    ("low", "high", "step"), [("0.1", "0.3", "0.2"), ("1.0", "1.1", "0.1"), ("0", "1", "1")]
)
def test_a_step_equal_to_the_range_is_accepted_whatever_floats_make_of_it(
    admin_client: Client, board: Board, low: str, high: str, step: str
) -> None:
    # In binary floating point 0.3 - 0.1 < 0.2 and 1.1 - 1.0 > 0.1: the range is decimal.
    data = Forms(admin_client.get("/admin/sliders/slider/add/").content.decode()).form(
        "slider_form"
    )
    data.update(
        board=str(board.pk), slug="two", name="Two", min=low, max=high, step=step, value=high,
        _save="Save",
    )  # fmt: skip
    assert_saved(admin_client.post("/admin/sliders/slider/add/", data))
    created = board.sliders.get(slug="two")
    assert (created.step, created.value) == (float(step), float(high))  # max is reachable


def test_a_range_that_is_not_a_whole_number_of_steps_stops_at_the_last_step(
    admin_client: Client, board: Board
) -> None:
    data = Forms(admin_client.get("/admin/sliders/slider/add/").content.decode()).form(
        "slider_form"
    )
    data.update(
        board=str(board.pk), slug="thirds", name="Thirds", min="0", max="10", step="3",
        value="10", _save="Save",
    )  # fmt: skip
    assert_saved(admin_client.post("/admin/sliders/slider/add/", data))
    assert board.sliders.get(slug="thirds").value == 9.0
    assert services.highest_value(minimum=0, maximum=10, step=3) == 9.0
    html = admin_client.get("/admin/sliders/slider/add/").content.decode()
    assert "max itself cannot be reached" in html  # the step's help text says so


@pytest.mark.parametrize("where", ["slider page", "board page"])
def test_narrowing_the_range_below_the_stored_value_clamps_it_and_says_so(
    admin_client: Client, board: Board, slider: Slider, where: str
) -> None:
    services.set_slider_value(board="stage", slider_id="s1", value=80)  # version 1
    if where == "slider page":
        url = slider_url(slider)
        data = Forms(admin_client.get(url).content.decode()).form("slider_form")
        data.update(max="50", _continue="Save and continue editing")
        prefix = ""
    else:
        url = board_url(board)
        data = inline_data(admin_client, board)
        prefix = f"sliders-{inline_index(data, 's1')}-"
        data.update({f"{prefix}max": "50", "_continue": "Save and continue editing"})
    assert float(data[f"{prefix}value"]) == 80

    response = admin_client.post(url, data, follow=True)

    html = response.content.decode()
    errors = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html)
    assert errors == [], errors
    after = snapshot(slider)
    assert (after["max"], after["value"], after["version"]) == (50.0, 50.0, 2)
    assert "Volume (s1): its value did not fit the new range or step, so it is now 50." in html
    assert float(Forms(html).form(f"{prefix}value")[f"{prefix}value"]) == 50.0  # the field too


def test_a_value_typed_outside_the_range_is_still_refused(
    admin_client: Client, slider: Slider
) -> None:
    before = snapshot(slider)
    data = Forms(admin_client.get(slider_url(slider)).content.decode()).form("slider_form")
    data.update(max="50", value="80", _save="Save")
    response = admin_client.post(slider_url(slider), data)
    assert response.status_code == 200
    assert "The value must lie between min and max." in response.content.decode()
    assert snapshot(slider) == before


def test_new_sliders_go_after_the_last_one(admin_client: Client, board: Board) -> None:
    board.sliders.filter(slug="s2").update(position=7)
    html = admin_client.get(board_url(board)).content.decode()
    empty = Forms(html).form("board_form")
    assert empty["sliders-__prefix__-position"] == ""  # not 0: empty means after the last

    data = inline_data(admin_client, board)
    add_inline(data, slug="s3", name="Third", position="")
    add_inline(data, slug="s4", name="Fourth", position="")
    assert_saved(admin_client.post(board_url(board), {**data, "_save": "Save"}))
    data = Forms(admin_client.get("/admin/sliders/slider/add/").content.decode()).form(
        "slider_form"
    )
    data.update(board=str(board.pk), slug="s5", name="Fifth", position="", _save="Save")
    assert_saved(admin_client.post("/admin/sliders/slider/add/", data))

    positions = {s.slug: s.position for s in board.sliders.all()}
    assert positions == {"s1": 0, "s2": 7, "s3": 8, "s4": 9, "s5": 10}
    assert [s.slug for s in board.sliders.all()] == ["s1", "s2", "s3", "s4", "s5"]


def test_help_texts_are_shown_as_text_not_markup(admin_client: Client, board: Board) -> None:
    for url in ("/admin/sliders/board/add/", board_url(board)):
        html = admin_client.get(url).content.decode()
        assert "/b/&lt;slug&gt;/" in html, url
        assert "<slug>" not in html, url


# --- Part B: the live server ----------------------------------------------------------------


def live_slider(board: Board, slug: str) -> Slider:
    return board.sliders.get(slug=slug)


@pytest.mark.live
async def test_live_login_is_required(asgi_server: Any, stable_content_types: None) -> None:
    live_superuser("live-admin", "admin@example.com")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        session = AdminSession(asgi_server.url, http)
        status, _ = await session.get("/admin/sliders/slider/")
        assert status == 302
        data = await session.form("/admin/login/?next=/admin/", "login-form")
        data.update(username="live-admin", password="wrong", next="/admin/")
        status, _, body = await session.post("/admin/login/?next=/admin/", data)
        assert status == 200
        assert "errornote" in body
        status, _ = await session.get("/admin/sliders/slider/")
        assert status == 302


@pytest.mark.live
async def test_live_admin_value_change_reaches_clients(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board = make_board(sliders=[{"slug": "s1", "value": 10}, {"slug": "s2", "value": 20}])
    other_board = make_board()
    client = await connect_client(board.slug)
    bystander = await connect_client(other_board.slug)
    slider = live_slider(board, "s1")

    await admin_http.submit(slider_url(slider), "slider_form", value="64.6", _save="Save")

    updates = await client.wait_for(lambda: client.of("slider:update"))
    assert updates == [{"id": "s1", "value": 65.0, "version": 1}]
    assert client.values["s1"] == (65.0, 1)
    assert snapshot(slider)["value"] == 65.0
    assert snapshot(slider)["version"] == 1
    assert bystander.of("slider:update") == []
    assert len(client.of("board:state")) == 1  # a value change is not a structure change


@pytest.mark.live
async def test_live_admin_versions_follow_each_save(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board = make_board(sliders=[{"slug": "s1", "value": 0}])
    client = await connect_client(board.slug)
    slider = live_slider(board, "s1")
    for version, value in enumerate((5, 6, 7), start=1):
        await admin_http.submit(slider_url(slider), "slider_form", value=str(value), _save="Save")
        await client.wait_for(lambda v=version: client.values["s1"][1] == v)
    assert client.of("slider:update") == [
        {"id": "s1", "value": 5.0, "version": 1},
        {"id": "s1", "value": 6.0, "version": 2},
        {"id": "s1", "value": 7.0, "version": 3},
    ]


@pytest.mark.live
async def test_live_admin_rename_sends_board_state(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board = make_board(sliders=[{"slug": "s1", "value": 30}, {"slug": "s2", "value": 40}])
    client = await connect_client(board.slug)
    slider = live_slider(board, "s1")

    await admin_http.submit(slider_url(slider), "slider_form", name="Renamed live", _save="Save")

    await client.wait_for(lambda: len(client.of("board:state")) >= 2)
    state = client.state
    assert state["board"] == board.slug
    first = state["sliders"][0]
    assert (first["id"], first["name"], first["value"], first["version"]) == (
        "s1", "Renamed live", 30.0, 0,
    )  # fmt: skip
    assert [s["id"] for s in state["sliders"]] == ["s1", "s2"]
    assert client.of("slider:update") == []


@pytest.mark.live
async def test_live_admin_stale_form_keeps_what_people_did_meanwhile(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board = make_board(sliders=[{"slug": "s1", "value": 10}])
    client = await connect_client(board.slug)
    slider = live_slider(board, "s1")
    data = await admin_http.form(slider_url(slider), "slider_form")
    assert float(data["value"]) == 10

    ack = await client.set("s1", 70)  # a drag on the board while the admin form is open
    assert ack["ok"] is True
    data.update(name="Renamed", _save="Save")
    status, _, body = await admin_http.post(slider_url(slider), data)
    assert status == 302, error_summary(body)

    await client.wait_for(lambda: client.state["sliders"][0]["name"] == "Renamed")
    shown = client.state["sliders"][0]
    assert (shown["value"], shown["version"]) == (70.0, 1)
    assert client.values["s1"] == (70.0, 1)
    assert snapshot(slider)["value"] == 70.0


@pytest.mark.live
async def test_live_admin_range_change_sends_board_state(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board = make_board(sliders=[{"slug": "s1", "value": 30}])
    client = await connect_client(board.slug)
    slider = live_slider(board, "s1")

    await admin_http.submit(
        slider_url(slider), "slider_form", min="-50", max="250", step="5", _save="Save"
    )

    await client.wait_for(lambda: len(client.of("board:state")) >= 2)
    (shown,) = client.state["sliders"]
    assert shown == {
        "id": "s1", "name": "s1", "min": -50.0, "max": 250.0, "step": 5.0,
        "value": 30.0, "version": 0, "unit": "", "precision": None,
    }  # fmt: skip

    # A unit and a precision are structure too: pages get them at once.
    await admin_http.submit(slider_url(slider), "slider_form", unit="dB", precision="2")
    await client.wait_for(lambda: len(client.of("board:state")) >= 3)
    (shown,) = client.state["sliders"]
    assert (shown["unit"], shown["precision"], shown["version"]) == ("dB", 2, 0)


@pytest.mark.live
async def test_live_admin_delete_sends_board_state_without_the_slider(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board = make_board()
    client = await connect_client(board.slug)
    slider = live_slider(board, "s1")
    assert [s["id"] for s in client.state["sliders"]] == ["s1", "s2"]

    location = await admin_http.submit(slider_url(slider, "delete"), "post", post="yes")
    assert location.startswith("/admin/sliders/slider/")

    await client.wait_for(lambda: len(client.of("board:state")) >= 2)
    assert [s["id"] for s in client.state["sliders"]] == ["s2"]
    assert not board.sliders.filter(slug="s1").exists()


@pytest.mark.live
async def test_live_admin_inline_add_and_board_rename_send_board_state(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board = make_board(name="Before", sliders=[{"slug": "s1", "value": 1}])
    client = await connect_client(board.slug)

    status, html = await admin_http.get(board_url(board))
    assert status == 200
    data = {k: v for k, v in Forms(html).form("board_form").items() if "__prefix__" not in k}
    add_inline(data, slug="added", name="Added", min=0, max=10, step=0.5, value=7.3, position=1)
    data.update(name="After", _save="Save")
    status, _, body = await admin_http.post(board_url(board), data)
    assert status == 302, error_summary(body)

    def has_both() -> bool:
        state = client.state
        return state["name"] == "After" and [s["id"] for s in state["sliders"]] == ["s1", "added"]

    await client.wait_for(has_both)
    added = client.state["sliders"][1]
    assert (added["name"], added["max"], added["step"], added["value"]) == ("Added", 10, 0.5, 7.5)


def shown_by_a_page(client: BoardClient, slider_id: str) -> tuple[float, int] | None:
    """The (value, version) a board page that heard `client`'s events would show for a slider
    (sliders/static/sliders/board/receiving.js): an update of a slider it does not know yet is
    dropped, and a board:state keeps the value the page holds if that one is newer."""
    shown: tuple[float, int] | None = None
    for event, data in client.events:
        if event == "board:state":
            item = next((s for s in data["sliders"] if s["id"] == slider_id), None)
            if item is None:
                shown = None
            elif shown is None or item["version"] >= shown[1]:
                shown = (item["value"], item["version"])
        elif event == "slider:update" and data["id"] == slider_id:
            newer = shown is not None and data["version"] > shown[1]
            shown = (data["value"], data["version"]) if newer else shown
    return shown


@pytest.mark.live
async def test_live_a_slider_added_and_moved_at_once_shows_the_move_everywhere(
    make_board: Any, asgi_server: Any, admin_http: AdminSession
) -> None:
    """A slider added, then set at once through the API (a script that made it), while the
    server reads the board:state that adds it (a big board: that takes a while): the pages
    hear the set before that state, drop it (a slider they do not know yet), then show the
    value the state was read with, until the next change. The set must be heard after it.
    """
    board = make_board(sliders=[])
    Slider.objects.bulk_create(
        Slider(board=board, slug=f"s{i}", name=f"S{i}", position=i) for i in range(4000)
    )
    pages = [BoardClient(asgi_server.url, board.slug) for _ in range(3)]
    for page in pages:
        await page.connect()
    try:

        async def set_it_as_soon_as_it_exists(api: aiohttp.ClientSession) -> int:
            url = f"{asgi_server.url}/api/boards/{board.slug}/sliders/added"
            async with asyncio.timeout(10):
                while True:
                    async with api.put(url, json={"value": 77}) as response:
                        if response.status == 200:
                            return int((await response.json())["version"])
                        assert response.status == 404, await response.text()

        async with aiohttp.ClientSession() as api:  # anonymous, as a script on the LAN
            setting = asyncio.ensure_future(set_it_as_soon_as_it_exists(api))
            await admin_http.submit(
                "/admin/sliders/slider/add/", "slider_form",
                board=str(board.pk), slug="added", name="Added", value="10", position="0",
                _save="Save",
            )  # fmt: skip
            version = await setting
        for page in pages:
            await page.wait_for(lambda p=page: "added" in p.values)
        await asyncio.sleep(0.5)  # anything still on its way
        shown = [shown_by_a_page(page, "added") for page in pages]
        assert shown == [(77, version)] * len(pages)
    finally:
        for page in pages:
            await page.disconnect()


# --- Part C: in Chromium --------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 1600])
def test_the_board_page_fits_the_window(make_board, browser, asgi_server, width: int) -> None:
    board = make_board(
        name="A board with a long name",
        sliders=[
            {"slug": "master-volume", "name": "Master volume of the main stage", "min": -60,
             "max": 12, "step": 0.5, "unit": "dB", "precision": 1, "value": -12.5},
            {"slug": "s2", "name": "Pan", "min": -1, "max": 1, "step": 0.01, "value": 0},
        ],
    )  # fmt: skip
    from sliders import services
    from sliders.models import Webhook

    services.save_webhook(
        webhook=Webhook(board=board, url="https://hooks.example.com/a/rather/long/path?token=x")
    )
    admin = live_superuser(f"wide-{width}", "wide@example.com")
    page = admin_page(browser, asgi_server, admin, board_url(board), width=width)
    try:
        assert page_width(page) <= width
        page.get_by_text("Add another Slider").click()  # the new row fits too
        assert page_width(page) <= width
        for cell in ("td.field-value", "td.field-version", "td.delete"):  # on screen, not clipped
            box = page.locator(cell).first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, cell
    finally:
        page.context.close()


@pytest.mark.browser
def test_the_page_stops_where_the_server_does_when_max_is_off_the_step_grid(
    make_board, page_on
) -> None:
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 10, "step": 3, "value": 3}])
    page = page_on(board.slug)
    page.locator("#slider-s1").focus()
    page.keyboard.press("End")  # as far as the thumb goes
    shows(page, "9")
    wait_until_blocking(lambda: slider_row(board).version == 1, timeout=3, what="the set")
    assert slider_row(board).value == 9.0
    page.keyboard.press("ArrowRight")  # nothing further right
    shows(page, "9")
    page.evaluate("window.sliderSync.socket.emit('slider:set', {id: 's1', value: 10})")
    wait_until_blocking(lambda: slider_row(board).version == 1, timeout=1)
    assert slider_row(board).value == 9.0  # 10 was snapped to 9: nothing moved
