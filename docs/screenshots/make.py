"""Make the README's screenshots from the running product (run it as scripts/screenshots).

A throwaway SQLite database gets a demo mix through the services, a uvicorn serves it on a free
port, and Debian's Chromium (through Playwright) takes: docs/screenshot.png (two browsers on one
board, one of them dragging), docs/screenshots/board.png (the whole page) and phone.png (a phone
in dark mode).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCS = PROJECT_DIR / "docs"
BOARD = "stage"
DEMO = """
from sliders import services
from sliders.models import Board, Slider

board = Board.objects.create(slug="stage", name="Stage mix")
for position, (slug, name, low, high, step, unit, precision, value) in enumerate([
    ("master", "Master", -60, 6, 0.5, "dB", 1, -15),
    ("vocals", "Vocals", -60, 6, 0.5, "dB", 1, -6),
    ("reverb", "Reverb", 0, 100, 1, "%", None, 35),
    ("tempo", "Tempo", 60, 180, 1, "BPM", None, 120),
]):
    slider = Slider(board=board, slug=slug, name=name, min=low, max=high, step=step, unit=unit,
                    precision=precision, position=position)
    services.save_slider(slider=slider, requested_value=value)
for name, values in [
    ("Quiet", {"master": -30, "vocals": -12, "reverb": 10}),
    ("Show", {"master": -6, "vocals": -3, "reverb": 40}),
    ("Soundcheck", {"master": -20, "vocals": 0, "reverb": 0, "tempo": 100}),
]:
    services.save_preset(board=board, name=name, values=values)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "sliderproject.asgi:application", "--port", str(port)],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("The server did not start.")


def drag(page: Any, slider: str, to: float) -> None:
    """Press on the slider's thumb and move to `to` of its width, keeping the mouse down."""
    box = page.locator(f"#slider-{slider}").bounding_box()
    value = page.locator(f"#slider-{slider}")
    low, high, now = (float(value.get_attribute(a) or 0) for a in ("min", "max", "value"))
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * (now - low) / (high - low), y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * to, y, steps=8)


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="slidersync-shots-") as folder:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3", "DEBUG": "true"}
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=PROJECT_DIR, env=env, check=True)
        subprocess.run([*manage, "shell", "-c", DEMO], cwd=PROJECT_DIR, env=env, check=True)
        port = free_port()
        server = serve(env, port)
        url = f"http://127.0.0.1:{port}/b/{BOARD}/"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, headless=True)
                pages = []
                for _ in range(2):
                    context = browser.new_context(viewport={"width": 600, "height": 1000})
                    page = context.new_page()
                    page.goto(url)
                    page.wait_for_selector('#connection-status[data-state="connected"]')
                    pages.append(page)
                left, right = pages
                drag(left, "master", 0.62)
                right.wait_for_function(
                    "document.getElementById('hands-master')?.textContent.length > 0"
                )
                time.sleep(0.5)  # the other page has painted the value and the hand
                halves = [folder + "/left.png", folder + "/right.png"]
                left.screenshot(path=halves[0], full_page=True)
                right.screenshot(path=halves[1], full_page=True)
                left.mouse.up()
                side_by_side(browser, halves, DOCS / "screenshot.png")

                whole = browser.new_context(viewport={"width": 1100, "height": 900})
                page = whole.new_page()
                page.goto(url)
                page.wait_for_selector('#connection-status[data-state="connected"]')
                page.screenshot(path=DOCS / "screenshots" / "board.png", full_page=True)

                phone = browser.new_context(
                    viewport={"width": 390, "height": 844},
                    is_mobile=True,
                    has_touch=True,
                    color_scheme="dark",
                )
                page = phone.new_page()
                page.goto(url)
                page.wait_for_selector('#connection-status[data-state="connected"]')
                page.screenshot(path=DOCS / "screenshots" / "phone.png", full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print("Wrote docs/screenshot.png, docs/screenshots/board.png and docs/screenshots/phone.png")


def side_by_side(browser: Any, halves: list[str], target: Path) -> None:
    """Two screenshots next to each other with a divider, drawn by the browser itself."""
    page = browser.new_page()
    images = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(Path(half).read_bytes()).decode()}">'
        for half in halves
    )
    page.set_content(
        "<body style='margin:0'><div style='display:inline-flex;gap:2px;background:#6b7280;"
        f"align-items:flex-start'>{images}</div></body>"
    )
    page.wait_for_function("[...document.images].every((image) => image.complete)")
    page.locator("div").screenshot(path=target)
    page.close()


if __name__ == "__main__":
    main()
