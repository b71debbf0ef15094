"""A blocking `Board` for scripts without asyncio: the async `Board` on a loop in a thread.

    from slidersync_client.sync import Board

    with Board.connect("http://127.0.0.1:8000", "main") as board:
        board.set("s1", 42)
        for change in board.changes():
            print(change)

Every method blocks the calling thread until the async board on the background loop answers;
errors are the same `SliderSyncError` classes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from slidersync_client import board as aio
from slidersync_client.state import Change, Slider

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread; `run` a coroutine there and wait for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="slidersync-client", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Board:
    """A connected board, blocking: the same API as `slidersync_client.Board`, without `await`."""

    def __init__(self, board: aio.Board, runner: _LoopThread) -> None:
        self._board = board
        self._runner = runner

    @classmethod
    def connect(
        cls,
        url: str,
        board: str = "main",
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transports: list[str] | None = None,
    ) -> Board:
        """Connect (see the async `Board.connect` for the arguments and errors); close the
        result with `close()`, or use it in a `with` block."""
        runner = _LoopThread()
        try:
            connected = runner.run(_open(url, board, token, timeout, transports))
        except BaseException:
            runner.stop()
            raise
        return cls(connected, runner)

    def close(self) -> None:
        """Disconnect for good and stop the background loop."""
        if self._runner.loop.is_closed():
            return
        try:
            self._runner.run(self._board.close())
        finally:
            self._runner.stop()

    def __enter__(self) -> Board:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read(self, what: str) -> Any:
        async def read() -> Any:  # on the loop, so the copy is not taken while it changes
            return getattr(self._board, what)

        return self._runner.run(read())

    @property
    def values(self) -> dict[str, float]:
        """Each slider's value, by slider id (a copy)."""
        return dict(self._read("values"))

    @property
    def versions(self) -> dict[str, int]:
        """Each slider's version, by slider id (a copy)."""
        return dict(self._read("versions"))

    @property
    def sliders(self) -> dict[str, Slider]:
        """Each slider's description, by id, in display order."""
        return dict(self._read("sliders"))

    @property
    def name(self) -> str:
        return str(self._read("name"))

    @property
    def can_edit(self) -> bool:
        return bool(self._read("can_edit"))

    @property
    def connected(self) -> bool:
        return bool(self._read("connected"))

    def set(
        self,
        slider: str,
        value: float,
        *,
        base_version: int | None = None,
        timeout: float | None = None,
    ) -> Change:
        """Set a slider; blocks until stored (see the async `Board.set`)."""
        return self._runner.run(
            self._board.set(slider, value, base_version=base_version, timeout=timeout)
        )

    def changes(self) -> Iterator[Change]:
        """Other clients' changes from now on, blocking between them (see `Board.changes`).

        Ends after `close()` (from another thread); raises the error when the board ends on a
        refusal.
        """

        async def subscribe() -> aio.ChangeStream:
            return self._board.changes()

        stream = self._runner.run(subscribe())  # subscribed now, not at the first next()
        return _Changes(stream, self._runner)


class _Changes(Iterator[Change]):
    def __init__(self, stream: aio.ChangeStream, runner: _LoopThread) -> None:
        self._stream = stream
        self._runner = runner

    def __next__(self) -> Change:
        async def next_change() -> Change:
            return await self._stream.__anext__()

        try:
            return self._runner.run(next_change())
        except StopAsyncIteration:
            raise StopIteration from None


async def _open(
    url: str, board: str, token: str | None, timeout: float, transports: list[str] | None
) -> aio.Board:
    return await aio.Board.connect(url, board, token, timeout=timeout, transports=transports)
