"""The token-bucket rate limiter, driven by a clock the test moves."""

from __future__ import annotations

import pytest

from bridge.services.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, burst: int = 10, period_s: float = 60.0, **kw: int) -> RateLimiter:
    return RateLimiter(burst=burst, period_s=period_s, clock=clock, **kw)


def test_a_burst_is_allowed_then_refused_with_the_wait() -> None:
    clock = Clock()
    limits = limiter(clock)
    assert [limits.take("@a:x") for _ in range(10)] == [None] * 10
    # 10 per minute: the next token comes back 6 seconds later.
    assert limits.take("@a:x") == 6000
    assert limits.remaining("@a:x") == 0


def test_refusals_spend_nothing_and_waiting_the_answer_suffices() -> None:
    clock = Clock()
    limits = limiter(clock)
    for _ in range(10):
        limits.take("@a:x")
    clock.now += 2.5
    wait = limits.take("@a:x")
    assert wait == 3500
    assert limits.take("@a:x") == 3500
    clock.now += 3.5
    assert limits.take("@a:x") is None
    assert limits.take("@a:x") == 6000


def test_an_odd_rate_waits_exactly_as_long_as_answered() -> None:
    clock = Clock()
    limits = limiter(clock, burst=3, period_s=7.0)
    for _ in range(3):
        assert limits.take("k") is None
    for _ in range(20):
        wait = limits.take("k")
        assert wait is not None and wait > 0
        clock.now += wait / 1000
        assert limits.take("k") is None


def test_tokens_come_back_up_to_the_burst_only() -> None:
    clock = Clock()
    limits = limiter(clock)
    limits.take("@a:x")
    clock.now += 3600
    assert limits.remaining("@a:x") == 10
    assert [limits.take("@a:x") for _ in range(11)][-1] == 6000


def test_keys_are_independent() -> None:
    clock = Clock()
    limits = limiter(clock, burst=1)
    assert limits.take("@a:x") is None
    assert limits.take("@a:x") is not None
    assert limits.take("@b:x") is None


def test_a_clock_stepping_back_takes_nothing_away() -> None:
    clock = Clock()
    limits = limiter(clock, burst=2)
    limits.take("k")
    clock.now -= 100
    assert limits.remaining("k") == 1
    assert limits.take("k") is None
    assert limits.take("k") is not None


def test_memory_is_bounded_by_dropping_the_least_recent_keys() -> None:
    clock = Clock()
    limits = limiter(clock, burst=1, max_keys=3)
    for key in ("a", "b", "c", "d"):
        limits.take(key)
    assert len(limits) == 3
    # "a" was dropped, so it starts again with a full bucket; "d" is still drained.
    assert limits.take("a") is None
    assert limits.take("d") is not None


@pytest.mark.parametrize(
    "kwargs",
    [{"burst": 0, "period_s": 60.0}, {"burst": 1, "period_s": 0.0}, {"burst": 1, "period_s": -1.0}],
)
def test_nonsense_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)
