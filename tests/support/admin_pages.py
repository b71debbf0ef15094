"""Admin pages in Chromium: a signed-in staff user's browser on a live server.

For what only a browser shows about the admin (how wide a page lays out, a copy button).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.support.accounts import session_cookie


def admin_page(
    browser: Any,
    server: Any,
    user: Any,
    path: str,
    *,
    width: int = 1280,
    height: int = 800,
    permissions: tuple[str, ...] = (),
) -> Any:
    """A page at `path` of `server`'s admin, signed in as `user`, in a `width` x `height` window.

    The caller closes its context (`page.context.close()`). `permissions`: browser permissions
    to grant the context (e.g. "clipboard-read").
    """
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(5000)
    if permissions:
        context.grant_permissions(list(permissions), origin=server.url)
    name, _, value = session_cookie(user).partition("=")
    context.add_cookies(
        [{"name": name, "value": value, "domain": urlsplit(server.url).hostname, "path": "/"}]
    )
    page = context.new_page()
    response = page.goto(server.url + path)
    assert response is not None and response.status == 200, (path, response and response.status)
    return page


def page_width(page: Any) -> int:
    """How wide the page lays out, in CSS pixels (wider than the window: it scrolls sideways)."""
    return int(page.evaluate("document.scrollingElement.scrollWidth"))
