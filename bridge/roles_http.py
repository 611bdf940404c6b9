"""HTTP handlers of the role endpoints of docs/API.md (`/_guilds/v1/servers/{sid}/roles…`)."""

from __future__ import annotations

from aiohttp import web

from bridge.errors import read_json
from bridge.provisioning import PROVISIONING_MAX_BODY, require_user
from bridge.roles import Roles
from bridge.shapes import role_json

ROLES: web.AppKey[Roles] = web.AppKey("guilds_roles", Roles)


def _roles(request: web.Request) -> Roles:
    return request.config_dict[ROLES]


async def list_roles(request: web.Request) -> web.Response:
    user = await require_user(request)
    roles = _roles(request).list(request.match_info["sid"], user)
    return web.json_response({"roles": [role_json(r) for r in roles]})


async def create_role(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_json(request, max_bytes=PROVISIONING_MAX_BODY)
    role = await _roles(request).create(request.match_info["sid"], user, body)
    return web.json_response(role_json(role), status=201)


async def patch_role(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_json(request, max_bytes=PROVISIONING_MAX_BODY)
    role = await _roles(request).update(
        request.match_info["sid"], request.match_info["rid"], user, body
    )
    return web.json_response(role_json(role))


async def delete_role(request: web.Request) -> web.Response:
    user = await require_user(request)
    await _roles(request).delete(request.match_info["sid"], request.match_info["rid"], user)
    return web.Response(status=204)


def add_routes(app: web.Application, roles: Roles) -> None:
    app[ROLES] = roles
    app.router.add_get("/servers/{sid}/roles", list_roles)
    app.router.add_post("/servers/{sid}/roles", create_role)
    app.router.add_patch("/servers/{sid}/roles/{rid}", patch_role)
    app.router.add_delete("/servers/{sid}/roles/{rid}", delete_role)
