"""HTTP handlers of the server endpoints of docs/API.md (`/_guilds/v1/servers…`).

Changes to a server go through its queue (bridge/api/operations.py): one at a time per
server, answered within a bound; creations in their owner's line. Leaving a server is made with
the caller's own token, which is never stored, so it is not queued.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.app import PROVISIONING_MAX_BODY, require_user
from bridge.api.appservice import bearer_token
from bridge.api.operations import queued
from bridge.api.shapes import server_json, server_summary_json
from bridge.engine.queue import Job, Outcome, ServerQueue
from bridge.errors import MissingToken, read_json
from bridge.services.servers import Servers
from guilds.ids import UserID

SERVERS: web.AppKey[Servers] = web.AppKey("guilds_servers", Servers)


def _servers(request: web.Request) -> Servers:
    return request.config_dict[SERVERS]


async def _body(request: web.Request) -> dict:
    return await read_json(request, max_bytes=PROVISIONING_MAX_BODY)


def _token(request: web.Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise MissingToken()
    return token


async def list_servers(request: web.Request) -> web.Response:
    user = await require_user(request)
    servers = sorted(_servers(request).joined(user), key=lambda s: (s.name.casefold(), s.server_id))
    return web.json_response({"servers": [server_summary_json(s) for s in servers]})


async def create_server(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _body(request)
    token = _token(request)
    fields = {k: body.get(k) for k in ("name", "topic", "icon", "template")}
    await _servers(request).check_creation(user, token, **fields)
    # Queued in the owner's line (no server exists yet: a user id is never a room id), with
    # the token held in memory for the owner's own joins, never stored.
    return await queued(request, "server.create", user, user, {}, fields, held={"token": token})


async def get_server(request: web.Request) -> web.Response:
    user = await require_user(request)
    server = _servers(request).visible(request.match_info["sid"], user)
    return web.json_response(server_json(server, user))


async def _change(request: web.Request, kind: str, body: dict[str, Any]) -> web.Response:
    user = await require_user(request)
    sid = request.match_info["sid"]
    # Unknown or unseen servers are refused now, not queued; the job checks again at its turn.
    _servers(request).visible(sid, user)
    return await queued(request, kind, sid, user, {}, body)


async def patch_server(request: web.Request) -> web.Response:
    await require_user(request)
    return await _change(request, "server.update", await _body(request))


async def delete_server(request: web.Request) -> web.Response:
    return await _change(request, "server.delete", {})


async def leave_server(request: web.Request) -> web.Response:
    # The user's own leaves, made with their token for this request only: never stored, so
    # not queued (the bridge changes nothing of the server's structure here).
    user = await require_user(request)
    await _servers(request).leave(request.match_info["sid"], user, _token(request))
    return web.Response(status=204)


async def transfer_server(request: web.Request) -> web.Response:
    await require_user(request)
    return await _change(request, "server.transfer", await _body(request))


def _register(queue: ServerQueue, servers: Servers) -> None:
    async def create(job: Job) -> Outcome:
        owner = UserID(str(job.actor))
        body = job.body
        server = await servers.create(
            owner,
            job.held.get("token"),
            body.get("name"),
            body.get("topic"),
            body.get("icon"),
            body.get("template"),
        )
        return Outcome(201, server_json(server, owner))

    async def update(job: Job) -> Outcome:
        actor = UserID(str(job.actor))
        server = await servers.update(job.server_id, actor, dict(job.body))
        return Outcome(200, server_json(server, actor))

    async def delete(job: Job) -> Outcome:
        await servers.delete(job.server_id, UserID(str(job.actor)))
        return Outcome(204)

    async def transfer(job: Job) -> Outcome:
        actor = UserID(str(job.actor))
        server = await servers.transfer(job.server_id, actor, dict(job.body))
        return Outcome(200, server_json(server, actor))

    queue.register("server.create", create)
    queue.register("server.update", update)
    queue.register("server.delete", delete)
    queue.register("server.transfer", transfer)


def add_routes(app: web.Application, servers: Servers, queue: ServerQueue) -> None:
    app[SERVERS] = servers
    _register(queue, servers)
    app.router.add_get("/servers", list_servers)
    app.router.add_post("/servers", create_server)
    app.router.add_get("/servers/{sid}", get_server)
    app.router.add_patch("/servers/{sid}", patch_server)
    app.router.add_delete("/servers/{sid}", delete_server)
    app.router.add_post("/servers/{sid}/leave", leave_server)
    app.router.add_post("/servers/{sid}/transfer", transfer_server)
