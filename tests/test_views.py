"""The pages, through Django's test client: index, board (first paint without JS), 404, static."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, User
from django.test import AsyncClient, Client

from sliders import services
from sliders.models import Board, Slider
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script> & \"double\" 'single'"


class Page(HTMLParser):
    """The parts of a page the tests look at: tags with their attributes, and visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(data.strip())

    def all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    @property
    def ranges(self) -> list[dict[str, str | None]]:
        return self.all("input", type="range")


def make_slider(board: Board, slug: str, requested: float, **fields: Any) -> Slider:
    slider = Slider(board=board, slug=slug, name=fields.pop("name", slug), **fields)
    services.save_slider(slider=slider, requested_value=requested)
    return Slider.objects.get(pk=slider.pk)


def body_of(response: Any) -> bytes:
    """The whole body, also of the async streaming responses that ServeStatic sends."""
    if not response.streaming:
        return response.content
    content = response.streaming_content
    if hasattr(content, "__aiter__"):

        async def collect() -> bytes:
            return b"".join([chunk async for chunk in content])

        return async_to_sync(collect)()
    return b"".join(content)


def get_page(client: Client, url: str) -> Page:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return Page(response.content.decode())


# --- Index ----------------------------------------------------------------------------------


def test_index_lists_boards_by_name_with_links(client: Client) -> None:
    for slug, name in [("c", "Charlie"), ("a", "Alpha"), ("b", "Bravo")]:
        Board.objects.create(slug=slug, name=name)
    page = get_page(client, "/")
    links = [a["href"] for a in page.all("a") if (a.get("href") or "").startswith("/b/")]
    assert links == ["/b/a/", "/b/b/", "/b/c/"]
    names = [t for t in page.text if t in ("Alpha", "Bravo", "Charlie")]
    assert names == ["Alpha", "Bravo", "Charlie"]


def test_index_orders_by_position_before_name(client: Client) -> None:
    Board.objects.create(slug="a", name="Alpha", position=1)  # created first, shown last
    Board.objects.create(slug="z", name="Zulu", position=0)
    page = get_page(client, "/")
    links = [a["href"] for a in page.all("a") if (a.get("href") or "").startswith("/b/")]
    assert links == ["/b/z/", "/b/a/"]


def test_index_shows_slider_counts(client: Client) -> None:
    board = Board.objects.create(slug="a", name="Alpha")
    Board.objects.create(slug="b", name="Bravo")
    for slug in ("x", "y", "z"):
        make_slider(board, slug, 1)
    html = client.get("/").content.decode()
    assert re.search(r"Alpha.*?3 sliders.*?Bravo.*?0 sliders", html, re.S)


def test_index_empty_state(client: Client) -> None:
    assert not Board.objects.exists()
    page = get_page(client, "/")
    assert "There are no boards yet." in page.text
    assert not [a for a in page.all("a") if (a.get("href") or "").startswith("/b/")]


def test_index_escapes_board_names(client: Client) -> None:
    Board.objects.create(slug="evil", name=HOSTILE)
    html = client.get("/").content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE in Page(html).text  # shown as the literal text


# --- Board ----------------------------------------------------------------------------------


@pytest.fixture
def board() -> Board:
    board = Board.objects.create(slug="stage", name="Stage")
    # Created in an order different from the display order.
    make_slider(board, "late", 0.75, name="Late", min=-1.5, max=2.5, step=0.25, position=2)
    make_slider(board, "early", 48, name="Early", min=5, max=100, step=10, position=0)
    make_slider(board, "big", 1234567, name="Big", min=0, max=10_000_000, step=1, position=1)
    services.set_slider_value(board="stage", slider_id="late", value=1.3)  # version 1 -> 1.25
    return board


def assert_first_paint(page: Page, board: Board) -> None:
    ranges = page.ranges
    expected = list(board.sliders.all())
    assert [r.get("data-slider-id") for r in ranges] == [s.slug for s in expected]
    for attrs, slider in zip(ranges, expected, strict=True):
        for field in ("min", "max", "step", "value"):
            assert attrs.get(field) is not None, (slider.slug, field)
            # Machine-readable numbers (no thousands separators or decimal commas).
            assert re.fullmatch(r"-?\d+(\.\d+)?", attrs[field]), (slider.slug, field, attrs)
            assert float(attrs[field]) == getattr(slider, field), (slider.slug, field)


