"""Socket.IO clients for live tests: a board's view as the page holds it, and a client loop.

`BoardClient` is python-socketio's AsyncClient on one board, recording every event it receives
in order and the (value, version) it would show, dropping stale updates the way the page does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import socketio

from tests.support.waiting import wait_until


class BoardClient:
    """A real Socket.IO client on one board that records everything it receives, in order."""

    def __init__(self, url: str, board: str | None, *, reconnection: bool = False) -> None:
        self.url = url
        self.board = board
        # With reconnection, it comes back like the page does: quickly, and forever.
        self.sio = socketio.AsyncClient(
            reconnection=reconnection,
            reconnection_delay=0.1,
            reconnection_delay_max=0.5,
            randomization_factor=0,
        )
        self.events: list[tuple[str, Any]] = []
        self.values: dict[str, tuple[float, int]] = {}  # slider id -> (value, version) shown
        # Updates that arrived with a version not newer than the one held (and were dropped, as
        # the page drops them): possible across processes, never within one.
        self.stale_updates = 0
        # What the server sent with a refused connection: {"message": str, "data": {"code": ...}}.
        self.connect_errors: list[Any] = []
        for event in (
            "board:state", "slider:update", "board:presence", "slider:hands", "board:fade",
        ):  # fmt: skip
            self.sio.on(event, self._recorder(event))
        self.sio.on("slider:updates", self._record_batch)
        self.batches = 0  # `slider:updates` messages; their items are recorded as slider:update
        self.update_messages: list[list[Any]] = []  # each update message's updates, in order
        self._in_batch = False
        self.sio.on("connect_error", self._record_connect_error)

    def _record_batch(self, updates: list[Any]) -> None:
        self.batches += 1
        self.update_messages.append(list(updates))
        record = self._recorder("slider:update")
        self._in_batch = True
        try:
            for update in updates:
                record(update)
        finally:
            self._in_batch = False

    def _record_connect_error(self, *args: Any) -> None:
        self.connect_errors.append(args[0] if len(args) == 1 else args)

    def _recorder(self, event: str) -> Callable[[Any], None]:
        def record(data: Any) -> None:
            self.events.append((event, data))
            if event == "board:state":
                self.values = {s["id"]: (s["value"], s["version"]) for s in data["sliders"]}
            elif event == "slider:update":
                if not self._in_batch:
                    self.update_messages.append([data])
                held = self.values.get(data["id"])
                if held is None or data["version"] > held[1]:
                    self.values[data["id"]] = (data["value"], data["version"])
                else:
                    self.stale_updates += 1

        return record

    def of(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    @property
    def state(self) -> dict[str, Any]:
        return self.of("board:state")[-1]

    async def connect(self, *, auth: Any = ..., wait_state: bool = True, **kwargs: Any) -> None:
        if auth is ...:
            auth = {"board": self.board} if self.board is not None else None
        await self.sio.connect(
            self.url, auth=auth, transports=kwargs.pop("transports", ["websocket"]),
            wait_timeout=5, **kwargs,
        )  # fmt: skip
        if wait_state:
            await self.wait_for(lambda: self.of("board:state"))

    async def set(self, slider_id: Any, value: Any, timeout: float = 5) -> Any:
        """Send `slider:set` and return the ack; an accepted value is shown, as the page does."""
        ack = await self.sio.call("slider:set", {"id": slider_id, "value": value}, timeout=timeout)
        if isinstance(ack, dict) and ack.get("ok") is True:
            held = self.values.get(ack["id"])
            if held is None or ack["version"] > held[1]:
                self.values[ack["id"]] = (ack["value"], ack["version"])
        return ack

    async def call(self, event: str, *args: Any, timeout: float = 5) -> Any:
        return await self.sio.call(event, *args if args else (None,), timeout=timeout)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5) -> Any:
        """Wait until `predicate()` is truthy and return it; the timeout shows the last events."""
        try:
            return await wait_until(predicate, timeout)
        except AssertionError:
            raise AssertionError(f"Timed out waiting; events so far: {self.events[-10:]}") from None

    async def disconnect(self) -> None:
        """Leave the server; after a refused connect, close the HTTP session it opened."""
        if self.sio.connected:
            await self.sio.disconnect()
        else:  # python-engineio closes its aiohttp session in a disconnect only
            await self.sio.eio.disconnect()


class ClientLoop:
    """An event loop in a background thread, for sync tests (Hypothesis) that drive clients.

    `run(coroutine)` runs it on that loop and returns its result; clients connected through it
    stay connected between calls.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="client-loop", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def connect(url: str, made: list[BoardClient], *, reconnection: bool = False) -> BoardClient:
    """A client connected to the board `main` at `url`, added to `made` (to disconnect later)."""
    client = BoardClient(url, "main", reconnection=reconnection)
    made.append(client)
    await client.connect()
    return client


async def counted(client: BoardClient, clients: int, timeout: float = 5) -> None:
    """Wait until the board's latest presence count that `client` received is `clients`."""
    await client.wait_for(
        lambda: client.of("board:presence")[-1:] == [{"clients": clients}], timeout
    )


def presence(client: BoardClient) -> int | None:
    """The latest `board:presence` count `client` received, None before any."""
    counts = client.of("board:presence")
    return counts[-1]["clients"] if counts else None


async def timed_sets(
    client: BoardClient, slider: str, values: Iterable[float], pause: float = 0.02
) -> list[float]:
    """Set `slider` to each of `values` in turn, `pause` s apart; each set's ack time in s.

    Every set must be accepted (AssertionError otherwise). For tests that show a set does not
    wait for something else (a target down, a slow receiver): they print the times and bound
    them generously, never as a speed target.
    """
    times = []
    for value in values:
        sent = time.perf_counter()
        ack = await client.set(slider, value)
        assert ack["ok"] is True, ack
        times.append(time.perf_counter() - sent)
        await asyncio.sleep(pause)
    return times
