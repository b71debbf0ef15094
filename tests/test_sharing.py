"""Share links: a wall screen or an audience opens a board without an account."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import socketio
from django.contrib.auth.models import User
from django.test import Client

from sliders import services, sharing
from sliders.models import ShareLink, Slider
from tests.support.clients import BoardClient

pytestmark = pytest.mark.django_db


def private_board(make_board: Any) -> Any:
    """A board for signed-in editors only: without a link, anonymous visitors see nothing."""
    return make_board(name="Backstage", view_access="signed_in", edit_access="editors")


def opened(link: ShareLink) -> Client:
    browser = Client()
    response = browser.get(link.get_absolute_url())
    assert response.status_code == 302 and response["Location"] == f"/b/{link.board.slug}/"
    return browser


def share_cookie(link: ShareLink) -> str:
    """The session cookie of a browser that opened `link` (what the view stores, see above)."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    sharing.remember(session, link)
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


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
