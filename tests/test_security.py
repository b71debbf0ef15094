"""Hardening: who may connect and edit, from where, with what, and how often.

Every test runs against a live uvicorn with real Socket.IO clients (or raw websockets and raw
HTTP where a client library would not send what an attacker sends). The threat model these
tests back is docs/security.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
import socketio
import websockets
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, Permission, User
from django.shortcuts import resolve_url
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sliders.models import AuditEntry
from sliders.services import SLUG_PATTERN, Refusal, normalize_value
from tests.support.accounts import PASSWORD, live_superuser
from tests.support.accounts import session_cookie as cookie_of
from tests.support.checks import assert_error, assert_valid_stored_value
from tests.support.clients import BoardClient, ClientLoop, counted
from tests.support.database import slider_row, stored
from tests.support.http import AdminSession
from tests.support.servers import PROJECT_DIR, ProductionServer, free_port
from tests.support.strategies import INTEGERS, json_like

pytestmark = pytest.mark.live

HOSTILE = "<script>alert(1)</script>\"'&"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
SET_ERRORS = {
    "bad_request", "unknown_slider", "invalid_value", "forbidden", "rate_limited", "unavailable",
    "conflict",
}  # fmt: skip
CONNECT_ERRORS = {"bad_request", "unknown_board", "forbidden", "unauthorized"}


# --- Helpers --------------------------------------------------------------------------------


def make_user(username: str, *, permission: str | None = None, group: Any = None) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    if permission:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    if group is not None:
        user.groups.add(group)
    return user


async def refused(url: str, board: str | None, **kwargs: Any) -> BoardClient:
    """Connect and expect a refusal; return the client (its `connect_errors` hold the reason)."""
    if "headers" in kwargs:  # python-engineio's client takes the Cookie out of the dict it gets
        kwargs["headers"] = dict(kwargs["headers"])
    client = BoardClient(url, board)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(**kwargs)
    await client.disconnect()
    assert client.of("board:state") == []
    return client


def refusal_code(client: BoardClient) -> str:
    assert len(client.connect_errors) == 1, client.connect_errors
    refusal = client.connect_errors[0]
    assert isinstance(refusal, dict) and isinstance(refusal.get("message"), str), refusal
    return refusal["data"]["code"]


async def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        http.get(url, headers=headers or {}, allow_redirects=False) as response,
    ):
        return response.status, await response.text(), response.headers


async def polling_connect(url: str, board: str, headers: dict[str, str]) -> Any:
    """A Socket.IO connection over HTTP long-polling, packet by packet, as a browser makes it.

    Returns the `board:state` the server sends, or raises AssertionError with the HTTP status
    when the handshake is refused. (python-socketio's client needs ~30 s to leave a polling
    connection, so this is done with plain HTTP.)
    """
    base = f"{url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(base, headers=headers) as response:
            body = await response.text()
            assert response.status == 200, (response.status, body)
            assert response.headers.get("Access-Control-Allow-Origin") in (
                None,
                headers.get("Origin"),
            )
            opened = json.loads(body[1:])
        session = f"{base}&sid={opened['sid']}"
        try:
            async with http.post(
                session, data="40" + json.dumps({"board": board}), headers=headers
            ):
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                async with http.get(session, headers=headers) as response:
                    assert response.status == 200, response.status
                    for packet in (await response.text()).split("\x1e"):
                        if packet.startswith('42["board:state"'):
                            return json.loads(packet[2:])[1]
                        assert not packet.startswith("44"), packet  # a refused connect
            raise AssertionError("no board:state over long-polling")
        finally:
            async with http.post(session, data="1", headers=headers):  # Engine.IO close
                pass


class TimedClient(BoardClient):
    """A BoardClient that also notes when each event arrived (time.monotonic())."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.arrivals: list[tuple[float, str, Any]] = []
        super().__init__(*args, **kwargs)

    def _recorder(self, event: str) -> Any:
        record = super()._recorder(event)

        def timed(data: Any) -> None:
            self.arrivals.append((time.monotonic(), event, data))
            record(data)

        return timed


# --- Session authentication and per-board access --------------------------------------------


