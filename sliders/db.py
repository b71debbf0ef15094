"""Running Django ORM code from the realtime server's event loop, in two database threads.

- Changes (sets, presets) run in ONE write thread (`run_in_db_thread`): SQLite has one writer
  anyway, transactions never span threads, and the thread keeps one connection.
- Reads for connecting pages and `board:state` run in a second thread with its own connection
  (`run_in_read_thread`), so they never queue behind a write that waits for a lock: SQLite in WAL
  mode and PostgreSQL both let readers go on while a writer waits.
- A change may carry a deadline (`deadline()`, set by the connection's change queue): work that
  reaches the write thread after its deadline is refused with `DeadlinePassed` without touching
  the database, and work that starts late waits for locks only for the time it has left. So a
  set is answered within `DATABASE_TIMEOUT` in all, whatever queued before it.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from sliders.realtime.internals import drop_broken_connections

P = ParamSpec("P")
R = TypeVar("R")

# When (time.monotonic(), in seconds) the change being handled must have been answered; None: no
# deadline. A context variable, so it follows the change into the write thread.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "database_deadline", default=None
)
# Queueing shorter than this is not taken off the lock wait: shortening it costs PostgreSQL a
# round trip or two, which the normal path must not pay. A set may so take up to this much longer
# than DATABASE_TIMEOUT.
LOCK_WAIT_SLACK = 0.25


class DeadlinePassed(DatabaseError):
    """A change waited its whole deadline in a queue; it never reached the database."""


@contextlib.contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Database work started in this block must start before `at` (time.monotonic(), seconds)."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def context_without_deadline() -> contextvars.Context:
    """A copy of the current context with no deadline, for tasks that outlive the change."""
    context = contextvars.copy_context()
    context.run(_deadline.set, None)
    return context


def _in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    drop_broken_connections()
    at = _deadline.get()
    if at is None:
        return func(*args, **kwargs)
    left = at - time.monotonic()
    if left <= 0:
        raise DeadlinePassed("The change waited too long for the database.")
    if left >= settings.DATABASE_TIMEOUT - min(LOCK_WAIT_SLACK, settings.DATABASE_TIMEOUT / 10):
        return func(*args, **kwargs)  # the normal path: the configured lock wait applies
    with _lock_wait_at_most(left):
        return func(*args, **kwargs)


@contextlib.contextmanager
def _lock_wait_at_most(seconds: float) -> Iterator[None]:
    """Wait at most `seconds` for a lock in this block, instead of DATABASE_TIMEOUT."""
    milliseconds = max(1, int(seconds * 1000))
    if connection.vendor == "sqlite":
        # The busy timeout belongs to the connection: set it before BEGIN IMMEDIATE waits.
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {milliseconds}")
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"PRAGMA busy_timeout = {int(settings.DATABASE_TIMEOUT * 1000)}")
            except DatabaseError:
                connection.close()  # the next connection starts with the configured timeout
    elif connection.vendor == "postgresql":
        # SET LOCAL ends with the transaction, so nothing needs restoring; the service's own
        # transaction becomes a savepoint inside this one.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{milliseconds}ms"])
            yield
    else:
        yield


async def run_in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Await `func(*args, **kwargs)` in the realtime server's one write thread.

    Called outside any request, sync_to_async runs everything in one long-lived thread, so
    changes from sockets are serialised in one place, transactions never span threads, and the
    thread holds a single connection for the life of the process. Within `deadline(at)`, raises
    DeadlinePassed if the thread gets to it after `at`, and waits for locks only until `at`.
    """
    return await _run_in_db_thread(func, *args, **kwargs)


async def run_in_read_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Await read-only `func(*args, **kwargs)` in the read thread (its own connection).

    For what a connecting page needs (its board, its visitor, `board:state`): these never wait
    behind changes queued in the write thread. `func` must not write.
    """
    return await _run_in_read_thread(func, *args, **kwargs)


_run_in_db_thread = sync_to_async(_in_db_thread)
_run_in_read_thread = sync_to_async(
    _in_db_thread,
    thread_sensitive=False,
    executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="database-reads"),
)
