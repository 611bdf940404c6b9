"""Keeps the processes of `guilds run` running: one that exits is started again, with backoff.

The launcher starts each process, hands it to a `Supervisor`, and then only waits for Ctrl-C;
the supervisor looks at every process twice a second. A process that exits while the stack runs
(Synapse killed, the bridge crashing) is reported on the terminal — which process, how it ended,
when the next attempt is, where its log is — and started again after a delay that doubles with
each quick failure, up to a ceiling, and starts over once the process has stayed up a while.
The others keep serving meanwhile: the web UI answers and shows its "Connection lost" banner
while Synapse is away, and the bridge waits for the homeserver to come back.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from guildsctl.synapse import stop

Start = Callable[[], "subprocess.Popen[bytes]"]


@dataclass(frozen=True)
class Backoff:
    """How long to wait before starting a process again after its `failures`-th quick exit."""

    first_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    # A process that ran at least this long had recovered: its next exit counts as the first.
    stable_s: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.first_s * self.factor ** max(failures - 1, 0), self.max_s))


def describe_exit(returncode: int) -> str:
    """`exited with status 1`, or `was killed by SIGKILL` for a negative Popen returncode."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


@dataclass
class Child:
    """One supervised process: how to start it again, and where it writes its log."""

    name: str
    start: Start
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Watches children, restarts those that exit, and stops them all in reverse order."""

    def __init__(
        self,
        *,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen, so one shared default is safe
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self.children: list[Child] = []
        self._out = out
        self._clock = clock

    def add(self, name: str, proc: subprocess.Popen[bytes], start: Start, log_path: Path) -> None:
        """Supervise `proc`, already started; `start` starts it again the same way."""
        self.children.append(Child(name, start, log_path, proc, self._clock()))

    def _say(self, message: str) -> None:
        out = self._out if self._out is not None else sys.stderr
        print(f"==> {time.strftime('%H:%M:%S')} {message}", file=out, flush=True)

    def check(self) -> None:
        """One look at every child: note exits, start again those whose delay has passed."""
        now = self._clock()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child, now)
                continue
            returncode = child.proc.poll() if child.proc is not None else -1
            if returncode is None:
                continue
            if now - child.started_at >= self.backoff.stable_s:
                child.failures = 0
            child.failures += 1
            delay = self.backoff.delay(child.failures)
            child.restart_at = now + delay
            how = describe_exit(returncode) if child.proc is not None else "did not start"
            self._say(
                f"{child.name} {how}; starting it again in {delay:g} s "
                f"(attempt {child.failures}). Its log: {child.log_path}"
            )

    def _restart(self, child: Child, now: float) -> None:
        child.restart_at = None
        child.started_at = now
        try:
            child.proc = child.start()
        except (OSError, RuntimeError) as exc:
            child.proc = None
            self._say(f"{child.name} could not be started: {exc}")
            return
        self._say(f"{child.name} started again (pid {child.proc.pid})")

    def run(self, stopping: threading.Event, interval_s: float = 0.5) -> None:
        """Supervise until `stopping` is set (Ctrl-C, SIGTERM)."""
        while not stopping.wait(interval_s):
            self.check()

    def stop(self) -> None:
        """Stop every child, the last started first; safe to repeat."""
        for child in reversed(self.children):
            child.restart_at = None
            if child.proc is not None:
                stop(child.proc)
