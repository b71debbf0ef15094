"""HTTP helpers for live tests: a browser-like session that logs in and submits admin forms."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import aiohttp


class Forms(HTMLParser):
    """Every form on a page with the fields a browser would submit (submit buttons left out)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[dict[str, str | None], dict[str, str]]] = []
        self._select: str | None = None
        self._select_has_value = False
        self._textarea: str | None = None
        self.feed(html)
        self.close()

    @property
    def _fields(self) -> dict[str, str]:
        return self.forms[-1][1] if self.forms else {}

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs_list)
        name = attrs.get("name")
        if tag == "form":
            self.forms.append((attrs, {}))
        elif not self.forms:
            return
        elif tag == "input" and name:
            kind = (attrs.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._fields[name] = attrs.get("value") or "on"
                return
            self._fields[name] = attrs.get("value") or ""
        elif tag == "select" and name:
            self._select, self._select_has_value = name, False
        elif tag == "option" and self._select:
            value = attrs.get("value") or ""
            if "selected" in attrs or (
                not self._select_has_value and self._select not in self._fields
            ):
                self._fields[self._select] = value
            if "selected" in attrs:
                self._select_has_value = True
        elif tag == "textarea" and name:
            self._textarea = name
            self._fields[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._fields[self._textarea] += data

    def form(self, form_id: str) -> dict[str, str]:
        """The form with this id, or else the first post form that has a field of this name."""
        for attrs, fields in self.forms:
            if attrs.get("id") == form_id:
                return dict(fields)
        for attrs, fields in self.forms:
            if form_id in fields and attrs.get("id") != "logout-form":
                return dict(fields)
        raise AssertionError(f"No form {form_id!r} among {[a.get('id') for a, _ in self.forms]}")


def error_summary(html: str) -> str:
    """The exception from Django's debug page, or the end of any other page."""
    found = re.search(r'<pre class="exception_value">(.*?)</pre>', html, re.S)
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    if found:
        return f"{title.group(1).strip() if title else ''}: {found.group(1).strip()}"
    return html[-2000:]


class AdminSession:
    """A browser-like HTTP session on the live server: cookies, CSRF tokens, forms."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.http = http

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base_url + path, allow_redirects=False) as response:
            return response.status, await response.text()

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, str, str]:
        async with self.http.post(
            self.base_url + path, data=data, allow_redirects=False
        ) as response:
            return response.status, response.headers.get("Location", ""), await response.text()

    async def form(self, path: str, form_id: str) -> dict[str, str]:
        status, html = await self.get(path)
        assert status == 200, (path, status)
        return Forms(html).form(form_id)

    async def login(self, username: str, password: str) -> None:
        data = await self.form("/admin/login/?next=/admin/", "login-form")
        assert data.get("csrfmiddlewaretoken")
        data.update(username=username, password=password, next="/admin/")
        status, location, body = await self.post("/admin/login/?next=/admin/", data)
        assert status == 302, error_summary(body)
        assert location == "/admin/"
        status, _ = await self.get("/admin/")
        assert status == 200

    async def submit(self, path: str, form_id: str, **changes: str) -> str:
        data = await self.form(path, form_id)
        data = {k: v for k, v in data.items() if "__prefix__" not in k}
        data.update(changes)
        status, location, body = await self.post(path, data)
        assert status == 302, error_summary(body)
        return location


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The server's /metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