async def test_editors_board_lets_only_editors_set_over_the_socket(make_board, connect_client):
    editors = Group.objects.create(name="stage crew")
    board = make_board(edit_access="editors", editors_group=editors)
    holder = make_user("holder", permission="sliders.change_slider")
    member = make_user("member", group=editors)
    plain = make_user("plain")
    outsider_group = Group.objects.create(name="other crew")
    other_member = make_user("other-member", group=outsider_group)
    logged_out = Client()
    logged_out.force_login(member)
    stale_cookie = f"sessionid={logged_out.cookies['sessionid'].value}"
    logged_out.logout()  # the session is gone from the database

    watcher = await connect_client(board.slug)
    not_editors = {
        "anonymous": watcher,
        "plain": await connect_client(board.slug, headers={"Cookie": cookie_of(plain)}),
        "member of another group": await connect_client(
            board.slug, headers={"Cookie": cookie_of(other_member)}
        ),
        "forged cookie": await connect_client(
            board.slug, headers={"Cookie": "sessionid=" + secrets.token_hex(16)}
        ),
        "logged-out session": await connect_client(board.slug, headers={"Cookie": stale_cookie}),
    }
    editors_clients = {
        "permission holder": await connect_client(
            board.slug, headers={"Cookie": cookie_of(holder)}
        ),
        "group member": await connect_client(board.slug, headers={"Cookie": cookie_of(member)}),
    }
    for who, client in not_editors.items():
        assert client.state["can_edit"] is False, who
        assert_error(await client.set("s1", 7), "forbidden")
    assert stored(board.slug, "s1") == (50, 0)
    for who, client in editors_clients.items():
        assert client.state["can_edit"] is True, who

    first = await editors_clients["permission holder"].set("s1", 11)
    second = await editors_clients["group member"].set("s2", 22)
    assert first == {"ok": True, "id": "s1", "value": 11, "version": 1}
    assert second == {"ok": True, "id": "s2", "value": 22, "version": 1}
    await watcher.wait_for(lambda: len(watcher.of("slider:update")) >= 2)
    await asyncio.sleep(0.1)  # anything else on its way would arrive by now
    assert watcher.of("slider:update") == [
        {"id": "s1", "value": 11, "version": 1},
        {"id": "s2", "value": 22, "version": 1},
    ]
    # The trail names who did it.
    assert sorted(AuditEntry.objects.values_list("username", "slider")) == [
        ("holder", "s1"),
        ("member", "s2"),
    ]


async def test_signed_in_board_refuses_anonymous_sockets_and_pages(
    make_board, connect_client, asgi_server
):
    private = make_board(name="Backstage", view_access="signed_in")
    make_board(name="Front of house")
    viewer = make_user("viewer")
    cookie = {"Cookie": cookie_of(viewer)}

    for kwargs in ({}, {"headers": {"Cookie": "sessionid=" + secrets.token_hex(16)}}):
        client = await refused(asgi_server.url, private.slug, **kwargs)
        assert refusal_code(client) == "forbidden"
        assert "Backstage" not in json.dumps(client.connect_errors)

    signed_in = await connect_client(private.slug, headers=dict(cookie))
    assert signed_in.state["board"] == private.slug
    assert signed_in.state["can_edit"] is True  # edit_access "anyone" among those who may view
    assert (await signed_in.set("s1", 5))["ok"] is True

    page = f"{asgi_server.url}/b/{private.slug}/"
    status, body, headers = await http_get(page)
    assert status == 302
    assert (
        headers["Location"] == f"{resolve_url(django_settings.LOGIN_URL)}?next=/b/{private.slug}/"
    )
    assert "Backstage" not in body
    status, body, _ = await http_get(page, cookie)
    assert status == 200
    assert "Backstage" in body

    status, body, _ = await http_get(f"{asgi_server.url}/")
    assert status == 200
    assert "Front of house" in body
    assert "Backstage" not in body
    assert private.slug not in body
    status, body, _ = await http_get(f"{asgi_server.url}/", cookie)
    assert "Front of house" in body and "Backstage" in body


