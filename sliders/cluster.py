"""What several server processes share: notices between them and who is connected where.

The process's cluster is `get_cluster()`, built on first use (as Channels' `get_channel_layer()`
is); the realtime server starts and stops it, and anyone may ask it for presence counts. With
`REDIS_URL` unset there is one process and everything stays in memory (`LocalCluster`). With
Redis (`RedisCluster`):

- *notices* go over one pub/sub channel: "slider X of board B has version V now" (each process
  hands it to its own clients through sliders.realtime.fanout, latest value first), "board B
  changed" (each process rebuilds `board:state` for its own clients, whose `can_edit` differs
  per user) and "presence on board B changed". A notice reaches the process that sends it at
  once, without the trip through Redis, and still does when Redis is down;
- presence counts live in one Redis hash per board, a field per process. Each process refreshes
  a heartbeat key with a short TTL; a process that dies stops refreshing it and its counts stop
  counting after `PRESENCE_PROCESS_TTL` seconds, so it leaves no ghosts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from django.conf import settings

logger = logging.getLogger(__name__)

# (kind, board, data). Kinds: "update" (data: {"updates": [{id, value, version}], "origin": the
# change's sender, see sliders.notices; "origin" is the name on the wire between processes;
# "source", "actor", "at" and "bridge": who made the changes, how, when, for the bridges),
# "board" (its structure changed; data None, or what changed for the bridges: see
# notices.board_changed), "bridges" (its bridge settings changed; only the bridge runner
# listens), "preset" (a preset was recalled, see notices.preset_recalled; only the bridge
# runner listens), "presence", "recount", "hand" (data: {id, hand, by, held}),
# "fade" (data: {preset, seconds, state, id}) and "resync" (notices may have been lost: re-send
# board:state to every client).
NoticeHandler = Callable[[str, str, Any], Awaitable[None]]


def channel() -> str:
    return f"{settings.REDIS_PREFIX}:notices"


def presence_key(board: str) -> str:
    return f"{settings.REDIS_PREFIX}:presence:{board}"


def process_key(process: str) -> str:
    return f"{settings.REDIS_PREFIX}:process:{process}"


class LocalCluster:
    """One process: notices are delivered in-process and the local count is the total."""

    def __init__(self) -> None:
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._handler: NoticeHandler | None = None
        self._local_counts: dict[str, int] = {}

    async def start(self, handler: NoticeHandler) -> None:
        self._handler = handler

    async def stop(self) -> None:
        self._handler = None

    async def notify(self, kind: str, board: str, data: Any = None) -> None:
        """Tell every process (this one first) that something about `board` changed."""
        if self._handler is not None:
            await self._handler(kind, board, data)

    async def report_count(self, board: str, count: int) -> None:
        self._local_counts[board] = count

    async def total_count(self, board: str) -> int:
        return self._local_counts.get(board, 0)

    def describe(self) -> str:
        return "in-process"


class RedisCluster(LocalCluster):
    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio

        self.url = url
        self.redis = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15
        )
        self.ttl = settings.PRESENCE_PROCESS_TTL
        self._tasks: list[asyncio.Task[None]] = []
        self._available = True
        self._lost_publishes = False

    async def start(self, handler: NoticeHandler) -> None:
        await super().start(handler)
        self._tasks = [
            asyncio.create_task(self._listen(), name="cluster-listen"),
            asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:  # leave cleanly: drop our counts and tell the others to recount
            boards = [b for b, n in self._local_counts.items() if n]
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.delete(process_key(self.process_id))
                for board in boards:
                    pipe.hdel(presence_key(board), self.process_id)
                await pipe.execute()
            for board in boards:
                await self._publish("presence", board)
        except Exception as error:  # Redis gone: our heartbeat expires on its own
            logger.warning("Could not leave the cluster cleanly: %s", error)
        await self.redis.aclose()
        await super().stop()

    async def notify(self, kind: str, board: str, data: Any = None) -> None:
        try:
            await super().notify(kind, board, data)
        finally:  # the other processes hear of it even if handling it here failed
            await self._publish(kind, board, data)

    async def report_count(self, board: str, count: int) -> None:
        await super().report_count(board, count)
        key = presence_key(board)
        try:
            if count:
                await self.redis.hset(key, self.process_id, count)
            else:
                await self.redis.hdel(key, self.process_id)
        except Exception as error:
            self._redis_failed(error)

    async def total_count(self, board: str) -> int:
        """The sum over live processes; fields of dead processes are removed on the way."""
        local = await super().total_count(board)
        key = presence_key(board)
        try:
            # Typed for both modes of the client; ours leaves decode_responses off: bytes.
            counts = cast("dict[bytes, bytes]", await self.redis.hgetall(key))
            others = {
                p.decode(): int(n) for p, n in counts.items() if p.decode() != self.process_id
            }
            if not others:
                return local
            alive = await self.redis.mget([process_key(p) for p in others])
            dead = [p for p, beat in zip(others, alive, strict=True) if beat is None]
            if dead:
                await self.redis.hdel(key, *dead)
            self._redis_ok()
            return local + sum(n for p, n in others.items() if p not in dead)
        except Exception as error:
            self._redis_failed(error)
            return local

    def describe(self) -> str:
        return f"Redis at {self.url.split('@')[-1]}"

    async def _publish(self, kind: str, board: str, data: Any = None) -> None:
        try:
            await self.redis.publish(channel(), encode_notice(kind, board, data, self.process_id))
            if self._lost_publishes:
                # Some notices never left this process: the others re-send board:state.
                self._lost_publishes = False
                await self.redis.publish(
                    channel(), encode_notice("resync", "", None, self.process_id)
                )
        except Exception as error:
            self._lost_publishes = True
            self._redis_failed(error)
            return
        self._redis_ok()

    async def _listen(self) -> None:
        lost = False
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel())
                    self._redis_ok()
                    if lost and self._handler is not None:
                        lost = False
                        # Notices sent while we could not hear them are lost: resync our clients.
                        await self._handler("resync", "", None)
                    async for message in pubsub.listen():
                        await self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                lost = True
                self._redis_failed(error)
                await asyncio.sleep(1)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        try:
            notice = json.loads(message["data"])
            kind, board, data, sender = (
                notice["kind"],
                notice["board"],
                notice.get("data"),
                notice.get("from"),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.warning("Ignoring a malformed cluster notice: %r", message.get("data"))
            return
        if sender == self.process_id or self._handler is None:
            return  # our own notices were handled when we sent them
        try:
            await self._handler(kind, board, data)
        except Exception:
            logger.exception("Handling the cluster notice %s for board %s failed", kind, board)

    async def _heartbeat(self) -> None:
        """Keep our process key alive and our counts current (Redis may have restarted)."""
        interval = max(self.ttl / 3, 0.2)
        while True:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.set(process_key(self.process_id), 1, px=int(self.ttl * 1000))
                    for board, count in self._local_counts.items():
                        if count:
                            pipe.hset(presence_key(board), self.process_id, count)
                    await pipe.execute()
                self._redis_ok()
            except Exception as error:
                self._redis_failed(error)
            if self._handler is not None:
                # Processes that died since the last beat leave the totals now.
                for board, count in list(self._local_counts.items()):
                    if count:
                        await self._handler("recount", board, None)
            await asyncio.sleep(interval)

    def _redis_failed(self, error: Exception) -> None:
        if self._available:
            logger.error("Redis is unavailable (%s); serving this process's clients only", error)
        self._available = False

    def _redis_ok(self) -> None:
        if not self._available:
            logger.warning("Redis is back; broadcasting to all processes again")
        self._available = True


def encode_notice(kind: str, board: str, data: Any = None, sender: str | None = None) -> str:
    """A notice as published on the channel (also by processes that serve no clients)."""
    return json.dumps({"kind": kind, "board": board, "data": data, "from": sender})


def create_cluster() -> LocalCluster:
    """A new cluster for this process: over Redis when `REDIS_URL` is set, else in memory."""
    return RedisCluster(settings.REDIS_URL) if settings.REDIS_URL else LocalCluster()


_cluster: LocalCluster | None = None


def get_cluster() -> LocalCluster:
    """This process's cluster, built on first use (not started: the realtime server starts it)."""
    global _cluster
    if _cluster is None:
        _cluster = create_cluster()
    return _cluster
