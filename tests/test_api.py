"""The HTTP API (/api/): schema, tokens, the same rules and broadcasts as the board page."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from openapi_spec_validator import validate

from sliders import api as api_module
from sliders import services
from sliders.models import ApiToken, AuditEntry, Preset
from tests.support.database import stored

pytestmark = pytest.mark.django_db

SLIDER = "/api/boards/{board}/sliders/s1"


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    api_module._buckets.clear()


def editor_token(name: str = "desk") -> tuple[User, str]:
    user = User.objects.create_user(f"editor-{name}")
    user.user_permissions.add(Permission.objects.get(codename="change_slider"))
    _, token = services.issue_api_token(user=user, name=name)
    return user, token


def put(client: Client, url: str, body: Any, **headers: str) -> Any:
    return client.put(url, json.dumps(body), content_type="application/json", headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- The schema ---------------------------------------------------------------------------------


def test_the_openapi_document_is_valid_and_lists_every_endpoint(client: Client) -> None:
    spec = client.get("/api/openapi.json").json()
    validate(spec)  # raises on an invalid OpenAPI document
    operations = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert operations == {
        ("/api/boards", "get"),
        ("/api/boards/{slug}", "get"),
        ("/api/boards/{slug}/sliders/{slider_id}", "get"),
        ("/api/boards/{slug}/sliders/{slider_id}", "put"),
        ("/api/boards/{slug}/presets/{name}", "get"),
        ("/api/boards/{slug}/presets/{name}", "put"),
        ("/api/boards/{slug}/presets/{name}/recall", "post"),
    }
    assert {"BearerToken", "BrowserSession"} <= set(spec["components"]["securitySchemes"])


def test_the_docs_page_works_offline(client: Client) -> None:
    page = client.get("/api/docs").content.decode()
    assert "swagger" in page.lower()
    assert "cdn" not in page.lower() and "https://" not in page  # our own static files only


# --- Reading ------------------------------------------------------------------------------------


def test_reading_boards_and_sliders(client: Client, make_board) -> None:
    board = make_board(name="Stage", sliders=[{"slug": "s1", "value": 30, "unit": "%"}])
    hidden = make_board(name="Hidden", view_access="signed_in")
    Preset.objects.create(board=board, name="Intro", values={"s1": 1})
    listed = client.get("/api/boards").json()
    assert {"slug": board.slug, "name": "Stage", "can_edit": True} in listed
    assert hidden.slug not in [b["slug"] for b in listed]
    detail = client.get(f"/api/boards/{board.slug}").json()
    assert detail["presets"] == [{"name": "Intro"}]
    assert detail["sliders"] == [
        {"id": "s1", "name": "s1", "min": 0.0, "max": 100.0, "step": 1.0, "value": 30.0,
         "version": 0, "unit": "%", "precision": None}
    ]  # fmt: skip
    assert client.get(SLIDER.format(board=board.slug)).json()["value"] == 30.0
    response = client.get(f"/api/boards/{hidden.slug}")
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    _, token = editor_token()
    assert client.get(f"/api/boards/{hidden.slug}", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("url", "code"),
    [("/api/boards/nope", "unknown_board"), ("/api/boards/{board}/sliders/nope", "unknown_slider")],
)
def test_reading_what_does_not_exist_is_404(client: Client, make_board, url, code) -> None:
    board = make_board()
    response = client.get(url.format(board=board.slug))
    assert (response.status_code, response.json()["ok"], response.json()["error"]) == (
        404,
        False,
        code,
    )


# --- Addresses and methods with no endpoint -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "hint"),
    [
        ("get", "/api/", "/api/docs"),
        ("get", "/api", "/api/docs"),
        ("get", "/api/boards/", "without a slash: /api/boards"),
        ("get", "/api/boards/{board}/", "without a slash: /api/boards/{board}"),
        (
            "put",
            "/api/boards/{board}/sliders/s1/",
            "without a slash: /api/boards/{board}/sliders/s1",
        ),
        ("get", "/api/nope", "/api/docs"),
        ("post", "/api/boards/{board}/sliders/s1/extra", "/api/docs"),
        ("get", "/api/openapi.json/", "without a slash: /api/openapi.json"),
    ],
)
def test_every_address_under_the_api_answers_json(make_board, method, url, hint) -> None:
    board = make_board()
    # With the CSRF check a browser gets: a POST to a wrong address is still a JSON 404.
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(url.format(board=board.slug))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert (body["ok"], body["error"]) == (False, "not_found")
    assert hint.format(board=board.slug) in body["message"]


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("delete", "/api/boards", "GET"),
        ("put", "/api/boards/{board}", "GET"),
        ("post", "/api/boards/{board}/sliders/s1", "GET, PUT"),
        ("get", "/api/boards/{board}/presets/Intro/recall", "POST"),
    ],
)
def test_a_method_an_address_does_not_take_answers_json(make_board, method, url, allowed) -> None:
    board = make_board()
    response = getattr(Client(enforce_csrf_checks=True), method)(url.format(board=board.slug))
    assert (response.status_code, response["Allow"]) == (405, allowed)
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert (body["ok"], body["error"]) == (False, "method_not_allowed")
    assert method.upper() in body["message"] and allowed in body["message"]
    assert stored(board.slug, "s1") == (50, 0)


# --- Setting ------------------------------------------------------------------------------------


def test_a_token_sets_a_slider_on_an_editors_board(client: Client, make_board) -> None:
    board = make_board(edit_access="editors")
    user, token = editor_token()
    response = put(client, SLIDER.format(board=board.slug), {"value": 61.6}, **bearer(token))
    assert response.status_code == 200
    assert response.json() == {"ok": True, "id": "s1", "value": 62.0, "version": 1}
    entry = AuditEntry.objects.get(board=board.slug, slider="s1")
    assert (entry.source, entry.username, entry.to_value) == ("api", user.username, 62.0)
    assert ApiToken.objects.get(user=user).last_used_at is not None


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 403, "forbidden"),  # anonymous, on a board for editors
        (bearer("sst_not-a-real-token"), 401, "unauthorized"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthorized"),
        ({"Authorization": "Bearer"}, 401, "unauthorized"),
    ],
)
def test_missing_or_wrong_tokens_are_refused(client, make_board, headers, status, code) -> None:
    board = make_board(edit_access="editors")
    response = put(client, SLIDER.format(board=board.slug), {"value": 10}, **headers)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert stored(board) == (50.0, 0)


def test_a_revoked_token_is_refused(client: Client, make_board) -> None:
    board = make_board()
    user, token = editor_token()
    ApiToken.objects.filter(user=user).update(revoked=True)
    response = put(client, SLIDER.format(board=board.slug), {"value": 10}, **bearer(token))
    assert (response.status_code, response.json()["error"]) == (401, "unauthorized")
    assert stored(board) == (50.0, 0)


def test_anyone_may_set_where_anyone_may_drag(client: Client, make_board) -> None:
    board = make_board()  # edit access: anyone
    assert put(client, SLIDER.format(board=board.slug), {"value": 5}).json()["version"] == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"value": "loud"}, "invalid_value"),
        ({"value": True}, "invalid_value"),
        ({"value": None}, "invalid_value"),
        ({"value": float("nan")}, "invalid_value"),  # json.dumps writes it as NaN
        ({}, "bad_request"),
        ("not an object", "bad_request"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(client, make_board, body, code) -> None:
    board = make_board()
    response = put(client, SLIDER.format(board=board.slug), body)
    assert (response.status_code, response.json()["error"]) == (400, code), response.json()
    assert stored(board) == (50.0, 0)


@override_settings(SLIDER_SET_RATE=0.5, SLIDER_SET_BURST=3)
def test_sets_are_rate_limited_like_the_page(client: Client, make_board) -> None:
    board = make_board()
    _, token = editor_token()
    statuses = [
        put(client, SLIDER.format(board=board.slug), {"value": v}, **bearer(token)).status_code
        for v in range(1, 7)
    ]
    assert statuses[:3] == [200, 200, 200] and set(statuses[3:]) == {429}
    assert stored(board) == (3.0, 3)


@pytest.mark.parametrize(
    ("origin", "status"),
    [("http://evil.example", 403), ("null", 403), ("http://testserver", 200), (None, 200)],
)
def test_anonymous_writes_from_other_sites_are_refused(client, make_board, origin, status) -> None:
    """A page elsewhere must not use a visitor's browser to reach a board on their LAN."""
    board = make_board()
    headers = {"Origin": origin} if origin else {}
    response = put(client, SLIDER.format(board=board.slug), {"value": 9}, **headers)
    assert response.status_code == status
    assert stored(board) == ((9.0, 1) if status == 200 else (50.0, 0))


