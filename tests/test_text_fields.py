"""Text the database cannot store: refused with `invalid_value` (or a form error), never dropped.

SQLite's driver cannot encode a lone surrogate ("\\ud83c", half of an emoji as JSON.stringify
writes it) and PostgreSQL refuses NUL in text as well; control characters are refused by our own
rule (sliders/services/text.py `unstorable_character`). Each input is tried on both databases: the
session's SQLite server and a server on a fresh PostgreSQL database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.support.accounts import PASSWORD, live_superuser
from tests.support.clients import BoardClient
from tests.support.http import AdminSession, Forms, error_summary
from tests.support.servers import LiveServer
from tests.support.services import fresh_services, manage

pytestmark = pytest.mark.live

HALF_EMOJI = "Loud \ud83c"  # a lone high surrogate
WITH_NUL = "a\x00b"
UNSTORABLE = [HALF_EMOJI, WITH_NUL]


@dataclass
class Site:
    """A live server and a way to read its database directly."""

    server: LiveServer
    board: str
    rows: Callable[[str, list[Any]], list[tuple[Any, ...]]]

    @property
    def url(self) -> str:
        return self.server.url

    def presets(self) -> list[str]:
        return [
            name
            for (name,) in self.rows(
                "SELECT p.name FROM sliders_preset p JOIN sliders_board b ON p.board_id = b.id"
                " WHERE b.slug = %s ORDER BY p.name",
                [self.board],
            )
        ]

    def board_pk(self) -> int:
        return self.rows("SELECT id FROM sliders_board WHERE slug = %s", [self.board])[0][0]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A server on a fresh PostgreSQL database (demo board `main`) with a superuser."""
    with fresh_services(SOCKETIO_TRANSPORTS="websocket") as env:
        manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            f"User.objects.create_superuser('live-admin', 'a@example.com', {PASSWORD!r})",
            env=env,
        )
        server = LiveServer(env=env).start()
        try:
            yield server, env
        finally:
            server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, transactional_db: None) -> Site:
    # transactional_db: asked for by name, as pytest-django decides from the fixture names.
    if request.param == "postgresql":
        server, env = request.getfixturevalue("postgres_server")

        def pg_rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
            with psycopg.connect(env["DATABASE_URL"]) as connection:
                return connection.execute(sql, params).fetchall()

        return Site(server, "main", pg_rows)

    from django.db import connection

    request.getfixturevalue("stable_content_types")  # the admin's log entries need them
    board = request.getfixturevalue("make_board")()

    live_superuser("live-admin", "a@example.com")

    def sqlite_rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return Site(request.getfixturevalue("asgi_server"), board.slug, sqlite_rows)


@pytest.fixture
async def board_client(site: Site) -> AsyncIterator[BoardClient]:
    client = BoardClient(site.url, site.board)
    await client.connect()
    yield client
    await client.disconnect()


@pytest.fixture
async def admin(site: Site) -> AsyncIterator[AdminSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        session = AdminSession(site.url, http)
        await session.login("live-admin", PASSWORD)
        yield session


# --- Sockets --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", UNSTORABLE, ids=["half-emoji", "nul"])
@pytest.mark.parametrize("event", ["preset:save", "preset:recall"])
async def test_text_the_database_cannot_store_is_refused_not_dropped(
    site: Site, board_client: BoardClient, event: str, text: str
) -> None:
    before = site.presets()
    ack = await board_client.call(event, {"name": text})
    assert ack["ok"] is False and ack["error"] == "invalid_value", ack
    assert "U+" in ack["message"], ack  # it says which character
    assert board_client.sio.connected
    ack = await board_client.set("s1", 37)
    assert ack["ok"] is True and ack["value"] == 37, ack  # the connection is still served
    assert site.presets() == before


# --- The HTTP API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/boards/a%00b", None),
        ("GET", "/api/boards/{board}/sliders/a%00b", None),
        ("PUT", "/api/boards/a%00b/sliders/s1", {"value": 1}),
        ("PUT", "/api/boards/{board}/sliders/a%00b", {"value": 1}),
        ("POST", "/api/boards/{board}/presets/a%00b/recall", {}),
        ("POST", "/api/boards/a%00b/presets/A/recall", {}),
    ],
)
async def test_text_the_database_cannot_store_in_an_api_path_is_refused(
    site: Site, method: str, path: str, body: Any
) -> None:
    url = site.url + path.format(board=site.board)
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body, headers={"Origin": site.url}) as response,
    ):
        answer = await response.json()
    assert (response.status, answer["error"]) == (400, "invalid_value"), answer
    assert "U+0000" in answer["message"], answer


