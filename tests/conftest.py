"""Shared fixtures: a live uvicorn serving the real ASGI app, boards, and Socket.IO clients.

Live tests run `uvicorn sliderproject.asgi:application` as a separate process on a free port,
sharing the test database (see tests/settings.py), and talk to it with python-socketio's
AsyncClient over a real websocket. Tests that touch the database while a server runs use
`transactional_db`, so what they write is committed and visible to the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from django.core.management import call_command

PROJECT_DIR = Path(__file__).resolve().parent.parent


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """One uvicorn process serving sliderproject.asgi:application."""

    def __init__(self, *, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(os.environ["SLIDERSYNC_TEST_DIR"]) / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Polled until the server answers; a subclass may choose a path that never redirects.
    ready_path = "/"

    def start(self, timeout: float = 20.0) -> LiveServer:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "sliderproject.settings"}
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "sliderproject.asgi:application",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
            ],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers, whatever the status
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Server did not start within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing; what was committed must survive."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


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


class BoardClient:
    """A real Socket.IO client on one board that records everything it receives, in order."""

    def __init__(self, url: str, board: str | None, *, reconnection: bool = False) -> None:
        self.url = url
        self.board = board
        # With reconnection, it comes back like the page does: quickly, and forever.
        self.sio = socketio.AsyncClient(
            reconnection=reconnection,
            reconnection_delay=0.1,
            reconnection_delay_max=0.5,
            randomization_factor=0,
        )
        self.events: list[tuple[str, Any]] = []
        self.values: dict[str, tuple[float, int]] = {}  # slider id -> (value, version) shown
        # Updates that arrived with a version not newer than the one held (and were dropped, as
        # the page drops them): possible across processes, never within one.
        self.stale_updates = 0
        # What the server sent with a refused connection: {"message": str, "data": {"code": ...}}.
        self.connect_errors: list[Any] = []
        for event in (
            "board:state", "slider:update", "board:presence", "slider:hands", "board:fade",
        ):  # fmt: skip
            self.sio.on(event, self._recorder(event))
        self.sio.on("slider:updates", self._record_batch)
        self.batches = 0  # `slider:updates` messages; their items are recorded as slider:update
        self.update_messages: list[list[Any]] = []  # each update message's updates, in order
        self._in_batch = False
        self.sio.on("connect_error", self._record_connect_error)

    def _record_batch(self, updates: list[Any]) -> None:
        self.batches += 1
        self.update_messages.append(list(updates))
        record = self._recorder("slider:update")
        self._in_batch = True
        try:
            for update in updates:
                record(update)
        finally:
            self._in_batch = False

    def _record_connect_error(self, *args: Any) -> None:
        self.connect_errors.append(args[0] if len(args) == 1 else args)

    def _recorder(self, event: str) -> Callable[[Any], None]:
        def record(data: Any) -> None:
            self.events.append((event, data))
            if event == "board:state":
                self.values = {s["id"]: (s["value"], s["version"]) for s in data["sliders"]}
            elif event == "slider:update":
                if not self._in_batch:
                    self.update_messages.append([data])
                held = self.values.get(data["id"])
                if held is None or data["version"] > held[1]:
                    self.values[data["id"]] = (data["value"], data["version"])
                else:
                    self.stale_updates += 1

        return record

    def of(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    @property
    def state(self) -> dict[str, Any]:
        return self.of("board:state")[-1]

    async def connect(self, *, auth: Any = ..., wait_state: bool = True, **kwargs: Any) -> None:
        if auth is ...:
            auth = {"board": self.board} if self.board is not None else None
        await self.sio.connect(
            self.url, auth=auth, transports=kwargs.pop("transports", ["websocket"]),
            wait_timeout=5, **kwargs,
        )  # fmt: skip
        if wait_state:
            await self.wait_for(lambda: self.of("board:state"))

    async def set(self, slider_id: Any, value: Any, timeout: float = 5) -> Any:
        """Send `slider:set` and return the ack; an accepted value is shown, as the page does."""
        ack = await self.sio.call("slider:set", {"id": slider_id, "value": value}, timeout=timeout)
        if isinstance(ack, dict) and ack.get("ok") is True:
            held = self.values.get(ack["id"])
            if held is None or ack["version"] > held[1]:
                self.values[ack["id"]] = (ack["value"], ack["version"])
        return ack

    async def call(self, event: str, *args: Any, timeout: float = 5) -> Any:
        return await self.sio.call(event, *args if args else (None,), timeout=timeout)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"Timed out waiting; events so far: {self.events[-10:]}")
            await asyncio.sleep(0.01)

    async def disconnect(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


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


# --- Signed-in sockets and a client loop for sync tests (security, faults, audit) -----------


def session_cookie(user: Any) -> str:
    """A `Cookie` header that signs a socket or page request in as `user`.

    The session is created the way a login creates it (Django's test client `force_login`) and
    stored in the shared database, where the live servers find it.
    """
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


class ClientLoop:
    """An event loop in a background thread, for sync tests (Hypothesis) that drive clients.

    `run(coroutine)` runs it on that loop and returns its result; clients connected through it
    stay connected between calls.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="client-loop", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def client_loop() -> Iterator[ClientLoop]:
    loop = ClientLoop()
    yield loop
    loop.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from `reader` to `writer` until either side closes (for test proxies)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    """Wait for `predicate()` to hold; return how long it took (for the figures tests print)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"Timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


# --- The admin over HTTP, on the live server ------------------------------------------------

ADMIN_PASSWORD = "a-long-test-password-1"


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
    """A superuser signed in to the live server's admin (an AdminSession from tests/http.py)."""
    import aiohttp
    from django.contrib.auth.models import User

    from tests.http import AdminSession

    User.objects.create_superuser("live-admin", "admin@example.com", ADMIN_PASSWORD)
    # Cookies on an IP-address host (127.0.0.1) need the "unsafe" jar.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        session = AdminSession(asgi_server.url, http)
        await session.login("live-admin", ADMIN_PASSWORD)
        yield session
