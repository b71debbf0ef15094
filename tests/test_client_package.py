"""The client ships as its own package: `pip install ./client` into a clean virtual environment
(no project, no Django, its dependencies from the package index) gives a working client.

Slow-ish (a minute: a fresh venv, a build, downloads); skipped without a package index, except
under CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import PROJECT_DIR
from tests.support.services import unavailable

pytestmark = pytest.mark.live

# Run with the clean venv's Python: set a slider and print what the board holds.
SCRIPT = """
import json, sys
from slidersync_client import UnknownSliderError
from slidersync_client.sync import Board

with Board.connect(sys.argv[1], sys.argv[2]) as board:
    stored = board.set("s1", 42)
    try:
        board.set("nope", 1)
        refused = None
    except UnknownSliderError as error:
        refused = error.code
    print(json.dumps({"values": board.values, "stored": [stored.value, stored.version],
                      "refused": refused}))
"""

OFFLINE = ("NewConnectionError", "No matching distribution", "Could not find a version")


def test_pip_installs_the_client_into_a_clean_venv(tmp_path: Path, asgi_server, make_board) -> None:
    board = make_board()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "./client"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if install.returncode != 0 and any(sign in install.stderr for sign in OFFLINE):
        unavailable(f"pip cannot reach a package index: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr

    # Clean: the project and its dependencies are not there, only the client's.
    isolated = subprocess.run(
        [python, "-c", "import django"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert isolated.returncode != 0
    package = subprocess.run(
        [python, "-c", "import slidersync_client, pathlib; print(slidersync_client.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    installed = Path(package.stdout.strip()).parent
    assert installed.is_relative_to(venv) and (installed / "py.typed").exists()

    run = subprocess.run(
        [python, "-c", SCRIPT, asgi_server.url, board.slug],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "values": {"s1": 42.0, "s2": 50.0},
        "stored": [42.0, 1],
        "refused": "unknown_slider",
    }
