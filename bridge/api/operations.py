"""Requests that change a server, answered within a bound: their result, or 202 and an operation.

Every such endpoint hands its request to the server's queue (bridge/engine/queue.py) through
`queued`
and waits at most `answer_within_s` for it: done in time, it answers as it always has; still
waiting (its turn has not come, or the homeserver is down or stuck), it answers **202** with
`{"operation_id", "status": "pending", …}` and a `Location` of `GET /operations/{id}`, where the
outcome stays: `pending`, `done` with the result, or `failed` with the `{errcode, error}` cause.
The request goes on either way. Only the user who made the request may read its operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bridge.api.app import require_user
from bridge.engine.queue import JobFailed, JobNotFound, JobRecord, Outcome, Progress, ServerQueue
from bridge.errors import NotFound
from guilds.ids import UserID

QUEUE: web.AppKey[ServerQueue] = web.AppKey("guilds_queue", ServerQueue)
# Where the operation resource is, relative to the provisioning API's root.
OPERATIONS_PATH = "/_guilds/v1/operations"


def queue_of(request: web.Request) -> ServerQueue:
    return request.config_dict[QUEUE]


async def queued(
    request: web.Request,
    kind: str,
    server_id: str,
    actor: UserID,
    params: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    *,
    held: Mapping[str, str] | None = None,
) -> web.Response:
    """Queue the change and answer its result, its failure, or 202 once the bound has passed.

    `held` (the caller's token, for changes made as the caller) is kept in memory only.
    """
    queue = queue_of(request)
    job_id = await queue.submit(kind, server_id, actor, params, body, held=held)
    try:
        outcome = await queue.wait(job_id, queue.answer_within_s)
        record = None if outcome is not None else await queue.get(job_id)
        if record is not None and record.state in ("done", "failed"):
            # It ended between the bound and that read: answered as a change done in time,
            # never as a 202 whose operation is already over.
            outcome = await queue.wait(job_id)
    except JobFailed as exc:
        raise exc.error from None
    if outcome is None:
        assert record is not None
        return web.json_response(
            operation_json(record, await queue.progress(job_id)),
            status=202,
            headers={"Location": f"{OPERATIONS_PATH}/{job_id}"},
        )
    return response(outcome)


def response(outcome: Outcome) -> web.Response:
    if outcome.body is None:
        return web.Response(status=outcome.status)
    return web.json_response(outcome.body, status=outcome.status)


def operation_json(record: JobRecord, progress: Progress | None = None) -> dict[str, Any]:
    """The operation resource of docs/API.md."""
    status = {"queued": "pending", "running": "pending"}.get(record.state, record.state)
    answer: dict[str, Any] = {
        "operation_id": record.job_id,
        "status": status,
        "kind": record.kind,
        # A creation waits in its owner's line (a user id): its server is in the result.
        "server_id": record.server_id if record.server_id.startswith("!") else None,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "href": f"{OPERATIONS_PATH}/{record.job_id}",
    }
    if record.state == "running":
        answer["started"] = True
        if progress is not None:
            answer["steps_done"] = progress.steps_done
            answer["steps_total"] = progress.steps_total
            if progress.waiting_for is not None:
                # Why it is not done yet: the homeserver's failure it is waiting out.
                answer["waiting_for"] = progress.waiting_for
    if record.outcome is not None:
        answer["http_status"] = record.outcome.status
        answer["result"] = record.outcome.body
    if record.error is not None:
        answer["http_status"] = record.error_status
        answer["error"] = {
            "errcode": record.error.get("errcode"),
            "error": record.error.get("error"),
        }
    return answer


async def get_operation(request: web.Request) -> web.Response:
    user = await require_user(request)
    try:
        record = await queue_of(request).get(request.match_info["oid"])
    except JobNotFound:
        raise NotFound("No such operation") from None
    # Someone else's operation is as unknown as a made-up id: its id tells nothing.
    if record.actor != user:
        raise NotFound("No such operation")
    progress = (
        await queue_of(request).progress(record.job_id) if record.state == "running" else None
    )
    return web.json_response(operation_json(record, progress))


def add_routes(app: web.Application, queue: ServerQueue) -> None:
    app[QUEUE] = queue
    app.router.add_get("/operations/{oid}", get_operation)
