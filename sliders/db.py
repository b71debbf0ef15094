"""Running Django ORM code from the realtime server's event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def _with_fresh_connection(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    # Socket handlers never see Django's request_started/finished signals, so without this a
    # connection broken by a database restart would stay broken for the life of the process.
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


async def run_in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Await `func(*args, **kwargs)` in Django's sync thread, like Channels' database_sync_to_async.

    The thread is shared with Django's sync views, so ORM work from sockets and from the admin is
    serialised in one place and transactions never span threads.
    """
    return await sync_to_async(_with_fresh_connection)(func, *args, **kwargs)
