"""What a phone on the LAN sees of a server: run inside the test's network namespace.

`python -m tests.support.lan_probe URL BOARD` waits until URL answers, then opens the board
page, a page that does not exist, a static file, the index with a foreign `Host`, and a socket
with the `Origin` a browser on that page sends, and prints what it saw as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from tests.support.clients import BoardClient


def fetch(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return {"status": response.status, "headers": dict(response.headers),
                    "body": response.read().decode(errors="replace")}  # fmt: skip
    except urllib.error.HTTPError as error:
        return {"status": error.code, "headers": dict(error.headers),
                "body": error.read().decode(errors="replace")}  # fmt: skip


def wait_for_server(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fetch(f"{url}healthz")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def socket_view(url: str, board: str) -> dict[str, Any]:
    client = BoardClient(url.rstrip("/"), board)
    try:
        await client.connect(headers={"Origin": url.rstrip("/")}, wait_state=True)
        ack = await client.set("s1", 42)
        return {"state": client.of("board:state")[0], "ack": ack}
    finally:
        await client.disconnect()


def main(url: str, board: str) -> None:
    wait_for_server(url)
    seen = {
        "board": fetch(f"{url}b/{board}/"),
        "missing": fetch(f"{url}b/no-such-board/"),
        "static": fetch(f"{url}static/sliders/board.js"),
        "foreign_host": fetch(url, {"Host": "evil.example"}),
        "socket": asyncio.run(socket_view(url, board)),
    }
    seen["static"].pop("body")
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:3])
