"""Waiting out a homeserver that is down, stuck or busy: which failures pass, and how long to wait.

Issue 15: nothing gives up on a failure that passes. The journal's steps, the server queue's
jobs and the reads an operation makes after its changes (which must not make it run again) all
wait the same way: backoff doubling from BASE_BACKOFF_S to MAX_BACKOFF_S, or the homeserver's
own `retry_after_ms`, with no attempt limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bridge.matrix import HomeserverUnavailable, MatrixRequestError
from bridge.steps import StaleAnswer
from bridge.store import StoreUnavailable

log = logging.getLogger(__name__)

BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """Whether waiting can cure the failure: the homeserver (or database) down, stuck or busy."""
    if isinstance(exc, HomeserverUnavailable | StaleAnswer | StoreUnavailable):
        return True
    return isinstance(exc, MatrixRequestError) and (exc.status == 429 or exc.status >= 500)


def backoff(attempt: int, exc: BaseException | None = None) -> float:
    """Seconds before attempt `attempt + 1`: doubling from BASE_BACKOFF_S, at most MAX_BACKOFF_S."""
    if isinstance(exc, MatrixRequestError) and exc.retry_after_ms is not None:
        return min(MAX_BACKOFF_S, max(0.0, exc.retry_after_ms / 1000))
    return min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** max(0, attempt - 1))


async def patiently(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`await call()`, again after each transient failure, until it answers or fails for good."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            if not transient(exc):
                raise
            delay = backoff(attempt, exc)
            log.warning("%s waits for the homeserver (%s); again in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
