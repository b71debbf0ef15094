"""Transport edges: connections the server drops, empty frames, long-polling batches, buffers.

Every test runs against a live uvicorn. Raw websockets (`websockets`) and raw HTTP (`aiohttp`)
send what a Socket.IO client library would not, and show what reaches the wire: a drop the
server decides must close the websocket (or answer the long-poll) at once, not leave it open
until the client's ping timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from typing import Any

import aiohttp
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from tests.support.accounts import PASSWORD, live_superuser
from tests.support.clients import BoardClient, ClientLoop, counted
from tests.support.database import stored
from tests.support.http import AdminSession
from tests.support.servers import LiveServer
from tests.support.strategies import json_like
from tests.support.waiting import wait_until

pytestmark = pytest.mark.live


# --- Helpers --------------------------------------------------------------------------------


def ws_url(server: LiveServer) -> str:
    return f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"


def polling_url(server: LiveServer, sid: str | None = None) -> str:
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    return url if sid is None else f"{url}&sid={sid}"


async def raw_websocket(server: LiveServer, board: str, **kwargs: Any) -> Any:
    """A raw websocket with a Socket.IO connection on `board`, past its first board:state."""
    ws = await websockets.connect(ws_url(server), close_timeout=1, **kwargs)
    assert str(await ws.recv()).startswith("0{")  # Engine.IO open
    await ws.send("40" + json.dumps({"board": board}))
    assert str(await ws.recv()).startswith("40{")  # Socket.IO connected
    async with asyncio.timeout(5):
        while not str(await ws.recv()).startswith('42["board:state"'):
            pass
    return ws


async def seconds_until_closed(ws: Any, timeout: float) -> float | None:
    """How long until the server closes the websocket (frames before that are skipped)."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed:
        return time.monotonic() - start
    except TimeoutError:
        return None


async def polling_session(http: aiohttp.ClientSession, server: LiveServer, board: str) -> str:
    """A raw long-polling Socket.IO connection on `board`; returns its Engine.IO sid."""
    async with http.get(polling_url(server)) as response:
        opened = await response.text()
    assert opened.startswith("0{"), opened
    sid = json.loads(opened[1:])["sid"]
    async with http.post(polling_url(server, sid), data="40" + json.dumps({"board": board})) as r:
        assert r.status == 200, await r.text()
    async with http.get(polling_url(server, sid)) as response:
        assert "40{" in await response.text()
    return sid


def rss_bytes(server: LiveServer) -> int:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# --- Drops the server decides ---------------------------------------------------------------

DROPS = ["undecodable", "oversized", "revoked", "deleted", "shutdown"]


@pytest.mark.parametrize("drop", DROPS)
async def test_a_dropped_connection_is_closed_at_the_transport(
    drop: str, make_board, connect_client, start_server
):
    """Whatever makes the server drop a connection, its websocket is closed within a second.

    Before, the server forgot the session but left the websocket open: the page kept saying
    "Connected" and its sets went unanswered until the ping timeout (~45 s).
    """
    server = start_server()
    board = make_board()
    watcher = await connect_client(board.slug, server=server)
    ws = await raw_websocket(server, board.slug)
    await counted(watcher, 2)

    if drop == "undecodable":
        # python-engineio's JSON parser refuses integers of more than 100 digits.
        await ws.send('42["slider:set",{"id":"s1","value":' + "9" * 301 + "}]")
    elif drop == "oversized":
        await ws.send('42["slider:set",{"id":"s1","value":1,"pad":"' + "x" * 20_000 + '"}]')
    elif drop == "revoked":
        live_superuser("ops", "ops@example.com")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            admin = AdminSession(server.url, http)
            await admin.login("ops", PASSWORD)
            await admin.submit(
                f"/admin/sliders/board/{board.pk}/change/", "board_form", view_access="signed_in"
            )
    elif drop == "deleted":
        # Through the live server's admin (services.delete_board), so its clients hear of it.
        live_superuser("ops", "ops@example.com")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            admin = AdminSession(server.url, http)
            await admin.login("ops", PASSWORD)
            path = f"/admin/sliders/board/{board.pk}/delete/"
            assert (await admin.get(path))[0] == 200
            token = http.cookie_jar.filter_cookies(URL(server.url))["csrftoken"].value
            status, _, _ = await admin.post(path, {"csrfmiddlewaretoken": token, "post": "yes"})
            assert status == 302
    elif drop == "shutdown":
        assert server.process is not None
        server.process.terminate()

    took = await seconds_until_closed(ws, timeout=3)
    assert took is not None and took < 1.0, f"{drop}: the websocket stayed open ({took})"
    if drop in ("undecodable", "oversized"):
        await counted(watcher, 1, timeout=1)
        assert stored(board.slug, "s1") == (50, 0)
        assert "Traceback" not in server.log()


