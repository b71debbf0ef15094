"""OSC bridges and the Python client against inputs their first tests did not try: hostile
address patterns, targets moved to another desk, values a float32 cannot hold, addresses that
are not OSC addresses, a client given a URL without http:// or failing to connect again and again.

Live: a real uvicorn running the bridges in-process (checking the settings every 0.2 s, which is
how it learns of what these tests save), real UDP sockets for the desks.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.database import stored
from tests.support.osc import OSC_SERVER_ENV, add_target, free_udp_port
from tests.support.servers import LiveServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.live


async def test_an_address_pattern_full_of_wildcards_does_not_stall_the_server(
    make_board, connect_client, peers
):
    """OSC patterns are matched against every slider address; a pattern whose matching
    backtracks exponentially (`/b/**********...x`) must not hold the event loop."""
    server = LiveServer(env=OSC_SERVER_ENV).start()  # its own: a stalled loop would stay stalled
    try:
        port = free_udp_port()
        board = make_board(
            sliders=[{"slug": "brightness-of-the-left-wash", "min": 0, "max": 100, "value": 5}],
            osc_port=port,
        )
        desk = await peers()
        add_target(board, desk.port)
        address = f"/{board.slug}/brightness-of-the-left-wash"
        await desk.wait_for(address, 5.0)
        client = await connect_client(board.slug, server=server)

        for stars in (30, 200):
            desk.send(f"/{board.slug}/" + "*" * stars + "x", 1.0, to=port)
            desk.send(f"/{board.slug}/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*q", 1.0, to=port)
        ack = await asyncio.wait_for(client.set("brightness-of-the-left-wash", 7), 5)
        assert ack["ok"] is True
        # Patterns still work: one that matches sets the slider.
        desk.send(f"/{board.slug}/*left*", 9.0, to=port)
        await wait_until(lambda: stored(board, "brightness-of-the-left-wash")[0] == 9.0, 5)
    finally:
        server.stop()


async def test_a_target_pointed_at_another_desk_is_first_sent_every_value(
    make_board, osc_server, peers
):
    """Changing a target's host or port in the admin is a new desk: like a new target, it gets
    every slider's current value, not only the next change."""
    from sliders import services

    board = make_board(
        sliders=[
            {"slug": "s1", "min": 0, "max": 100, "value": 50},
            {"slug": "s2", "min": 0, "max": 100, "value": 20, "osc_address": "/desk/fader/2"},
        ]
    )
    old_desk, new_desk = await peers(), await peers()
    target = add_target(board, old_desk.port)
    await old_desk.wait_for(f"/{board.slug}/s1", 50.0)
    await old_desk.wait_for("/desk/fader/2", 20.0)

    target.port = new_desk.port
    services.save_osc_target(target=target)
    await new_desk.wait_for(f"/{board.slug}/s1", 50.0)
    await new_desk.wait_for("/desk/fader/2", 20.0)


async def test_a_slider_given_another_osc_address_is_sent_there(
    make_board, osc_server, peers, stable_content_types
):
    """The desk listens at the new address: it gets the slider's value there at once."""
    import aiohttp

    from tests.support.accounts import PASSWORD, live_superuser
    from tests.support.http import AdminSession

    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    desk = await peers()
    add_target(board, desk.port)
    await desk.wait_for(f"/{board.slug}/s1", 50.0)

    live_superuser("osc-admin", "osc@example.com")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        admin = AdminSession(osc_server.url, http)
        await admin.login("osc-admin", PASSWORD)
        page = f"/admin/sliders/board/{board.pk}/change/"
        await admin.submit(page, "board_form", **{"sliders-0-osc_address": "/mixer/1/fader"})
        await desk.wait_for("/mixer/1/fader", 50.0)
        await admin.submit(page, "board_form", **{"sliders-0-osc_normalized": "on"})
        await desk.wait_for("/mixer/1/fader", 0.5)


