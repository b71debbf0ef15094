"""Webhooks in tests: a real HTTP receiver (aiohttp.web) that records the POSTs it gets.

`Receiver` listens on 127.0.0.1 on a free port, in the test's event loop: give its `url` to a
`Webhook`. It records every POST (arrival time by `time.perf_counter()`, headers, raw body)
and answers each from a script: `answers` (statuses, or (status, headers) pairs) taken in
turn, then `default`; `delays` (seconds to wait before answering) likewise.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Post:
    at: float  # time.perf_counter() on arrival
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("X-SliderSync-Signature", ""))


@dataclass
class Receiver:
    default: int = 204
    answers: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> Receiver:
        """Listen on `port` (0: a free one)."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?from=slidersync"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts.append(Post(time.perf_counter(), dict(request.headers), body))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        answer = self.answers.pop(0) if self.answers else self.default
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)

    def of(self, event: str) -> list[Post]:
        return [post for post in self.posts if post.json["event"] == event]

    async def wait_for(self, predicate: Any, timeout: float = 5, what: str = "") -> Any:
        """Wait until `predicate(post)` holds for a POST received; return the first such POST."""
        return await wait_until(
            lambda: next((p for p in self.posts if predicate(p)), None), timeout, what
        )


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The server's /metrics as {(sample name, sorted labels): value}."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def wait_until_running(url: str, key: str, timeout: float = 5) -> None:
    """Wait until the server's bridges run the target `key` ("webhook:3"): its metrics appear."""
    sent = ("slidersync_bridge_messages_sent_total", (("target", key),))

    async def running() -> bool:
        return sent in await scrape(url)

    started = time.monotonic()
    while not await running():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"Timed out after {timeout}s waiting for {key} to run")
        await asyncio.sleep(0.05)