def test_a_browser_session_needs_the_csrf_token_to_write(make_board) -> None:
    board = make_board()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.create_user("viewer"))
    refused = put(browser, SLIDER.format(board=board.slug), {"value": 9})
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    browser.get("/accounts/login/")  # sets the CSRF cookie, as any page does
    csrf = browser.cookies["csrftoken"].value
    accepted = put(browser, SLIDER.format(board=board.slug), {"value": 9}, **{"X-CSRFToken": csrf})
    assert accepted.status_code == 200 and stored(board) == (9.0, 1)


# --- Presets ------------------------------------------------------------------------------------


def test_recalling_a_preset(client: Client, make_board) -> None:
    board = make_board()
    Preset.objects.create(board=board, name="Low", values={"s1": 5, "s2": 6})
    url = f"/api/boards/{board.slug}/presets/Low/recall"
    response = client.post(url, "{}", content_type="application/json")
    assert response.json() == {"ok": True, "name": "Low", "skipped": [], "adjusted": []}
    assert stored(board) == (5.0, 1)
    missing = client.post(f"/api/boards/{board.slug}/presets/Nope/recall", "{}", "application/json")
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown_preset")
    too_long = client.post(url, '{"fade": 600}', content_type="application/json")
    assert (too_long.status_code, too_long.json()["error"]) == (400, "bad_request")


