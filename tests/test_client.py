"""The Python client (client/, `slidersync_client`) against a live server, and `slider watch`.

Real servers (uvicorn) and real sockets; the other people on a board are the tests'
BoardClient (python-socketio) or a second client.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from slidersync_client import (
    Board,
    Change,
    ConflictError,
    ConnectionFailedError,
    ForbiddenError,
    InvalidValueError,
    Slider,
    SliderSyncError,
    UnauthorizedError,
    UnknownBoardError,
    UnknownSliderError,
)
from slidersync_client import sync as blocking

from sliders import services
from tests.support.servers import LIVE_SETTINGS, PROJECT_DIR, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.live

GAIN = {"slug": "gain", "name": "Gain", "min": -60, "max": 12, "step": 0.5, "unit": "dB"}


async def next_change(changes: Any, timeout: float = 10) -> Change:
    return await asyncio.wait_for(anext(changes), timeout)


async def test_connect_reads_the_board(asgi_server, make_board) -> None:
    board = make_board(name="Desk", sliders=[{**GAIN, "value": -6, "precision": 1}])
    async with Board.connect(asgi_server.url, board.slug) as desk:
        assert desk.connected and desk.name == "Desk" and desk.can_edit
        assert desk.values == {"gain": -6.0}
        assert desk.versions == {"gain": 0}
        assert desk.sliders == {
            "gain": Slider("gain", "Gain", -60.0, 12.0, 0.5, unit="dB", precision=1)
        }
    assert not desk.connected


async def test_set_returns_what_was_stored_and_others_see_it(
    asgi_server, make_board, connect_client
) -> None:
    board = make_board(sliders=[{**GAIN, "value": -6}])
    other = await connect_client(board.slug)
    async with Board.connect(asgi_server.url, board.slug) as desk:
        # Clamped to the range and snapped to the step, as for every client.
        assert await desk.set("gain", -3.3) == Change("gain", -3.5, 1)
        assert await desk.set("gain", 99) == Change("gain", 12.0, 2)
        assert desk.values == {"gain": 12.0} and desk.versions == {"gain": 2}
    await other.wait_for(lambda: other.values["gain"] == (12, 2))


async def test_a_refused_set_raises_its_error_code(asgi_server, make_board) -> None:
    open_board = make_board(sliders=[{**GAIN, "value": 0}])
    read_only = make_board(sliders=[{**GAIN, "value": 0}], edit_access="nobody")
    async with Board.connect(asgi_server.url, read_only.slug) as display:
        assert display.can_edit is False
        with pytest.raises(ForbiddenError) as refused:
            await display.set("gain", 1)
        assert refused.value.code == "forbidden" and refused.value.message
    async with Board.connect(asgi_server.url, open_board.slug) as desk:
        with pytest.raises(UnknownSliderError):
            await desk.set("nope", 1)
        for bad in (float("nan"), float("inf"), True, "1"):
            with pytest.raises(InvalidValueError):
                await desk.set("gain", bad)  # type: ignore[arg-type]
        await desk.set("gain", 5)  # version 1
        services.set_slider_value(
            board=open_board.slug, slider_id="gain", value=7, actor=services.Actor()
        )
        with pytest.raises(ConflictError) as conflict:
            await desk.set("gain", 1, base_version=1)
        assert (conflict.value.code, conflict.value.value, conflict.value.version) == (
            "conflict",
            7.0,
            2,
        )
    assert stored_value(open_board.slug) == (7.0, 2)


def stored_value(board: str) -> tuple[float, int]:
    from sliders.models import Slider as Row

    row = Row.objects.get(board__slug=board, slug="gain")
    return row.value, row.version


async def test_changes_are_other_clients_changes(asgi_server, make_board, connect_client) -> None:
    board = make_board(
        sliders=[{**GAIN, "value": 0}, {"slug": "pan", "min": -1, "max": 1, "step": 0.25}]
    )
    async with Board.connect(asgi_server.url, board.slug) as desk:
        changes = desk.changes()
        await desk.set("gain", 3)  # its own: answered by set, not repeated in changes()
        other = await connect_client(board.slug)
        assert (await other.set("pan", 0.5))["ok"]
        assert await next_change(changes) == Change("pan", 0.5, 1)
        assert (await other.set("gain", -12))["ok"]
        assert await next_change(changes) == Change("gain", -12.0, 2)
        assert desk.values == {"gain": -12.0, "pan": 0.5}


async def test_a_slow_consumer_gets_each_sliders_latest_value(
    asgi_server, make_board, connect_client
) -> None:
    board = make_board(sliders=[{**GAIN, "value": 0}])
    async with Board.connect(asgi_server.url, board.slug) as desk:
        changes = desk.changes()
        other = await connect_client(board.slug)
        for value in (1, 2, 3):
            assert (await other.set("gain", value))["ok"]
        await wait_until(lambda: desk.versions["gain"] == 3, what="the third update")
        assert await next_change(changes) == Change("gain", 3.0, 3)


async def test_the_client_survives_a_server_restart(start_server, make_board) -> None:
    """The server goes away; a change is made meanwhile; the client comes back and has it."""
    board = make_board(sliders=[{**GAIN, "value": 0}])
    server = start_server()
    async with Board.connect(server.url, board.slug) as desk:
        changes = desk.changes()
        server.stop()
        await wait_until(lambda: not desk.connected, what="the client to notice")
        # While it is away: stored in the database, announced to nobody.
        services.set_slider_value(
            board=board.slug, slider_id="gain", value=-20, actor=services.Actor()
        )
        server.start()  # the same port
        assert await next_change(changes, timeout=20) == Change("gain", -20.0, 1)
        assert desk.connected
        assert await desk.set("gain", -10) == Change("gain", -10.0, 2)


async def test_a_board_made_private_ends_an_anonymous_client(
    asgi_server, make_board, admin_http
) -> None:
    """The server drops the connection on purpose; the client tries again, is refused for good,
    and says so instead of retrying forever."""
    board = make_board(sliders=[{**GAIN, "value": 0}])
    async with Board.connect(asgi_server.url, board.slug) as desk:
        changes = desk.changes()
        await admin_http.submit(
            f"/admin/sliders/board/{board.pk}/change/", "board_form", view_access="signed_in"
        )
        with pytest.raises(ForbiddenError):
            await next_change(changes)
        with pytest.raises(ForbiddenError):
            await desk.set("gain", 1)
        assert not desk.connected


async def test_a_refused_or_unreachable_connection_raises(asgi_server, make_board) -> None:
    make_board()
    with pytest.raises(UnknownBoardError) as refused:
        await Board.connect(asgi_server.url, "no-such-board")
    assert "no-such-board" in refused.value.message
    with pytest.raises(ConnectionFailedError):
        await Board.connect(f"http://127.0.0.1:{free_port()}", "main", timeout=2)


def editor_token(username: str) -> str:
    user = User.objects.create_user(username)
    user.user_permissions.add(Permission.objects.get(codename="change_slider"))
    return services.issue_api_token(user=user, name="script")[1]


async def test_a_token_is_accepted_or_refused(asgi_server, make_board) -> None:
    board = make_board(view_access="signed_in", edit_access="editors")
    token = editor_token("robot")
    async with Board.connect(asgi_server.url, board.slug, token=token) as desk:
        assert desk.can_edit
        assert await desk.set("s1", 61) == Change("s1", 61.0, 1)
    with pytest.raises(ForbiddenError):
        await Board.connect(asgi_server.url, board.slug)  # anonymous
    with pytest.raises(UnauthorizedError) as refused:
        await Board.connect(asgi_server.url, board.slug, token=token[:-2] + "xx")
    assert refused.value.code == "unauthorized"


def test_the_blocking_client(asgi_server, make_board) -> None:
    board = make_board(sliders=[{**GAIN, "value": 0}])
    with (
        blocking.Board.connect(asgi_server.url, board.slug) as watcher,
        blocking.Board.connect(asgi_server.url, board.slug) as desk,
    ):
        assert watcher.values == {"gain": 0.0} and watcher.name == board.slug
        changes = watcher.changes()
        assert desk.set("gain", 4.2) == Change("gain", 4.0, 1)
        assert next(changes) == Change("gain", 4.0, 1)
        with pytest.raises(SliderSyncError) as refused:
            desk.set("nope", 1)
        assert refused.value.code == "unknown_slider"

        # close() from another thread ends an iteration that waits.
        seen: list[Any] = []
        reader = threading.Thread(target=lambda: seen.extend(changes))
        reader.start()
        watcher.close()
        reader.join(timeout=10)
        assert not reader.is_alive() and seen == []


def test_slider_watch_prints_changes_live(asgi_server, make_board) -> None:
    board = make_board(sliders=[{**GAIN, "value": 0}])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": LIVE_SETTINGS}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    watch = subprocess.Popen(
        [sys.executable, "manage.py", "slider", "watch", board.slug, "--url", asgi_server.url],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "Watching" in watch.stderr.readline()  # connected, holding the board
        with blocking.Board.connect(asgi_server.url, board.slug) as desk:
            desk.set("gain", -3)
        line = watch.stdout.readline().split()
        assert line[1:] == ["gain", "-3", "(version", "1)"], line
        assert len(line[0]) == len("22:15:03.123")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=10) == 0, watch.stderr.read()
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def test_slider_watch_says_why_it_cannot_watch(asgi_server, make_board) -> None:
    make_board()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": LIVE_SETTINGS}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "slider", "watch", "no-such-board", "--url", asgi_server.url,
         "--json"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "There is no board 'no-such-board'." in result.stderr


def test_slider_watch_json_lines() -> None:
    """--json: one object a line, with the full local time."""
    from sliders.management.commands.slider import Command

    line = json.loads(Command.change_line(Change("gain", -3.0, 1), as_json=True))
    assert {k: line[k] for k in ("slider", "value", "version")} == {
        "slider": "gain",
        "value": -3.0,
        "version": 1,
    }
    assert line["time"][10] == "T"