@pytest.mark.parametrize("frame", ["1", "41"], ids=["engineio-close", "socketio-disconnect"])
async def test_a_client_that_ends_its_session_has_its_websocket_closed(
    frame: str, make_board, asgi_server
):
    """A client that sends Engine.IO's close packet, or leaves `/` (our only namespace), over a
    websocket it keeps open: the server closes that websocket, instead of leaving it open with
    every later event unanswered until the ping timeout."""
    board = make_board()
    ws = await raw_websocket(asgi_server, board.slug)
    await ws.send(frame)
    took = await seconds_until_closed(ws, timeout=3)
    assert took is not None and took < 1.0, f"{frame!r}: the websocket stayed open ({took})"


@pytest.mark.parametrize(
    "late",
    ["40{}", '42["slider:set",{"id":"s1","value":1}]', "41"],
    ids=["connect", "event", "leave"],
)
async def test_packets_after_the_session_closed_are_dropped_quietly(
    late: str, make_board, start_server
):
    """Packets that arrive on a websocket after its session closed (the client left, the server
    is shutting down) are dropped: nothing answers them and nothing calls them malformed. A
    deploy's SIGTERM met clients still connecting, and each of their connect packets was
    logged as "a malformed packet (KeyError)"."""
    server = start_server()
    board = make_board()
    ws = await raw_websocket(server, board.slug)
    log_before = len(server.log())
    # Both frames in one write: the server reads the second after the first closed the session.
    await ws.send("41")
    await ws.send(late)
    took = await seconds_until_closed(ws, timeout=3)
    assert took is not None and took < 1.0, f"the websocket stayed open ({took})"
    await asyncio.sleep(0.2)
    new_log = server.log()[log_before:]
    assert "malformed" not in new_log and "Traceback" not in new_log, new_log
    assert stored(board.slug, "s1") == (50, 0)


async def test_pings_come_every_interval_and_a_missing_pong_closes_the_connection(
    make_board, start_server
):
    """Engine.IO's heartbeat (sliders.realtime.internals.TimedPingSocket): a ping every
    SOCKETIO_PING_INTERVAL while the client answers; no pong within SOCKETIO_PING_TIMEOUT of a
    ping, and the server closes the websocket."""
    server = start_server(env={"SOCKETIO_PING_INTERVAL": "1", "SOCKETIO_PING_TIMEOUT": "1"})
    board = make_board()
    answering = await raw_websocket(server, board.slug)
    silent = await raw_websocket(server, board.slug)
    try:
        pings = []
        async with asyncio.timeout(10):
            while len(pings) < 3:
                if await answering.recv() == "2":
                    pings.append(time.monotonic())
                    await answering.send("3")
        gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
        assert all(0.8 < gap < 1.5 for gap in gaps), gaps
        # The silent client never answered its first ping (after 1 s): closed about 1 s later.
        closed_after = await seconds_until_closed(silent, timeout=5)
        assert closed_after is not None
    finally:
        await answering.close()
        await silent.close()


async def test_a_shutdown_closes_long_polling_connections_at_once(make_board, start_server):
    """A server asked to stop (SIGTERM) ends its long-polls at once, not after a ping interval.

    Before, uvicorn waited for every open long-poll (up to 25 s) before the server closed the
    sessions, so polling clients learned of the shutdown that late.
    """
    server = start_server()
    board = make_board()
    client = BoardClient(server.url, board.slug)
    await client.connect(transports=["polling"])
    gone = asyncio.Event()
    client.sio.on("disconnect", lambda *args: gone.set())
    await asyncio.sleep(0.3)  # its long-poll is waiting on the server now
    assert server.process is not None
    started = time.monotonic()
    server.process.terminate()
    try:
        async with asyncio.timeout(5):
            await gone.wait()
    except TimeoutError:
        raise AssertionError("no close 5 s after SIGTERM") from None
    took = time.monotonic() - started
    assert took < 1.5, f"the long-polling client learned of the shutdown after {took:.1f}s"
    await client.disconnect()


