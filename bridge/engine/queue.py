"""One writer per server: a durable FIFO queue of the operations that change each server.

Every change to a server — an API request, a reconciliation plan, declared-server reconciling —
runs its check → plan → execute → record section in the server's *turn*: one at a time per
server, in arrival order, different servers in parallel. So no operation plans from a view
another one is changing (issue 15: two transfers both answered 200; a kick and a role edit each
wrote over the other's power levels).

Two ways in:

- `submit` (or `run`) stores a **job** — kind, server, actor, parameters, body — before it waits
  for its turn, so a job accepted here is not lost to a crash: at the next start (`start`) every
  server first finishes the journal operations a crash interrupted, then runs its stored jobs in
  order, each re-checked at its turn (the actor's permissions may have changed meanwhile). A job
  answers an `Outcome` (what the synchronous API call answers) or fails with a `MatrixError`;
  both are stored, so `get` still finds them after the caller gave up (`GET /operations/{id}`).
- `turn(server_id)` is the same turn, not stored: for work that is derived again from the rooms
  when it is lost (reconciliation, convergence). Turns nest: code already holding a server's
  turn passes straight through, so a job may call services that take the turn themselves.

A job never gives up on a homeserver that is down, stuck or throttling: a transient failure
(unreachable, timeout, 5xx, 429, a stale answer) runs the job again from its check after a
bounded backoff, for as long as it takes; the journal's steps do the same
(bridge/engine/journal.py).
The bridge runs as one process, so the turns are in memory; the jobs are in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.engine.journal import CURRENT_JOB, OperationFailed, OperationJournal, created_at_ms
from bridge.engine.patience import MAX_BACKOFF_S, backoff, transient
from bridge.engine.store import Database, StoreError, StoreUnavailable
from bridge.errors import MatrixError

log = logging.getLogger(__name__)

DEFAULT_ANSWER_WITHIN_S = 10.0
# Ended jobs are kept this long for `GET /operations/{id}`, then pruned (checked hourly).
RETENTION_MS = 7 * 24 * 3600 * 1000
PRUNE_EVERY_MS = 3600 * 1000

# The servers whose turn the running task holds (turns nest; see `turn`).
_HELD: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "guilds_held_turns", default=frozenset()
)


@dataclass(frozen=True)
class Job:
    """A stored request to change a server, as its handler receives it."""

    job_id: str
    kind: str
    server_id: str
    actor: str | None
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    # Held in memory only, never stored (the caller's access token): empty after a restart.
    held: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Outcome:
    """What a job answers: the HTTP status and JSON body the synchronous call would answer."""

    status: int
    body: Any = None


@dataclass(frozen=True)
class JobRecord:
    """What the database holds about a job (`GET /operations/{id}`)."""

    job_id: str
    kind: str
    server_id: str
    actor: str | None
    state: str  # queued | running | done | failed
    created_at: int
    updated_at: int
    outcome: Outcome | None  # when done; its body is None when a restart interrupted the job
    error: dict[str, Any] | None  # when failed: {errcode, error}, as the API would answer
    error_status: int | None


@dataclass(frozen=True)
class Progress:
    """How far a job's journaled changes are, and what they wait for (None: nothing)."""

    steps_done: int
    steps_total: int
    waiting_for: str | None


class JobNotFound(LookupError):
    """No job has this id."""


class JobFailed(Exception):
    """The job failed; `error` is the MatrixError the synchronous call would have raised."""

    def __init__(self, job_id: str, error: MatrixError) -> None:
        super().__init__(f"job {job_id} failed: {error.message}")
        self.job_id = job_id
        self.error = error


class _StoredError(MatrixError):
    """A failure read back from the database, answered with its recorded status and errcode."""

    def __init__(self, status: int, payload: Mapping[str, Any]) -> None:
        extra = {k: v for k, v in payload.items() if k not in ("errcode", "error")}
        super().__init__(str(payload.get("error", "")), **extra)
        self.status = status  # type: ignore[misc]
        self.errcode = str(payload.get("errcode", "M_UNKNOWN"))  # type: ignore[misc]


