"""HTTP handlers of the member endpoints of docs/API.md (members, their roles, kicks, bans)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.errors import read_json
from bridge.members import Members, parse_limit
from bridge.provisioning import PROVISIONING_MAX_BODY, require_user
from bridge.shapes import member_json
from guilds.ids import UserID

MEMBERS: web.AppKey[Members] = web.AppKey("guilds_members", Members)


def _members(request: web.Request) -> Members:
    return request.config_dict[MEMBERS]


async def _optional_body(request: web.Request) -> dict[str, Any]:
    """`{reason?}`: a kick or ban may come with no body at all."""
    if not request.body_exists:
        return {}
    return await read_json(request, max_bytes=PROVISIONING_MAX_BODY)


def _member(request: web.Request, actor: UserID) -> web.Response:
    server, event = _members(request).member(
        request.match_info["sid"], actor, UserID(request.match_info["uid"])
    )
    return web.json_response(member_json(server, UserID(request.match_info["uid"]), event))


async def list_members(request: web.Request) -> web.Response:
    user = await require_user(request)
    limit = parse_limit(request.query.get("limit"))
    page = _members(request).page(request.match_info["sid"], user, limit, request.query.get("from"))
    server = _members(request).servers.visible(request.match_info["sid"], user)
    answer: dict[str, Any] = {"members": [member_json(server, u, e) for u, e in page.members]}
    if page.next is not None:
        answer["next"] = page.next
    return web.json_response(answer)


async def grant_role(request: web.Request) -> web.Response:
    user = await require_user(request)
    info = request.match_info
    await _members(request).grant(info["sid"], user, UserID(info["uid"]), info["rid"])
    return _member(request, user)


async def revoke_role(request: web.Request) -> web.Response:
    user = await require_user(request)
    info = request.match_info
    await _members(request).revoke(info["sid"], user, UserID(info["uid"]), info["rid"])
    return _member(request, user)


async def kick_member(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _optional_body(request)
    info = request.match_info
    await _members(request).kick(info["sid"], user, UserID(info["uid"]), body)
    return web.Response(status=204)


async def ban_member(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _optional_body(request)
    info = request.match_info
    await _members(request).ban(info["sid"], user, UserID(info["uid"]), body)
    return web.Response(status=204)


async def unban_member(request: web.Request) -> web.Response:
    user = await require_user(request)
    info = request.match_info
    await _members(request).unban(info["sid"], user, UserID(info["uid"]))
    return web.Response(status=204)


def add_routes(app: web.Application, members: Members) -> None:
    app[MEMBERS] = members
    app.router.add_get("/servers/{sid}/members", list_members)
    app.router.add_put("/servers/{sid}/members/{uid}/roles/{rid}", grant_role)
    app.router.add_delete("/servers/{sid}/members/{uid}/roles/{rid}", revoke_role)
    app.router.add_post("/servers/{sid}/members/{uid}/kick", kick_member)
    app.router.add_post("/servers/{sid}/members/{uid}/ban", ban_member)
    app.router.add_delete("/servers/{sid}/bans/{uid}", unban_member)