# --- Empty binary frames --------------------------------------------------------------------


async def test_an_empty_binary_frame_keeps_the_connection(make_board, asgi_server):
    """A zero-length binary frame is valid websocket (RFC 6455); it holds no packet: ignored."""
    board = make_board()
    ws = await raw_websocket(asgi_server, board.slug)
    await ws.send(b"")
    await ws.send('427["slider:set",{"id":"s1","value":7}]')
    async with asyncio.timeout(3):
        while not str(frame := await ws.recv()).startswith("437"):
            pass
    assert json.loads(frame[3:]) == [{"ok": True, "id": "s1", "value": 7, "version": 1}]
    # While a binary message waits for an attachment, an empty frame is that attachment.
    await ws.send('451-8["slider:set",{"id":"s1","value":{"_placeholder":true,"num":0}}]')
    await ws.send(b"")
    async with asyncio.timeout(3):
        while not str(frame := await ws.recv()).startswith("438"):
            pass
    assert json.loads(frame[3:])[0]["error"] == "invalid_value"
    assert stored(board.slug, "s1") == (7, 1)
    await ws.close()


# --- Long-polling ---------------------------------------------------------------------------


async def test_every_set_sent_over_polling_is_answered(make_board, asgi_server):
    """A long-polling client batches what it queued into one POST; every set in it is acked.

    Before, a POST of more than 16 packets was refused by the library yet answered 200 OK:
    no ack, nothing stored, and the page waited for acks that could not come.
    """
    board = make_board()
    client = BoardClient(asgi_server.url, board.slug)
    await client.connect(transports=["polling"])
    try:
        sets = [
            client.sio.call("slider:set", {"id": "s1", "value": value}, timeout=5)
            for value in range(1, 31)
        ]
        acks = await asyncio.gather(*sets)
        assert [ack["ok"] for ack in acks] == [True] * 30, acks
        # Sets still waiting when a newer one arrives share its ack (latest value wins), so
        # many acks come at once: each long-poll response must stay small enough for the
        # python-engineio client to decode (GuardedSocket.poll).
        value, version = stored(board.slug, "s1")
        assert acks[-1] == {"ok": True, "id": "s1", "value": 30, "version": version}
        assert value == 30
        versions = [ack["version"] for ack in acks]
        assert versions == sorted(versions), versions
    finally:
        await client.disconnect()


async def test_a_long_poll_response_holds_no_more_than_a_python_client_decodes(
    make_board, asgi_server
):
    """Many answers at once (superseded sets share an ack) go out in long-poll responses of at
    most 16 packets: python-engineio's client drops a larger payload whole."""
    board = make_board()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        sid = await polling_session(http, asgi_server, board.slug)
        # 40 events the server answers at once, without the database.
        body = "\x1e".join(f'42{n}["no:such:event"]' for n in range(40))
        async with http.post(polling_url(asgi_server, sid), data=body) as response:
            assert response.status == 200, await response.text()
        answered: set[int] = set()
        async with asyncio.timeout(10):
            while len(answered) < 40:
                async with http.get(polling_url(asgi_server, sid)) as response:
                    packets = (await response.text()).split("\x1e")
                assert len(packets) <= 16, len(packets)
                answered |= {int(p[2:].split("[")[0]) for p in packets if p.startswith("43")}
        assert answered == set(range(40))


@pytest.mark.parametrize(
    "payload", ["x-not-a-packet", "4" + "[" * 5000], ids=["not_a_packet", "nested_too_deep"]
)
async def test_a_refused_polling_post_is_answered_with_an_error(
    payload: str, make_board, asgi_server
):
    """A POST the server cannot decode gets 400 (the JS client then reconnects), not 200; JSON
    nested past Python's recursion limit too (it was a 500, with a traceback in the log)."""
    board = make_board()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        sid = await polling_session(http, asgi_server, board.slug)
        async with http.post(polling_url(asgi_server, sid), data=payload) as response:
            assert response.status == 400, (response.status, await response.text())
        async with http.get(polling_url(asgi_server, sid)) as response:
            assert response.status == 400  # the session is gone


