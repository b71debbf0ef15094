"""Webhooks in tests: a real HTTP receiver (aiohttp.web) that records the POSTs it gets.

`Receiver` listens on 127.0.0.1 on a free port, in the test's event loop: give its `url` to a
`Webhook`. It records every POST (arrival time by `time.perf_counter()`, headers, raw body)
and answers each from a script: `answers` (statuses, or (status, headers) pairs) taken in
turn, then `default`; `delays` (seconds to wait before answering) likewise. The `receivers`
fixture starts them for a test and closes them after.

A live server that runs webhooks takes `SERVER_ENV` (bridges in the process, quick retries);
`add_webhook` saves one and waits until that server runs it; `deliveries` reads its log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.support.http import scrape
from tests.support.servers import LiveServer
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


# --- Live servers that run webhooks ---------------------------------------------------------

ATTEMPTS = 3  # attempts per event before giving up, on the servers below
WEBHOOK_IDS = itertools.count(1_000_000 + os.getpid() % 1000 * 10_000)
SERVER_ENV = {
    "BRIDGES_IN_PROCESS": "true",
    "BRIDGES_CHECK_INTERVAL": "0.2",
    "WEBHOOK_RETRY_FIRST": "0.1",
    "WEBHOOK_ATTEMPTS": str(ATTEMPTS),
    "WEBHOOK_TIMEOUT": "10",
}


@pytest.fixture
async def receivers() -> AsyncIterator[Any]:
    """`await receivers(...)` starts a Receiver (its fields as keywords); all are closed after."""
    started: list[Receiver] = []

    async def start(**fields: Any) -> Receiver:
        receiver = await Receiver(**fields).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.close()


async def add_webhook(server: LiveServer, board: Any, url: str, **fields: Any) -> Any:
    """A webhook saved through the service, once the server's bridges run it."""
    from sliders import services
    from sliders.models import Webhook

    # A pk of its own: tests that flush with reset_sequences (the admin's) would otherwise
    # reuse the key of an earlier test's webhook, whose metrics the server still has.
    webhook = Webhook(pk=next(WEBHOOK_IDS), board=board, url=url, **fields)
    services.save_webhook(webhook=webhook)
    await wait_until_running(server.url, webhook.key)
    await asyncio.sleep(0.1)  # the reload that made it hands it its board's notices
    return webhook


def deliveries(webhook: Any) -> list[tuple[int, str, int | None]]:
    """The webhook's delivery log, oldest first: (attempt, result, status)."""
    from sliders.models import WebhookDelivery

    rows = WebhookDelivery.objects.filter(webhook=webhook).order_by("id")
    return list(rows.values_list("attempt", "result", "status"))