async def test_restricting_a_board_drops_anonymous_sockets_already_on_it(
    make_board, connect_client, start_server
):
    """An operator makes a board signed-in-only: anonymous pages already open must stop seeing it.

    New anonymous connections are refused at connect; the ones already in the board's room
    must not keep receiving its values and names.
    """
    server = start_server()
    live_superuser("ops", "ops@example.com")
    board = make_board(name="Soon private")
    anonymous = await connect_client(board.slug, server=server)
    member = make_user("member")
    signed_in = await connect_client(
        board.slug, server=server, headers={"Cookie": cookie_of(member)}
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = AdminSession(server.url, http)
        await admin.login("ops", PASSWORD)
        await admin.submit(
            f"/admin/sliders/board/{board.pk}/change/",
            "board_form",
            view_access="signed_in",
            name="Now private",
        )
    # The signed-in client hears about the change (so the anonymous one had the same chance).
    await signed_in.wait_for(lambda: signed_in.state["name"] == "Now private")
    ack = await signed_in.set("s1", 77)
    assert ack["ok"] is True
    await asyncio.sleep(0.3)  # nothing to wait for: what must not arrive would be here by now
    leaked = [
        data
        for name, data in anonymous.events
        if (name == "slider:update" and data.get("value") == 77)
        or (name == "board:state" and data.get("name") == "Now private")
    ]
    assert leaked == [], f"an anonymous socket kept receiving a signed-in-only board: {leaked}"


async def test_revoking_an_editors_permission_applies_to_their_open_socket(
    make_board, connect_client
):
    """Edit rights are checked on every set; an editor who loses them must be refused from the
    next set on, not only after they reconnect."""
    board = make_board(edit_access="editors")
    editor = make_user("editor", permission="sliders.change_slider")
    client = await connect_client(board.slug, headers={"Cookie": cookie_of(editor)})
    assert client.state["can_edit"] is True
    assert (await client.set("s1", 10))["ok"] is True
    editor.user_permissions.clear()
    assert_error(await client.set("s1", 20), "forbidden")
    assert stored(board.slug, "s1") == (10, 1)


# --- Cross-site WebSocket hijacking ---------------------------------------------------------


async def test_other_sites_origins_are_refused_on_both_transports(
    make_board, connect_client, asgi_server
):
    board = make_board(view_access="signed_in")
    editor = make_user("editor")
    cookie = cookie_of(editor)  # a visitor signed in to us, on an attacker's page
    own = f"http://127.0.0.1:{asgi_server.port}"
    hostile_origins = [
        "http://evil.example",
        f"http://127.0.0.1:{asgi_server.port}.evil.example",
        f"http://127.0.0.1:{asgi_server.port + 1}",  # another port is another origin
        f"https://127.0.0.1:{asgi_server.port}",  # and another scheme
        "null",  # sandboxed iframes, file: pages
    ]
    for origin in hostile_origins:
        headers = {"Origin": origin, "Cookie": cookie}
        await refused(asgi_server.url, board.slug, headers=headers)
        status, body, _ = await http_get(
            f"{asgi_server.url}/socket.io/?EIO=4&transport=polling", headers
        )
        assert status == 400, (origin, status, body)
        assert '"sid"' not in body

    # The site's own origin, with the same cookie, is accepted on both transports.
    headers = {"Origin": own, "Cookie": cookie}
    client = await connect_client(board.slug, headers=dict(headers))
    assert client.state["board"] == board.slug
    state = await polling_connect(asgi_server.url, board.slug, headers)
    assert state["board"] == board.slug


async def test_csrf_trusted_origins_may_open_sockets(make_board, connect_client, start_server):
    server = start_server(
        env={"CSRF_TRUSTED_ORIGINS": "https://panel.example.org,http://kiosk.example:8080"}
    )
    board = make_board()
    for origin in ("https://panel.example.org", "http://kiosk.example:8080"):
        client = await connect_client(board.slug, server=server, headers={"Origin": origin})
        assert client.state["board"] == board.slug
        state = await polling_connect(server.url, board.slug, {"Origin": origin})
        assert state["board"] == board.slug
    for origin in (
        "https://panel.example.org.evil.example",
        "http://panel.example.org",
        "https://evil.example",
        "http://kiosk.example",
    ):
        await refused(server.url, board.slug, headers={"Origin": origin})


async def test_same_origin_needs_a_host_in_allowed_hosts(make_board, connect_client, asgi_server):
    board = make_board()
    port = asgi_server.port
    # The Host header is what the origin is compared with (localhost is an allowed host here).
    client = await connect_client(
        board.slug, headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    )
    assert client.state["board"] == board.slug
    await refused(
        asgi_server.url,
        board.slug,
        headers={"Host": f"127.0.0.1:{port}", "Origin": f"http://localhost:{port}"},
    )
    # A DNS-rebinding page: its origin matches the Host it sent, but that host is not ours.
    rebinding = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    await refused(asgi_server.url, board.slug, headers=rebinding)
    status, _, _ = await http_get(
        f"{asgi_server.url}/socket.io/?EIO=4&transport=polling", rebinding
    )
    assert status == 400


# --- Hostile payloads (property tests) ------------------------------------------------------

PROPERTY_SLIDERS = {"a": (0.0, 100.0, 1.0), "b": (-1.0, 1.0, 0.1), "c": (0.3, 9.9, 0.7)}
NUMBERS = st.one_of(
    INTEGERS,
    st.floats(),
    st.floats(min_value=-200, max_value=200),
)


def weighted(*choices: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """Draw from each strategy in proportion to its weight (st.one_of weighs them alike)."""
    pool = [strategy for strategy, weight in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


# Well-formed sets must be common enough to reach the database, or the property would say
# little about stored values and broadcasts.
SLIDER_IDS = weighted(
    (st.sampled_from(sorted(PROPERTY_SLIDERS)), 3), (st.text(max_size=12), 1), (json_like(1), 1)
)
# Versions near the sliders' own (behind, equal, ahead), any integer, or anything at all.
BASE_VERSIONS = weighted((st.integers(0, 40), 3), (INTEGERS, 1), (json_like(1), 1))
SET_PAYLOADS = weighted(
    (
        st.fixed_dictionaries(
            {"id": SLIDER_IDS, "value": weighted((NUMBERS, 3), (json_like(2), 1))},
            optional={"extra": json_like(2), "base_version": BASE_VERSIONS},
        ),
        3,
    ),
    (st.fixed_dictionaries({}, optional={"id": json_like(1), "value": json_like(1)}), 1),
    (json_like(6), 1),
)
EXTRA_ARGS = weighted(
    (st.just(()), 4), (st.lists(json_like(3), min_size=1, max_size=2).map(tuple), 1)
)


def expected_set_outcome(
    payload: Any, extras: tuple[Any, ...], held: dict[str, tuple[float, int]]
) -> str | tuple[str, float]:
    """What the protocol says a `slider:set` with these arguments gets from the only client
    that changes the board (`held`: each slider's stored value and version): an error code, or
    the slider and the value it is stored as."""
    if extras or not isinstance(payload, dict):
        return "bad_request"
    if "id" not in payload or "value" not in payload:
        return "bad_request"
    base = payload.get("base_version", 0)
    if isinstance(base, bool) or not isinstance(base, int) or base < 0:
        return "bad_request"
    slider_id = payload["id"]
    if not isinstance(slider_id, str) or not slider_id:
        return "bad_request"
    if slider_id not in PROPERTY_SLIDERS:
        return "unknown_slider"
    minimum, maximum, step = PROPERTY_SLIDERS[slider_id]
    try:
        value = normalize_value(payload["value"], minimum=minimum, maximum=maximum, step=step)
    except Refusal:
        return "invalid_value"
    stored_value, version = held[slider_id]
    # Every change since any older base is this client's own: only a base from the future
    # conflicts, and a value stored already never does.
    if value != stored_value and base > version:
        return "conflict"
    return slider_id, value


def test_property_any_slider_set_arguments_get_a_well_formed_ack(
    start_server: Any, make_board: Any, client_loop: ClientLoop
) -> None:
    server = start_server(
        env={
            # Nothing here is a flood, and every example's message must fit.
            "SLIDER_SET_RATE": "100000",
            "SLIDER_SET_BURST": "100000",
            "SOCKETIO_MAX_MESSAGE_BYTES": str(1024 * 1024),
        }
    )
    board = make_board(
        sliders=[
            {"slug": slug, "min": low, "max": high, "step": step, "value": low}
            for slug, (low, high, step) in PROPERTY_SLIDERS.items()
        ]
    )
    sender = BoardClient(server.url, board.slug)
    observer = BoardClient(server.url, board.slug)
    client_loop.run(sender.connect())
    client_loop.run(observer.connect())
    held = {s["id"]: (s["value"], s["version"]) for s in sender.state["sliders"]}
    broadcasts: list[dict[str, Any]] = []  # what the observer must receive, in order
    seen = {"examples": 0, "accepted": 0, "changed": 0, "conflicts": 0}

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payload=SET_PAYLOADS, extras=EXTRA_ARGS)
    def example(payload: Any, extras: tuple[Any, ...]) -> None:
        arguments = (payload, *extras) if extras else payload
        ack = client_loop.run(sender.sio.call("slider:set", arguments, timeout=10), timeout=15)
        expected = expected_set_outcome(payload, extras, held)
        seen["examples"] += 1
        assert isinstance(ack, dict), ack
        if expected == "conflict":
            assert set(ack) == {"ok", "error", "message", "id", "value", "version"}, ack
            assert ack["ok"] is False and ack["error"] == "conflict", (payload, ack)
            assert (ack["value"], ack["version"]) == held[payload["id"]], (payload, ack)
            seen["conflicts"] += 1
        elif isinstance(expected, str):
            assert set(ack) == {"ok", "error", "message"}, ack
            assert ack["ok"] is False and ack["error"] in SET_ERRORS, ack
            assert isinstance(ack["message"], str) and ack["message"], ack
            assert ack["error"] == expected, (payload, extras, ack)
        else:
            slider_id, value = expected
            old_value, old_version = held[slider_id]
            version = old_version + (value != old_value)
            assert ack == {"ok": True, "id": slider_id, "value": value, "version": version}, (
                payload,
                ack,
            )
            assert isinstance(ack["version"], int)
            seen["accepted"] += 1
            if version != old_version:
                seen["changed"] += 1
                broadcasts.append({"id": slider_id, "value": value, "version": version})
            held[slider_id] = (value, version)
            slider = slider_row(board.slug, slider_id)
            assert_valid_stored_value(slider)
            assert (slider.value, slider.version) == (value, version)
        assert sender.sio.connected, "a payload made the server drop the sender"

    example()

    # A last, known change: once the observer has it, everything before it has arrived too.
    barrier_value = 1.0 if held["a"][0] != 1.0 else 2.0
    barrier = client_loop.run(sender.set("a", barrier_value))
    assert barrier["ok"] is True
    broadcasts.append({"id": "a", "value": barrier_value, "version": barrier["version"]})
    held["a"] = (barrier_value, barrier["version"])
    client_loop.run(observer.wait_for(lambda: len(observer.of("slider:update")) >= len(broadcasts)))
    time.sleep(0.1)
    assert observer.of("slider:update") == broadcasts
    assert len(observer.of("board:state")) == 1
    for slider_id in PROPERTY_SLIDERS:
        slider = slider_row(board.slug, slider_id)
        assert_valid_stored_value(slider)
        assert (slider.value, slider.version) == held[slider_id]
    client_loop.run(sender.disconnect())
    client_loop.run(observer.disconnect())
    assert server.process is not None and server.process.poll() is None
    assert "Traceback" not in server.log()
    assert " ERROR " not in server.log()
    # The strategies reached the interesting cases, not only bad requests.
    assert seen["accepted"] >= 10 and seen["changed"] >= 5 and seen["conflicts"] >= 1, seen


KNOWN_BOARDS = st.sampled_from(["main", "prop-open", "prop-private"])
ODD_BOARDS = st.sampled_from(
    ["", "no-such-board", "MAIN", "../main", "main\x00", "main ", "x" * 51, "prop%2Dopen",
     "prop-open/../prop-private"]
)  # fmt: skip
BOARD_FIELDS = weighted(
    (KNOWN_BOARDS, 4), (ODD_BOARDS, 2), (st.text(max_size=60), 1), (json_like(2), 1)
)
AUTHS = weighted(
    (st.fixed_dictionaries({"board": BOARD_FIELDS}, optional={"token": json_like(2)}), 4),
    (st.none(), 1),
    (st.booleans(), 1),
    (st.text(max_size=30), 1),
    # (Not bare numbers: the Socket.IO encoding puts them right after the packet type, where
    # the server reads digits as an ack id; no client can send one as `auth`.)
    (st.lists(json_like(3), max_size=3), 1),
    (st.dictionaries(st.text(max_size=8), json_like(3), max_size=3), 1),
)


def expected_connect_outcome(auth: Any) -> str:
    """The board a connection with this `auth` lands on, or the code it is refused with."""
    auth = auth or {}  # python-socketio's client sends {} for any falsy auth
    if not isinstance(auth, dict):
        return "bad_request"
    board = auth.get("board", "main")
    token = auth.get("token")
    if board is None or board == "":
        board = "main"
    elif not isinstance(board, str):
        return "bad_request"
    if token is not None and not isinstance(token, str):
        return "bad_request"
    if not SLUG_PATTERN.fullmatch(board):
        return "unknown_board"  # not a slug: refused before anything is looked up
    if token is not None:
        return "unauthorized"  # no token the strategy makes is valid
    if board not in ("main", "prop-open", "prop-private"):
        return "unknown_board"
    if board == "prop-private":
        return "forbidden"
    return f"board {board}"


def test_property_any_auth_connects_or_is_refused_with_a_known_code(
    start_server: Any, make_board: Any, client_loop: ClientLoop
) -> None:
    server = start_server()
    for slug, access in [
        ("main", "anyone"),
        ("prop-open", "anyone"),
        ("prop-private", "signed_in"),
    ]:
        make_board(slug, view_access=access)
    outcomes: dict[str, int] = {}

    async def attempt(auth: Any) -> str:
        client = BoardClient(server.url, None)
        try:
            await client.connect(auth=auth)
        except socketio.exceptions.ConnectionError:
            code = refusal_code(client)
            assert code in CONNECT_ERRORS, client.connect_errors
            return code
        finally:
            await client.disconnect()
        return f"board {client.state['board']}"

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(auth=AUTHS)
    def example(auth: Any) -> None:
        outcome = client_loop.run(asyncio.wait_for(attempt(auth), 10), timeout=15)
        assert outcome == expected_connect_outcome(auth), auth
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    example()
    assert server.process is not None and server.process.poll() is None
    assert "Traceback" not in server.log()
    assert " ERROR " not in server.log()
    assert len(outcomes) >= 4, outcomes  # the strategy reached most outcomes


RAW_FRAMES: list[str | bytes] = [
    "hello",  # not an Engine.IO packet at all
    "",
    "{}",
    "\x00",
    "9",  # an Engine.IO packet type that does not exist
    "4garbage",  # an Engine.IO message that is not a Socket.IO packet
    '42["slider:set",{"id":"s1","value":',  # cut off
    b"\x00\xff\xfe",  # binary junk
]


async def test_raw_websocket_frames_that_are_not_socket_io_close_only_that_connection(
    start_server, make_board, connect_client
):
    """Frames no Socket.IO client sends, written straight to the websocket after a connect.

    Each must end that session at once: the websocket closed (or Engine.IO's close packet
    sent), the connection gone from its board's presence, and no traceback in the log (a
    traceback per frame would let anyone flood the log).
    """
    server = start_server()
    board = make_board()
    honest = await connect_client(board.slug, server=server)
    bystander = await connect_client(board.slug, server=server)
    ws_url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    problems: list[tuple[int, str]] = []  # (frame's index, what went wrong)

    async def open_session(target: Any) -> tuple[Any, BoardClient]:
        """A watcher and a raw Socket.IO session on their own board (to see presence)."""
        watcher = await connect_client(target.slug, server=server)
        ws = await websockets.connect(ws_url, close_timeout=1)
        assert str(await ws.recv()).startswith("0{")  # Engine.IO open
        await ws.send("40" + json.dumps({"board": target.slug}))
        assert str(await ws.recv()).startswith("40{")  # Socket.IO connected
        await counted(watcher, 2)
        return ws, watcher

    boards = [make_board() for _ in RAW_FRAMES]
    sessions = await asyncio.gather(*(open_session(target) for target in boards))
    for index, (frame, (ws, _)) in enumerate(zip(RAW_FRAMES, sessions, strict=True)):
        log_before = len(server.log())
        await ws.send(frame)
        await asyncio.sleep(0.15)
        new_log = server.log()[log_before:]
        if "Traceback" in new_log:
            first = next(line for line in new_log.splitlines() if line.strip())
            problems.append((index, f"{frame!r}: a traceback in the server log ({first.strip()})"))

    async def ends(index: int, ws: Any, watcher: BoardClient) -> bool:
        frame = RAW_FRAMES[index]
        ended = False
        try:
            async with asyncio.timeout(2):
                while not ended:
                    ended = await ws.recv() == "1"
        except websockets.ConnectionClosed:
            ended = True
        except TimeoutError:
            problems.append((index, f"{frame!r}: the connection stayed open"))
        await ws.close()
        try:  # closed from both ends by now: the server must have let go of it
            await counted(watcher, 1, timeout=1)  # presence is sent within 0.25 s
        except AssertionError:
            # It stays in the room, in presence and in its address's connection count until
            # Engine.IO's ping timeout (~45 s), and holds up a graceful shutdown meanwhile.
            problems.append((index, f"{frame!r}: still counted on its board after it closed"))
            return False
        return True

    let_go = await asyncio.gather(
        *(ends(index, ws, watcher) for index, (ws, watcher) in enumerate(sessions))
    )
    ack = await honest.set("s1", 42)
    assert ack == {"ok": True, "id": "s1", "value": 42, "version": 1}
    await bystander.wait_for(lambda: bystander.of("slider:update"))
    assert bystander.of("slider:update") == [{"id": "s1", "value": 42, "version": 1}]
    assert stored(board.slug, "s2") == (50, 0)
    if not all(let_go):
        server.kill()  # SIGTERM would wait ~10 s for the ghosts
    assert not problems, "\n".join(text for _, text in sorted(problems))


# --- Floods ---------------------------------------------------------------------------------


async def test_a_flooding_client_is_rate_limited_and_does_not_starve_others(
    make_board, connect_client, start_server
):
    server = start_server(env={"SLIDER_SET_RATE": "20", "SLIDER_SET_BURST": "20"})
    board = make_board(
        sliders=[{"slug": "s1", "max": 1_000_000, "value": 0}, {"slug": "s2", "value": 0}]
    )
    flooder = await connect_client(board.slug, server=server)
    steady = await connect_client(board.slug, server=server)
    watcher = TimedClient(server.url, board.slug)
    await watcher.connect()
    try:
        stop = asyncio.Event()
        flood_acks: list[Any] = []

        async def flood() -> None:
            counter = 0
            while not stop.is_set():  # 50 sets in flight at all times
                values = range(counter + 1, counter + 51)
                counter += 50
                flood_acks.extend(
                    await asyncio.gather(
                        *(flooder.sio.call("slider:set", {"id": "s1", "value": v}) for v in values)
                    )
                )

        sent_at: dict[float, float] = {}

        async def steady_sets() -> None:
            for value in range(1, 31):
                sent_at[float(value)] = time.monotonic()
                ack = await steady.set("s2", value)
                assert ack["ok"] is True, ack
                await asyncio.sleep(0.1)

        started = time.monotonic()
        flooding = asyncio.create_task(flood())
        await steady_sets()
        stop.set()
        await flooding
        elapsed = time.monotonic() - started
        await watcher.wait_for(
            lambda: len([u for u in watcher.of("slider:update") if u["id"] == "s2"]) == 30
        )
        delays = [
            at - sent_at[data["value"]]
            for at, name, data in watcher.arrivals
            if name == "slider:update" and data["id"] == "s2"
        ]
    finally:
        await watcher.disconnect()

    accepted = [ack for ack in flood_acks if ack.get("ok") is True]
    limited = [ack for ack in flood_acks if ack.get("error") == "rate_limited"]
    assert len(accepted) + len(limited) == len(flood_acks), {a.get("error") for a in flood_acks}
    assert len(flood_acks) >= 300
    assert len(limited) >= 200
    assert len(accepted) <= 20 + 20 * elapsed + 5, (len(accepted), elapsed)
    assert flooder.sio.connected, "rate limiting must refuse sets, not drop the connection"
    # Only accepted sets reached the others (a superseded set shares the ack of the one written).
    flood_updates = [u for u in watcher.of("slider:update") if u["id"] == "s1"]
    written = {a["version"]: a for a in accepted}.values()
    assert flood_updates == [
        {"id": "s1", "value": a["value"], "version": a["version"]} for a in written
    ]
    assert max(delays) < 1.0, f"updates from a steady client took up to {max(delays):.2f}s"
    print(
        f"\nflood: {len(flood_acks)} sets in {elapsed:.1f}s, {len(accepted)} accepted, "
        f"{len(limited)} rate_limited; steady client's updates arrived in "
        f"{1000 * sum(delays) / len(delays):.0f} ms on average, "
        f"{1000 * max(delays):.0f} ms at worst"
    )


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_an_oversized_message_closes_only_its_connection(
    make_board, connect_client, start_server, transport
):
    server = start_server(env={"SOCKETIO_MAX_MESSAGE_BYTES": "2048"})
    board = make_board()
    big = await connect_client(board.slug, server=server, transports=[transport])
    honest = await connect_client(board.slug, server=server)
    bystander = await connect_client(board.slug, server=server)

    # Just under the limit is an ordinary set (extra keys are ignored).
    ack = await big.sio.call("slider:set", {"id": "s2", "value": 9, "pad": "x" * 1800}, timeout=5)
    assert ack == {"ok": True, "id": "s2", "value": 9, "version": 1}
    await big.sio.emit("slider:set", {"id": "s1", "value": 7, "pad": "x" * 5000})
    await big.wait_for(lambda: not big.sio.connected, timeout=10)

    assert stored(board.slug, "s1") == (50, 0)
    ack = await honest.set("s1", 42)
    assert ack == {"ok": True, "id": "s1", "value": 42, "version": 1}
    await bystander.wait_for(lambda: len(bystander.of("slider:update")) == 2)
    assert bystander.of("slider:update") == [
        {"id": "s2", "value": 9, "version": 1},
        {"id": "s1", "value": 42, "version": 1},
    ]
    assert "Traceback" not in server.log()


async def test_connections_per_address_are_limited(make_board, connect_client, start_server):
    server = start_server(env={"SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS": "3"})
    board = make_board()
    other_board = make_board()
    first = await connect_client(board.slug, server=server)
    # Refused connections do not take a slot.
    for _ in range(5):
        assert refusal_code(await refused(server.url, "no-such-board")) == "unknown_board"
    await connect_client(board.slug, server=server)
    await connect_client(other_board.slug, server=server)  # the limit is per address, not board

    for _ in range(2):  # and refusing the fourth does not leak a slot either
        client = await refused(server.url, board.slug)
        assert refusal_code(client) == "too_many_connections"
        assert "tabs" in client.connect_errors[0]["message"]
    assert (await first.set("s1", 3))["ok"] is True  # the three are unaffected

    await first.disconnect()
    deadline = time.monotonic() + 5
    while True:  # the server notices the disconnect a moment later
        client = BoardClient(server.url, board.slug)
        try:
            await client.connect()
            break
        except socketio.exceptions.ConnectionError:
            assert time.monotonic() < deadline, client.connect_errors
            await asyncio.sleep(0.05)
        finally:
            await client.disconnect()


async def test_connections_opened_at_once_respect_the_per_address_limit(make_board, start_server):
    """Ten connections opened together from one address: the limit is 3, so 3 get in.

    The check counts the connections already registered and then awaits the database before
    registering the new one, so connects that arrive together must not all pass the check.
    """
    server = start_server(env={"SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS": "3"})
    board = make_board()
    clients = [BoardClient(server.url, board.slug) for _ in range(10)]
    try:
        results = await asyncio.gather(*(c.connect() for c in clients), return_exceptions=True)
        accepted = [c for c, result in zip(clients, results, strict=True) if result is None]
        refusals = [c.connect_errors for c in clients if c.connect_errors]
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients))
    assert len(accepted) == 3, f"{len(accepted)} of 10 simultaneous connections got in"
    assert all(r[0]["data"] == {"code": "too_many_connections"} for r in refusals), refusals


