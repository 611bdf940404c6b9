"""HTTP handlers of the channel and category endpoints of docs/API.md."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.channels import Channels
from bridge.errors import read_json
from bridge.provisioning import PROVISIONING_MAX_BODY, require_user
from bridge.shapes import category_json, channel_json

CHANNELS: web.AppKey[Channels] = web.AppKey("guilds_channels", Channels)


def _channels(request: web.Request) -> Channels:
    return request.config_dict[CHANNELS]


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json(request, max_bytes=PROVISIONING_MAX_BODY)


async def create_channel(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _body(request)
    channel = await _channels(request).create_channel(request.match_info["sid"], user, body)
    return web.json_response(channel_json(channel), status=201)


async def patch_channel(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _body(request)
    channel = await _channels(request).update_channel(
        request.match_info["sid"], user, request.match_info["cid"], body
    )
    return web.json_response(channel_json(channel))


async def delete_channel(request: web.Request) -> web.Response:
    user = await require_user(request)
    await _channels(request).delete_channel(
        request.match_info["sid"], user, request.match_info["cid"]
    )
    return web.Response(status=204)


async def create_category(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _body(request)
    category = await _channels(request).create_category(request.match_info["sid"], user, body)
    return web.json_response(category_json(category), status=201)


async def patch_category(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await _body(request)
    category = await _channels(request).update_category(
        request.match_info["sid"], user, request.match_info["cat"], body
    )
    return web.json_response(category_json(category))


async def delete_category(request: web.Request) -> web.Response:
    user = await require_user(request)
    await _channels(request).delete_category(
        request.match_info["sid"], user, request.match_info["cat"]
    )
    return web.Response(status=204)


def add_routes(app: web.Application, channels: Channels) -> None:
    app[CHANNELS] = channels
    app.router.add_post("/servers/{sid}/channels", create_channel)
    app.router.add_patch("/servers/{sid}/channels/{cid}", patch_channel)
    app.router.add_delete("/servers/{sid}/channels/{cid}", delete_channel)
    app.router.add_post("/servers/{sid}/categories", create_category)
    app.router.add_patch("/servers/{sid}/categories/{cat}", patch_category)
    app.router.add_delete("/servers/{sid}/categories/{cat}", delete_category)
