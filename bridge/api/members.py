"""HTTP handlers of the member endpoints of docs/API.md (members, their roles, kicks, bans).

Changes go through the server's queue (bridge/api/operations.py): one at a time per server,
answered within a bound.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.app import PROVISIONING_MAX_BODY, require_user
from bridge.api.operations import queued
from bridge.api.shapes import member_json
from bridge.engine.queue import Job, Outcome, ServerQueue
from bridge.errors import read_json
from bridge.services.members import Members, parse_limit
from guilds.ids import UserID

MEMBERS: web.AppKey[Members] = web.AppKey("guilds_members", Members)


def _members(request: web.Request) -> Members:
    return request.config_dict[MEMBERS]


async def _optional_body(request: web.Request) -> dict[str, Any]:
    """`{reason?}`: a kick or ban may come with no body at all."""
    if not request.body_exists:
        return {}
    return await read_json(request, max_bytes=PROVISIONING_MAX_BODY)


async def list_members(request: web.Request) -> web.Response:
    user = await require_user(request)
    limit = parse_limit(request.query.get("limit"))
    page = _members(request).page(request.match_info["sid"], user, limit, request.query.get("from"))
    server = _members(request).servers.visible(request.match_info["sid"], user)
    answer: dict[str, Any] = {"members": [member_json(server, u, e) for u, e in page.members]}
    if page.next is not None:
        answer["next"] = page.next
    return web.json_response(answer)


async def list_bans(request: web.Request) -> web.Response:
    user = await require_user(request)
    bans = _members(request).bans(request.match_info["sid"], user)
    return web.json_response({"bans": [{"user_id": u, "reason": r} for u, r in bans]})


async def _change(request: web.Request, kind: str, body: dict[str, Any]) -> web.Response:
    user = await require_user(request)
    sid = request.match_info["sid"]
    # Unknown or unseen servers are refused now, not queued; the job checks again at its turn.
    _members(request).servers.visible(sid, user)
    params = {k: v for k, v in request.match_info.items() if k in ("uid", "rid")}
    return await queued(request, kind, sid, user, params, body)


async def grant_role(request: web.Request) -> web.Response:
    return await _change(request, "member.grant", {})


async def revoke_role(request: web.Request) -> web.Response:
    return await _change(request, "member.revoke", {})


async def kick_member(request: web.Request) -> web.Response:
    await require_user(request)
    return await _change(request, "member.kick", await _optional_body(request))


async def ban_member(request: web.Request) -> web.Response:
    await require_user(request)
    return await _change(request, "member.ban", await _optional_body(request))


async def unban_member(request: web.Request) -> web.Response:
    return await _change(request, "member.unban", {})


def _register(queue: ServerQueue, members: Members) -> None:
    def member(job: Job) -> Outcome:
        user = UserID(job.params["uid"])
        server, event = members.member(job.server_id, UserID(str(job.actor)), user)
        return Outcome(200, member_json(server, user, event))

    async def grant(job: Job) -> Outcome:
        actor, user = UserID(str(job.actor)), UserID(job.params["uid"])
        await members.grant(job.server_id, actor, user, job.params["rid"])
        return member(job)

    async def revoke(job: Job) -> Outcome:
        actor, user = UserID(str(job.actor)), UserID(job.params["uid"])
        await members.revoke(job.server_id, actor, user, job.params["rid"])
        return member(job)

    async def kick(job: Job) -> Outcome:
        actor, user = UserID(str(job.actor)), UserID(job.params["uid"])
        await members.kick(job.server_id, actor, user, job.body)
        return Outcome(204)

    async def ban(job: Job) -> Outcome:
        actor, user = UserID(str(job.actor)), UserID(job.params["uid"])
        await members.ban(job.server_id, actor, user, job.body)
        return Outcome(204)

    async def unban(job: Job) -> Outcome:
        actor, user = UserID(str(job.actor)), UserID(job.params["uid"])
        await members.unban(job.server_id, actor, user)
        return Outcome(204)

    queue.register("member.grant", grant)
    queue.register("member.revoke", revoke)
    queue.register("member.kick", kick)
    queue.register("member.ban", ban)
    queue.register("member.unban", unban)


def add_routes(app: web.Application, members: Members, queue: ServerQueue) -> None:
    app[MEMBERS] = members
    _register(queue, members)
    app.router.add_get("/servers/{sid}/members", list_members)
    app.router.add_put("/servers/{sid}/members/{uid}/roles/{rid}", grant_role)
    app.router.add_delete("/servers/{sid}/members/{uid}/roles/{rid}", revoke_role)
    app.router.add_post("/servers/{sid}/members/{uid}/kick", kick_member)
    app.router.add_post("/servers/{sid}/members/{uid}/ban", ban_member)
    app.router.add_get("/servers/{sid}/bans", list_bans)
    app.router.add_delete("/servers/{sid}/bans/{uid}", unban_member)
