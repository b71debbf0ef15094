"""`manage.py serve_lan`: a board for the people in this room, served safely on the LAN.

The server runs in a network namespace of its own (tests/support/netns.py), where the machine
has a LAN address, and is seen from there as a phone would see it (tests/support/lan_probe.py).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.support.netns import LAN_ADDRESS, PrivateNetwork
from tests.support.servers import PROJECT_DIR, free_port, stop_process, wait_for_start

pytestmark = pytest.mark.live


@pytest.fixture
def private_network() -> Iterator[PrivateNetwork]:
    network = PrivateNetwork().start()
    try:
        yield network
    finally:
        network.stop()


class LanServer:
    """`manage.py serve_lan` in the private network, on a fresh SQLite database in `var_dir`."""

    def __init__(self, network: PrivateNetwork, var_dir: Path) -> None:
        self.network = network
        self.port = free_port()
        self.url = f"http://{LAN_ADDRESS}:{self.port}/"
        # The test process's environment (DEBUG=true among it), as a person's shell might have.
        self.env = {**os.environ, "VAR_DIR": str(var_dir)}
        self.env["DJANGO_SETTINGS_MODULE"] = "sliderproject.settings"
        for name in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):
            self.env.pop(name, None)
        self.log_path = var_dir.parent / f"serve-lan-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> LanServer:
        """Start it and wait until it has become uvicorn and listens (migrated, URLs printed)."""
        argv = [sys.executable, "manage.py", "serve_lan", "--port", str(self.port), *options]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.network.command(argv),
                cwd=PROJECT_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_start(
            self.process, lambda: "Uvicorn running on" in self.output(),
            timeout=60, name="serve_lan", log=self.output,
        )  # fmt: skip
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def environment(self) -> dict[str, str]:
        """The environment the serving process runs with (serve_lan has become uvicorn)."""
        assert self.process is not None
        raw = Path(f"/proc/{self.process.pid}/environ").read_bytes()
        pairs = (item.decode().partition("=") for item in raw.split(b"\0") if item)
        return {name: value for name, _, value in pairs}

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=self.env,
                       check=True, capture_output=True)  # fmt: skip

    def probe(self) -> dict:
        """What a phone on the LAN sees: see tests/support/lan_probe.py."""
        argv = [sys.executable, "-m", "tests.support.lan_probe", self.url, "main"]
        seen = subprocess.run(
            self.network.command(argv), cwd=PROJECT_DIR, env=self.env, capture_output=True,
            timeout=180,
        )  # fmt: skip
        assert seen.returncode == 0, seen.stderr.decode() + self.output()
        return json.loads(seen.stdout)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def test_serve_lan_serves_the_room_with_production_settings(private_network, tmp_path) -> None:
    var_dir = tmp_path / "var"
    server = LanServer(private_network, var_dir).start()
    try:
        printed = server.output()
        assert f"    {server.url}\n" in printed  # the index: there is no board yet
        assert "▄" in printed  # the QR code
        server.manage("load_demo")  # works only because serve_lan migrated the new database
        seen = server.probe()
        environment = server.environment()
    finally:
        server.stop()

    assert seen["board"]["status"] == 200 and 'type="range"' in seen["board"]["body"]
    # DEBUG is off although the shell said DEBUG=true: the production 404 page, not Django's.
    assert seen["missing"]["status"] == 404
    assert "Not found · Slider Sync" in seen["missing"]["body"]
    assert "DEBUG = True" not in seen["missing"]["body"]
    # Static files as in production (cached, not re-read on every request as in DEBUG).
    assert seen["static"]["status"] == 200
    assert seen["static"]["headers"]["cache-control"] == "max-age=60, public"
    # Only the machine's own names and addresses: another Host is refused (DNS rebinding).
    assert seen["foreign_host"]["status"] == 400
    # A socket from the page's origin connects, gets the board and may move a slider.
    assert [s["id"] for s in seen["socket"]["state"]["sliders"]] == ["s1", "s2"]
    assert seen["socket"]["ack"] == {"ok": True, "id": "s1", "value": 42, "version": 1}

    key_file = var_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert environment["SECRET_KEY"] == key_file.read_text().strip()
    assert environment["DEBUG"] == "false"
    assert LAN_ADDRESS in environment["ALLOWED_HOSTS"].split(",")
    assert (var_dir / "db.sqlite3").exists()
    # The database holds password hashes and token digests: as private as the key, and so are
    # the files SQLite makes beside it (-wal, -shm).
    readable = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in var_dir.glob("db.sqlite3*")}
    assert all(mode == oct(0o600) for mode in readable.values()), readable


def test_serve_lan_keeps_its_secret_key_across_restarts(private_network, tmp_path) -> None:
    var_dir = tmp_path / "var"
    server = LanServer(private_network, var_dir).start()
    try:
        first = server.environment()["SECRET_KEY"]
    finally:
        server.stop()
    key_file = var_dir / "secret_key"
    key_file.chmod(0o644)  # someone loosened it: made private again at the next start
    server.manage("load_demo")

    server = LanServer(private_network, var_dir).start("--board", "main")
    try:
        second = server.environment()["SECRET_KEY"]
        assert f"{server.url}b/main/" in server.output()  # the URL and QR code open the board
    finally:
        server.stop()
    assert second == first == key_file.read_text().strip()
    assert len(first) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_serve_lan_refuses_a_board_that_does_not_exist(db, settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="no board 'nope'"):
        call_command("serve_lan", "--port", str(free_port()), "--board", "nope")