JobHandler = Callable[[Job], Awaitable[Outcome]]
# Turns an exception a handler raised into the API's answer for it; None: an internal error.
Explain = Callable[[Exception], MatrixError | None]


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Lane:
    """One server's turn: whoever holds it, and the tickets waiting for it, first come first."""

    def __init__(self) -> None:
        self.busy = False
        self.waiting: deque[asyncio.Future[None]] = deque()

    def ticket(self) -> asyncio.Future[None]:
        """A place in line, taken now (not when awaited): the order of calls is the order."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.busy:
            self.waiting.append(future)
        else:
            self.busy = True
            future.set_result(None)
        return future

    def release(self) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.cancelled():
                future.set_result(None)
                return
        self.busy = False

    def depth(self) -> int:
        return sum(1 for f in self.waiting if not f.cancelled()) + (1 if self.busy else 0)


class ServerQueue:
    """The per-server turns, and the stored jobs that take them."""

    def __init__(
        self,
        db: Database,
        journal: OperationJournal,
        *,
        explain: Explain | None = None,
        answer_within_s: float = DEFAULT_ANSWER_WITHIN_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.db = db
        self.journal = journal
        self.explain = explain
        self.answer_within_s = answer_within_s
        # The longest wait between two attempts of a job that waits out the homeserver.
        self.max_backoff_s = max_backoff_s
        self._lanes: dict[str, _Lane] = {}
        self._handlers: dict[str, JobHandler] = {}
        self._tasks: dict[str, asyncio.Task[Outcome]] = {}
        self._started = False
        self._stopped = False
        self._pruned_at = 0
        # Told each server's depth whenever it changes (the metrics' queue gauges).
        self.on_depth: Callable[[str, int], None] | None = None

    # -- the interface -------------------------------------------------------------------------

    def register(self, kind: str, handler: JobHandler) -> None:
        """Have `handler` carry out the jobs of `kind` (at its server's turn)."""
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is registered twice")
        self._handlers[kind] = handler

    async def submit(
        self,
        kind: str,
        server_id: str,
        actor: str | None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        held: Mapping[str, str] | None = None,
    ) -> str:
        """Store the job, take its place in the server's line, and return its id at once.

        `held` is handed to the handler from memory and never stored (a caller's token): a
        job run after a restart gets none, and its handler must do without.
        """
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        if self._stopped:
            raise RuntimeError("the server queue is stopped")
        job = Job(
            secrets.token_hex(12),
            kind,
            server_id,
            actor,
            dict(params or {}),
            dict(body or {}),
            dict(held or {}),
        )
        now = created_at_ms()
        await self.db.execute(
            "INSERT INTO queued_jobs (job_id, kind, server_id, actor, params_json, body_json,"
            " state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            job.job_id,
            kind,
            server_id,
            actor,
            _dumps(job.params),
            _dumps(job.body),
            now,
            now,
        )
        # The ticket is taken before anything else can run: submission order is turn order.
        ticket = self._ticket(server_id)
        self._spawn(job.job_id, self._run_job(job, ticket))
        if now - self._pruned_at >= PRUNE_EVERY_MS:
            self._pruned_at = now
            self._spawn(f"prune-{job.job_id}", self._prune_logged(now - RETENTION_MS))
        return job.job_id

    async def prune(self, before_ms: int) -> int:
        """Delete the jobs that ended before `before_ms`; return how many."""
        count = await self.db.execute(
            "DELETE FROM queued_jobs WHERE state IN ('done', 'failed') AND updated_at < ?",
            before_ms,
        )
        if count:
            log.info("Pruned %d ended operations", count)
        return count

    async def _prune_logged(self, before_ms: int) -> Outcome:
        try:
            await self.prune(before_ms)
        except StoreError as exc:
            log.warning("Pruning ended operations failed: %s", exc)
        return Outcome(200)

    async def wait(self, job_id: str, timeout_s: float | None = None) -> Outcome | None:
        """The job's outcome, or None if it is still queued or running after `timeout_s`.

        Raises JobFailed if it failed, JobNotFound for an unknown id. The job goes on when the
        caller stops waiting. Never wait for a job of a server whose turn the caller holds: it
        comes after the caller.
        """
        task = self._tasks.get(job_id)
        if task is not None:
            try:
                return await asyncio.wait_for(asyncio.shield(task), timeout_s)
            except TimeoutError:
                return None
            except JobFailed:
                raise
        record = await self.get(job_id)
        if record.state == "done":
            return record.outcome
        if record.state == "failed":
            raise JobFailed(job_id, self._stored_error(record))
        return None

    async def run(
        self,
        kind: str,
        server_id: str,
        actor: str | None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """`submit`, then wait for the outcome however long it takes."""
        job_id = await self.submit(kind, server_id, actor, params, body)
        outcome = await self.wait(job_id)
        assert outcome is not None  # waited without a limit
        return outcome

    @contextlib.asynccontextmanager
    async def turn(self, server_id: str) -> AsyncIterator[None]:
        """Hold the server's turn for the block (not stored; see the module docstring)."""
        held = _HELD.get()
        if server_id in held:
            yield
            return
        lane = self._lane(server_id)
        await _enter(lane, self._ticket(server_id))
        token = _HELD.set(held | {server_id})
        try:
            yield
        finally:
            _HELD.reset(token)
            self._release(server_id, lane)

    def later(self, server_id: str, work: Callable[[], Awaitable[None]], what: str) -> None:
        """Run `work` at the server's turn, in the background, in order with everything else.

        For handlers that must not wait for a turn where they are (the inbox: the directory
        would stop following the rooms meanwhile). Not stored: the work must be derived again
        if a restart loses it. Transient failures are waited out; others are logged.
        """
        ticket = self._ticket(server_id)
        key = f"later-{secrets.token_hex(8)}"
        self._spawn(key, self._run_later(server_id, ticket, work, what))

    def holds_turn(self, server_id: str) -> bool:
        """Whether the calling task holds the server's turn."""
        return server_id in _HELD.get()

    def depth(self, server_id: str) -> int:
        """How many holders and waiters the server's turn has now (0: idle)."""
        lane = self._lanes.get(server_id)
        return 0 if lane is None else lane.depth()

    def depths(self) -> dict[str, int]:
        """`depth` of every server that has anything running or waiting."""
        return {sid: d for sid, lane in self._lanes.items() if (d := lane.depth())}

    async def get(self, job_id: str) -> JobRecord:
        row = await self.db.fetchone(
            "SELECT job_id, kind, server_id, actor, state, created_at, updated_at,"
            " result_status, result_json, error_status, error_json FROM queued_jobs"
            " WHERE job_id = ?",
            job_id,
        )
        if row is None:
            raise JobNotFound(job_id)
        outcome = None
        if row["state"] == "done":
            body = None if row["result_json"] is None else json.loads(row["result_json"])
            outcome = Outcome(int(row["result_status"] or 200), body)
        return JobRecord(
            job_id=row["job_id"],
            kind=row["kind"],
            server_id=row["server_id"],
            actor=row["actor"],
            state=row["state"],
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
            outcome=outcome,
            error=None if row["error_json"] is None else json.loads(row["error_json"]),
            error_status=None if row["error_status"] is None else int(row["error_status"]),
        )

    async def progress(self, job_id: str) -> Progress:
        """The steps of the job's journal operations done so far, and a transient failure a
        pending step waits out (the journal records it on the step: bridge/engine/journal.py)."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS total,"
            " SUM(CASE WHEN s.status = 'done' THEN 1 ELSE 0 END) AS done,"
            " MAX(CASE WHEN s.status = 'pending' AND s.error LIKE 'waiting: %' THEN s.error END)"
            " AS waiting FROM operation_steps s JOIN operations o ON o.op_id = s.op_id"
            " WHERE o.job_id = ?",
            job_id,
        )
        if row is None:
            return Progress(0, 0, None)
        waiting = row["waiting"]
        return Progress(
            int(row["done"] or 0),
            int(row["total"] or 0),
            waiting[len("waiting: ") :] if isinstance(waiting, str) else None,
        )

    async def start(self) -> None:
        """After a start: per server, finish interrupted journal operations, then stored jobs.

        Call before anything else can take a turn (before the inbox starts and the API is
        ready), so what was there before the restart goes first.
        """
        if self._started:
            return
        self._started = True
        ops = await self.db.fetchall(
            "SELECT op_id, server_id FROM operations WHERE status IN ('pending', 'running')"
            " ORDER BY created_at, op_id"
        )
        jobs = await self.db.fetchall(
            "SELECT job_id, kind, server_id, actor, params_json, body_json, state"
            " FROM queued_jobs WHERE state IN ('queued', 'running') ORDER BY created_at, job_id"
        )
        unfinished: dict[str, list[str]] = {}
        for row in ops:
            # Operations that create a server have no turn to wait for: no one else knows it.
            if row["server_id"] is None:
                self._spawn(f"resume-{row['op_id']}", self._resume_ops(None, [row["op_id"]], None))
            else:
                unfinished.setdefault(row["server_id"], []).append(row["op_id"])
        if ops or jobs:
            log.info(
                "Resuming %d unfinished operation(s) and %d queued request(s)", len(ops), len(jobs)
            )
        for server_id, op_ids in unfinished.items():
            ticket = self._ticket(server_id)
            self._spawn(f"resume-{server_id}", self._resume_ops(server_id, op_ids, ticket))
        for row in jobs:
            job = Job(
                row["job_id"],
                row["kind"],
                row["server_id"],
                row["actor"],
                json.loads(row["params_json"]),
                json.loads(row["body_json"]),
            )
            ticket = self._ticket(job.server_id)
            interrupted = row["state"] == "running"
            self._spawn(job.job_id, self._run_job(job, ticket, interrupted=interrupted))

    async def wait_started(self) -> None:
        """Wait until what `start` found is done (declared servers are reconciled after)."""
        while True:
            pending = [t for k, t in self._tasks.items() if k.startswith("resume-")]
            if not pending:
                return
            await asyncio.gather(*(asyncio.shield(t) for t in pending), return_exceptions=True)

    async def stop(self) -> None:
        """Interrupt every job: those stored stay for the next start."""
        self._stopped = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- carrying jobs out ---------------------------------------------------------------------

    def _lane(self, server_id: str) -> _Lane:
        lane = self._lanes.get(server_id)
        if lane is None:
            lane = self._lanes[server_id] = _Lane()
        return lane

    def _ticket(self, server_id: str) -> asyncio.Future[None]:
        ticket = self._lane(server_id).ticket()
        self._report_depth(server_id)
        return ticket

    def _release(self, server_id: str, lane: _Lane) -> None:
        lane.release()
        # An idle lane is dropped, so servers once busy (or ids never valid) cost nothing.
        if not lane.busy and self._lanes.get(server_id) is lane:
            del self._lanes[server_id]
        self._report_depth(server_id)

    def _report_depth(self, server_id: str) -> None:
        if self.on_depth is not None:
            self.on_depth(server_id, self.depth(server_id))

    def _spawn(self, key: str, coro: Coroutine[Any, Any, Outcome]) -> None:
        # A fresh context: the new task holds no turn and works for no job until it says so,
        # whatever the task that spawned it held.
        task = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
        self._tasks[key] = task

        def forget(done: asyncio.Task[Outcome]) -> None:
            if self._tasks.get(key) is done:
                del self._tasks[key]
            # Retrieved so a failure nobody awaited is not reported "never retrieved": it is
            # stored, and was logged.
            if not done.cancelled():
                done.exception()

        task.add_done_callback(forget)

    async def _resume_ops(
        self, server_id: str | None, op_ids: list[str], ticket: asyncio.Future[None] | None
    ) -> Outcome:
        lane = None if server_id is None else self._lane(server_id)
        if ticket is not None:
            await _enter(lane, ticket)
        token = _HELD.set(_HELD.get() | ({server_id} if server_id else set()))
        try:
            for op_id in op_ids:
                await self._resume_op(op_id)
        finally:
            _HELD.reset(token)
            if server_id is not None and lane is not None:
                self._release(server_id, lane)
        return Outcome(200)

    async def _run_later(
        self,
        server_id: str,
        ticket: asyncio.Future[None],
        work: Callable[[], Awaitable[None]],
        what: str,
    ) -> Outcome:
        lane = self._lane(server_id)
        await _enter(lane, ticket)
        token = _HELD.set(_HELD.get() | {server_id})
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    await work()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not transient(exc):
                        log.exception("%s in %s failed", what, server_id)
                        break
                    delay = backoff(attempt, exc, max_s=self.max_backoff_s)
                    log.warning(
                        "%s in %s waits for the homeserver (%s); again in %.1f s",
                        what,
                        server_id,
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
        finally:
            _HELD.reset(token)
            self._release(server_id, lane)
        return Outcome(200)

    async def _resume_op(self, op_id: str) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.journal.run(op_id)
                return
            except OperationFailed as exc:
                log.error("Resumed operation %s failed: %s", op_id, exc.error)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database away: wait for it, as for the homeserver.
                delay = backoff(attempt, max_s=self.max_backoff_s)
                log.warning(
                    "Resuming operation %s stopped (%s); again in %.1f s", op_id, exc, delay
                )
                await asyncio.sleep(delay)

    async def _run_job(
        self, job: Job, ticket: asyncio.Future[None], *, interrupted: bool = False
    ) -> Outcome:
        lane = self._lane(job.server_id)
        await _enter(lane, ticket)
        held = _HELD.set(_HELD.get() | {job.server_id})
        current = CURRENT_JOB.set(job.job_id)
        try:
            if interrupted and await self._finish_interrupted(job):
                record = await self.get(job.job_id)
                if record.state == "failed":
                    raise JobFailed(job.job_id, self._stored_error(record))
                assert record.outcome is not None
                return record.outcome
            await self._set_state(job.job_id, "running")
            return await self._attempt(job)
        finally:
            CURRENT_JOB.reset(current)
            _HELD.reset(held)
            self._release(job.server_id, lane)

    async def _attempt(self, job: Job) -> Outcome:
        """Run the job's handler until it answers or fails for good; store what it came to."""
        handler = self._handlers.get(job.kind)
        attempt = 0
        while True:
            attempt += 1
            try:
                if handler is None:
                    raise MatrixError(f"This bridge does not know operations of kind {job.kind}")
                outcome = await handler(job)
            except asyncio.CancelledError:
                raise
            except JobFailed as exc:
                await self._store_failure(job, exc.error)
                raise
            except StoreError as exc:
                if not isinstance(exc, StoreUnavailable):
                    raise
                # The job is stored as running; if the database stays away, the next start
                # finds it there.
                delay = backoff(attempt, max_s=self.max_backoff_s)
                log.warning("Job %s (%s) waits for the database: %s", job.job_id, job.kind, exc)
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                if transient(exc) and not isinstance(exc, MatrixError):
                    delay = backoff(attempt, exc, max_s=self.max_backoff_s)
                    log.warning(
                        "Job %s (%s) on %s waits for the homeserver (%s); again in %.1f s",
                        job.job_id,
                        job.kind,
                        job.server_id,
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                error = self._as_error(exc)
                await self._store_failure(job, error)
                raise JobFailed(job.job_id, error) from exc
            await self._store_outcome(job, outcome)
            return outcome

    async def _finish_interrupted(self, job: Job) -> bool:
        """A job a restart interrupted: True if its changes were journaled (now resumed).

        Its journal operations resumed first, at this server's turn. Running the job again
        could repeat a change that was made (a second role, a transfer refused because it
        happened), so it is done — with no result body — or failed as its operation did. A job
        stopped before it journaled anything changed nothing and simply runs again.
        """
        rows = await self.db.fetchall(
            "SELECT status, error FROM operations WHERE job_id = ? ORDER BY created_at, op_id",
            job.job_id,
        )
        if not rows:
            return False
        failed = next((r for r in rows if r["status"] == "failed"), None)
        if failed is not None:
            await self._store_failure(
                job, _StoredError(502, {"errcode": "M_UNKNOWN", "error": _refused(failed["error"])})
            )
        else:
            await self._store_outcome(job, Outcome(200, None))
        return True

    def _as_error(self, exc: Exception) -> MatrixError:
        if isinstance(exc, MatrixError):
            return exc
        explained = self.explain(exc) if self.explain is not None else None
        if explained is not None:
            return explained
        log.error("Job failed with an internal error", exc_info=exc)
        return MatrixError()

    @staticmethod
    def _stored_error(record: JobRecord) -> MatrixError:
        return _StoredError(record.error_status or 500, record.error or {})

    async def _set_state(self, job_id: str, state: str) -> None:
        await self.db.execute(
            "UPDATE queued_jobs SET state = ?, updated_at = ? WHERE job_id = ?",
            state,
            _now_ms(),
            job_id,
        )

    async def _store_outcome(self, job: Job, outcome: Outcome) -> None:
        await self.db.execute(
            "UPDATE queued_jobs SET state = 'done', result_status = ?, result_json = ?,"
            " updated_at = ? WHERE job_id = ?",
            outcome.status,
            None if outcome.body is None else _dumps(outcome.body),
            _now_ms(),
            job.job_id,
        )

    async def _store_failure(self, job: Job, error: MatrixError) -> None:
        await self.db.execute(
            "UPDATE queued_jobs SET state = 'failed', error_status = ?, error_json = ?,"
            " updated_at = ? WHERE job_id = ?",
            error.status,
            _dumps(error.to_json()),
            _now_ms(),
            job.job_id,
        )


async def _enter(lane: _Lane | None, ticket: asyncio.Future[None]) -> None:
    """Wait for the ticket; a waiter cancelled just as its turn came passes the turn on."""
    try:
        await ticket
    except asyncio.CancelledError:
        if lane is not None and ticket.done() and not ticket.cancelled():
            lane.release()
        raise


def _refused(error: str | None) -> str:
    return f"The homeserver refused part of the change: {error or 'no cause recorded'}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