@pytest.mark.parametrize(
    "body",
    [b'{"value": 1, "note": "\xff"}', b'{"fade": "\xed\xa0\xbc"}'],
    ids=["latin-1-byte", "utf8-encoded-surrogate"],
)
async def test_a_json_body_that_is_not_utf8_is_refused(site: Site, body: bytes) -> None:
    """Bytes that are not UTF-8 in a JSON body are a bad request, not a server error."""
    for method, path in [
        ("PUT", f"/api/boards/{site.board}/sliders/s1"),
        ("POST", f"/api/boards/{site.board}/presets/A/recall"),
    ]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method,
                site.url + path,
                data=body,
                headers={"Origin": site.url, "Content-Type": "application/json"},
            ) as response,
        ):
            answer = await response.json(content_type=None)
        assert (response.status, answer["error"]) == (400, "bad_request"), (path, answer)


# --- The admin ------------------------------------------------------------------------------


async def _post_admin_form(admin: AdminSession, path: str, form_id: str, **changes: str) -> str:
    data = await admin.form(path, form_id)
    data = {k: v for k, v in data.items() if "__prefix__" not in k}
    data.update(changes)
    status, _, body = await admin.post(path, data)
    assert status == 200, (status, error_summary(body))  # the form again, not a redirect
    return body


def _errors(body: str) -> str:
    return " ".join(
        line for line in body.splitlines() if "errorlist" in line or "errornote" in line
    )


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("name", "Loud \x1b[31m"),  # an ANSI escape: a control character
        ("name", "Two\nlines"),
    ],
    ids=["escape", "newline"],
)
async def test_control_characters_in_admin_names_are_a_form_error(
    site: Site, admin: AdminSession, field: str, text: str
) -> None:
    pk = site.board_pk()
    path = f"/admin/sliders/board/{pk}/change/"
    body = await _post_admin_form(admin, path, "board_form", **{field: text})
    assert "U+00" in _errors(body), _errors(body)
    assert site.rows("SELECT name FROM sliders_board WHERE id = %s", [pk])[0][0] != text


@pytest.mark.parametrize("text", ["Loud \x07", "dB\x1b"], ids=["bell", "escape"])
async def test_control_characters_in_a_slider_form_are_a_form_error(
    site: Site, admin: AdminSession, text: str
) -> None:
    pk, name, unit = site.rows(
        "SELECT s.id, s.name, s.unit FROM sliders_slider s JOIN sliders_board b"
        " ON s.board_id = b.id WHERE b.slug = %s AND s.slug = 's1'",
        [site.board],
    )[0]
    path = f"/admin/sliders/slider/{pk}/change/"
    body = await _post_admin_form(admin, path, "slider_form", name=text, unit=text[-3:])
    assert "U+00" in _errors(body), _errors(body)
    assert site.rows("SELECT name, unit FROM sliders_slider WHERE id = %s", [pk])[0] == (
        name,
        unit,
    )


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("Scene", json.dumps({"s1\ud83c": 20})),  # escaped in the JSON text: \ud83c
        ("Scene", json.dumps({"s1\x00": 20})),  # \u0000
        ("Scene\x1b", ""),
    ],
    ids=["half-emoji-key", "nul-key", "escape-in-name"],
)
async def test_text_the_database_cannot_store_is_a_preset_form_error(
    site: Site, admin: AdminSession, name: str, values: str
) -> None:
    before = site.presets()
    body = await _post_admin_form(
        admin,
        "/admin/sliders/preset/add/",
        "preset_form",
        board=str(site.board_pk()),
        name=name,
        position="0",
        values=values,
    )
    assert "U+" in _errors(body), _errors(body)
    assert site.presets() == before


async def test_the_admin_keeps_djangos_own_message_for_nul(site: Site, admin: AdminSession) -> None:
    """Django's forms already refuse NUL in text fields; the message is not doubled."""
    pk = site.board_pk()
    body = await _post_admin_form(
        admin, f"/admin/sliders/board/{pk}/change/", "board_form", name=WITH_NUL
    )
    errors = _errors(body)
    assert "Null characters are not allowed." in errors and "U+0000" not in errors, errors
    assert Forms(body).forms  # the form is shown again


# --- Pages ----------------------------------------------------------------------------------


async def test_a_share_link_the_database_cannot_look_up_is_no_link(site: Site) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{site.url}/s/a%00b/") as response:
        assert response.status == 404, error_summary(await response.text())


# --- A connection's cookie ------------------------------------------------------------------

# A quoted cookie value may carry octal escapes, which Django's cookie parser decodes: "\000" is
# NUL. Long enough (8 characters or more) for Django to look it up as a session key.
NUL_SESSION_COOKIE = 'sessionid="\\000abcdefgh"'


async def test_a_session_key_the_database_cannot_store_is_no_session(site: Site) -> None:
    """Such a cookie is no session: the page and the socket serve an anonymous visitor."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{site.url}/b/{site.board}/", headers={"Cookie": NUL_SESSION_COOKIE}) as response,
    ):
        assert response.status == 200, error_summary(await response.text())
    client = BoardClient(site.url, site.board)
    try:
        await client.connect(headers={"Cookie": NUL_SESSION_COOKIE})
        assert client.state["board"] == site.board
        ack = await client.set("s1", 41)
        assert ack["ok"] is True, ack
    finally:
        await client.disconnect()
        assert not client.connect_errors, client.connect_errors
