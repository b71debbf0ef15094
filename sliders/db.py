"""Running Django ORM code from the realtime server's event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def _drop_broken_connections() -> None:
    # Socket handlers never see Django's request_started/finished signals, which is where Django
    # recycles connections. This thread keeps its connection open between sets (opening one per
    # set costs more than the set), and replaces it once a query has failed on it and it no
    # longer answers, e.g. after a database restart.
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


def _in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    _drop_broken_connections()
    return func(*args, **kwargs)


async def run_in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Await `func(*args, **kwargs)` in the realtime server's one database thread.

    Called outside any request, sync_to_async runs everything in one long-lived thread, so ORM
    work from sockets is serialised in one place, transactions never span threads, and the
    thread holds a single connection for the life of the process.
    """
    return await _run_in_db_thread(func, *args, **kwargs)


_run_in_db_thread = sync_to_async(_in_db_thread)
