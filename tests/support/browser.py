"""Browser-test fixtures: one headless Chromium (Debian's, through Playwright's sync API), pages
opened on a live server, and what a person would check on them.

Registered for every test module by tests/conftest.py (`pytest_plugins`); a test that asks for
`browser` or `page_on` gets a browser, others never start one. Browser test modules mark
themselves `pytest.mark.browser`.

Playwright's sync API and pytest-asyncio share the main thread. After every sync call Playwright
leaves its own event loop marked as the thread's *running* loop (its dispatcher greenlet is
suspended inside that loop), and pytest-asyncio refuses to run a test while a loop is running
("Runner.run() cannot be called from a running event loop"). The session's Playwright therefore
owns the running-loop mark only while a browser test runs: the `browser` fixture hands it over at
the start of each test that asks for it and takes it back at the end. (The Django ORM, used from
the test itself, sees that loop too; tests/settings.py sets DJANGO_ALLOW_ASYNC_UNSAFE for the test
process, and these ORM calls really are plain synchronous calls in the main thread.)
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.services import unavailable

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CONNECTED = '#connection-status[data-state="connected"]'
# Console errors a page logs while it cannot reach its server (server down, browser offline).
# Matched against "<console text> (<location url>)": the WebSocket attempts, and the long-polling
# requests the page falls back to, failing while the server is down or the page offline; a
# handshake under way when the server stops is reset, or its socket found not connected.
SERVER_DOWN_NOISE = re.compile(
    r"^(WebSocket connection to 'ws://[^']*/socket\.io/[^']*' failed: .*"
    r"net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|SOCKET_NOT_CONNECTED|INTERNET_DISCONNECTED)"
    r" \(.*\)"
    r"|Failed to load resource: net::ERR_(CONNECTION_REFUSED|INTERNET_DISCONNECTED)"
    r" \(http://[^)]*/socket\.io/\?[^)]*transport=polling[^)]*\))$"
)
# A phone: a touch screen (touch events, no mouse), a narrow viewport and a mobile layout.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1000, "height": 700}}
NOBODY_COUNTED = "\u2013"  # the en dash #presence-count shows while the page is not connected
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(1)>"
AXE = Path(__file__).parent.parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"


# --- Browser ------------------------------------------------------------------------------------


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass
class _Session:
    browser: Any
    loop: asyncio.AbstractEventLoop | None


@pytest.fixture(scope="session")
def _playwright_session() -> Iterator[_Session]:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed, and CI must run the browser tests")
        pytest.skip("Chromium is not installed: apt-get install chromium")
    # A running asyncio loop in this thread would make sync_playwright refuse to start; sync
    # tests (and this sync fixture) have none.
    assert _running_loop() is None, "the browser fixture must be set up outside an event loop"

    manager = sync_playwright()
    playwright = manager.start()
    try:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
    except BaseException:
        manager.__exit__(None, None, None)
        raise
    session = _Session(browser=browser, loop=_running_loop())
    asyncio._set_running_loop(None)  # until a browser test asks for it (see module docstring)
    yield session
    asyncio._set_running_loop(session.loop)
    try:
        browser.close()
    finally:
        manager.__exit__(None, None, None)  # stops the driver; leaves no running loop behind


@pytest.fixture
def browser(_playwright_session: _Session) -> Iterator[Any]:
    """One headless Chromium for the whole session (each test gets fresh contexts).

    Playwright's loop is the thread's running loop while the test runs, and only then (see the
    module docstring).
    """
    asyncio._set_running_loop(_playwright_session.loop)
    try:
        yield _playwright_session.browser
    finally:
        asyncio._set_running_loop(None)


# --- Pages --------------------------------------------------------------------------------------


@dataclass
class PageRecord:
    page: Any
    allow_console: re.Pattern[str] | None = None
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def page_on(browser: Any, asgi_server: Any) -> Iterator[Callable[..., Any]]:
    """`page_on(slug)` opens the board in a new context and waits until it is connected.

    Options: `server=` another LiveServer; `javascript=False` (then it does not wait);
    `allow_console=` a regex of console errors that are expected (e.g. while a server is down);
    `device=` the context's options (viewport and so on; `DESKTOP` unless given, `PHONE` for a
    touch screen).
    Page errors, console errors (bar the favicon) and dialogs fail the test at teardown.
    """
    records: list[PageRecord] = []
    contexts: list[Any] = []

    def open_page(
        slug: str,
        *,
        server: Any = None,
        javascript: bool = True,
        allow_console: re.Pattern[str] | None = None,
        wait: bool = True,
        device: dict[str, Any] | None = None,
    ) -> Any:
        context = browser.new_context(java_script_enabled=javascript, **(device or DESKTOP))
        context.set_default_timeout(5000)
        contexts.append(context)
        page = context.new_page()
        record = PageRecord(page, allow_console)
        records.append(record)

        def on_console(message: Any) -> None:
            if message.type != "error":
                return
            where = (message.location or {}).get("url", "")
            if "favicon" in where or "favicon" in message.text:
                return
            if record.allow_console and record.allow_console.search(f"{message.text} ({where})"):
                return
            record.errors.append(f"console error: {message.text} ({where})")

        def on_dialog(dialog: Any) -> None:
            record.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("pageerror", lambda error: record.errors.append(f"page error: {error}"))
        page.on("console", on_console)
        page.on("dialog", on_dialog)
        page.goto(f"{(server or asgi_server).url}/b/{slug}/")
        if javascript and wait:
            page.wait_for_selector(CONNECTED)
        return page

    open_page.records = records  # type: ignore[attr-defined]
    yield open_page
    for context in contexts:
        context.close()
    problems = [f"{r.page.url}: {e}" for r in records for e in r.errors]
    problems += [f"{r.page.url}: dialog {d}" for r in records for d in r.dialogs]
    assert not problems, "\n".join(problems)


# --- Helpers ------------------------------------------------------------------------------------


def shows(page: Any, value: str, *, slider: str = "s1", timeout: int = 1000) -> None:
    """The slider's thumb and its number both show `value` (within `timeout` ms)."""
    expect(page.locator(f"#slider-{slider}")).to_have_value(value, timeout=timeout)
    expect(page.locator(f"#value-{slider}")).to_have_text(value, timeout=timeout)


