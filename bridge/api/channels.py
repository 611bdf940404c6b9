"""HTTP handlers of the channel and category endpoints of docs/API.md.

Changes go through the server's queue (bridge/api/operations.py): one at a time per server,
answered within a bound.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api.app import PROVISIONING_MAX_BODY, require_user
from bridge.api.operations import queued
from bridge.api.shapes import category_json, channel_json
from bridge.engine.queue import Job, Outcome, ServerQueue
from bridge.errors import read_json
from bridge.services.channels import Channels
from guilds.ids import UserID

CHANNELS: web.AppKey[Channels] = web.AppKey("guilds_channels", Channels)


def _channels(request: web.Request) -> Channels:
    return request.config_dict[CHANNELS]


async def _change(request: web.Request, kind: str, *, with_body: bool = True) -> web.Response:
    user = await require_user(request)
    body = await read_json(request, max_bytes=PROVISIONING_MAX_BODY) if with_body else {}
    sid = request.match_info["sid"]
    # Unknown or unseen servers are refused now, not queued; the job checks again at its turn.
    _channels(request).servers.visible(sid, user)
    params = {k: v for k, v in request.match_info.items() if k in ("cid", "cat")}
    return await queued(request, kind, sid, user, params, body)


async def create_channel(request: web.Request) -> web.Response:
    return await _change(request, "channel.create")


async def patch_channel(request: web.Request) -> web.Response:
    return await _change(request, "channel.update")


async def delete_channel(request: web.Request) -> web.Response:
    return await _change(request, "channel.delete", with_body=False)


async def create_category(request: web.Request) -> web.Response:
    return await _change(request, "category.create")


async def patch_category(request: web.Request) -> web.Response:
    return await _change(request, "category.update")


async def delete_category(request: web.Request) -> web.Response:
    return await _change(request, "category.delete", with_body=False)


def _register(queue: ServerQueue, channels: Channels) -> None:
    def actor(job: Job) -> UserID:
        return UserID(str(job.actor))

    async def create_channel(job: Job) -> Outcome:
        channel = await channels.create_channel(job.server_id, actor(job), dict(job.body))
        return Outcome(201, channel_json(channel))

    async def update_channel(job: Job) -> Outcome:
        channel = await channels.update_channel(
            job.server_id, actor(job), job.params["cid"], dict(job.body)
        )
        return Outcome(200, channel_json(channel))

    async def delete_channel(job: Job) -> Outcome:
        await channels.delete_channel(job.server_id, actor(job), job.params["cid"])
        return Outcome(204)

    async def create_category(job: Job) -> Outcome:
        category = await channels.create_category(job.server_id, actor(job), dict(job.body))
        return Outcome(201, category_json(category))

    async def update_category(job: Job) -> Outcome:
        category = await channels.update_category(
            job.server_id, actor(job), job.params["cat"], dict(job.body)
        )
        return Outcome(200, category_json(category))

    async def delete_category(job: Job) -> Outcome:
        await channels.delete_category(job.server_id, actor(job), job.params["cat"])
        return Outcome(204)

    queue.register("channel.create", create_channel)
    queue.register("channel.update", update_channel)
    queue.register("channel.delete", delete_channel)
    queue.register("category.create", create_category)
    queue.register("category.update", update_category)
    queue.register("category.delete", delete_category)


def add_routes(app: web.Application, channels: Channels, queue: ServerQueue) -> None:
    app[CHANNELS] = channels
    _register(queue, channels)
    app.router.add_post("/servers/{sid}/channels", create_channel)
    app.router.add_patch("/servers/{sid}/channels/{cid}", patch_channel)
    app.router.add_delete("/servers/{sid}/channels/{cid}", delete_channel)
    app.router.add_post("/servers/{sid}/categories", create_category)
    app.router.add_patch("/servers/{sid}/categories/{cat}", patch_category)
    app.router.add_delete("/servers/{sid}/categories/{cat}", delete_category)
