"""The supervisor of `guilds run`: restarts with backoff, says what happened, stops in order.

Real child processes (small Python programs); only the clock is the test's, so the backoff is
checked without waiting for it.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guildsctl.supervise import Backoff, Supervisor, describe_exit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def exited(proc: subprocess.Popen[bytes], deadline_s: float = 30.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc.poll() is not None


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(first_s=1, factor=2, max_s=30)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    ("returncode", "said"),
    [(1, "exited with status 1"), (0, "exited with status 0"), (-9, "was killed by SIGKILL")],
)
def test_an_exit_is_described(returncode: int, said: str) -> None:
    assert describe_exit(returncode) == said


def test_a_process_that_exits_is_started_again_after_the_backoff(tmp_path: Path) -> None:
    clock, out = Clock(), io.StringIO()
    supervisor = Supervisor(backoff=Backoff(first_s=1, max_s=8, stable_s=60), out=out, clock=clock)
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        started.append(python("import sys; sys.exit(3)"))
        return started[-1]

    log = tmp_path / "synapse.log"
    supervisor.add("Synapse", start(), start, log)
    try:
        delays = []
        for attempt in range(1, 5):
            assert exited(started[-1])
            supervisor.check()
            said = out.getvalue().splitlines()[-1]
            assert "Synapse exited with status 3" in said, said
            assert f"(attempt {attempt})" in said and str(log) in said, said
            delay = supervisor.children[0].restart_at - clock.now  # type: ignore[operator]
            delays.append(delay)
            # Not before its time...
            clock.now += delay - 0.01
            supervisor.check()
            assert len(started) == attempt
            # ...then at once.
            clock.now += 0.01
            supervisor.check()
            assert len(started) == attempt + 1
            assert f"Synapse started again (pid {started[-1].pid})" in out.getvalue()
        assert delays == [1, 2, 4, 8]
    finally:
        supervisor.stop()


def test_a_process_that_stayed_up_starts_over_at_the_first_delay(tmp_path: Path) -> None:
    clock, out = Clock(), io.StringIO()
    supervisor = Supervisor(backoff=Backoff(first_s=1, max_s=8, stable_s=60), out=out, clock=clock)
    proc = python("import sys; sys.exit(1)")
    supervisor.add("bridge", proc, lambda: python("import sys; sys.exit(1)"), tmp_path / "g.log")
    child = supervisor.children[0]
    child.failures = 3  # three quick failures before this run
    clock.now += 61  # this run lasted longer than stable_s
    assert exited(proc)
    supervisor.check()
    assert child.restart_at == clock.now + 1
    assert "(attempt 1)" in out.getvalue()
    supervisor.stop()


def test_a_killed_process_is_named_with_its_signal(tmp_path: Path) -> None:
    clock, out = Clock(), io.StringIO()
    supervisor = Supervisor(out=out, clock=clock)
    proc = python("import time; time.sleep(60)")
    supervisor.add("Synapse", proc, lambda: python("pass"), tmp_path / "s.log")
    proc.kill()
    assert exited(proc)
    supervisor.check()
    assert "Synapse was killed by SIGKILL; starting it again in 1 s (attempt 1)" in out.getvalue()
    supervisor.stop()


def test_a_failed_start_is_retried_later(tmp_path: Path) -> None:
    clock, out = Clock(), io.StringIO()
    supervisor = Supervisor(backoff=Backoff(first_s=1), out=out, clock=clock)
    attempts = []

    def start() -> subprocess.Popen[bytes]:
        attempts.append(clock.now)
        if len(attempts) == 1:
            raise OSError("no such program")
        return python("import time; time.sleep(60)")

    first = python("pass")
    supervisor.add("coturn", first, start, tmp_path / "c.log")
    assert exited(first)
    supervisor.check()
    clock.now += 1
    supervisor.check()  # the start fails
    assert "coturn could not be started: no such program" in out.getvalue()
    supervisor.check()  # noticed: waits again
    assert "coturn did not start; starting it again in 2 s (attempt 2)" in out.getvalue()
    clock.now += 2
    supervisor.check()
    assert len(attempts) == 2 and supervisor.children[0].proc is not None
    assert supervisor.children[0].proc.poll() is None
    supervisor.stop()
    assert supervisor.children[0].proc.poll() is not None


def test_stop_ends_every_child_last_started_first(tmp_path: Path) -> None:
    supervisor = Supervisor(out=io.StringIO())
    procs = [python("import time; time.sleep(60)") for _ in range(3)]
    for n, proc in enumerate(procs):
        supervisor.add(f"p{n}", proc, lambda: python("pass"), tmp_path / f"{n}.log")
    supervisor.stop()
    assert all(proc.poll() is not None for proc in procs)
    supervisor.stop()  # safe to repeat
