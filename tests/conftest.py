"""Shared fixtures: a live uvicorn serving the real ASGI app, boards, and Socket.IO clients.

The helpers behind them (servers, clients, proxies, accounts, ...) are in tests/support/; the
browser fixtures (`browser`, `page_on`) in tests/support/browser.py.

Live tests run `uvicorn sliderproject.asgi:application` as a separate process on a free port,
sharing the test database (see tests/settings.py), and talk to it with python-socketio's
AsyncClient over a real websocket. Tests that touch the database while a server runs use
`transactional_db`, so what they write is committed and visible to the server.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command

from tests.support.accounts import PASSWORD, live_superuser
from tests.support.clients import BoardClient, ClientLoop
from tests.support.http import AdminSession
from tests.support.servers import LiveServer
from tests.support.services import fresh_services, widen

# Fixtures kept next to their helpers: `browser` and `page_on` (a test that asks for them gets a
# Chromium; others never start one), `receivers` (HTTP receivers for webhooks), `osc_server` and
# `peers` (OSC desks).
pytest_plugins = ["tests.support.browser", "tests.support.webhooks", "tests.support.osc"]

# --- Database -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: Any) -> None:
    """Use the throwaway database from tests/settings.py as it is, migrated once.

    pytest-django would otherwise create a separate test database (in memory for SQLite) that
    the uvicorn processes could not see.
    """
    with django_db_blocker.unblock():
        call_command("migrate", verbosity=0, interactive=False)


@pytest.fixture
def make_board(transactional_db: Any) -> Callable[..., Any]:
    """Create a board with sliders; each slider is a dict of Slider fields (slug required)."""
    from sliders import services
    from sliders.models import Board, Slider

    counter = iter(range(1_000_000))

    def create(
        slug: str | None = None,
        *,
        name: str | None = None,
        sliders: list[dict[str, Any]] | None = None,
        **board_fields: Any,
    ) -> Board:
        slug = slug or f"board-{os.getpid()}-{next(counter)}-{time.monotonic_ns() % 100000}"
        board = Board.objects.create(slug=slug, name=name or slug, **board_fields)
        if sliders is None:
            sliders = [
                {"slug": "s1", "name": "Slider 1", "value": 50},
                {"slug": "s2", "name": "Slider 2", "value": 50},
            ]
        for position, fields in enumerate(sliders):
            fields = {"name": fields["slug"], "position": position, **fields}
            value = fields.pop("value", fields.get("min", 0))
            services.save_slider(slider=Slider(board=board, **fields), requested_value=value)
        return board

    return create


# --- Live server ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def asgi_server(django_db_setup: None) -> Iterator[LiveServer]:
    """One server for the whole session; tests keep to their own boards."""
    server = LiveServer().start()
    yield server
    server.stop()


@pytest.fixture
def start_server(django_db_setup: None) -> Iterator[Callable[..., LiveServer]]:
    """Start extra servers (to kill, restart or configure); all are stopped afterwards."""
    servers: list[LiveServer] = []

    def start(**kwargs: Any) -> LiveServer:
        server = LiveServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- Socket.IO clients ----------------------------------------------------------------------


@pytest.fixture
async def connect_client(asgi_server: LiveServer) -> AsyncIterator[Callable[..., Any]]:
    """`await connect_client(board_slug)` gives a connected BoardClient holding `board:state`."""
    clients: list[BoardClient] = []

    async def connect(board: str | None, *, server: LiveServer | None = None, **kwargs: Any):
        client = BoardClient((server or asgi_server).url, board)
        clients.append(client)
        await client.connect(**kwargs)
        return client

    yield connect
    for client in clients:
        await client.disconnect()


# --- A client loop for sync tests (security, faults, audit) ---------------------------------


@pytest.fixture
def client_loop() -> Iterator[ClientLoop]:
    loop = ClientLoop()
    yield loop
    loop.close()


# --- The admin over HTTP, on the live server ------------------------------------------------


@pytest.fixture
def stable_content_types(transactional_db: None) -> None:
    """Give content types the ids they had when the live server first cached them.

    Every transactional test ends with a flush that recreates the content types under new ids
    (the sequences are not reset), while the session-long server process keeps the old ids in
    ContentType's cache; the admin's LogEntry would then point at a missing content type
    ("FOREIGN KEY constraint failed"). A flush that resets the sequences recreates them under
    the ids of the first migrate.
    """
    from django.core.management import call_command

    call_command("flush", interactive=False, reset_sequences=True, verbosity=0)


@pytest.fixture
async def admin_http(asgi_server: Any, stable_content_types: None) -> AsyncIterator[Any]:
    """A superuser signed in to the live server's admin (an AdminSession)."""
    import aiohttp

    live_superuser("live-admin", "admin@example.com")
    # Cookies on an IP-address host (127.0.0.1) need the "unsafe" jar.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        session = AdminSession(asgi_server.url, http)
        await session.login("live-admin", PASSWORD)
        yield session


# --- Several processes on PostgreSQL and Redis (scale-out, faults) ----------------------------


@pytest.fixture(scope="module")
def services_env() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database, migrated, with the demo board, and a fresh Redis prefix."""
    with fresh_services(
        SOCKETIO_TRANSPORTS="websocket",
        PRESENCE_PROCESS_TTL="2",
        PRESENCE_INTERVAL="0.1",
        # Contention tests send as fast as they can; the rate limit has its own tests.
        SLIDER_SET_RATE="100000",
        SLIDER_SET_BURST="100000",
    ) as env:
        widen(env)
        yield env


@pytest.fixture
def cluster(services_env: dict[str, str]) -> Iterator[list[LiveServer]]:
    """Two server processes, A and B, sharing the database and Redis."""
    servers = [LiveServer(env=services_env).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[BoardClient]]:
    """A list for `tests.support.clients.connect` to put its clients in; all are disconnected."""
    made: list[BoardClient] = []
    yield made
    for client in made:
        await client.disconnect()
