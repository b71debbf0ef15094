"""`Board`: one Slider Sync board over Socket.IO (python-socketio's asyncio client).

    async with Board.connect("http://127.0.0.1:8000", "main", token=None) as board:
        print(board.values)                      # {"s1": 50.0, ...}
        stored = await board.set("s1", 42)       # Change(slider="s1", value=42.0, version=8)
        async for change in board.changes():     # other people's changes, as they happen
            print(change.slider, change.value, change.version)

The connection comes back on its own: python-socketio reconnects after a lost connection, and
this client itself after the server closed it on purpose; the fresh `board:state` is compared
with what was held, so a change made while it was away comes out of `changes()` too. A refusal
that retrying cannot cure (a revoked token, a board deleted or made private) ends it: `changes()`
raises that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Generator
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import socketio

from slidersync_client.errors import (
    ClosedError,
    ConnectionFailedError,
    InvalidValueError,
    NoAnswerError,
    SliderSyncError,
    error_for,
)
from slidersync_client.state import BoardState, Change, Slider

logger = logging.getLogger(__package__)

# Refusals that retrying cannot cure: they end the board instead of being retried.
FINAL_REFUSALS = frozenset({"unauthorized", "forbidden", "unknown_board", "bad_request"})


class Board:
    """A connected board: its sliders, their values, `set`, and the `changes()` of others.

    Make one with `await Board.connect(...)` (or `async with Board.connect(...) as board`);
    every method runs on the event loop it was connected on.
    """

    def __init__(
        self,
        url: str,
        board: str = "main",
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transports: list[str] | None = None,
    ) -> None:
        self.url = url
        self.slug = board
        self.timeout = timeout
        self._token = token
        # The same id on every reconnect, so the server tells this client's own earlier sets
        # from other people's (the conflict rule) and merges its quick sets in the audit trail.
        self._client_id = secrets.token_hex(16)
        self._transports = transports or ["websocket"]
        self._state = BoardState()
        self._streams: weakref.WeakSet[ChangeStream] = weakref.WeakSet()
        self._ready = asyncio.Event()  # connected and holding this connection's board:state
        self._first_state_pending = True
        self._refusal: SliderSyncError | None = None  # the last connect_error, as an exception
        self._failure: SliderSyncError | None = None  # why the board ended, if not close()
        self._closed = False
        self._retry: asyncio.Task[None] | None = None  # reconnecting after a server's close
        self._ending: asyncio.Task[None] | None = None  # stopping after a final refusal
        self._sio = socketio.AsyncClient(
            reconnection=True,
            reconnection_attempts=0,  # forever, until close() or a final refusal
            reconnection_delay=0.5,
            reconnection_delay_max=5,
            randomization_factor=0.5,
            # Ctrl-C is the program's: python-engineio's own handler would cancel every task.
            handle_sigint=False,
        )
        for event, handler in (
            ("connect", self._on_connect),
            ("disconnect", self._on_disconnect),
            ("connect_error", self._on_connect_error),
            ("board:state", self._on_state),
            ("slider:update", self._on_update),
            ("slider:updates", self._on_updates),
            ("board:presence", self._on_presence),
        ):
            self._sio.on(event, handler)

    # --- Opening and closing ------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        url: str,
        board: str = "main",
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transports: list[str] | None = None,
    ) -> Connecting:
        """Connect to `board` on the server at `url` (e.g. `http://127.0.0.1:8000`).

        `token` is an API token made in the admin (`sst_...`): the connection is then its
        user's; without one it is anonymous. Await the result for the connected `Board` (close
        it with `close()`), or use it with `async with` to close it on the way out. Connecting
        waits up to `timeout` seconds for the board's state. Raises `UnknownBoardError`,
        `UnauthorizedError`, `ForbiddenError`, ... when the server refuses, and
        `ConnectionFailedError` when it cannot be reached (or `url` is not http:// or https://).
        """
        return Connecting(cls(url, board, token=token, timeout=timeout, transports=transports))

    async def open(self) -> None:
        """Connect and wait for the board's state (what `connect()` does); see `connect`."""
        if urlsplit(self.url).scheme.lower() not in ("http", "https"):
            raise ConnectionFailedError(
                f"{self.url!r} is not a server's address: it starts with http:// or https://, "
                "e.g. http://127.0.0.1:8000."
            )
        try:
            await self._sio.connect(
                self.url, auth=self._auth, transports=self._transports, wait_timeout=self.timeout
            )
        except socketio.exceptions.ConnectionError as error:
            await self._sio.disconnect()  # closes the HTTP session the attempt opened
            refusal, self._refusal = self._refusal, None
            raise refusal or ConnectionFailedError(
                f"Cannot connect to {self.url}: {error}"
            ) from None
        try:
            await asyncio.wait_for(self._ready.wait(), self.timeout)
        except TimeoutError:
            await self.close()
            raise ConnectionFailedError(
                f"{self.url} sent no state of board '{self.slug}' within {self.timeout} s."
            ) from None

    async def close(self) -> None:
        """Disconnect for good: `changes()` iterators end, `set` raises `ClosedError`."""
        self._closed = True
        self._wake_streams()
        if self._retry is not None:
            self._retry.cancel()
        if self._ending is not None:
            await self._ending
        await self._sio.shutdown()
        await self._sio.disconnect()  # also closes the HTTP session when not connected

    async def __aenter__(self) -> Board:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- What the board holds -----------------------------------------------------------------

    @property
    def values(self) -> dict[str, float]:
        """Each slider's value, by slider id, in display order (a copy)."""
        return {slider: change.value for slider, change in self._state.held.items()}

    @property
    def versions(self) -> dict[str, int]:
        """Each slider's version, by slider id (a copy)."""
        return {slider: change.version for slider, change in self._state.held.items()}

    @property
    def sliders(self) -> dict[str, Slider]:
        """Each slider's description (name, min, max, step, unit, precision), by id, in order."""
        return dict(self._state.sliders)

    @property
    def name(self) -> str:
        """The board's name."""
        return self._state.name

    @property
    def can_edit(self) -> bool:
        """Whether this connection's user may move the board's sliders."""
        return self._state.can_edit

    @property
    def clients(self) -> int:
        """How many connections the board has (the latest count the server sent)."""
        return self._state.clients

    @property
    def connected(self) -> bool:
        """Connected and holding the board's current state (False while reconnecting)."""
        return self._ready.is_set()

    # --- Setting and watching -----------------------------------------------------------------

    async def set(
        self,
        slider: str,
        value: float,
        *,
        base_version: int | None = None,
        timeout: float | None = None,
    ) -> Change:
        """Set `slider` to `value`; return what was stored (clamped, snapped) and its version.

        While reconnecting it waits for the connection (within `timeout`, default the board's).
        With `base_version` the value is stored only if nobody else changed the slider since that
        version (else `ConflictError`, with the current value and version). Raises the
        `SliderSyncError` subclass of the server's error code (`ForbiddenError`,
        `RateLimitedError`, `UnknownSliderError`, `InvalidValueError` — also for a value that
        is not a finite number, which is not sent —, ...), `NoAnswerError` when no answer came
        in time, `ClosedError` after `close()`.
        """
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidValueError(f"The value must be a finite number, not {value!r}.")
        limit = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        await self._until_ready(limit)
        payload: dict[str, Any] = {"id": slider, "value": value}
        if base_version is not None:
            payload["base_version"] = base_version
        try:
            ack = await self._sio.call(
                "slider:set", payload, timeout=max(deadline - loop.time(), 0.1)
            )
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            raise NoAnswerError(f"No answer to setting '{slider}' within {limit} s.") from None
        if not isinstance(ack, dict):
            raise SliderSyncError(f"The server answered {ack!r}.")
        if ack.get("ok") is True:
            change = Change(
                slider=str(ack["id"]), value=float(ack["value"]), version=int(ack["version"])
            )
            self._state.take_own(change)
            return change
        raise error_for(ack.get("error"), ack.get("message"), ack)

    def changes(self) -> ChangeStream:
        """The changes other clients make from now on (yours come back from `set`).

        `async for change in board.changes()`: each is a `Change` whose version is newer than
        the one held. Changes made while the connection was down come after the reconnect. A
        consumer slower than the changes gets the latest value of each slider, never an older
        one. The iteration ends after `close()` and raises the error when the board ends on a
        refusal (e.g. `UnauthorizedError` for a token revoked meanwhile).
        """
        stream = ChangeStream(self)
        self._streams.add(stream)
        return stream

    # --- Socket.IO events ---------------------------------------------------------------------

    def _auth(self) -> dict[str, Any]:
        auth: dict[str, Any] = {"board": self.slug, "client": self._client_id}
        if self._token is not None:
            auth["token"] = self._token
        return auth

    async def _on_connect(self) -> None:
        self._refusal = None
        self._first_state_pending = True

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._ready.clear()
        if self._closed:
            return
        logger.info("Lost the connection to %s (%s); reconnecting", self.url, reason)
        if reason == socketio.AsyncClient.reason.SERVER_DISCONNECT and self._retry is None:
            # The server closed this connection on purpose (the board changed, or it could not
            # read it); python-socketio does not retry those. Retry, and let the server say.
            self._retry = asyncio.ensure_future(self._reconnect())

    async def _on_connect_error(self, data: Any = None) -> None:
        code = data.get("data", {}).get("code") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else str(data)
        if code is None:
            logger.info("Cannot connect to %s: %s", self.url, message)
            return
        self._refusal = error_for(code, message, data.get("data"))
        if code in FINAL_REFUSALS and self._state.loaded:
            # Refused while reconnecting: retrying will not cure it; end the board.
            logger.warning("Board %s at %s refused: %s", self.slug, self.url, message)
            self._failure = self._refusal
            self._closed = True
            self._wake_streams()
            # Not awaited here: shutdown() waits for the reconnection task we may be inside.
            self._ending = asyncio.ensure_future(self._sio.shutdown())

    async def _reconnect(self) -> None:
        delay = 0.5
        try:
            while not self._closed and not self._sio.connected:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                with contextlib.suppress(socketio.exceptions.ConnectionError):
                    await self._sio.connect(
                        self.url,
                        auth=self._auth,
                        transports=self._transports,
                        wait_timeout=self.timeout,
                    )
        finally:
            self._retry = None

    async def _on_state(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        changes = self._state.take_state(payload, first=self._first_state_pending)
        self._first_state_pending = False
        self._ready.set()
        self._publish(changes)

    async def _on_update(self, item: Any) -> None:
        self._publish(self._state.take_updates([item]))

    async def _on_updates(self, items: Any) -> None:
        if isinstance(items, list):
            self._publish(self._state.take_updates(items))

    async def _on_presence(self, payload: Any) -> None:
        if isinstance(payload, dict) and isinstance(payload.get("clients"), int):
            self._state.clients = payload["clients"]

    # --- Helpers ------------------------------------------------------------------------------

    def _publish(self, changes: list[Change]) -> None:
        for change in changes:
            for stream in self._streams:
                stream.put(change)

    def _wake_streams(self) -> None:
        for stream in self._streams:
            stream.wake()

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise ClosedError(f"The board '{self.slug}' is closed.")

    async def _until_ready(self, timeout: float) -> None:
        self._check_open()
        if self._ready.is_set():
            return
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            self._check_open()
            raise NoAnswerError(
                f"Not connected to {self.url} (reconnecting) within {timeout} s."
            ) from None


class ChangeStream:
    """An async iterator of `Change`s for one consumer (see `Board.changes`).

    Holds at most one waiting change per slider: a newer one replaces it (and goes to the end).
    """

    def __init__(self, board: Board) -> None:
        self._board = board
        self._waiting: OrderedDict[str, Change] = OrderedDict()
        self._wakeup = asyncio.Event()

    def put(self, change: Change) -> None:
        self._waiting.pop(change.slider, None)
        self._waiting[change.slider] = change
        self._wakeup.set()

    def wake(self) -> None:
        self._wakeup.set()

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> Change:
        while not self._waiting:
            if self._board._failure is not None:
                raise self._board._failure
            if self._board._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._waiting.popitem(last=False)[1]


class Connecting:
    """What `Board.connect` returns: await it for the `Board`, or `async with` it."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def __await__(self) -> Generator[Any, None, Board]:
        return self._open().__await__()

    async def _open(self) -> Board:
        await self._board.open()
        return self._board

    async def __aenter__(self) -> Board:
        return await self._open()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._board.close()


__all__ = ["Board", "ChangeStream", "Connecting"]
