"""The per-server queue (bridge/engine/queue.py) over a real SQLite store, with handlers in place of
the services: turn order, parallel servers, stored outcomes, waiting out a homeserver, restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bridge.api.operations import QUEUE, queued
from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import HomeserverUnavailable, MatrixRequestError
from bridge.engine.queue import Job, JobFailed, JobNotFound, Outcome, ServerQueue
from bridge.engine.steps import Plan, SendState
from bridge.engine.store import Database
from bridge.errors import Forbidden, MatrixError
from guilds.ids import UserID

BOT = "@guilds:example.org"


class NoMatrix:
    async def request(self, method: str, path: str, **_: Any) -> Any:
        raise HomeserverUnavailable("no homeserver in this test")


def make_queue(db: Database, journal: OperationJournal | None = None) -> ServerQueue:
    return ServerQueue(db, journal or OperationJournal(db, NoMatrix(), BOT))


def stuck_queue(db: Database) -> ServerQueue:
    """A queue whose "edit" jobs never finish: the crash (its `stop`) comes while one runs."""
    queue = make_queue(db)

    async def stuck(job: Job) -> Outcome:
        await asyncio.Event().wait()
        return Outcome(200)

    queue.register("edit", stuck)
    return queue


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_jobs_of_one_server_run_one_at_a_time_in_order(db: Database) -> None:
    queue = make_queue(db)
    inside: list[str] = []
    log: list[tuple[str, str]] = []

    async def handler(job: Job) -> Outcome:
        inside.append(job.job_id)
        assert len(inside) == 1, "two jobs of one server ran at once"
        log.append(("start", job.body["n"]))
        await asyncio.sleep(0.002)
        log.append(("end", job.body["n"]))
        inside.remove(job.job_id)
        return Outcome(200, {"n": job.body["n"]})

    queue.register("edit", handler)
    ids = [await queue.submit("edit", "!a", "@u:x", {}, {"n": str(n)}) for n in range(20)]
    outcomes = [await queue.wait(job_id) for job_id in ids]
    assert [o.body["n"] for o in outcomes if o is not None] == [str(n) for n in range(20)]
    assert [n for what, n in log if what == "start"] == [str(n) for n in range(20)]
    assert queue.depth("!a") == 0 and queue.depths() == {}


async def test_servers_run_in_parallel(db: Database) -> None:
    queue = make_queue(db)
    release = asyncio.Event()
    started: set[str] = set()

    async def handler(job: Job) -> Outcome:
        started.add(job.server_id)
        await release.wait()
        return Outcome(204)

    queue.register("slow", handler)
    a = await queue.submit("slow", "!a", None)
    b = await queue.submit("slow", "!b", None)
    a2 = await queue.submit("slow", "!a", None)
    await until(lambda: started == {"!a", "!b"})
    assert queue.depths() == {"!a": 2, "!b": 1}
    assert await queue.wait(a, timeout_s=0.01) is None  # still running: the caller answers 202
    release.set()
    assert await queue.wait(a) == Outcome(204)
    assert await queue.wait(b) == Outcome(204)
    assert await queue.wait(a2) == Outcome(204)
    record = await queue.get(a)
    assert record.state == "done" and record.outcome == Outcome(204)


async def test_a_turn_is_shared_with_jobs_and_nests(db: Database) -> None:
    queue = make_queue(db)
    order: list[str] = []

    async def handler(job: Job) -> Outcome:
        # A service called from a job takes the turn it already holds: no deadlock.
        async with queue.turn(job.server_id):
            order.append("job")
        return Outcome(200)

    queue.register("nested", handler)
    async with queue.turn("!a"):
        assert queue.holds_turn("!a")
        job_id = await queue.submit("nested", "!a", None)
        await asyncio.sleep(0.01)
        order.append("turn")
    await queue.wait(job_id)
    assert order == ["turn", "job"]


async def test_a_refusal_is_stored_in_the_api_shape(db: Database) -> None:
    queue = make_queue(db)

    async def handler(job: Job) -> Outcome:
        raise Forbidden("You are not the owner")

    queue.register("refused", handler)
    job_id = await queue.submit("refused", "!a", "@u:x")
    with pytest.raises(JobFailed) as failed:
        await queue.wait(job_id)
    assert failed.value.error.status == 403
    record = await queue.get(job_id)
    assert record.state == "failed" and record.error_status == 403
    assert record.error == {"errcode": "M_FORBIDDEN", "error": "You are not the owner"}
    # Read back from the database (another caller, after a restart), it answers the same.
    fresh = make_queue(db)
    with pytest.raises(JobFailed) as again:
        await fresh.wait(job_id)
    assert again.value.error.to_json() == record.error and again.value.error.status == 403
    with pytest.raises(JobNotFound):
        await queue.get("nope")


async def test_a_job_waits_out_a_homeserver_that_is_down(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge.engine.patience.BASE_BACKOFF_S", 0.001)
    queue = make_queue(db)
    # guilds.yaml's operations.max_retry_wait_s, at its smallest: the test waits milliseconds.
    queue.max_backoff_s = 0.002
    failures: list[Exception] = [
        HomeserverUnavailable("refused"),
        MatrixRequestError(502, "M_UNKNOWN", "bad gateway"),
        MatrixRequestError(429, "M_LIMIT_EXCEEDED", "slow down", retry_after_ms=1),
    ] * 5
    calls = 0

    async def handler(job: Job) -> Outcome:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop()
        return Outcome(200, {"ok": True})

    queue.register("patient", handler)
    assert await queue.run("patient", "!a", None) == Outcome(200, {"ok": True})
    assert calls == 16
    # A permanent refusal is not waited out.
    failures.append(MatrixRequestError(403, "M_FORBIDDEN", "no"))
    queue.explain = lambda exc: Forbidden(str(exc)) if isinstance(exc, MatrixRequestError) else None
    with pytest.raises(JobFailed):
        await queue.run("patient", "!a", None)


async def test_jobs_stored_before_a_restart_run_after_it_in_order(db: Database) -> None:
    before = stuck_queue(db)
    first = await before.submit("edit", "!a", "@u:x", {"rid": "r"}, {"n": "1"})
    second = await before.submit("edit", "!a", "@u:x", {"rid": "r"}, {"n": "2"})
    await until(lambda: before.depth("!a") == 2)
    await before.stop()  # the crash: the first was running, the second queued

    after = make_queue(db)
    seen: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    async def handler(job: Job) -> Outcome:
        seen.append((job.job_id, dict(job.params), dict(job.body)))
        return Outcome(200, {"n": job.body["n"]})

    after.register("edit", handler)
    await after.start()
    assert await after.wait(second) == Outcome(200, {"n": "2"})
    # The first had journaled nothing, so it changed nothing: it runs again, first.
    assert seen == [(first, {"rid": "r"}, {"n": "1"}), (second, {"rid": "r"}, {"n": "2"})]
    await after.stop()


async def test_jobs_stored_in_one_millisecond_run_after_a_restart_in_the_order_submitted(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Submitted in a burst, jobs share a millisecond of the clock (one in nine runs of the test
    # above did, and then ran after the restart in the order of their random ids).
    monkeypatch.setattr("time.time", lambda: 1_700_000_000.0)
    before = stuck_queue(db)
    ids = [await before.submit("edit", "!a", "@u:x", {}, {"n": str(n)}) for n in range(8)]
    await before.stop()

    after = make_queue(db)
    seen: list[str] = []

    async def handler(job: Job) -> Outcome:
        seen.append(job.job_id)
        return Outcome(200)

    after.register("edit", handler)
    await after.start()
    await after.wait(ids[-1])
    assert seen == ids
    await after.stop()


async def test_an_interrupted_job_with_a_journaled_change_is_finished_by_resuming_it(
    db: Database,
) -> None:
    # The job had journaled its change when the bridge stopped: at the next start the
    # operation resumes at the server's turn, ahead of new work, and the job ends with it
    # instead of running again (which could repeat the change).
    class Answering:
        def __init__(self) -> None:
            self.writes: list[str] = []

        async def request(self, method: str, path: str, **_: Any) -> Any:
            self.writes.append(path)
            return {"event_id": "$e"}

    matrix = Answering()
    journal = OperationJournal(db, matrix, BOT)
    before = ServerQueue(db, journal)
    block = asyncio.Event()

    async def journaling(job: Job) -> Outcome:
        await journal.submit("x", job.server_id, Plan.of([SendState("s", "!a", "t", "", {})]))
        await block.wait()
        return Outcome(200)

    before.register("edit", journaling)
    job_id = await before.submit("edit", "!a", "@u:x")
    await until_stored(db, job_id)
    await before.stop()
    await journal.stop()

    journal = OperationJournal(db, matrix, BOT)
    after = ServerQueue(db, journal)
    runs: list[str] = []

    async def handler(job: Job) -> Outcome:
        runs.append(job.job_id)
        return Outcome(200)

    after.register("edit", handler)
    await after.start()
    later = await after.submit("edit", "!a", "@u:x")
    assert await after.wait(later) == Outcome(200)
    assert runs == [later]
    record = await after.get(job_id)
    assert record.state == "done" and record.outcome == Outcome(200, None)
    assert matrix.writes and "/state/t/" in matrix.writes[0]
    await after.stop()
    await journal.stop()


async def until_stored(db: Database, job_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while await db.fetchone("SELECT 1 AS x FROM operations WHERE job_id = ?", job_id) is None:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.005)


async def test_later_runs_in_turn_and_waits_out_transient_failures(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge.engine.patience.BASE_BACKOFF_S", 0.001)
    queue = make_queue(db)
    order: list[str] = []
    release = asyncio.Event()

    async def job_handler(job: Job) -> Outcome:
        await release.wait()
        order.append("job")
        return Outcome(200)

    failures = [HomeserverUnavailable("down"), HomeserverUnavailable("still down")]

    async def reconcile() -> None:
        assert queue.holds_turn("!a")
        if failures:
            raise failures.pop()
        order.append("later")

    queue.register("edit", job_handler)
    job_id = await queue.submit("edit", "!a", None)
    queue.later("!a", reconcile, "Reconciling")
    await until(lambda: queue.depth("!a") == 2)
    release.set()
    await queue.wait(job_id)
    await until(lambda: queue.depth("!a") == 0)
    assert order == ["job", "later"] and not failures


async def test_held_values_reach_the_handler_but_are_never_stored(db: Database) -> None:
    queue = make_queue(db)
    seen: list[str | None] = []

    async def handler(job: Job) -> Outcome:
        seen.append(job.held.get("token"))
        return Outcome(200)

    queue.register("create", handler)
    job_id = await queue.submit("create", "@u:x", "@u:x", held={"token": "syt_secret_value"})
    assert await queue.wait(job_id) == Outcome(200)
    row = await db.fetchone("SELECT * FROM queued_jobs WHERE job_id = ?", job_id)
    assert row is not None and "syt_secret_value" not in repr(dict(row))
    assert seen == ["syt_secret_value"]


async def test_ended_jobs_are_pruned_after_their_retention(db: Database) -> None:
    queue = make_queue(db)

    async def handler(job: Job) -> Outcome:
        return Outcome(204)

    queue.register("edit", handler)
    old = await queue.submit("edit", "!a", None)
    await queue.wait(old)
    record = await queue.get(old)
    assert await queue.prune(record.updated_at) == 0  # ended at, not before, the cut
    assert await queue.prune(record.updated_at + 1) == 1
    with pytest.raises(JobNotFound):
        await queue.get(old)


async def test_every_change_of_a_servers_depth_is_reported(db: Database) -> None:
    """What the metrics' queue gauges are fed: a depth for each ticket taken and turn released,
    ending at 0 once the server is idle."""
    queue = make_queue(db)
    reported: list[tuple[str, int]] = []
    queue.on_depth = lambda server_id, depth: reported.append((server_id, depth))
    release = asyncio.Event()

    async def holder() -> None:
        async with queue.turn("!a"):
            await release.wait()

    first = asyncio.create_task(holder())
    await until(lambda: queue.depth("!a") == 1)
    second = asyncio.create_task(holder())
    await until(lambda: queue.depth("!a") == 2)
    assert reported == [("!a", 1), ("!a", 2)]
    release.set()
    await asyncio.gather(first, second)
    assert reported[2:] == [("!a", 1), ("!a", 0)]
    assert queue.depths() == {}


# -- what the API answers (bridge/api/operations.py `queued`) --------------------------------------


class EndsAtTheBound(ServerQueue):
    """Its bounded wait gives up just as the job ends: the job's record already says how it ended
    when `queued` reads it (the window between the answer bound and that read)."""

    async def wait(self, job_id: str, timeout_s: float | None = None) -> Outcome | None:
        if timeout_s is None:
            return await super().wait(job_id)
        with contextlib.suppress(JobFailed):
            await super().wait(job_id)
        return None


def api_request(queue: ServerQueue) -> web.Request:
    app = web.Application()
    app[QUEUE] = queue
    return make_mocked_request("POST", "/_guilds/v1/servers/!a/channels", app=app)


async def test_a_change_that_ends_at_the_bound_is_answered_as_done_not_as_a_202(
    db: Database,
) -> None:
    queue = EndsAtTheBound(db, OperationJournal(db, NoMatrix(), BOT), answer_within_s=0.01)

    async def handler(job: Job) -> Outcome:
        return Outcome(201, {"channel_id": "!c"})

    queue.register("create_channel", handler)
    answer = await queued(api_request(queue), "create_channel", "!a", UserID("@u:x"))
    assert answer.status == 201
    assert isinstance(answer, web.Response) and answer.text == '{"channel_id": "!c"}'


async def test_a_change_that_fails_at_the_bound_is_answered_with_its_error(db: Database) -> None:
    queue = EndsAtTheBound(db, OperationJournal(db, NoMatrix(), BOT), answer_within_s=0.01)

    async def handler(job: Job) -> Outcome:
        raise Forbidden("You are not the owner")

    queue.register("create_channel", handler)
    with pytest.raises(MatrixError, match="not the owner") as refused:
        await queued(api_request(queue), "create_channel", "!a", UserID("@u:x"))
    assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")


async def test_a_change_still_running_at_the_bound_is_answered_202_pending(db: Database) -> None:
    queue = make_queue(db)
    queue.answer_within_s = 0.01
    release = asyncio.Event()

    async def handler(job: Job) -> Outcome:
        await release.wait()
        return Outcome(201, {"channel_id": "!c"})

    queue.register("create_channel", handler)
    answer = await queued(api_request(queue), "create_channel", "!a", UserID("@u:x"))
    assert answer.status == 202
    operation = json.loads(answer.text or "")
    assert operation["status"] == "pending"
    assert answer.headers["Location"] == f"/_guilds/v1/operations/{operation['operation_id']}"
    release.set()
    assert await queue.wait(operation["operation_id"]) == Outcome(201, {"channel_id": "!c"})
