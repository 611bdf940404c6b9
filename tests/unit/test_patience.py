"""Start-up waits out a homeserver that is busy or away, and gives up only on what will not pass."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from bridge.engine.matrix import HomeserverUnavailable, MatrixClientError, MatrixRequestError
from bridge.engine.patience import Patience, wait_out

REFUSED = HomeserverUnavailable("cannot reach the homeserver at http://127.0.0.1:8008")
LIMITED = MatrixRequestError(429, "M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=2500)
BUSY = MatrixRequestError(500, "M_UNKNOWN", "Internal server error")


class Homeserver:
    """Answers with each failure in turn, then succeeds; records the waits between attempts."""

    def __init__(self, *failures: MatrixClientError) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.slept: list[float] = []
        self.now = 0.0

    async def call(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def waiting(self, **kwargs: object) -> Callable[[], Awaitable[str]]:
        async def go() -> str:
            return await wait_out(
                "Setting up the bot",
                self.call,
                sleep=self.sleep,
                clock=self.clock,
                **kwargs,  # type: ignore[arg-type]
            )

        return go


async def test_a_rate_limit_is_waited_out_for_as_long_as_the_homeserver_asks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hs = Homeserver(LIMITED, LIMITED)
    with caplog.at_level(logging.WARNING, "bridge.engine.patience"):
        assert await hs.waiting()() == "ok"
    assert hs.slept == [2.5, 2.5]
    assert hs.calls == 3
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2
    assert all("Setting up the bot: 429 M_LIMIT_EXCEEDED" in s for s in said), said
    assert all("trying again in 2.5 s" in s for s in said), said


async def test_refused_connections_and_5xx_back_off_to_a_ceiling() -> None:
    hs = Homeserver(REFUSED, BUSY, REFUSED, REFUSED, BUSY, REFUSED, REFUSED)
    assert await hs.waiting(patience=Patience(first_s=0.5, max_s=4))() == "ok"
    assert hs.slept == [0.5, 1, 2, 4, 4, 4, 4]


async def test_a_long_rate_limit_is_capped_and_a_missing_retry_after_uses_the_backoff() -> None:
    long = MatrixRequestError(429, "M_LIMIT_EXCEEDED", "slow down", retry_after_ms=600_000)
    bare = MatrixRequestError(429, "M_LIMIT_EXCEEDED", "slow down")
    hs = Homeserver(long, bare)
    assert await hs.waiting(patience=Patience(first_s=0.5, max_s=30))() == "ok"
    assert hs.slept == [30, 1]


@pytest.mark.parametrize(
    "failure",
    [
        MatrixRequestError(401, "M_UNKNOWN_TOKEN", "Unrecognised access token"),
        MatrixRequestError(404, "M_UNRECOGNIZED", "Unrecognized request"),
        MatrixRequestError(403, "M_FORBIDDEN", "Forbidden"),
    ],
)
async def test_what_waiting_cannot_fix_is_raised_at_once(failure: MatrixRequestError) -> None:
    hs = Homeserver(failure)
    with pytest.raises(MatrixRequestError) as raised:
        await hs.waiting()()
    assert raised.value is failure and hs.slept == []


async def test_a_deadline_ends_the_waiting() -> None:
    hs = Homeserver(*[REFUSED] * 10)
    with pytest.raises(HomeserverUnavailable):
        await hs.waiting(patience=Patience(first_s=1, max_s=1), deadline=3.5)()
    assert hs.slept == [1, 1, 1]


async def test_a_caller_can_refuse_a_failure_that_usually_passes() -> None:
    bad_status = HomeserverUnavailable("502", status=502, errcode="M_BAD_STATUS")
    hs = Homeserver(bad_status)
    with pytest.raises(HomeserverUnavailable):
        await hs.waiting(passes=lambda exc: getattr(exc, "errcode", None) != "M_BAD_STATUS")()
    assert hs.slept == []
