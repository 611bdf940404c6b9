"""Per-key token buckets: how often a user may do something; pure logic, the clock passed in."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

# Buckets kept at most; past that the least recently used go first (a full bucket is the same
# as no bucket, and one that is still draining belongs to a key that is probably gone).
DEFAULT_MAX_KEYS = 100_000


class RateLimiter:
    """Each key may act `burst` times at once, then once every `period_s / burst` seconds.

    A classic token bucket: a key starts with `burst` tokens, each action takes one, and tokens
    come back continuously at `burst / period_s` per second up to `burst` again. So "10 per
    minute" lets a user try 10 times at once, then once every 6 seconds.
    """

    def __init__(
        self,
        *,
        burst: int,
        period_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if burst < 1 or period_s <= 0 or max_keys < 1:
            raise ValueError("burst and max_keys must be at least 1 and period_s positive")
        self.burst = burst
        self.rate_per_s = burst / period_s
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens at `when`, when)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: str, now: float) -> float:
        state = self._buckets.get(key)
        if state is None:
            return float(self.burst)
        tokens, when = state
        # max(): a clock that steps back must not take tokens away.
        return min(float(self.burst), tokens + max(0.0, now - when) * self.rate_per_s)

    def take(self, key: str) -> int | None:
        """Spend one of `key`'s tokens: None when allowed, else the milliseconds to wait.

        A refused attempt spends nothing, so retrying exactly when told succeeds.
        """
        now = self._clock()
        tokens = self._tokens(key, now)
        # The epsilon absorbs float error, so that waiting exactly the answered time suffices.
        if tokens < 1.0 - 1e-9:
            # Rounded up (past float noise), so that retrying after exactly this long succeeds.
            wait_ms = (1.0 - tokens) / self.rate_per_s * 1000
            return max(1, math.ceil(wait_ms - 1e-6))
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return None

    def remaining(self, key: str) -> int:
        """Whole actions `key` may take right now."""
        return int(self._tokens(key, self._clock()))

    def __len__(self) -> int:
        return len(self._buckets)
