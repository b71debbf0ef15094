"""The documented nginx configuration, run for real in front of two server processes.

`docs/nginx/slidersync.conf` is read as it is; only what must differ on a test machine is
replaced (bench/nginx.py, shared with the rolling-restart run): the listen ports (on 127.0.0.1,
no IPv6), the two backend addresses (two live uvicorn processes on PostgreSQL and Redis) and the
certificate paths (a self-signed certificate made here). A small wrapper `nginx.conf` supplies
what Debian's main nginx.conf would (the `events` and `http` blocks) and keeps nginx's files
inside a temporary directory.

The servers run as in production: DEBUG off, BEHIND_HTTPS_PROXY on, and both transports enabled,
so long-polling clients depend on the config's `ip_hash` stickiness. Needs the `nginx` and
`openssl` commands (Debian: `apt-get install nginx`); without them the tests are skipped, except
under CI, where they fail.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from bench.nginx import CONFIG, Nginx, find_nginx, render
from bench.nginx import self_signed_certificate as make_certificate
from tests.support.accounts import PASSWORD
from tests.support.clients import BoardClient
from tests.support.http import AdminSession
from tests.support.servers import (
    PROJECT_DIR,
    LiveServer,
    ProductionServer,
    free_port,
)
from tests.support.services import fresh_services, manage, unavailable

pytestmark = [pytest.mark.live, pytest.mark.scaleout]

GUIDE = PROJECT_DIR / "docs" / "deploy.md"


def nginx_command() -> str:
    found = find_nginx()
    if found is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    return found


def self_signed_certificate(directory: Path) -> tuple[Path, Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1, and a client context that trusts it (and verifies it)."""
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed")
    cert, key = make_certificate(directory)
    return cert, key, ssl.create_default_context(cafile=str(cert))


# --- The stack: two servers, nginx in front ----------------------------------------------------


@dataclass
class Stack:
    servers: list[LiveServer]
    nginx: Nginx
    http_port: int
    https_port: int
    cert: Path
    key: Path
    tls: ssl.SSLContext
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def origin(self) -> str:
        return self.url

    def client(self, url: str | None = None, *, reconnection: bool = False) -> BoardClient:
        """A BoardClient on the demo board; through nginx (HTTPS) unless given a server's URL."""
        client = BoardClient(url or self.url, "main", reconnection=reconnection)
        if (url or self.url).startswith("https:"):
            # Verify our self-signed certificate rather than switching verification off.
            tls = self.tls
            client.sio.eio.http_factory = lambda: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls)
            )
        return client

    def backend_of(self, client: BoardClient) -> LiveServer:
        """The server process that holds this client's connection (from its log)."""
        sid = client.sio.get_sid()
        holders = [s for s in self.servers if f"Connected {sid} " in s.log()]
        assert len(holders) == 1, f"{sid} is on {len(holders)} servers"
        return holders[0]

    def other_than(self, server: LiveServer) -> LiveServer:
        return next(s for s in self.servers if s is not server)

    def http(self, **kwargs: Any) -> aiohttp.ClientSession:
        """A browser-like HTTP session through nginx (it keeps cookies for 127.0.0.1 too)."""
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.tls),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            **kwargs,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx_command()
    directory = tmp_path_factory.mktemp("nginx")
    cert, key, tls = self_signed_certificate(directory)
    http_port, https_port = free_port(), free_port()
    with fresh_services(
        # The production settings of docs/deploy.md (fresh_services adds the database, Redis
        # and a prefix of its own).
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        BEHIND_HTTPS_PROXY="true",
        # nginx passes `Host: $host` (without the port): a public port other than 443 must be
        # trusted explicitly, as the guide says.
        CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{https_port}",
        SOCKETIO_TRANSPORTS="websocket,polling",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    ) as env:
        manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            f"User.objects.create_superuser('ops', 'ops@example.com', '{PASSWORD}')",
            env=env,
        )
        servers = [ProductionServer(env=env).start() for _ in range(2)]
        nginx = None
        try:
            site = render(
                CONFIG.read_text(),
                http_port=http_port,
                https_port=https_port,
                backends=[s.port for s in servers],
                cert=cert,
                key=key,
            )
            nginx = Nginx(directory / "nginx", site).start(https_port)
            yield Stack(servers, nginx, http_port, https_port, cert, key, tls, env)
        finally:
            if nginx is not None:
                nginx.stop()
            stop_quickly(servers)


