"""TCP in-betweens the tests control: a fault proxy and a load balancer.

`TcpProxy` forwards every connection it accepts to one local port. A test can then:

- cut it (`stop`): stop listening and abort every connection, the way a crashed or restarted
  service looks to its clients; `start` listens again on the same port;
- freeze it (`freeze`): stop forwarding in both directions without closing anything (no FIN, no
  RST), like a link whose packets are all dropped; `resume` delivers what waited, in order;
- slow it (`shape`): add latency per direction (order preserved) and throttle each direction
  to a rate in bytes/s.

It runs its own event loop in a thread, so it keeps forwarding while the test's thread blocks
(`LiveServer.start` polls a server synchronously, and that server may need a database behind
this proxy).

`Balancer` stands in for nginx or a cloud balancer in front of several server processes, on
the test's own event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Bytes read at once; also the largest piece written in one go when a direction is throttled
# (then at most a twentieth of a second's worth, so the rate is smooth).
CHUNK_BYTES = 65536
# Chunks read ahead of the writer per direction: beyond this the proxy stops reading, so a slow
# or frozen direction pushes back on the sender through TCP instead of filling memory.
QUEUE_CHUNKS = 256


@dataclass
class Shape:
    """How one direction of the proxy delays data: `latency` in seconds, `rate` in bytes/s
    (None for unlimited)."""

    latency: float = 0.0
    rate: float | None = None


class TcpProxy:
    """A TCP forwarder from a free local port to `127.0.0.1:target_port`, with faults on demand.

    "Up" is client to target, "down" is target to client. Every method may be called from any
    thread; each returns once the proxy's loop has applied it (within 10 s, else TimeoutError).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.up = Shape()
        self.down = Shape()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Future[Any]] = set()  # every connection's pumps
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()  # cleared while frozen
        self._flowing.set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> TcpProxy:
        """Listen (again, on the same port once it has one)."""
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, both ways (an RST to each side)."""
        self._call(self._stop())

    def freeze(self) -> None:
        """Stop forwarding both ways, closing nothing; `resume` or `stop` ends it."""
        self._call(self._set_flowing(False))

    def resume(self) -> None:
        """Forward again what waited during a freeze, in order, then carry on."""
        self._call(self._set_flowing(True))

    def shape(
        self,
        *,
        latency: float = 0.0,
        rate: float | None = None,
        up: Shape | None = None,
        down: Shape | None = None,
    ) -> None:
        """Add `latency` seconds to each direction and throttle each to `rate` bytes/s.

        `up` / `down` give one direction its own shape instead. Applies to data read from now on.
        """

        async def apply() -> None:
            self.up = up or Shape(latency, rate)
            self.down = down or Shape(latency, rate)

        self._call(apply())

    def close(self) -> None:
        """Cut everything and stop the proxy's thread."""
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by this proxy's."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(upstream_writer)
        pumps = [
            asyncio.ensure_future(self._pump(reader, upstream_writer, lambda: self.up)),
            asyncio.ensure_future(self._pump(upstream_reader, writer, lambda: self.down)),
        ]
        self._tasks.update(pumps)
        # The pumps end with the connection or are cancelled by `stop`, which awaits them.
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)
        self._writers.discard(writer)
        self._writers.discard(upstream_writer)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, shape: Any
    ) -> None:
        """One direction: a reader that stamps each chunk with when it is due, and a writer that
        sends chunks in order once due, at the direction's rate, unless frozen."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def read() -> None:
            last_due = 0.0
            while True:
                await self._flowing.wait()
                try:
                    data = await reader.read(CHUNK_BYTES)
                except (ConnectionError, OSError):
                    data = b""  # reset: end this direction like a close
                # Never before an earlier chunk, even if the latency was lowered meanwhile.
                last_due = max(last_due, time.monotonic() + shape().latency)
                await queue.put((last_due, data))
                if not data:
                    return

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    await self._flowing.wait()
                    return  # the sender closed: close this side too (in `finally`)
                while data:
                    await self._flowing.wait()
                    rate = shape().rate
                    piece = data if rate is None else data[: max(1, int(rate / 20))]
                    data = data[len(piece) :]
                    writer.write(piece)
                    await writer.drain()
                    if rate is not None:
                        await asyncio.sleep(len(piece) / rate)

        reading = asyncio.ensure_future(read())
        try:
            await write()
        except (ConnectionError, OSError):
            pass
        finally:
            reading.cancel()
            writer.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from `reader` to `writer` until either side closes (for test proxies)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Balancer:
    """A tiny TCP load balancer: each connection goes to the first backend that accepts it.

    It stands in for nginx or a cloud balancer: when a backend dies, the clients' connections
    through it break, and their reconnects land on the next backend in the list.
    """

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Balancer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.backends:
            try:
                backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return
        await asyncio.gather(pipe(reader, backend_writer), pipe(backend_reader, writer))
