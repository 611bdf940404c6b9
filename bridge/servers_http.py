"""HTTP handlers of the server endpoints of docs/API.md (`/_guilds/v1/servers…`)."""

from __future__ import annotations

from aiohttp import web

from bridge.appservice import bearer_token
from bridge.errors import MissingToken, read_json
from bridge.provisioning import PROVISIONING_MAX_BODY, require_user
from bridge.servers import Servers
from bridge.shapes import server_json, server_summary_json

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
    server = await _servers(request).create(
        user,
        _token(request),
        body.get("name"),
        body.get("topic"),
        body.get("icon"),
        body.get("template"),
    )
    return web.json_response(server_json(server, user), status=201)


async def get_server(request: web.Request) -> web.Response:
    user = await require_user(request)
    server = _servers(request).visible(request.match_info["sid"], user)
    return web.json_response(server_json(server, user))


async def patch_server(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _body(request)
    server = await _servers(request).update(request.match_info["sid"], user, body)
    return web.json_response(server_json(server, user))


async def delete_server(request: web.Request) -> web.Response:
    user = await require_user(request)
    await _servers(request).delete(request.match_info["sid"], user)
    return web.Response(status=204)


async def leave_server(request: web.Request) -> web.Response:
    user = await require_user(request)
    await _servers(request).leave(request.match_info["sid"], user, _token(request))
    return web.Response(status=204)


async def transfer_server(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _body(request)
    server = await _servers(request).transfer(request.match_info["sid"], user, body)
    return web.json_response(server_json(server, user))


def add_routes(app: web.Application, servers: Servers) -> None:
    app[SERVERS] = servers
    app.router.add_get("/servers", list_servers)
    app.router.add_post("/servers", create_server)
    app.router.add_get("/servers/{sid}", get_server)
    app.router.add_patch("/servers/{sid}", patch_server)
    app.router.add_delete("/servers/{sid}", delete_server)
    app.router.add_post("/servers/{sid}/leave", leave_server)
    app.router.add_post("/servers/{sid}/transfer", transfer_server)