async def test_a_room_of_500_behind_one_address_connects_with_the_default_limit(
    make_board, start_server
):
    """A conference room on the venue's Wi-Fi reaches the server from one address (NAT).

    Raw Engine.IO websockets, as light as a test can make 500 connections, all from 127.0.0.1,
    to a server with the default SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS.
    """
    server = start_server()
    board = make_board()
    url = f"{server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket"
    opened: list[aiohttp.ClientWebSocketResponse] = []

    async def join(session: aiohttp.ClientSession) -> str:
        ws = await session.ws_connect(url)
        opened.append(ws)
        assert (await ws.receive_str()).startswith("0")  # Engine.IO open
        await ws.send_str("40" + json.dumps({"board": board.slug}))
        while True:
            packet = await ws.receive_str()
            if packet.startswith("40"):
                return "admitted"
            if packet.startswith("44"):
                return json.loads(packet[2:])["data"]["code"]

    outcomes: list[str] = []
    # aiohttp holds at most 100 connections per session unless told otherwise.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        try:
            for _ in range(10):  # in waves of 50, as people arrive
                outcomes += await asyncio.wait_for(
                    asyncio.gather(*(join(session) for _ in range(50))), timeout=60
                )
        finally:
            await asyncio.gather(*(ws.close() for ws in opened))
    assert outcomes.count("admitted") == 500, {o: outcomes.count(o) for o in set(outcomes)}