async def test_a_session_takes_one_websocket(make_board, asgi_server):
    """A long-polling session upgrades to one websocket. A second upgrade of the same session
    while the first is open is refused: python-engineio refuses one only once an upgrade has
    completed, so two at once both succeeded and split the session's messages between them
    (the ack on one, the next update on the other)."""
    board = make_board()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        sid = await polling_session(http, asgi_server, board.slug)
        upgrade = f"{ws_url(asgi_server)}&sid={sid}"
        first = await websockets.connect(upgrade, close_timeout=1)
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(upgrade, close_timeout=1)
        await first.send("2probe")
        assert await first.recv() == "3probe"
        await first.send("5")  # upgrade
        await first.send('421["slider:set",{"id":"s1","value":3}]')
        async with asyncio.timeout(5):
            while not str(await first.recv()).startswith("431["):
                pass  # the ack comes on the one websocket
        await first.close()
    assert stored(board.slug, "s1")[0] == 3


@pytest.mark.parametrize(
    "failure", ["closed_before_the_probe", "not_engineio", "oversized_probe", "nested_too_deep"]
)
async def test_a_failed_upgrade_leaves_the_session_on_long_polling(
    failure: str, make_board, asgi_server
):
    """An upgrade whose websocket closes before its probe, or sends something that is not one,
    fails; the session carries on over long-polling, where its messages keep coming, and may
    try the upgrade again. python-engineio left it "upgrading": every long-poll was answered at
    once with a NOOP, a busy loop with no messages until the session timed out, and an
    oversized probe was an unhandled exception (a traceback in the log per attempt)."""
    board = make_board()
    mover = BoardClient(asgi_server.url, board.slug)
    await mover.connect()
    log_before = len(asgi_server.log())
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            sid = await polling_session(http, asgi_server, board.slug)
            upgrade = f"{ws_url(asgi_server)}&sid={sid}"
            ws = await websockets.connect(upgrade, close_timeout=1, max_size=None)
            if failure == "closed_before_the_probe":
                await ws.close()
            elif failure == "not_engineio":
                await ws.send("hello")
            elif failure == "nested_too_deep":
                await ws.send("2" + "[" * 5000)  # JSON past Python's recursion limit
            else:
                await ws.send("2" + "x" * 20_000)  # over SOCKETIO_MAX_MESSAGE_BYTES
            assert await seconds_until_closed(ws, timeout=3) is not None
            await mover.set("s1", 5)
            polls, heard = 0, ""
            async with asyncio.timeout(5):
                while "slider:update" not in heard:
                    async with http.get(polling_url(asgi_server, sid)) as response:
                        assert response.status == 200, response.status
                        heard = await response.text()
                    polls += 1
            assert polls <= 2, f"{polls} polls before the update"
            retry = await websockets.connect(upgrade, close_timeout=1)  # the upgrade, again
            await retry.send("2probe")
            assert await retry.recv() == "3probe"
            await retry.close()
    finally:
        await mover.disconnect()
    new_log = asgi_server.log()[log_before:]
    assert "Traceback" not in new_log and "Exception in ASGI" not in new_log, new_log


async def test_a_message_nested_too_deep_closes_the_connection_cleanly(make_board, asgi_server):
    """A message whose JSON nests past Python's recursion limit (5 kB) cannot be decoded:
    python-engineio decodes each websocket message outside its error handling, so it ended the
    handler with an exception (a traceback in the log) and left the session open until its
    ping timeout. The connection is closed, as for any undecodable packet."""
    board = make_board()
    ws = await raw_websocket(asgi_server, board.slug)
    log_before = len(asgi_server.log())
    await ws.send("4" + "[" * 5000)
    took = await seconds_until_closed(ws, timeout=3)
    assert took is not None and took < 1.0, f"the websocket stayed open ({took})"
    await asyncio.sleep(0.2)
    new_log = asgi_server.log()[log_before:]
    assert "Traceback" not in new_log and "Exception in ASGI" not in new_log, new_log
    assert "malformed" in new_log, new_log