async def test_a_value_a_float32_cannot_hold_is_sent_and_the_target_keeps_working(
    make_board, connect_client, osc_server, peers
):
    """A float32 goes up to about 3.4e38; a slider may range further. Such a value goes out as
    a double instead of failing every send to the target (and the other sliders' with it)."""
    from sliders.models import OscTarget

    board = make_board(
        sliders=[
            {"slug": "far", "min": -1e39, "max": 1e39, "step": 1e36, "value": 1e39},
            {"slug": "s1", "min": 0, "max": 100, "value": 50},
        ]
    )
    desk = await peers()
    target = add_target(board, desk.port)
    await desk.wait_for(f"/{board.slug}/s1", 50.0)
    await desk.wait_for(f"/{board.slug}/far", 1e39)
    client = await connect_client(board.slug, server=osc_server)
    assert (await client.set("s1", 60))["ok"] is True
    assert (await client.set("far", -1e39))["ok"] is True
    await desk.wait_for(f"/{board.slug}/s1", 60.0)
    await desk.wait_for(f"/{board.slug}/far", -1e39)
    await wait_until(lambda: OscTarget.objects.get(pk=target.pk).state == "ok", 5)


@pytest.mark.parametrize(
    "address",
    ["main/s1", "/main/*", "/main/s?", "/main/{s1,s2}", "/main/[12]", "/main/s 1", "/a#b",
     "/a,b", "/main//s1", "/main/", "/", "/main/gr\u00fcn", "/main/\x07"],
)  # fmt: skip
def test_an_osc_address_that_is_not_a_plain_osc_address_is_refused(make_board, address):
    """A slider's OSC address is where it is sent and what matches incoming patterns: one with
    pattern characters would move every fader the pattern matches at the desk, and one without
    a leading slash no desk takes. The admin's form says so instead of saving it."""
    from django.core.exceptions import ValidationError

    from sliders.models import Slider

    board = make_board(sliders=[{"slug": "s1"}])
    slider = Slider.objects.get(board=board, slug="s1")
    slider.osc_address = address
    with pytest.raises(ValidationError) as refused:
        slider.full_clean()
    assert list(refused.value.message_dict) == ["osc_address"]
    slider.osc_address = "/mixer/1/fader-left_2.gain"
    slider.full_clean()


# --- The Python client ----------------------------------------------------------------------


async def test_a_url_without_http_is_refused_with_the_clients_own_error():
    """`127.0.0.1:8000` (no scheme) or `ftp://...` is a mistake the client names, not an
    aiohttp exception from deep inside python-socketio."""
    from slidersync_client import Board, ConnectionFailedError

    for url in ("127.0.0.1:8000", "ftp://127.0.0.1:8000", "localhost"):
        with pytest.raises(ConnectionFailedError) as refused:
            await Board.connect(url, "main", timeout=2)
        assert "http://" in refused.value.message


async def test_a_connection_that_fails_leaves_nothing_open(asgi_server, make_board):
    """A script that retries connecting must not leak an HTTP session per attempt (aiohttp
    reports each one as "Unclosed client session" when it is collected)."""
    import gc

    from slidersync_client import Board, ConnectionFailedError, UnknownBoardError

    from tests.support.servers import free_port

    make_board()
    leaks: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: leaks.append(context["message"]))
    try:
        for _ in range(3):
            with pytest.raises(ConnectionFailedError):
                await Board.connect(f"http://127.0.0.1:{free_port()}", "main", timeout=2)
            with pytest.raises(UnknownBoardError):
                await Board.connect(asgi_server.url, "no-such-board")
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert leaks == []


async def test_a_desk_value_stored_snapped_is_sent_back_to_that_desk(make_board, osc_server, peers):
    port = free_udp_port()
    board = make_board(
        sliders=[{"slug": "s1", "min": 0, "max": 100, "step": 10, "value": 50}], osc_port=port
    )
    desk = await peers()
    add_target(board, desk.port)
    address = f"/{board.slug}/s1"
    await desk.wait_for(address, 50.0)
    desk.send(address, 33.0, to=port)  # stored as 30
    await wait_until(lambda: stored(board, "s1")[0] == 30.0, 5)
    await desk.wait_for(address, 30.0, timeout=2)
