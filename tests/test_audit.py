"""The audit trail: who moved which slider from what to what, through live sockets and the admin.

A drag sends many values; one client's consecutive sets on one slider within
AUDIT_MERGE_SECONDS are one entry (sliders/services/audit.py). Refused sets leave nothing.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import socket
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client

from sliders import services
from sliders.models import AuditEntry, Board, Preset, ShareLink, Slider
from tests.support.accounts import PASSWORD, session_cookie, share_cookie
from tests.support.checks import assert_error
from tests.support.http import Forms

ENTRY_FIELDS = (
    "board", "slider", "user_id", "username", "source", "address", "client",
    "from_value", "to_value", "from_version", "to_version", "changes",
)  # fmt: skip


def entries(board: Board | str, slider: str | None = None) -> list[dict[str, Any]]:
    """The board's audit entries, oldest first, as dicts of the interesting fields."""
    rows = AuditEntry.objects.filter(board=getattr(board, "slug", board)).order_by("id")
    if slider is not None:
        rows = rows.filter(slider=slider)
    return [{field: getattr(row, field) for field in ENTRY_FIELDS} for row in rows]


# --- Sockets ----------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
async def test_a_drag_is_one_entry_from_the_first_value_to_the_last(
    make_board, connect_client, signed_in
):
    board = make_board()
    user = User.objects.create_user("dragger") if signed_in else None
    headers = {"Cookie": session_cookie(user)} if user else {}
    client = await connect_client(board.slug, headers=headers)
    for value in range(51, 71):  # 20 quick sets, as a drag sends them
        ack = await client.set("s1", value)
        assert ack["ok"] is True, ack
    assert entries(board) == [
        {
            "board": board.slug,
            "slider": "s1",
            "user_id": user.pk if user else None,
            "username": "dragger" if user else "",
            "source": "socket",
            "address": "127.0.0.1",
            "client": client.sio.get_sid(),
            "from_value": 50,
            "to_value": 70,
            "from_version": 0,
            "to_version": 20,
            "changes": 20,
        }
    ]
    entry = AuditEntry.objects.get(board=board.slug)
    assert entry.started_at < entry.ended_at
    assert str(entry) == f"{'dragger' if user else 'anonymous'} moved {board.slug}/s1 from 50 to 70"


@pytest.mark.live
async def test_someone_elses_set_in_between_splits_the_entry(make_board, connect_client):
    board = make_board()
    first = await connect_client(board.slug)
    second = await connect_client(board.slug)
    for value in (51, 52, 53):
        assert (await first.set("s1", value))["ok"] is True
    assert (await first.set("s2", 10))["ok"] is True  # another slider does not split s1's entry
    assert (await first.set("s1", 54))["ok"] is True
    assert (await second.set("s1", 80))["ok"] is True
    for value in (81, 82):
        assert (await first.set("s1", value))["ok"] is True

    sid1, sid2 = first.sio.get_sid(), second.sio.get_sid()
    summary = [
        (
            e["client"],
            e["from_value"],
            e["to_value"],
            e["from_version"],
            e["to_version"],
            e["changes"],
        )
        for e in entries(board, "s1")
    ]
    assert summary == [
        (sid1, 50, 54, 0, 4, 4),
        (sid2, 54, 80, 4, 5, 1),
        (sid1, 80, 82, 5, 7, 2),
    ]
    assert [(e["from_value"], e["to_value"], e["changes"]) for e in entries(board, "s2")] == [
        (50, 10, 1)
    ]


@pytest.mark.live
async def test_sets_further_apart_than_the_merge_window_are_separate_entries(
    start_server, make_board, connect_client
):
    server = start_server(env={"AUDIT_MERGE_SECONDS": "0.2"})
    board = make_board()
    client = await connect_client(board.slug, server=server)
    assert (await client.set("s1", 60))["ok"] is True
    assert (await client.set("s1", 61))["ok"] is True  # within 0.2 s: merged
    await asyncio.sleep(0.5)  # the pause is what is tested
    assert (await client.set("s1", 62))["ok"] is True
    assert [(e["from_value"], e["to_value"], e["changes"]) for e in entries(board)] == [
        (50, 61, 2),
        (61, 62, 1),
    ]


@pytest.mark.live
async def test_refused_and_unchanged_sets_leave_no_entry(start_server, make_board, connect_client):
    server = start_server(env={"SLIDER_SET_RATE": "2", "SLIDER_SET_BURST": "4"})
    board = make_board()
    locked = make_board(edit_access="editors")
    client = await connect_client(board.slug, server=server)
    viewer = await connect_client(locked.slug, server=server)

    assert_error(await client.set("s1", "loud"), "invalid_value")
    assert_error(await client.set("nope", 10), "unknown_slider")
    assert_error(await client.call("slider:set", ["s1", 10]), "bad_request")
    assert await client.set("s1", 50) == {"ok": True, "id": "s1", "value": 50, "version": 0}
    assert_error(await client.set("s1", 60), "rate_limited")  # four tokens spent above
    assert_error(await viewer.set("s1", 60), "forbidden")
    assert entries(board) == []
    assert entries(locked) == []

    await asyncio.sleep(0.7)  # a token comes back: the same set is accepted, and recorded
    assert (await client.set("s1", 60))["ok"] is True
    assert [(e["from_value"], e["to_value"], e["changes"]) for e in entries(board)] == [(50, 60, 1)]


@pytest.mark.live
async def test_the_forwarded_client_address_is_recorded_behind_a_local_proxy(
    make_board, connect_client
):
    """uvicorn takes X-Forwarded-For from a proxy on 127.0.0.1 (its FORWARDED_ALLOW_IPS
    default), as nginx on the same host sends it; the trail then names the real client."""
    board = make_board()
    client = await connect_client(board.slug, headers={"X-Forwarded-For": "203.0.113.7"})
    assert (await client.set("s1", 1))["ok"] is True
    assert [e["address"] for e in entries(board)] == ["203.0.113.7"]