def stop_quickly(servers: list[LiveServer]) -> None:
    """SIGTERM all, then SIGKILL what is left after a moment.

    uvicorn's graceful shutdown waits for long-poll requests the server still holds (up to
    25 s), and the realtime server's shutdown hangs when polling clients are connected (see
    docs/deploy.md); neither is what these tests are about.
    """
    for server in servers:
        if server.process and server.process.poll() is None:
            server.process.terminate()
    deadline = time.monotonic() + 3
    for server in servers:
        if server.process is None:
            continue
        try:
            server.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
async def clients() -> AsyncIterator[list[BoardClient]]:
    made: list[BoardClient] = []
    yield made
    await asyncio.gather(*(close(client) for client in made))


async def close(client: BoardClient) -> None:
    """Disconnect; a polling client's long-poll request is cut short rather than waited for.

    python-socketio's client waits for its pending GET, which the server holds until its next
    ping (25 s); that is harmless in real life but too slow for a test.
    """
    if not client.sio.connected or client.sio.transport() != "polling":
        await client.disconnect()
        return
    disconnecting = asyncio.create_task(client.disconnect())
    await asyncio.sleep(0.2)  # the close packet goes out
    if client.sio.eio.http is not None:
        await client.sio.eio.http.close()  # the pending GET fails at once
    await disconnecting


async def connect(client: BoardClient, made: list[BoardClient], **kwargs: Any) -> BoardClient:
    made.append(client)
    await client.connect(**kwargs)
    return client


# --- Tests -------------------------------------------------------------------------------------


def test_the_guide_shows_the_tested_config() -> None:
    """docs/deploy.md quotes the config in full; the quote must be the file these tests run."""
    assert CONFIG.read_text().strip() in GUIDE.read_text()


async def test_pages_static_files_and_admin_through_nginx(stack: Stack) -> None:
    async with stack.http(headers={"Origin": stack.origin}) as http:
        async with http.get(f"{stack.url}/b/main/") as response:
            assert response.status == 200
            assert 'data-board="main"' in await response.text()
        script = PROJECT_DIR / "sliders" / "static" / "sliders" / "vendor" / "socket.io.min.js"
        async with http.get(f"{stack.url}/static/sliders/vendor/socket.io.min.js") as response:
            assert response.status == 200
            assert await response.read() == script.read_bytes()
        # Signing in posts a form: Django's CSRF check must see the page as served over HTTPS.
        await AdminSession(stack.url, http).login("ops", PASSWORD)
        # Plain HTTP is redirected to HTTPS.
        async with http.get(
            f"http://127.0.0.1:{stack.http_port}/b/main/?x=1", allow_redirects=False
        ) as response:
            assert response.status == 301
            assert response.headers["Location"] == "https://127.0.0.1/b/main/?x=1"