def held_version(page: Any, slider: str = "s1") -> int:
    return int(page.locator(f"#slider-{slider}").get_attribute("data-version"))


def feed_update(page: Any, update: dict[str, Any]) -> list[str]:
    """Hand `update` to the page's own `slider:update` handler(s), as if the server sent it."""
    return page.evaluate(
        """(update) => {
            const handlers = window.sliderSync.socket.listeners("slider:update");
            if (!handlers.length) throw new Error("no slider:update handler");
            for (const handler of handlers) handler(update);
            const input = document.getElementById(`slider-${update.id}`);
            const output = document.getElementById(`value-${update.id}`);
            return [input.value, output.textContent, input.dataset.version];
        }""",
        update,
    )


def touch_drag(
    page: Any, start: tuple[float, float], end: tuple[float, float], *, steps: int = 12
) -> None:
    """One finger: pressed at `start`, moved in `steps` even steps to `end`, lifted.

    Points are CSS pixels in the viewport. Real touch events through the DevTools protocol
    (`Input.dispatchTouchEvent`), so the browser decides as on a phone whether the gesture
    scrolls the page or moves what is under the finger; the page's context needs
    `has_touch=True` (`PHONE`). Each move waits for the browser to take it.
    """
    cdp = page.context.new_cdp_session(page)
    try:

        def touch(kind: str, point: tuple[float, float] | None) -> None:
            points = [] if point is None else [{"x": point[0], "y": point[1], "id": 1}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        touch("touchStart", start)
        for i in range(1, steps + 1):
            x = start[0] + (end[0] - start[0]) * i / steps
            y = start[1] + (end[1] - start[1]) * i / steps
            touch("touchMove", (x, y))
            page.wait_for_timeout(16)  # about a frame, as a finger's moves arrive
        touch("touchEnd", None)
    finally:
        cdp.detach()


def serious_violations(page: Any, within: str | None = None) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each
    (`within`: only in the elements that CSS selector matches)."""
    if not AXE.exists():
        unavailable("axe-core is missing: npm ci --prefix tests/a11y")
    if not page.evaluate("() => typeof axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async (within) => await axe.run(within ? {include: [within]} : document,"
        " {resultTypes: ['violations']})",
        within,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
