"""Share links: a wall screen or an audience opens a board without an account."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
import socketio
from django.contrib.auth.models import User
from django.test import Client
from django.utils.formats import date_format
from django.utils.timezone import localtime
from playwright.sync_api import expect

from sliders import services
from sliders.models import ApiToken, ShareLink, Slider
from tests.support.accounts import share_cookie
from tests.support.admin_pages import admin_page
from tests.support.clients import BoardClient
from tests.support.http import Forms

pytestmark = pytest.mark.django_db


def private_board(make_board: Any) -> Any:
    """A board for signed-in editors only: without a link, anonymous visitors see nothing."""
    return make_board(name="Backstage", view_access="signed_in", edit_access="editors")


def opened(link: ShareLink) -> Client:
    browser = Client()
    response = browser.get(link.get_absolute_url())
    assert response.status_code == 302 and response["Location"] == f"/b/{link.board.slug}/"
    return browser


def test_a_viewer_link_opens_a_private_board_read_only(make_board) -> None:
    board = private_board(make_board)
    assert Client().get(f"/b/{board.slug}/").status_code == 302  # to the sign-in page
    browser = opened(ShareLink.objects.create(board=board, kind="view", label="lobby"))
    page = browser.get(f"/b/{board.slug}/")
    assert page.status_code == 200 and page.context["can_edit"] is False


def test_an_editor_link_lets_its_holder_edit(make_board) -> None:
    board = private_board(make_board)
    browser = opened(ShareLink.objects.create(board=board, kind="edit"))
    assert browser.get(f"/b/{board.slug}/").context["can_edit"] is True


def test_a_link_opens_only_its_own_board(make_board) -> None:
    board, other = private_board(make_board), private_board(make_board)
    browser = opened(ShareLink.objects.create(board=board, kind="edit"))
    assert browser.get(f"/b/{other.slug}/").status_code == 302


@pytest.mark.parametrize("token", ["revoked", "nope", "x" * 40])
def test_an_unknown_or_revoked_link_opens_nothing(make_board, token: str) -> None:
    board = private_board(make_board)
    link = ShareLink.objects.create(board=board, kind="edit", revoked=True)
    url = link.get_absolute_url() if token == "revoked" else f"/s/{token}/"
    response = Client().get(url)
    assert response.status_code == 404 and b"does not open a board" in response.content


def test_revoking_ends_the_access_it_gave(make_board) -> None:
    board = private_board(make_board)
    link = ShareLink.objects.create(board=board, kind="view")
    browser = opened(link)
    link.revoked = True
    services.save_share_link(link=link)
    assert browser.get(f"/b/{board.slug}/").status_code == 302


def test_the_admin_makes_links_and_shows_them(make_board) -> None:
    board = private_board(make_board)
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    response = admin.post(
        "/admin/sliders/sharelink/add/",
        {"board": board.pk, "kind": "view", "label": "lobby screen"},
        follow=True,
    )
    link = ShareLink.objects.get(board=board)
    assert link.label == "lobby screen" and len(link.token) >= 32
    page = admin.get(f"/admin/sliders/sharelink/{link.pk}/change/").content.decode()
    assert link.get_absolute_url() in page
    admin.post("/admin/sliders/sharelink/", {"action": "revoke", "_selected_action": [link.pk]})
    assert ShareLink.objects.get(pk=link.pk).revoked is True
    assert response.status_code == 200


def share_admin() -> Client:
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    return admin


def test_the_admin_shows_the_whole_link_with_a_copy_button(make_board, settings) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "panel.example.org"]
    link = ShareLink.objects.create(board=private_board(make_board), kind="edit", label="crew")
    admin = share_admin()
    full = f"https://panel.example.org:8443{link.get_absolute_url()}"
    for url in ("/admin/sliders/sharelink/", f"/admin/sliders/sharelink/{link.pk}/change/"):
        html = admin.get(url, secure=True, headers={"host": "panel.example.org:8443"}).content
        html = html.decode()
        assert f'href="{full}"' in html, url
        assert f">{full}</a>" in html, url  # shown as a URL, not as a path
        assert f'data-copy="{full}"' in html, url  # the copy button copies it all
    assert "sliders/admin/copy.js" in html


def test_links_and_tokens_read_active_or_revoked_on_a_date(make_board) -> None:
    board = make_board()
    ShareLink.objects.create(board=board, label="lobby")
    gone = ShareLink.objects.create(board=board, label="old screen")
    admin = share_admin()
    admin.post("/admin/sliders/sharelink/", {"action": "revoke", "_selected_action": [gone.pk]})
    gone.refresh_from_db()
    assert gone.revoked and gone.revoked_at is not None
    user = User.objects.create_user("desk")
    services.issue_api_token(user=user, name="kept")
    dropped, _ = services.issue_api_token(user=user, name="dropped")
    admin.post("/admin/sliders/apitoken/", {"action": "revoke", "_selected_action": [dropped.pk]})

    for url, active_name, revoked_name in (
        ("/admin/sliders/sharelink/", "lobby", "old screen"),
        ("/admin/sliders/apitoken/", "kept", "dropped"),
    ):
        html = admin.get(url).content.decode()
        rows = {
            name: row
            for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)
            for name in (active_name, revoked_name)
            if f">{name}<" in row
        }
        assert re.search(r'<td class="field-state">Active</td>', rows[active_name]), url
        revoked_at = gone if url.endswith("sharelink/") else ApiToken.objects.get(name="dropped")
        when = date_format(localtime(revoked_at.revoked_at), "DATETIME_FORMAT")
        assert f'<td class="field-state">Revoked on {when}</td>' in rows[revoked_name], url
        assert "icon-no.svg" not in html and "icon-yes.svg" not in html, url

    # Taking a revocation back (the box on the link's page) makes the link active again.
    data = Forms(admin.get(f"/admin/sliders/sharelink/{gone.pk}/change/").content.decode()).form(
        "sharelink_form"
    )
    data.pop("revoked")
    admin.post(f"/admin/sliders/sharelink/{gone.pk}/change/", {**data, "_save": "Save"})
    gone.refresh_from_db()
    assert (gone.revoked, gone.revoked_at) == (False, None)


@pytest.mark.browser
def test_the_copy_button_copies_the_whole_link(make_board, browser, asgi_server) -> None:
    link = ShareLink.objects.create(board=make_board(), kind="view", label="wall")
    admin = User.objects.create_superuser("copier")
    page = admin_page(
        browser, asgi_server, admin, "/admin/sliders/sharelink/", width=1100,
        permissions=("clipboard-read", "clipboard-write"),
    )  # fmt: skip
    try:
        full = asgi_server.url + link.get_absolute_url()
        expect(page.get_by_role("link", name=full)).to_be_visible()
        for column in ("td.field-link", "td.field-state"):
            box = page.locator(column).bounding_box()  # the whole list fits the window
            assert box is not None and box["x"] + box["width"] <= 1100, column
        button = page.locator("button[data-copy]")
        expect(button).to_have_text("Copy")
        button.click()
        expect(button).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == full
    finally:
        page.context.close()


# --- Live: the socket follows the link ----------------------------------------------------------


@pytest.mark.live
async def test_sockets_get_the_links_role_and_lose_it_when_revoked(
    make_board, asgi_server, admin_http
):
    private = private_board(make_board)
    viewer_link = ShareLink.objects.create(board=private, kind="view")
    anonymous = BoardClient(asgi_server.url, private.slug)
    with contextlib.suppress(socketio.exceptions.ConnectionError):
        await anonymous.connect(wait_state=False)
    assert anonymous.connect_errors[0]["data"]["code"] == "forbidden"

    watched = make_board(name="Watched", edit_access="editors")  # anyone may view
    editor_link = ShareLink.objects.create(board=watched, kind="edit")
    viewer = BoardClient(asgi_server.url, private.slug)
    editor = BoardClient(asgi_server.url, watched.slug)
    await viewer.connect(headers={"Cookie": share_cookie(viewer_link)})
    await editor.connect(headers={"Cookie": share_cookie(editor_link)})
    try:
        assert viewer.state["can_edit"] is False and editor.state["can_edit"] is True
        assert (await viewer.set("s1", 5))["error"] == "forbidden"
        assert (await editor.set("s1", 7))["ok"] is True

        # Revoked: the editor may still watch this board, but no longer move it...
        await revoke_in_admin(admin_http, editor_link)
        await editor.wait_for(lambda: editor.of("board:state")[-1]["can_edit"] is False)
        assert (await editor.set("s1", 9))["error"] == "forbidden"
        # ...and the viewer of a private board is shown the door.
        await revoke_in_admin(admin_http, viewer_link)
        await viewer.wait_for(lambda: not viewer.sio.connected)
        assert Slider.objects.get(board=watched, slug="s1").value == 7
        assert Slider.objects.get(board=private, slug="s1").value == 50
    finally:
        for client in (viewer, editor):
            await client.disconnect()


@pytest.mark.live
async def test_a_viewer_link_is_read_only_even_on_an_open_board(make_board, asgi_server):
    board = make_board()  # anyone may edit
    link = ShareLink.objects.create(board=board, kind="view", label="wall")
    wall = BoardClient(asgi_server.url, board.slug)
    await wall.connect(headers={"Cookie": share_cookie(link)})
    try:
        assert wall.state["can_edit"] is False
        assert (await wall.set("s1", 1))["error"] == "forbidden"
        assert (await wall.call("slider:grab", {"id": "s1"}))["error"] == "forbidden"
    finally:
        await wall.disconnect()


async def revoke_in_admin(admin_http: Any, link: ShareLink) -> None:
    """Revoke through the live server's admin, so its pages hear of it at once."""
    await admin_http.submit(
        f"/admin/sliders/sharelink/{link.pk}/change/", "sharelink_form", revoked="on"
    )


def test_a_viewer_link_takes_nothing_from_a_signed_in_editor(make_board) -> None:
    from django.contrib.auth.models import Permission

    board = make_board(edit_access="editors")
    editor = User.objects.create_user("editor")
    editor.user_permissions.add(Permission.objects.get(codename="change_slider"))
    browser = opened(ShareLink.objects.create(board=board, kind="view"))
    browser.force_login(editor)
    assert browser.get(f"/b/{board.slug}/").context["can_edit"] is True
