"""Waiting for a condition: the one polling rule the tests use, for async and blocking code.

`wait_until` is for async tests (it yields to the event loop between checks);
`wait_until_blocking` is for code that may not await (Playwright's sync API, sync tests).
Both check the predicate first, return its first truthy result, and raise AssertionError
naming `what` once `timeout` seconds have passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def _checked(predicate: Callable[[], Any], started: float, timeout: float, what: str) -> Any:
    """The predicate's result if truthy, None to poll again; AssertionError once timed out."""
    result = predicate()
    if result:
        return result
    if time.monotonic() - started > timeout:
        raise AssertionError(f"Timed out after {timeout}s waiting for {what or predicate}")
    return None


async def wait_until(
    predicate: Callable[[], Any], timeout: float = 5.0, what: str = "", *, interval: float = 0.01
) -> Any:
    """Poll `predicate()` every `interval` seconds until it is truthy; return that result."""
    started = time.monotonic()
    while (result := _checked(predicate, started, timeout, what)) is None:
        await asyncio.sleep(interval)
    return result


def wait_until_blocking(
    predicate: Callable[[], Any], timeout: float = 5.0, what: str = "", *, interval: float = 0.02
) -> Any:
    """`wait_until` for code that cannot await: sleeps the thread between checks."""
    started = time.monotonic()
    while (result := _checked(predicate, started, timeout, what)) is None:
        time.sleep(interval)
    return result
