"""Waiting out a homeserver that is not ready yet: which failures pass, and how long to wait.

At start-up the bridge registers its bot, asks who it is and pings its own listener through the
homeserver. A homeserver that is starting, restarting or busy answers with a refused
connection, a 5xx, or 429 `M_LIMIT_EXCEEDED` (Synapse limits `/register` by client address,
and the bot shares 127.0.0.1 with everyone signing up there): those pass, so the bridge waits
— honouring `retry_after_ms` — and tries again, saying so in its log each time. Any other
answer (an unknown token, a 404 from a wrong URL) will not pass by waiting and is raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bridge.matrix import HomeserverUnavailable, MatrixClientError, MatrixRequestError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """Delays between attempts: doubling from `first_s`, never above `max_s`."""

    first_s: float = 0.5
    max_s: float = 30.0

    def wait_after(self, exc: MatrixClientError, delay: float) -> float | None:
        """How long to wait after `exc` when the backoff is at `delay`; None if it will not pass."""
        if isinstance(exc, HomeserverUnavailable):
            return delay
        if isinstance(exc, MatrixRequestError):
            if exc.status == 429:
                asked = exc.retry_after_ms / 1000 if exc.retry_after_ms is not None else delay
                return min(max(asked, 0.05), self.max_s)
            if exc.status >= 500:
                return delay
        return None


async def wait_out(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    patience: Patience = Patience(),  # noqa: B008 - frozen, so one shared default is safe
    deadline: float | None = None,
    passes: Callable[[MatrixClientError], bool] = lambda exc: True,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`await call()` until it succeeds, waiting out transient failures (logged as `what`).

    Raises the failure when it will not pass by waiting, when `passes` says so, or when the
    next attempt would come after `deadline` (a `time.monotonic()` value; None waits on).
    """
    delay = patience.first_s
    while True:
        try:
            return await call()
        except MatrixClientError as exc:
            wait = patience.wait_after(exc, delay) if passes(exc) else None
            if wait is None or (deadline is not None and clock() + wait > deadline):
                raise
            log.warning("%s: %s; trying again in %.1f s", what, exc, wait)
            await sleep(wait)
            delay = min(delay * 2, patience.max_s)