# --- Bounds ---------------------------------------------------------------------------------


async def test_per_connection_buffers_are_bounded(make_board, start_server):
    """Attachments, a whole binary message and outgoing queues are bounded per connection.

    Crossing a bound closes that connection at once; others keep theirs.
    """
    server = start_server(env={"SOCKETIO_MAX_QUEUED_BYTES": "3000"})
    board = make_board()
    watcher = BoardClient(server.url, board.slug)
    await watcher.connect()
    try:
        # 1. A binary message announcing 999,999,999 attachments, then 60 MB of 15 KB frames.
        rss_before = rss_bytes(server)
        ws = await raw_websocket(server, board.slug)
        await ws.send('45999999999-["slider:set",{"_placeholder":true,"num":0}]')
        frame, sent = b"\x00" * 15_000, 0
        start = time.monotonic()
        try:
            for _ in range(4_000):
                await ws.send(frame)
                sent += len(frame)
        except websockets.ConnectionClosed:
            pass
        took = await seconds_until_closed(ws, timeout=2)
        grown = rss_bytes(server) - rss_before
        assert took is not None, f"still open after {sent} bytes of attachments"
        assert time.monotonic() - start < 5
        assert grown < 20 * 1024 * 1024, f"the server grew by {grown} bytes"

        # 2. Few attachments, but together larger than SOCKETIO_MAX_MESSAGE_BYTES (16 KB).
        ws = await raw_websocket(server, board.slug)
        await ws.send('452-["slider:set",{"_placeholder":true,"num":0}]')
        await ws.send(frame)
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(frame)
        assert await seconds_until_closed(ws, timeout=2) is not None

        # 3. A long-polling client that never polls while the board's traffic flows.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            sid = await polling_session(http, server, board.slug)
            await counted(watcher, 2)
            grabbers = [BoardClient(server.url, board.slug) for _ in range(3)]
            for grabber in grabbers:
                await grabber.connect()
            try:
                for _ in range(10):  # each grab and release is a slider:hands to the room
                    for grabber in grabbers:
                        await grabber.call("slider:grab", {"id": "s1"})
                        await grabber.call("slider:release", {"id": "s1"})
                await counted(watcher, 4, timeout=3)  # the poller is gone, the grabbers are here
            finally:
                for grabber in grabbers:
                    await grabber.disconnect()
            async with http.get(polling_url(server, sid)) as response:
                body = await response.text()
            assert response.status == 400 or body.endswith("1"), (response.status, body[-200:])

        assert watcher.sio.connected
        ack = await watcher.set("s2", 3)
        assert ack == {"ok": True, "id": "s2", "value": 3, "version": 1}
        assert "Traceback" not in server.log()
    finally:
        await watcher.disconnect()


def tcp_state(local_port: int, remote_port: int) -> str | None:
    """The kernel's state of the loopback TCP socket between two ports (None: there is none)."""
    states = {"01": "established", "04": "fin-wait-1", "07": "close", "08": "close-wait"}
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
            if (local, remote) == (local_port, remote_port):
                return states.get(fields[3], fields[3])
    return None


# Why the server drops a client that stops reading, the settings that make it happen quickly,
# and the line it logs then.
STOPPED_READING = {
    "queue-full": ({"SOCKETIO_MAX_QUEUED_BYTES": "300000"}, "does not read what it is sent"),
    "ping-timeout": (
        {"SOCKETIO_PING_INTERVAL": "1", "SOCKETIO_PING_TIMEOUT": "1"},
        "(ping timeout)",
    ),
}


