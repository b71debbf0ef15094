"""`manage.py runserver` serves the whole ASGI app: pages, static files and the socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.clients import BoardClient
from tests.support.servers import PROJECT_DIR, free_port, stop_process, wait_for_start

pytestmark = pytest.mark.live


class Runserver(NamedTuple):
    url: str
    log_path: Path


@pytest.fixture
def runserver(django_db_setup):
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sliderproject.settings"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log_path = PROJECT_DIR / "var" / f"runserver-test-{port}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        # With the auto-reloader on, as a developer runs it; its own session so we can stop
        # both the reloader and the server process it spawns.
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text()) from None
                time.sleep(0.1)
        yield Runserver(url, log_path)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        log_path.unlink(missing_ok=True)


async def test_runserver_serves_pages_static_and_socket(make_board, runserver):
    url = runserver.url
    board = make_board()
    with urllib.request.urlopen(f"{url}/b/{board.slug}/") as response:
        assert 'type="range"' in response.read().decode()
    with urllib.request.urlopen(f"{url}/static/sliders/vendor/socket.io.min.js") as response:
        assert response.status == 200

    watcher, mover = BoardClient(url, board.slug), BoardClient(url, board.slug)
    await watcher.connect()
    await mover.connect()
    try:
        ack = await mover.set("s1", 12)
        assert ack["ok"] is True
        await watcher.wait_for(lambda: watcher.values["s1"] == (12.0, 1))
    finally:
        await watcher.disconnect()
        await mover.disconnect()
    # uvicorn logs at INFO here, but not a line per websocket (sliders.realtime.internals).
    log = runserver.log_path.read_text()
    assert "Uvicorn running on" in log
    assert "[accepted]" not in log
    assert "connection open" not in log


@pytest.mark.parametrize(("address", "warns"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_runserver_on_a_network_address_warns_loudly(django_db_setup, tmp_path, address, warns):
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sliderproject.settings", "DEBUG": "true"}
    env.pop("SECRET_KEY", None)
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"{address}:{port}"],
            cwd=PROJECT_DIR, env=env, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        wait_for_start(
            process, lambda: "Starting development server" in out.read_text(),  # after the warning
            timeout=30, name="runserver", log=err.read_text,
        )  # fmt: skip
    finally:
        stop_process(process)
    warning = err.read_text()
    if not warns:
        assert "WARNING" not in warning
        return
    assert f"listening on {address}" in warning
    assert "DEBUG is on" in warning
    assert "development key" in warning
    assert "scripts/serve-lan" in warning and "manage.py serve_lan" in warning