async def test_healthz_through_nginx(stack: Stack) -> None:
    async with stack.http() as http, http.get(f"{stack.url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"database": "up", "redis": "up"}


async def test_a_websocket_through_nginx_reaches_a_client_on_the_other_backend(
    stack: Stack, clients: list[BoardClient]
) -> None:
    proxied = await connect(stack.client(), clients)
    assert proxied.sio.transport() == "websocket"
    direct = await connect(stack.client(stack.other_than(stack.backend_of(proxied)).url), clients)
    ack = await proxied.set("s2", 31)
    assert ack["ok"] is True
    await direct.wait_for(lambda: direct.values["s2"] == (31.0, ack["version"]))
    ack = await direct.set("s2", 32)
    await proxied.wait_for(lambda: proxied.values["s2"] == (32.0, ack["version"]))


async def test_long_polling_through_nginx_sticks_to_one_backend(
    stack: Stack, clients: list[BoardClient]
) -> None:
    """A polling session is several HTTP requests; ip_hash sends them all to one process."""
    seen = len(stack.nginx.responses())
    polling = await connect(stack.client(), clients, transports=["polling"])
    assert polling.sio.transport() == "polling"
    holder = stack.backend_of(polling)
    direct = await connect(stack.client(stack.other_than(holder).url), clients)
    for value in (11, 12, 13):
        ack = await polling.set("s2", value)
        assert ack["ok"] is True, ack
        await direct.wait_for(lambda v=value, a=ack: direct.values["s2"] == (v, a["version"]))
        ack = await direct.set("s1", value)
        await polling.wait_for(lambda v=value, a=ack: polling.values["s1"] == (v, a["version"]))
        await asyncio.sleep(0.3)  # let a few long-poll requests come and go
    assert polling.sio.connected
    # Polling requests only: nginx logs a websocket when it closes, maybe a previous test's one.
    requests = [line for line in stack.nginx.responses()[seen:] if "transport=polling" in line]
    assert len(requests) >= 10, requests
    assert all('HTTP/1.1" 200 ' in line for line in requests), requests


async def test_the_origin_check_works_behind_tls(stack: Stack, clients: list[BoardClient]) -> None:
    """A browser's socket sends its page's origin: ours is accepted, another site's is not.

    (Ours is the one in CSRF_TRUSTED_ORIGINS: nginx listens on a port other than 443 here.)
    """
    await connect(stack.client(), clients, headers={"Origin": stack.origin})
    foreign = stack.client()
    clients.append(foreign)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await foreign.connect(headers={"Origin": "https://elsewhere.example"})


async def test_without_ip_hash_long_polling_breaks(
    stack: Stack, tmp_path: Path, clients: list[BoardClient]
) -> None:
    """The control: the same config round-robin (no ip_hash) breaks polling sessions."""
    http_port, https_port = free_port(), free_port()
    site = render(
        CONFIG.read_text().replace("ip_hash;", "", 1),
        http_port=http_port,
        https_port=https_port,
        backends=[s.port for s in stack.servers],
        cert=stack.cert,
        key=stack.key,
    )
    round_robin = Nginx(tmp_path / "nginx", site).start(https_port)
    try:
        client = stack.client(f"https://127.0.0.1:{https_port}")
        clients.append(client)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.sio.connect(
                client.url, auth={"board": "main"}, transports=["polling"], wait_timeout=2
            )
    finally:
        round_robin.stop()
    # The second request of the session reached the other process, which does not know it.
    assert any('" 400 ' in line for line in round_robin.responses())


async def test_a_backend_restart_moves_its_clients_through_nginx(
    stack: Stack, clients: list[BoardClient]
) -> None:
    """The rolling restart in docs/deploy.md: stop one process, its clients resync elsewhere."""
    websocket = await connect(stack.client(reconnection=True), clients)
    polling = await connect(stack.client(reconnection=True), clients, transports=["polling"])
    stopping = stack.backend_of(websocket)
    assert stack.backend_of(polling) is stopping  # ip_hash: one client address, one backend
    staying = stack.other_than(stopping)
    assert stopping.process is not None
    stopping.process.terminate()  # SIGTERM: uvicorn stops accepting connections at once
    for client in (websocket, polling):
        await client.wait_for(lambda c=client: len(c.of("board:state")) >= 2, timeout=10)
        assert stack.backend_of(client) is staying
    ack = await polling.set("s2", 77)
    assert ack["ok"] is True
    await websocket.wait_for(lambda: websocket.values["s2"] == (77.0, ack["version"]))
    # A process that had long-polling clients does not finish its shutdown on its own (see
    # docs/deploy.md); a service manager kills it after its stop timeout, and so do we.
    try:
        stopping.process.wait(timeout=1)
    except subprocess.TimeoutExpired:
        stopping.kill()
    # Start it again on its port, as the service manager would.
    index = stack.servers.index(stopping)
    stack.servers[index] = ProductionServer(port=stopping.port, env=stack.env).start()
