"""Blocking Redis clients for code outside the event loop (a health check, a shell's notices).

The realtime server's own client is asynchronous and lives in sliders/cluster.py. Both read
`REDIS_URL`; nothing here runs unless it is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    import redis


def client(*, connect_timeout: float, timeout: float) -> redis.Redis:
    """A new client for `REDIS_URL`; timeouts in seconds (connecting, then each command).

    Raises redis.RedisError subclasses on use, not here: connecting is lazy.
    """
    import redis

    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=connect_timeout, socket_timeout=timeout
    )
