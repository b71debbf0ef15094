"""Who a socket is (sliders/auth.py): an API token signs a connection in as the token's user.

Live: a real uvicorn, python-socketio's client sending `auth: {board, token}`.
"""

from __future__ import annotations

from typing import Any

import pytest
import socketio
from django.contrib.auth.models import Permission, User

from sliders import services
from sliders.models import ApiToken, AuditEntry
from tests.support.accounts import session_cookie
from tests.support.clients import BoardClient
from tests.support.waiting import wait_until

pytestmark = pytest.mark.live


def user_with_token(username: str, *, editor: bool) -> tuple[User, str]:
    user = User.objects.create_user(username)
    if editor:
        user.user_permissions.add(Permission.objects.get(codename="change_slider"))
    _, token = services.issue_api_token(user=user, name=f"{username}'s script")
    return user, token


async def refusal(url: str, auth: Any, **kwargs: Any) -> dict[str, Any]:
    """Connect with `auth`; the connection must be refused: return what the server sent."""
    client = BoardClient(url, None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth=auth, **kwargs)
    await client.disconnect()
    assert client.of("board:state") == []
    assert len(client.connect_errors) == 1, client.connect_errors
    return client.connect_errors[0]


async def test_a_token_signs_a_socket_in_as_its_user(make_board, connect_client) -> None:
    board = make_board(view_access="signed_in", edit_access="editors")
    editor, token = user_with_token("desk", editor=True)
    _, viewer_token = user_with_token("wall", editor=False)

    client = await connect_client(None, auth={"board": board.slug, "token": token})
    assert client.state["board"] == board.slug and client.state["can_edit"] is True
    assert await client.set("s1", 61) == {"ok": True, "id": "s1", "value": 61, "version": 1}
    entry = AuditEntry.objects.get(board=board.slug, slider="s1")
    assert (entry.username, entry.source) == ("desk", "socket")
    # Its use is recorded, as for the HTTP API.
    await wait_until(
        lambda: ApiToken.objects.get(user=editor).last_used_at is not None, what="last use"
    )

    # A token whose user may view but not edit: the same rights as over the HTTP API.
    viewer = await connect_client(None, auth={"board": board.slug, "token": viewer_token})
    assert viewer.state["can_edit"] is False
    assert (await viewer.set("s1", 5))["error"] == "forbidden"


async def test_a_token_decides_even_with_a_session_cookie(make_board, connect_client) -> None:
    """The token is who the connection is: an editor's cookie does not add to a viewer's token."""
    board = make_board(edit_access="editors")
    editor, _ = user_with_token("editor", editor=True)
    _, viewer_token = user_with_token("viewer", editor=False)
    client = await connect_client(
        None,
        auth={"board": board.slug, "token": viewer_token},
        headers={"Cookie": session_cookie(editor)},
    )
    assert client.state["can_edit"] is False


@pytest.mark.parametrize(
    "token",
    [
        "sst_not-a-real-token-but-the-right-shape",
        "wrong",
        "",
        "sst_\ud83c\udf9b half an emoji \ud83c",
        "sst_" + "a" * 5000,
    ],
    ids=["unknown", "not-a-token", "empty", "surrogates", "long"],
)
async def test_a_wrong_token_is_refused_never_anonymous(asgi_server, make_board, token) -> None:
    board = make_board()  # anyone may view and edit: anonymous would be let in
    refused = await refusal(asgi_server.url, {"board": board.slug, "token": token})
    assert refused["data"] == {"code": "unauthorized"}
    assert "token" in refused["message"]


async def test_a_revoked_token_or_a_deactivated_user_is_refused(asgi_server, make_board) -> None:
    board = make_board()
    revoked_user, revoked = user_with_token("revoked", editor=True)
    ApiToken.objects.filter(user=revoked_user).update(revoked=True)
    inactive_user, inactive = user_with_token("inactive", editor=True)
    User.objects.filter(pk=inactive_user.pk).update(is_active=False)
    for token in (revoked, inactive):
        refused = await refusal(asgi_server.url, {"board": board.slug, "token": token})
        assert refused["data"] == {"code": "unauthorized"}


@pytest.mark.parametrize("token", [42, ["sst_x"], {"token": "sst_x"}, True])
async def test_a_token_that_is_not_text_is_a_bad_request(asgi_server, make_board, token) -> None:
    board = make_board()
    refused = await refusal(asgi_server.url, {"board": board.slug, "token": token})
    assert refused["data"] == {"code": "bad_request"}


async def test_a_token_is_checked_before_the_board(asgi_server, make_board) -> None:
    """As over the HTTP API (401 before 404): a wrong token learns nothing about boards."""
    make_board()
    refused = await refusal(asgi_server.url, {"board": "no-such-board", "token": "sst_" + "x" * 43})
    assert refused["data"] == {"code": "unauthorized"}
