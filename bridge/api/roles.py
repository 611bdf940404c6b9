"""HTTP handlers of the role endpoints of docs/API.md (`/_guilds/v1/servers/{sid}/roles…`).

Changes go through the server's queue (bridge/api/operations.py): one at a time per server,
answered within a bound.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api.app import PROVISIONING_MAX_BODY, require_user
from bridge.api.operations import queued
from bridge.api.shapes import role_json
from bridge.engine.queue import Job, Outcome, ServerQueue
from bridge.errors import read_json
from bridge.services.roles import Roles
from guilds.ids import UserID

ROLES: web.AppKey[Roles] = web.AppKey("guilds_roles", Roles)


def _roles(request: web.Request) -> Roles:
    return request.config_dict[ROLES]


async def list_roles(request: web.Request) -> web.Response:
    user = await require_user(request)
    roles = _roles(request).list(request.match_info["sid"], user)
    return web.json_response({"roles": [role_json(r) for r in roles]})


async def _change(request: web.Request, kind: str, *, with_body: bool = True) -> web.Response:
    user = await require_user(request)
    body = await read_json(request, max_bytes=PROVISIONING_MAX_BODY) if with_body else {}
    sid = request.match_info["sid"]
    # Unknown or unseen servers are refused now, not queued; the job checks again at its turn.
    _roles(request).servers.visible(sid, user)
    params = {"rid": request.match_info["rid"]} if "rid" in request.match_info else {}
    return await queued(request, kind, sid, user, params, body)


async def create_role(request: web.Request) -> web.Response:
    return await _change(request, "role.create")


async def patch_role(request: web.Request) -> web.Response:
    return await _change(request, "role.update")


async def delete_role(request: web.Request) -> web.Response:
    return await _change(request, "role.delete", with_body=False)


def _register(queue: ServerQueue, roles: Roles) -> None:
    async def create(job: Job) -> Outcome:
        role = await roles.create(job.server_id, UserID(str(job.actor)), job.body)
        return Outcome(201, role_json(role))

    async def update(job: Job) -> Outcome:
        role = await roles.update(
            job.server_id, job.params["rid"], UserID(str(job.actor)), job.body
        )
        return Outcome(200, role_json(role))

    async def delete(job: Job) -> Outcome:
        await roles.delete(job.server_id, job.params["rid"], UserID(str(job.actor)))
        return Outcome(204)

    queue.register("role.create", create)
    queue.register("role.update", update)
    queue.register("role.delete", delete)


def add_routes(app: web.Application, roles: Roles, queue: ServerQueue) -> None:
    app[ROLES] = roles
    _register(queue, roles)
    app.router.add_get("/servers/{sid}/roles", list_roles)
    app.router.add_post("/servers/{sid}/roles", create_role)
    app.router.add_patch("/servers/{sid}/roles/{rid}", patch_role)
    app.router.add_delete("/servers/{sid}/roles/{rid}", delete_role)