# --- XSS in the admin -----------------------------------------------------------------------


def test_hostile_names_in_the_audit_trail_are_escaped_in_the_admin(db: None) -> None:
    """test_admin.py covers board and slider names; the audit trail shows names people chose."""
    from django.utils import timezone

    now = timezone.now()
    entry = AuditEntry.objects.create(
        board=HOSTILE,
        slider=HOSTILE,
        username=HOSTILE,
        source=AuditEntry.Source.SOCKET,
        address=HOSTILE,
        client="x",
        from_value=1,
        to_value=2,
        from_version=0,
        to_version=1,
        started_at=now,
        ended_at=now,
    )
    client = Client()
    client.force_login(User.objects.create_superuser("root"))
    for url in (
        "/admin/sliders/auditentry/",
        "/admin/sliders/auditentry/?q=" + HOSTILE.replace("&", "%26"),
        f"/admin/sliders/auditentry/{entry.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<script>alert(1)" not in html, url
        assert ESCAPED_SCRIPT in html, url


# --- Production settings --------------------------------------------------------------------

PRODUCTION_ENV = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "panel.example.org",
    "BEHIND_HTTPS_PROXY": "true",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def bare_env(**extra: str) -> dict[str, str]:
    """An environment with nothing of ours in it (env -i with only PATH and HOME)."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **extra}


def test_check_deploy_passes_with_the_documented_production_settings(tmp_path: Any) -> None:
    env = bare_env(**PRODUCTION_ENV, SECRET_KEY=secrets.token_urlsafe(50), VAR_DIR=str(tmp_path))
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    result = subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout
    # The check is not a formality: a weak key or DEBUG left on is reported.
    for weakened in ({"SECRET_KEY": "changeme"}, {"DEBUG": "true"}):
        result = subprocess.run(
            command, cwd=PROJECT_DIR, env={**env, **weakened}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert result.returncode != 0, weakened


def test_uvicorn_without_any_environment_refuses_to_start() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "sliderproject.asgi:application", "--port", str(port)],
        cwd=PROJECT_DIR, env=bare_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0, output
    assert "SECRET_KEY must be set when DEBUG is off." in output


@pytest.fixture
def production_server(transactional_db: None) -> Iterator[ProductionServer]:
    server = ProductionServer(
        env={
            **PRODUCTION_ENV,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
        }
    ).start()
    yield server
    server.stop()


def set_cookies(headers: Any) -> SimpleCookie:
    cookies: SimpleCookie = SimpleCookie()
    for header in headers.getall("Set-Cookie", []):
        cookies.load(header)
    return cookies


async def test_production_cookies_are_secure_and_https_is_enforced(
    production_server, make_board, connect_client
):
    server = production_server
    https_origin = f"https://127.0.0.1:{server.port}"
    behind_proxy = {"X-Forwarded-Proto": "https"}
    live_superuser("ops", "ops@example.com")

    # Plain HTTP is redirected to HTTPS; the health check answers as it is.
    status, _, headers = await http_get(f"{server.url}/admin/login/")
    assert status == 301
    assert headers["Location"] == f"{https_origin}/admin/login/"
    status, _, _ = await http_get(f"{server.url}/healthz")
    assert status == 200

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{server.url}/admin/login/", headers=behind_proxy) as response:
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"] == (
                "max-age=31536000; includeSubDomains; preload"
            )
            csrf = set_cookies(response.headers)["csrftoken"]
            assert csrf["secure"] is True
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', await response.text())
            assert token
        async with http.post(
            f"{server.url}/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": "ops",
                "password": PASSWORD,
                "next": "/admin/",
            },
            headers={
                **behind_proxy,
                "Cookie": f"csrftoken={csrf.value}",
                "Origin": https_origin,
                "Referer": f"{https_origin}/admin/login/",
            },
            allow_redirects=False,
        ) as response:
            assert response.status == 302, await response.text()
            session = set_cookies(response.headers)["sessionid"]
            assert session["secure"] is True
            assert session["httponly"] is True
            assert session["samesite"] == "Lax"

    # Sockets: the page's origin is https (TLS ends at the proxy); plain http is another origin.
    board = make_board()
    headers = {**behind_proxy, "Origin": https_origin}
    client = await connect_client(board.slug, server=server, headers=headers)
    assert client.state["board"] == board.slug
    await refused(server.url, board.slug, headers={**behind_proxy, "Origin": server.url})
    await refused(server.url, board.slug, headers={"Origin": https_origin})
