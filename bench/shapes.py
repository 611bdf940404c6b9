"""Servers of a given size, built the Guilds way (API + template) and the raw way (baseline).

The baseline builds *the same rooms with the same state*: it takes the very plan the bridge
would run for the same template (bridge.plans.create_server_plan) and carries its steps out one
by one, as a careful Matrix client would, with plain Client-Server calls on a Synapse without
the module: createRoom with the initial state batched in (no idempotency alias: that is the
bridge's crash safety, not part of the rooms), then the state events, then the owner's joins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.raw import Raw
from bridge.engine.steps import CreateRoom, StepContext
from bridge.plans.servers import create_server_plan
from guilds.config import ServerTemplate
from guilds.ids import UserID
from guilds.vocabulary import ROLE_EVENT

TEMPLATE_PREFIX = "bench"


def template_name(channels: int) -> str | None:
    """The template that makes a server of `channels` channels (None: the default, general only)."""
    return None if channels <= 1 else f"{TEMPLATE_PREFIX}{channels}"


def templates_config(sizes: list[int]) -> dict[str, Any]:
    """guilds.yaml's `templates:` with one template per size: general + (size - 1) text channels."""
    return {
        "templates": {
            name: {
                "description": f"{size} text channels",
                "channels": [{"name": f"c{i:03d}", "kind": "text"} for i in range(1, size)],
            }
            for size in sizes
            if (name := template_name(size)) is not None
        }
    }


@dataclass
class PlainServer:
    """The rooms of a server built by the baseline on the homeserver without the module."""

    space: str
    channels: list[str]  # general first
    role_rooms: dict[str, str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def general(self) -> str:
        return self.channels[0]

    @property
    def rooms(self) -> list[str]:
        return [self.space, *self.role_rooms.values(), *self.channels]


class _Requester:
    """bridge.engine.steps.MatrixRequester over a Raw client (the bot's token)."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        user_id: str | None = None,
    ) -> Any:
        if query:
            path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return await self.raw.call(method, path, json)


async def build_plain_server(
    bot: Raw, owner: Raw, template: ServerTemplate | None, *, name: str = "Bench"
) -> PlainServer:
    """Carry out the create-server plan step by step with raw calls; then the owner's joins."""
    plan = create_server_plan(
        owner=UserID(owner.user_id),
        name=name,
        topic="hi",
        icon=None,
        bot=UserID(bot.user_id),
        room_version="12",
        via=bot.user_id.split(":", 1)[1],
        template=template,
    )
    results: dict[str, dict[str, Any]] = {}
    requester = _Requester(bot)
    for stage_no, idx, step in plan.steps():
        resolved = step.resolved(results, plan)
        if isinstance(resolved, CreateRoom):
            results[step.name] = {"room_id": await bot.create_room(dict(resolved.body))}
        else:
            ctx = StepContext(requester, bot.user_id, "bench", stage_no, idx)
            results[step.name] = await resolved.apply(ctx)
    space = results["space"]["room_id"]
    general = results["general"]["room_id"]
    admin = results["role_admin"]["room_id"]
    for room in (space, admin, general):
        await owner.join(room)
    channels = [general] + [
        r["room_id"]
        for name, r in results.items()
        if name.startswith("channel") and "room_id" in r and name != "general"
    ]
    role_rooms = {
        name.removeprefix("role_"): r["room_id"]
        for name, r in results.items()
        if name.startswith("role_") and not name.endswith("_state")
    }
    return PlainServer(space, channels, role_rooms, results)


@dataclass
class GuildsServer:
    """A server created through the API on the Guilds stack."""

    space: str
    channels: list[str]  # general first
    role_rooms: dict[str, str]

    @property
    def general(self) -> str:
        return self.channels[0]


async def build_guilds_server(stack: Any, owner: Raw, channels: int) -> GuildsServer:
    body: dict[str, Any] = {"name": "Bench", "topic": "hi"}
    name = template_name(channels)
    if name is not None:
        body["template"] = name
    async with stack.http.post(
        f"{stack.web_url}/_guilds/v1/servers",
        json=body,
        headers={"Authorization": f"Bearer {owner.token}"},
    ) as response:
        server = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST /servers: {response.status} {server}")
    general = server["default_channel_id"]
    ids = [general] + [c["channel_id"] for c in server["channels"] if c["channel_id"] != general]
    space = server["server_id"]
    role_rooms = {}
    bot = Raw(stack.http, stack.hs_url, stack.config.appservice.registration.as_token)
    for role in ("admin", "moderator"):
        state = await bot.get_state(space, ROLE_EVENT, role)
        role_rooms[role] = state["room_id"]
    return GuildsServer(space, ids, role_rooms)


async def join_all(user: Raw, rooms: list[str], concurrency: int = 8) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(room: str) -> None:
        async with semaphore:
            await user.join(room)

    await asyncio.gather(*(one(r) for r in rooms))


async def wait_member(stack: Any, space: str, member: Raw, deadline_s: float = 60.0) -> None:
    """Until the bridge counts `member` in the server (it learns joins by transaction)."""
    url = f"{stack.web_url}/_guilds/v1/servers/{space}"
    headers = {"Authorization": f"Bearer {member.token}"}
    deadline = asyncio.get_running_loop().time() + deadline_s
    while True:
        async with stack.http.get(url, headers=headers) as response:
            if response.status == 200:
                return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{member.user_id} never became a member of {space}")
        await asyncio.sleep(0.1)