# --- Live: an API call reaches the pages --------------------------------------------------------


@pytest.mark.live
async def test_an_api_set_and_a_fade_reach_socket_clients(make_board, connect_client, asgi_server):
    board = make_board()
    Preset.objects.create(board=board, name="Up", values={"s1": 90})
    watcher = await connect_client(board.slug)
    async with aiohttp.ClientSession() as http:
        url = f"{asgi_server.url}{SLIDER.format(board=board.slug)}"
        async with http.put(url, json={"value": 12}) as response:
            assert response.status == 200, await response.text()
            version = (await response.json())["version"]
        await watcher.wait_for(lambda: watcher.values["s1"] == (12.0, version))

        recall = f"{asgi_server.url}/api/boards/{board.slug}/presets/Up/recall"
        async with http.post(recall, json={"fade": 0.5}) as response:
            assert response.status == 200 and (await response.json())["ok"] is True
    await watcher.wait_for(
        lambda: [f["state"] for f in watcher.of("board:fade")] == ["running", "done"]
    )
    assert watcher.values["s1"][0] == 90


def test_the_admin_issues_a_token_once_and_revokes_it(client: Client, make_board) -> None:
    import re

    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    user = User.objects.create_user("desk-user")
    page = admin.post(
        "/admin/sliders/apitoken/add/", {"user": user.pk, "name": "desk"}, follow=True
    ).content.decode()
    token = re.search(r"sst_[A-Za-z0-9_-]{20,}", page).group(0)
    row = ApiToken.objects.get(user=user)
    assert row.digest == ApiToken.digest_of(token) and row.prefix == token[:12]
    assert token not in admin.get(f"/admin/sliders/apitoken/{row.pk}/change/").content.decode()
    assert client.get("/api/boards", headers=bearer(token)).status_code == 200

    admin.post("/admin/sliders/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert client.get("/api/boards", headers=bearer(token)).status_code == 401


def test_a_signed_in_editor_writes_from_the_browser(make_board) -> None:
    """Session writes on a board for editors (the request's lazy user is checked right)."""
    board = make_board(edit_access="editors")
    user, _ = editor_token()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/accounts/login/")
    csrf = browser.cookies["csrftoken"].value
    response = put(browser, SLIDER.format(board=board.slug), {"value": 33}, **{"X-CSRFToken": csrf})
    assert response.status_code == 200 and stored(board) == (33.0, 1)


def test_staff_may_only_make_tokens_for_themselves(make_board) -> None:
    staff = User.objects.create_user("staff", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_apitoken", "view_apitoken"])
    )
    victim = User.objects.create_superuser("root")
    admin = Client()
    admin.force_login(staff)
    response = admin.post("/admin/sliders/apitoken/add/", {"user": victim.pk, "name": "mine now"})
    assert response.status_code == 200  # the form refuses the choice
    assert not ApiToken.objects.filter(user=victim).exists()
    admin.post("/admin/sliders/apitoken/add/", {"user": staff.pk, "name": "my script"})
    assert ApiToken.objects.filter(user=staff).count() == 1
