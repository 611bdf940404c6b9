"""The operation journal: multi-room plans stored first, carried out, resumed after a crash.

`submit` writes the whole plan (bridge/engine/steps.py) and one row per step in one transaction;
`run`
carries it out stage by stage, recording each step's result as soon as it succeeds; `resume`, on
bridge start, runs again every operation a crash or a shutdown left unfinished, skipping the steps
already recorded. A step that ran but whose result was not recorded runs again: every step kind
is idempotent, and a room created twice is prevented by the alias each CreateRoom step gets.

Transient failures (429, 5xx, an unreachable or stuck homeserver, a stale answer) are retried with
bounded backoff for as long as they last: an operation waits for the homeserver rather than stop
half-applied, and the step's row says what it waits for. Any other Matrix error fails the
operation with the step and the error recorded. There is no rollback: a failed operation leaves
what it did, the journal says how far it got, and convergence repairs what it derived.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bridge.engine.matrix import HomeserverUnavailable, MatrixRequestError, path_segment
from bridge.engine.steps import (
    CreateRoom,
    MatrixRequester,
    Plan,
    PlanError,
    StaleAnswer,
    Step,
    StepContext,
    SupersededCheck,
    operation_alias_localpart,
)
from bridge.engine.store import Database, StoreError
from bridge.metrics import BridgeMetrics

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
# Only for removing an operation's own aliases afterwards, which may be left behind harmlessly.
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BASE_BACKOFF_S = 0.5
DEFAULT_MAX_BACKOFF_S = 30.0
# Rows per INSERT when a plan is submitted: fewer round trips for plans of hundreds of steps.
_INSERT_BATCH = 100
_INSERT_STEPS = (
    "INSERT INTO operation_steps (op_id, stage, idx, name, kind, status, attempts, updated_at)"
    " VALUES "
)

# The queued job (bridge/engine/queue.py) the running code works for; its operations are linked to
# it.
CURRENT_JOB: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "guilds_current_job", default=None
)

Results = dict[str, dict[str, Any]]
# Called with the operation's server id (None until the server exists) and its results.
CompletionHook = Callable[[str | None, Results], Awaitable[None]]
# Called with the kind and server id of every operation that ended, done or failed.
EndHook = Callable[[str, str | None], Awaitable[None]]


class OperationFailed(Exception):
    """The operation stopped on a step that cannot succeed; `error` is what the journal records."""

    def __init__(self, op_id: str, error: str) -> None:
        super().__init__(f"operation {op_id} failed: {error}")
        self.op_id = op_id
        self.error = error


class OperationNotFound(LookupError):
    """No operation has this id."""


class _StepFailed(Exception):
    """A step failed for good; its error is already recorded."""


@dataclass(frozen=True)
class OperationRecord:
    """What the journal holds about one operation."""

    op_id: str
    kind: str
    server_id: str | None
    status: str  # pending | running | done | failed
    created_at: int
    updated_at: int
    error: str | None
    steps_done: int
    steps_total: int


def _now_ms() -> int:
    return int(time.time() * 1000)


_last_created_ms = 0


def created_at_ms() -> int:
    """Now in ms, later than every value this process handed out before: what an operation or
    a job is stored with as `created_at`, and what a restart resumes them in order of. Rows
    stored in one millisecond (a burst of requests) would otherwise share it and be resumed in
    the order of their random ids. The bridge runs as one process, so the process holds it."""
    global _last_created_ms
    _last_created_ms = max(_now_ms(), _last_created_ms + 1)
    return _last_created_ms


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MatrixRequestError):
        return f"{exc.status} {exc.errcode}: {exc.message}"
    if isinstance(exc, HomeserverUnavailable):
        return exc.reason
    if isinstance(exc, StaleAnswer):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class OperationJournal:
    """Submits, runs and resumes operations over one database and one homeserver client."""

    def __init__(
        self,
        db: Database,
        matrix: MatrixRequester,
        bot_user_id: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_backoff_s: float = DEFAULT_BASE_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.matrix = matrix
        self.bot_user_id = bot_user_id
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        # Set once the directory exists: recognises a state write the homeserver answered with
        # an event since replaced (bridge.directory.ServerDirectory.superseded).
        self.superseded: SupersededCheck | None = None
        # One task per operation running in this process: a second `run` of it joins the first.
        self._tasks: dict[str, asyncio.Task[Results]] = {}
        self._resume_task: asyncio.Task[None] | None = None
        self._hooks: dict[str, list[CompletionHook]] = {}
        self._end_hooks: list[EndHook] = []
        self._stopped = False

    # -- the API -------------------------------------------------------------------------------

    def on_complete(self, kind: str, hook: CompletionHook) -> None:
        """Call `hook(server_id, results)` when an operation of `kind` completes, here or on resume.

        The hook runs before the operation is marked done, so it may run twice (after a crash
        in between) and must be idempotent; if it raises, the operation stays unfinished.
        """
        self._hooks.setdefault(kind, []).append(hook)

    def on_end(self, hook: EndHook) -> None:
        """Call `hook(kind, server_id)` after any operation ends, done or failed (convergence
        checks the server then). A hook that raises is logged; the operation's outcome stands."""
        self._end_hooks.append(hook)

    async def submit(self, kind: str, server_id: str | None, plan: Plan) -> str:
        """Validate and store the plan (nothing runs yet); return the new operation's id."""
        plan.validate()
        plan_json = plan.to_json()
        op_id = secrets.token_hex(8)
        now = created_at_ms()
        rows = [(op_id, stage, idx, step.name, step.kind, now) for stage, idx, step in plan.steps()]
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO operations (op_id, kind, server_id, plan_json, status, created_at,"
                " updated_at, job_id) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                op_id,
                kind,
                server_id,
                plan_json,
                now,
                now,
                CURRENT_JOB.get(),
            )
            for start in range(0, len(rows), _INSERT_BATCH):
                batch = rows[start : start + _INSERT_BATCH]
                values = ", ".join(["(?, ?, ?, ?, ?, 'pending', 0, ?)"] * len(batch))
                # Only placeholders are joined into the statement.
                sql = _INSERT_STEPS + values
                await tx.execute(sql, *[value for row in batch for value in row])
        log.info("Operation %s (%s) planned: %d steps", op_id, kind, len(rows))
        return op_id

    async def run(self, op_id: str) -> Results:
        """Carry out (or finish) the operation; return each step's result by step name.

        Raises OperationFailed if a step fails for good (at once, if it had already failed).
        The operation goes on if the caller is cancelled; `stop()` interrupts it, to be resumed.
        """
        if self._stopped:
            raise RuntimeError("the operation journal is stopped")
        task = self._tasks.get(op_id)
        if task is None:
            task = asyncio.create_task(self._execute(op_id), name=f"guilds-operation-{op_id}")
            self._tasks[op_id] = task
            task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    async def execute(self, kind: str, server_id: str | None, plan: Plan) -> Results:
        """`submit` then `run`."""
        return await self.run(await self.submit(kind, server_id, plan))

    async def resume(self) -> list[str]:
        """Run every pending or running operation, oldest first; return those that completed."""
        rows = await self.db.fetchall(
            "SELECT op_id FROM operations WHERE status IN ('pending', 'running')"
            " ORDER BY created_at, op_id"
        )
        if rows:
            log.info("Resuming %d unfinished operation(s)", len(rows))
        completed: list[str] = []
        for row in rows:
            op_id = row["op_id"]
            try:
                await self.run(op_id)
            except OperationFailed as exc:
                log.error("Resumed operation %s failed: %s", op_id, exc.error)
            except Exception:
                # Left unfinished in the journal; the next start resumes it again.
                log.exception("Resuming operation %s stopped", op_id)
            else:
                completed.append(op_id)
        return completed

    def start_resume(self) -> None:
        """Resume unfinished operations in the background (see `resume`)."""
        if self._resume_task is None and not self._stopped:
            self._resume_task = asyncio.create_task(
                self._resume_logged(), name="guilds-operations-resume"
            )

    async def wait_resumed(self) -> None:
        if self._resume_task is not None:
            await asyncio.shield(self._resume_task)

    async def stop(self) -> None:
        """Interrupt whatever runs; the journal keeps it unfinished for the next `resume`."""
        self._stopped = True
        tasks = [t for t in (self._resume_task, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def get(self, op_id: str) -> OperationRecord:
        row = await self.db.fetchone(
            "SELECT o.op_id, o.kind, o.server_id, o.status, o.created_at, o.updated_at, o.error,"
            " (SELECT COUNT(*) FROM operation_steps s WHERE s.op_id = o.op_id"
            "  AND s.status = 'done') AS steps_done,"
            " (SELECT COUNT(*) FROM operation_steps s WHERE s.op_id = o.op_id) AS steps_total"
            " FROM operations o WHERE o.op_id = ?",
            op_id,
        )
        if row is None:
            raise OperationNotFound(op_id)
        return OperationRecord(
            op_id=row["op_id"],
            kind=row["kind"],
            server_id=row["server_id"],
            status=row["status"],
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
            error=row["error"],
            steps_done=int(row["steps_done"]),
            steps_total=int(row["steps_total"]),
        )

    # -- carrying an operation out -------------------------------------------------------------

    def _forget(self, task: asyncio.Task[Results]) -> None:
        for op_id, known in list(self._tasks.items()):
            if known is task:
                del self._tasks[op_id]
        # Retrieved here so a failure nobody awaited (the caller went away) is not reported as
        # "never retrieved"; it is in the journal and was logged.
        if not task.cancelled():
            task.exception()

    async def _resume_logged(self) -> None:
        try:
            await self.resume()
        except Exception:
            log.exception("Resuming unfinished operations failed; they wait for the next start")

    async def _execute(self, op_id: str) -> Results:
        op = await self.db.fetchone(
            "SELECT kind, server_id, plan_json, status, error FROM operations WHERE op_id = ?",
            op_id,
        )
        if op is None:
            raise OperationNotFound(op_id)
        rows = await self.db.fetchall(
            "SELECT stage, idx, name, status, result_json, attempts, error"
            " FROM operation_steps WHERE op_id = ?",
            op_id,
        )
        results: Results = {
            r["name"]: json.loads(r["result_json"]) for r in rows if r["status"] == "done"
        }
        if op["status"] == "done":
            return results
        if op["status"] == "failed":
            raise OperationFailed(op_id, op["error"] or "failed")
        plan = Plan.from_json(op["plan_json"])
        started = time.monotonic()
        if op["status"] == "pending":
            await self._set_status(op_id, "running")
        else:
            log.info("Resuming operation %s (%s): %d steps done", op_id, op["kind"], len(results))
        # A step recorded as failed means a crash came while the operation was being failed.
        error = next((f"{r['name']}: {r['error']}" for r in rows if r["status"] == "failed"), None)
        for stage_no, stage in enumerate(plan.stages):
            if error is not None:
                break
            todo = [(idx, step) for idx, step in enumerate(stage) if step.name not in results]
            if todo:
                error = await self._run_stage(op_id, plan, stage_no, todo, results)
        await self._clean_up(op_id, plan)
        if error is not None:
            await self._set_status(op_id, "failed", error)
            log.error("Operation %s (%s) failed: %s", op_id, op["kind"], error)
            self._observe(op["kind"], "failed", started)
            await self._ended(op["kind"], op["server_id"])
            raise OperationFailed(op_id, error)
        # Before "done": a crash in between runs the hooks again on resume, never not at all.
        for hook in self._hooks.get(op["kind"], []):
            await hook(op["server_id"], results)
        await self._set_status(op_id, "done")
        log.info("Operation %s (%s) done", op_id, op["kind"])
        self._observe(op["kind"], "done", started)
        await self._ended(op["kind"], op["server_id"])
        return results

    def _observe(self, kind: str, outcome: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_operation(kind, outcome, time.monotonic() - started)

    async def _ended(self, kind: str, server_id: str | None) -> None:
        for hook in self._end_hooks:
            try:
                await hook(kind, server_id)
            except Exception:
                log.exception("A hook on the end of a %s operation failed", kind)

    async def _run_stage(
        self,
        op_id: str,
        plan: Plan,
        stage_no: int,
        todo: list[tuple[int, Step]],
        results: Results,
    ) -> str | None:
        """Run one stage's steps concurrently (bounded); return the first step error, if any."""
        limit = asyncio.Semaphore(self.concurrency)
        errors: list[str] = []

        async def one(idx: int, step: Step) -> None:
            async with limit:
                # After a failure, steps not yet started are left alone.
                if errors:
                    return
                try:
                    results[step.name] = await self._run_step(
                        op_id, plan, stage_no, idx, step, results
                    )
                except _StepFailed as exc:
                    errors.append(str(exc))

        tasks = [asyncio.create_task(one(idx, step)) for idx, step in todo]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                exc = task.exception()
                if exc is not None:
                    raise exc  # the database failed, or a crash: the operation stays unfinished
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return errors[0] if errors else None

    async def _run_step(
        self, op_id: str, plan: Plan, stage: int, idx: int, step: Step, results: Results
    ) -> dict[str, Any]:
        ctx = StepContext(self.matrix, self.bot_user_id, op_id, stage, idx, self.superseded)
        try:
            resolved = step.resolved(results, plan)
        except PlanError as exc:
            await self._step_failed(op_id, stage, idx, str(exc))
            raise _StepFailed(f"{step.name}: {exc}") from exc
        attempt = 0
        while True:
            attempt += 1
            await self.db.execute(
                "UPDATE operation_steps SET attempts = attempts + 1, updated_at = ?"
                " WHERE op_id = ? AND stage = ? AND idx = ?",
                _now_ms(),
                op_id,
                stage,
                idx,
            )
            try:
                result = await resolved.apply(ctx)
            except StoreError:
                raise
            except (MatrixRequestError, HomeserverUnavailable, StaleAnswer) as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    error = _describe(exc)
                    await self._step_failed(op_id, stage, idx, error)
                    raise _StepFailed(f"{step.name} ({step.kind}): {error}") from exc
                # Transient: the homeserver is down, stuck or busy. The step waits for it for
                # as long as it takes (bounded backoff); giving up would leave the operation
                # half-applied for a cause that passes.
                log.warning(
                    "Operation %s step %s (%s) failed (%s, attempt %d); retrying in %.1f s",
                    op_id,
                    step.name,
                    step.kind,
                    _describe(exc),
                    attempt,
                    delay,
                )
                # Kept on the pending step, so the journal says what the operation waits for.
                await self.db.execute(
                    "UPDATE operation_steps SET error = ?, updated_at = ?"
                    " WHERE op_id = ? AND stage = ? AND idx = ?",
                    f"waiting: {_describe(exc)}",
                    _now_ms(),
                    op_id,
                    stage,
                    idx,
                )
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                # A bug or malformed data: running it again would fail the same way.
                log.exception("Operation %s step %s (%s) crashed", op_id, step.name, step.kind)
                error = f"internal error: {_describe(exc)}"
                await self._step_failed(op_id, stage, idx, error)
                raise _StepFailed(f"{step.name} ({step.kind}): {error}") from exc
            await self.db.execute(
                "UPDATE operation_steps SET status = 'done', result_json = ?, error = NULL,"
                " updated_at = ? WHERE op_id = ? AND stage = ? AND idx = ?",
                json.dumps(result, separators=(",", ":")),
                _now_ms(),
                op_id,
                stage,
                idx,
            )
            return result

    def _retry_delay(self, exc: Exception, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when retrying cannot help."""
        backoff = min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempt - 1))
        if isinstance(exc, HomeserverUnavailable | StaleAnswer):
            return backoff
        if isinstance(exc, MatrixRequestError):
            if exc.status == 429:
                if exc.retry_after_ms is not None:
                    return min(self.max_backoff_s, exc.retry_after_ms / 1000)
                return backoff
            if exc.status >= 500:
                return backoff
        return None

    async def _step_failed(self, op_id: str, stage: int, idx: int, error: str) -> None:
        await self.db.execute(
            "UPDATE operation_steps SET status = 'failed', error = ?, updated_at = ?"
            " WHERE op_id = ? AND stage = ? AND idx = ?",
            error,
            _now_ms(),
            op_id,
            stage,
            idx,
        )

    async def _set_status(self, op_id: str, status: str, error: str | None = None) -> None:
        await self.db.execute(
            "UPDATE operations SET status = ?, error = ?, updated_at = ? WHERE op_id = ?",
            status,
            error,
            _now_ms(),
            op_id,
        )

    async def _clean_up(self, op_id: str, plan: Plan) -> None:
        """Remove the aliases of the rooms this operation created (or may have created)."""
        rows = await self.db.fetchall(
            "SELECT stage, idx FROM operation_steps WHERE op_id = ? AND kind = ?"
            " AND (attempts > 0 OR status = 'done')",
            op_id,
            CreateRoom.kind,
        )
        server_name = self.bot_user_id.split(":", 1)[1]
        limit = asyncio.Semaphore(self.concurrency)

        async def remove(stage: int, idx: int) -> None:
            alias = f"#{operation_alias_localpart(op_id, stage, idx)}:{server_name}"
            path = f"/_matrix/client/v3/directory/room/{path_segment(alias)}"
            async with limit:
                for attempt in range(1, self.max_attempts + 1):
                    try:
                        await self.matrix.request("DELETE", path)
                        return
                    except (MatrixRequestError, HomeserverUnavailable) as exc:
                        if isinstance(exc, MatrixRequestError) and exc.status == 404:
                            return
                        delay = self._retry_delay(exc, attempt)
                        if delay is None or attempt == self.max_attempts:
                            # Harmless but untidy: the alias is in the bridge's own namespace.
                            log.warning("Could not remove alias %s: %s", alias, _describe(exc))
                            return
                        await asyncio.sleep(delay)

        await asyncio.gather(*(remove(int(r["stage"]), int(r["idx"])) for r in rows))
