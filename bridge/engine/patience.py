"""Waiting out a homeserver that is down, stuck or busy: which failures pass, and how long to wait.

Issue 15: nothing gives up on a failure that passes. The journal's steps, the server queue's
jobs, the reads an operation makes after its changes (which must not make it run again) and the
bridge's start-up (registering its bot, asking who it is, pinging its own listener through the
homeserver) all wait the same way: backoff doubling from BASE_BACKOFF_S to MAX_BACKOFF_S, or the
homeserver's own `retry_after_ms` (Synapse limits `/register` by client address, and the bot
shares 127.0.0.1 with everyone signing up there), with no attempt limit unless a caller sets a
deadline. What will not pass by waiting (an unknown token, a 404 from a wrong URL, a refusal) is
raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bridge.engine.matrix import HomeserverUnavailable, MatrixRequestError
from bridge.engine.steps import StaleAnswer
from bridge.engine.store import StoreUnavailable
from guilds.config import DEFAULT_MAX_RETRY_WAIT_S

log = logging.getLogger(__name__)

BASE_BACKOFF_S = 0.5
# guilds.yaml's `operations.max_retry_wait_s`, by default.
MAX_BACKOFF_S = float(DEFAULT_MAX_RETRY_WAIT_S)
# A homeserver asking for no wait at all is still not asked again in a tight loop.
MIN_RATE_LIMIT_WAIT_S = 0.05
T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """Whether waiting can cure the failure: the homeserver (or database) down, stuck or busy."""
    if isinstance(exc, HomeserverUnavailable | StaleAnswer | StoreUnavailable):
        return True
    return isinstance(exc, MatrixRequestError) and (exc.status == 429 or exc.status >= 500)


def backoff(
    attempt: int, exc: BaseException | None = None, *, max_s: float = MAX_BACKOFF_S
) -> float:
    """Seconds before attempt `attempt + 1`: doubling from BASE_BACKOFF_S, at most `max_s`
    (guilds.yaml's `operations.max_retry_wait_s`, MAX_BACKOFF_S by default)."""
    if isinstance(exc, MatrixRequestError) and exc.retry_after_ms is not None:
        return min(max_s, max(0.0, exc.retry_after_ms / 1000))
    return min(max_s, BASE_BACKOFF_S * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class Patience:
    """Delays between attempts: doubling from `first_s`, never above `max_s`."""

    first_s: float = BASE_BACKOFF_S
    max_s: float = MAX_BACKOFF_S

    def wait_after(self, exc: BaseException, delay: float) -> float | None:
        """How long to wait after `exc` when the backoff is at `delay`; None if it will not pass."""
        if not transient(exc):
            return None
        if isinstance(exc, MatrixRequestError) and exc.status == 429:
            asked = exc.retry_after_ms / 1000 if exc.retry_after_ms is not None else delay
            return min(max(asked, MIN_RATE_LIMIT_WAIT_S), self.max_s)
        return delay


async def wait_out(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    patience: Patience = Patience(),  # noqa: B008 - frozen, so one shared default is safe
    deadline: float | None = None,
    passes: Callable[[BaseException], bool] = lambda exc: True,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`await call()` until it succeeds, waiting out transient failures (logged as `what`).

    Raises the failure when it will not pass by waiting, when `passes` says so, or when the
    next attempt would come after `deadline` (a `clock()` value; None waits on).
    """
    delay = patience.first_s
    while True:
        try:
            return await call()
        except Exception as exc:
            wait = patience.wait_after(exc, delay) if passes(exc) else None
            if wait is None or (deadline is not None and clock() + wait > deadline):
                raise
            log.warning("%s: %s; trying again in %.1f s", what, exc, wait)
            await sleep(wait)
            delay = min(delay * 2, patience.max_s)


async def patiently(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`await call()`, again after each transient failure, until it answers or fails for good.

    Reads the backoff bounds when called, so tests may shorten them.
    """
    return await wait_out(
        f"{what} waits for the homeserver", call, patience=Patience(BASE_BACKOFF_S, MAX_BACKOFF_S)
    )