@pytest.mark.parametrize("why", list(STOPPED_READING))
async def test_a_websocket_that_stops_reading_is_closed_at_the_transport_when_dropped(
    why: str, make_board, start_server
):
    """A websocket client that stops reading while the board's messages flow: once the server
    drops it (its send queue passes SOCKETIO_MAX_QUEUED_BYTES, or it stops answering pings)
    the connection is closed at once, freeing what waited for it. A close frame would wait
    behind everything it never reads, holding the connection (and megabytes of buffers) open
    outside every limit for as long as the client likes.
    """
    settings, dropped = STOPPED_READING[why]
    server = start_server(env=settings)
    sliders = [{"slug": f"s{i}", "name": f"{i} " + "x" * 110, "unit": "u" * 16} for i in range(300)]
    board = make_board(sliders=sliders)
    watcher = BoardClient(server.url, board.slug)
    await watcher.connect()
    reader = socket.socket()
    # A small window and small segments keep the server's kernel from buffering megabytes first.
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    reader.connect(("127.0.0.1", server.port))
    reader_port = reader.getsockname()[1]
    # The library reads a frame ahead (max_queue=1) and then stops reading: so does the kernel.
    ws = await raw_websocket(server, board.slug, sock=reader, max_queue=1, ping_interval=None)
    try:
        await counted(watcher, 2)
        # Each saved preset sends every client a new board:state (about 70 KB here): 30 of
        # them fill the connection, so that it cannot take more (queue-full needs fewer).
        for number in range(30):
            if dropped in server.log():
                break
            ack = await watcher.call("preset:save", {"name": f"p{number}"})
            assert ack["ok"] is True, ack
        await wait_until(lambda: dropped in server.log(), 5, "the server to drop it")
        await counted(watcher, 1)
        await wait_until(
            lambda: tcp_state(server.port, reader_port) is None, 1, "the server to close it"
        )
        assert tcp_state(reader_port, server.port) != "established"
        assert (await watcher.set("s1", 3))["ok"] is True
        assert "Traceback" not in server.log() and "ASGI" not in server.log()
    finally:
        await watcher.disconnect()
        await ws.close()


# --- Property: raw Engine.IO / Socket.IO frames ---------------------------------------------

PREFIXES = st.sampled_from(
    ["4", "40", "41", "42", "43", "44", "45", "46", "451-", "452-", "4510-", "45999999999-",
     "461-", "450-", "2", "3", "5", "6", "1", "9", "b", "42/", "421", "4200000"]
)  # fmt: skip
TEXT_FRAMES = st.builds(
    lambda prefix, body: prefix + body,
    PREFIXES,
    st.one_of(
        json_like(3).map(lambda value: json.dumps(value)),
        st.lists(json_like(2), max_size=3).map(lambda items: json.dumps(["slider:set", *items])),
        st.just('["slider:set",{"id":"s1","value":{"_placeholder":true,"num":0}}]'),
        st.text(max_size=30),
    ),
)
FRAMES = st.lists(
    st.one_of(TEXT_FRAMES, st.binary(max_size=64), st.just(b"")), min_size=1, max_size=5
)


def test_property_raw_frames_are_answered_or_closed(
    start_server: Any, make_board: Any, client_loop: ClientLoop
) -> None:
    """Any sequence of raw frames, binary events and attachments included: the server stays up,
    other clients keep their connections, and the sender is answered or closed, never left
    hanging with its websocket open."""
    server = start_server(env={"SLIDER_SET_RATE": "100000", "SLIDER_SET_BURST": "100000"})
    board = make_board()
    bystander = BoardClient(server.url, board.slug)
    client_loop.run(bystander.connect())
    outcomes = {"answered": 0, "closed": 0}

    async def attempt(frames: list[str | bytes]) -> str:
        ws = await raw_websocket(server, board.slug)
        try:
            for frame in frames:
                await ws.send(frame)
            # Probes: more than any binary message may take as attachments, each with an ack id.
            for probe in range(20):
                await ws.send(f'42{900 + probe}["slider:set",{{"id":"s2","value":5}}]')
            async with asyncio.timeout(3):
                while True:
                    if str(await ws.recv()).startswith("439"):
                        return "answered"
        except websockets.ConnectionClosed:
            return "closed"
        except TimeoutError:
            return "left hanging"
        finally:
            await ws.close()

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(frames=FRAMES)
    def example(frames: list[str | bytes]) -> None:
        outcome = client_loop.run(attempt(frames), timeout=15)
        assert outcome in outcomes, (frames, outcome)
        outcomes[outcome] += 1
        assert bystander.sio.connected

    example()
    ack = client_loop.run(bystander.set("s1", 3))
    assert ack["ok"] is True and ack["value"] == 3
    client_loop.run(bystander.disconnect())
    assert server.process is not None and server.process.poll() is None
    assert "Traceback" not in server.log()
    assert outcomes["answered"] and outcomes["closed"], outcomes