# --- The admin --------------------------------------------------------------------------------


@pytest.fixture
def ops(db: None) -> User:
    return User.objects.create_superuser("ops", "ops@example.com", PASSWORD)


@pytest.fixture
def ops_client(ops: User) -> Client:
    client = Client()
    client.force_login(ops)
    return client


@pytest.fixture
def stage(db: None) -> Slider:
    board = Board.objects.create(slug="stage", name="Stage")
    services.save_slider(slider=Slider(board=board, slug="s1", name="Volume"), requested_value=10)
    return Slider.objects.get(board=board, slug="s1")


def save_in_admin(client: Client, slider: Slider, **changes: str) -> None:
    url = f"/admin/sliders/slider/{slider.pk}/change/"
    data = Forms(client.get(url).content.decode()).form("slider_form")
    data.update(changes)
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]


def test_an_admin_change_is_recorded_with_the_admins_name(
    ops_client: Client, ops: User, stage: Slider
) -> None:
    assert entries("stage") == []  # creating a slider is not a move
    save_in_admin(ops_client, stage, value="20")
    save_in_admin(ops_client, stage, name="Loudness")  # no value change: nothing to record
    save_in_admin(ops_client, stage, value="30")  # the admin's saves are not merged
    assert entries("stage") == [
        {
            "board": "stage", "slider": "s1", "user_id": ops.pk, "username": "ops",
            "source": "admin", "address": "127.0.0.1", "client": "",
            "from_value": 10, "to_value": 20, "from_version": 0, "to_version": 1, "changes": 1,
        },
        {
            "board": "stage", "slider": "s1", "user_id": ops.pk, "username": "ops",
            "source": "admin", "address": "127.0.0.1", "client": "",
            "from_value": 20, "to_value": 30, "from_version": 1, "to_version": 2, "changes": 1,
        },
    ]  # fmt: skip


def test_the_audit_trail_admin_is_read_only(ops_client: Client, stage: Slider) -> None:
    services.set_slider_value(board="stage", slider_id="s1", value=42)
    entry = AuditEntry.objects.get()
    base = "/admin/sliders/auditentry/"

    response = ops_client.get(base)
    assert response.status_code == 200
    html = response.content.decode()
    assert "stage" in html and "command line (" in html
    assert f'href="{base}add/"' not in html
    assert 'value="delete_selected"' not in html  # no bulk delete action

    assert ops_client.get(f"{base}add/").status_code == 403
    assert ops_client.post(f"{base}add/", {"board": "x"}).status_code == 403
    view = ops_client.get(f"{base}{entry.pk}/change/")
    assert view.status_code == 200  # a read-only view
    assert 'name="_save"' not in view.content.decode()
    assert ops_client.post(f"{base}{entry.pk}/change/", {"to_value": "1"}).status_code == 403
    assert ops_client.get(f"{base}{entry.pk}/delete/").status_code == 403
    assert ops_client.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert (entry.to_value, AuditEntry.objects.count()) == (42, 1)


def test_staff_need_the_view_permission_to_read_the_trail(db: None, stage: Slider) -> None:
    staff = User.objects.create_user("crew", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/sliders/auditentry/").status_code == 403
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="sliders", codename="view_auditentry")
    )
    assert client.get("/admin/sliders/auditentry/").status_code == 200


# --- Who: the operator at a shell, the holder of a share link ----------------------------------


def operator_at_this_machine() -> str:
    return f"command line ({getpass.getuser()}@{socket.gethostname()})"


def test_a_change_from_the_command_line_names_the_operator_and_the_machine(
    ops_client: Client, stage: Slider
) -> None:
    call_command("slider", "set", "stage", "s1", "42", stdout=io.StringIO(), stderr=io.StringIO())
    (entry,) = entries("stage")
    assert (entry["source"], entry["username"], entry["user_id"]) == (
        "command", operator_at_this_machine(), None,
    )  # fmt: skip
    html = ops_client.get("/admin/sliders/auditentry/").content.decode()
    assert f'<td class="field-who">{operator_at_this_machine()}</td>' in html


@pytest.mark.live
async def test_a_share_link_editor_is_recorded_with_the_links_label(
    make_board, connect_client
) -> None:
    """Sets, presets and fades alike: the trail says which link the change came through."""
    board = make_board(edit_access="editors")  # only the link lets an anonymous visitor edit
    link = ShareLink.objects.create(board=board, kind="edit", label="crew tablets")
    unlabelled = ShareLink.objects.create(board=board, kind="edit")
    Preset.objects.create(board=board, name="Intro", values={"s1": 10, "s2": 90})
    Preset.objects.create(board=board, name="Out", values={"s1": 0, "s2": 0})
    crew = await connect_client(board.slug, headers={"Cookie": share_cookie(link)})
    other = await connect_client(board.slug, headers={"Cookie": share_cookie(unlabelled)})

    assert (await crew.set("s1", 60))["ok"] is True
    assert (await crew.call("preset:recall", {"name": "Intro"}))["ok"] is True
    assert (await crew.call("preset:recall", {"name": "Out", "fade": 0.2}))["ok"] is True
    await crew.wait_for(lambda: crew.values["s2"][0] == 0, timeout=5)
    assert (await other.set("s1", 30))["ok"] is True

    by_name = {(e["username"], e["source"]) for e in entries(board)}
    assert by_name == {
        ("share link: crew tablets", "socket"),
        ("share link: crew tablets", "preset"),
        (f"share link #{unlabelled.pk}", "socket"),
    }, by_name
