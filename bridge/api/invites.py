"""HTTP handlers of the invite endpoints of docs/API.md (`…/invites…` and `/invites/…`)."""

from __future__ import annotations

from aiohttp import web

from bridge.api.app import PROVISIONING_MAX_BODY, require_user
from bridge.api.shapes import invite_json, invite_preview_json
from bridge.errors import read_json
from bridge.services.invites import Invites

INVITES: web.AppKey[Invites] = web.AppKey("guilds_invites", Invites)


def _invites(request: web.Request) -> Invites:
    return request.config_dict[INVITES]


async def create_invite(request: web.Request) -> web.Response:
    user = await require_user(request)
    # Both fields are optional, so no body at all means an unlimited invite.
    body = await read_json(request, max_bytes=PROVISIONING_MAX_BODY) if request.body_exists else {}
    invites = _invites(request)
    invite = await invites.create(request.match_info["sid"], user, body)
    return web.json_response(invite_json(invite, invites.url(invite.code)), status=201)


async def list_invites(request: web.Request) -> web.Response:
    user = await require_user(request)
    invites = _invites(request)
    found = await invites.of_server(request.match_info["sid"], user)
    return web.json_response({"invites": [invite_json(i, invites.url(i.code)) for i in found]})


async def revoke_invite(request: web.Request) -> web.Response:
    user = await require_user(request)
    await _invites(request).revoke(request.match_info["sid"], user, request.match_info["code"])
    return web.Response(status=204)


async def preview_invite(request: web.Request) -> web.Response:
    # No token: the landing page shows this to people who may not have an account yet.
    invite, server, status = await _invites(request).preview(request.match_info["code"])
    return web.json_response(invite_preview_json(invite, server, status))


async def invite_icon(request: web.Request) -> web.Response:
    # No token either: the landing page's <img> for visitors who are not signed in.
    body, kind = await _invites(request).icon(request.match_info["code"])
    return web.Response(
        body=body,
        content_type=kind,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


async def redeem_invite(request: web.Request) -> web.Response:
    user = await require_user(request)
    server_id = await _invites(request).redeem(request.match_info["code"], user)
    return web.json_response({"server_id": server_id})


def add_routes(app: web.Application, invites: Invites) -> None:
    app[INVITES] = invites
    app.router.add_post("/servers/{sid}/invites", create_invite)
    app.router.add_get("/servers/{sid}/invites", list_invites)
    app.router.add_delete("/servers/{sid}/invites/{code}", revoke_invite)
    app.router.add_get("/invites/{code}", preview_invite)
    app.router.add_get("/invites/{code}/icon", invite_icon)
    app.router.add_post("/invites/{code}/redeem", redeem_invite)