def test_board_renders_every_slider_with_stored_values_in_order(
    client: Client, board: Board
) -> None:
    page = get_page(client, "/b/stage/")
    assert [s.slug for s in board.sliders.all()] == ["early", "big", "late"]
    assert_first_paint(page, board)
    early, _big, late = page.ranges
    assert float(early["value"]) == 45  # the normalised value, not the requested one
    assert float(late["value"]) == 1.25  # the latest value, not the created one
    assert "Stage" in page.text
    for name in ("Early", "Big", "Late"):
        assert name in page.text


def test_board_first_paint_numbers_survive_localization(
    client: Client, board: Board, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "de"
    settings.USE_THOUSAND_SEPARATOR = True
    assert_first_paint(get_page(client, "/b/stage/"), board)


def test_board_editable_sliders_are_enabled(client: Client, board: Board) -> None:
    ranges = get_page(client, "/b/stage/").ranges
    assert len(ranges) == 3
    assert all("disabled" not in r for r in ranges)


def test_board_read_only_sliders_are_disabled(client: Client, board: Board) -> None:
    board.edit_access = Board.Access.NOBODY
    board.save()
    ranges = get_page(client, "/b/stage/").ranges
    assert len(ranges) == 3
    assert all("disabled" in r for r in ranges)


def test_board_for_editors_depends_on_who_asks(client: Client, board: Board) -> None:
    board.edit_access = Board.Access.EDITORS
    board.editors_group = Group.objects.create(name="editors")
    board.save()
    assert all("disabled" in r for r in get_page(client, "/b/stage/").ranges)

    outsider = User.objects.create_user("outsider")
    client.force_login(outsider)
    assert all("disabled" in r for r in get_page(client, "/b/stage/").ranges)

    member = User.objects.create_user("member")
    member.groups.add(board.editors_group)
    client.force_login(member)
    ranges = get_page(client, "/b/stage/").ranges
    assert len(ranges) == 3
    assert all("disabled" not in r for r in ranges)


def test_board_without_sliders(client: Client) -> None:
    Board.objects.create(slug="empty", name="Empty")
    page = get_page(client, "/b/empty/")
    assert page.ranges == []
    assert "This board has no sliders yet." in " ".join(page.text)


def test_board_escapes_board_and_slider_names(client: Client) -> None:
    board = Board.objects.create(slug="evil", name=HOSTILE)
    make_slider(board, "s1", 1, name=HOSTILE)
    html = client.get("/b/evil/").content.decode()
    assert "<script>alert(1)" not in html
    assert "alert(1)</script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # title, heading, label
    assert "&quot;double&quot;" in html
    assert "&#x27;single&#x27;" in html
    page = Page(html)
    assert page.text.count(HOSTILE) >= 2  # heading and label show the literal text
    # No script on the page other than the two the page means to load (and JSON data).
    scripts = page.all("script")
    assert all(s.get("src") or s.get("type") == "application/json" for s in scripts)


def test_board_page_has_no_external_scripts_and_the_vendored_client(client: Client) -> None:
    Board.objects.create(slug="stage", name="Stage")
    html = client.get("/b/stage/").content.decode()
    page = Page(html)
    sources = [s["src"] for s in page.all("script") if s.get("src")]
    assert "/static/sliders/vendor/socket.io.min.js" in sources
    assert "/static/sliders/board.js" in sources
    assert not [s for s in sources if re.match(r"(?i)(https?:)?//", s)], sources
    assert not re.search(r"""<script[^>]+src=["']?(https?:)?//""", html, re.I)
    links = [a.get("href") or "" for a in page.all("link")]
    assert not [h for h in links if re.match(r"(?i)(https?:)?//", h)], links


def test_unknown_board_is_404_with_the_project_page(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    response = client.get("/b/no-such-board/")
    assert response.status_code == 404
    assert [t.name for t in response.templates][:1] == ["404.html"]
    html = response.content.decode()
    assert "Nothing here" in html
    assert "/static/sliders/board.css" in html  # the site's own layout, not Django's plain page


def test_unknown_page_is_404_with_the_project_page(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()


# --- Static files ---------------------------------------------------------------------------


STATIC = [
    ("/static/sliders/vendor/socket.io.min.js", "javascript"),
    ("/static/sliders/board.js", "javascript"),
    ("/static/sliders/board.css", "text/css"),
]


@pytest.mark.parametrize(("url", "content_type"), STATIC)
def test_static_files_are_served(client: Client, url: str, content_type: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert content_type in response["Content-Type"]
    assert len(body_of(response)) > 100


@pytest.mark.parametrize(("url", "content_type"), STATIC)
async def test_static_files_are_served_under_asgi(url: str, content_type: str) -> None:
    response = await AsyncClient().get(url)
    assert response.status_code == 200
    assert content_type in response["Content-Type"]
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert len(body) > 100


def test_vendored_client_is_socket_io_v4(client: Client) -> None:
    response = client.get("/static/sliders/vendor/socket.io.min.js")
    body = body_of(response)
    match = re.search(rb"Socket\.IO v(\d+)\.\d+\.\d+", body)
    assert match, body[:200]
    assert match.group(1) == b"4"  # the v4 client speaks protocol v5


def test_every_asset_the_board_page_references_is_served(client: Client, board: Board) -> None:
    page = get_page(client, "/b/stage/")
    assets = [s["src"] for s in page.all("script") if s.get("src")]
    assets += [link["href"] for link in page.all("link") if link.get("href")]
    assets = [url for url in assets if not url.startswith("data:")]  # inline, nothing to fetch
    assert len(assets) >= 3
    for url in assets:
        assert url.startswith("/static/"), url
        assert client.get(url).status_code == 200, url


def test_missing_static_file_is_404(client: Client) -> None:
    assert client.get("/static/sliders/nope.js").status_code == 404


def test_people_who_are_not_staff_can_sign_in_and_edit(client: Client) -> None:
    """The header's "Sign in" works for editors without admin access (the admin's would not)."""
    editors = Group.objects.create(name="Stage crew")
    board = Board.objects.create(
        slug="crew", name="Crew", edit_access=Board.Access.EDITORS, editors_group=editors
    )
    services.save_slider(slider=Slider(board=board, slug="s1", name="One"), requested_value=5)
    member = User.objects.create_user("casey", password=PASSWORD)
    member.groups.add(editors)

    page = client.get("/b/crew/").content.decode()
    assert 'href="/accounts/login/?next=/b/crew/"' in page
    assert "disabled" in page

    form = client.get("/accounts/login/?next=/b/crew/")
    assert form.status_code == 200
    response = client.post(
        "/accounts/login/",
        {"username": "casey", "password": PASSWORD, "next": "/b/crew/"},
    )
    assert response.status_code == 302 and response["Location"] == "/b/crew/"
    page = client.get("/b/crew/").content.decode()
    assert "casey" in page
    assert re.search(r'<input type="range"[^>]*id="slider-s1"(?![^>]*disabled)[^>]*>', page)

    response = client.post("/accounts/logout/", {"next": "/b/crew/"})
    assert response.status_code == 302
    assert "disabled" in client.get("/b/crew/").content.decode()


def test_signed_in_only_board_sends_visitors_to_sign_in(client: Client) -> None:
    Board.objects.create(slug="staff", name="Staff only", view_access=Board.Visibility.SIGNED_IN)
    response = client.get("/b/staff/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/b/staff/"
    assert "Staff only" not in client.get("/").content.decode()
    User.objects.create_user("sam", password=PASSWORD)
    client.login(username="sam", password=PASSWORD)
    assert client.get("/b/staff/").status_code == 200
    assert "Staff only" in client.get("/").content.decode()


@pytest.mark.django_db
def test_presence_lists_only_the_boards_the_user_may_see(client, make_board) -> None:
    open_board = make_board(name="Open")
    hidden = make_board(name="Hidden", view_access="signed_in")
    response = client.get("/presence")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    boards = response.json()["boards"]
    assert boards[open_board.slug] == 0 and hidden.slug not in boards
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("viewer"))
    assert hidden.slug in client.get("/presence").json()["boards"]
