"""The invariant checker: for every room of a server, API view == Matrix state == derived state.

Three views of one server are compared:
- the Matrix state of every room of the server (the space, its channels and categories, the
  categories' channels, the role rooms), read over the Client-Server API as the bot, and again
  as each member sees it in the rooms they are joined to;
- the state the model derives for those rooms (the model assembled from that Matrix state by
  `guilds.snapshot.assemble`, the derivation `bridge.derived.divergences`);
- the provisioning API's answers (`GET /servers/{sid}` as the owner, the member list).

`server_problems` returns every difference as a sentence; `assert_converged` waits, with a
deadline, until there are none, and fails naming what is still wrong.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import nio

from bridge.plans.derived import divergences
from bridge.plans.rooms import ServerRooms
from guilds.ids import RoomID, UserID
from guilds.model import CATEGORY_EVENT, Server
from guilds.permissions import power_of
from guilds.rules import RoomKind, channel_kind
from guilds.snapshot import assemble, rooms_of
from guilds.vocabulary import CHANNEL_EVENT, ChannelKind, is_role_room
from tests.harness.api import Api, as_bot, eventually
from tests.harness.stack import Stack, User

States = dict[RoomID, dict[tuple[str, str], dict[str, Any]]]
# Which state each member's own view is compared on: what decides what they may do.
MEMBER_VIEW = ("m.room.power_levels", "m.room.join_rules")


async def room_state(stack: Stack, room_id: str) -> dict[tuple[str, str], dict[str, Any]] | None:
    """A room's state as the bot reads it; None when the bot is not in it."""
    status, events = await as_bot(stack, "GET", f"/rooms/{room_id}/state")
    if status != 200:
        return None
    return {(e["type"], e["state_key"]): e["content"] for e in events}


async def matrix_states(stack: Stack, server_id: str) -> States:
    """Every room of the server as the bot reads it (the space first, then what it links).

    A linked room the bot is not in (one never adopted) is asked for once and left out.
    """
    states: States = {}
    asked: set[RoomID] = set()
    todo = {RoomID(server_id)}
    while todo:
        rooms = sorted(todo)
        asked |= todo
        for room, state in zip(
            rooms, await asyncio.gather(*(room_state(stack, r) for r in rooms)), strict=True
        ):
            if state is not None:
                states[room] = state
        todo = rooms_of(RoomID(server_id), states) - asked
    return states


def room_kinds(
    server: Server, states: Mapping[RoomID, Mapping[tuple[str, str], Any]]
) -> list[tuple[RoomID, RoomKind, ChannelKind | None]]:
    """What each read room is, as the bridge's directory classifies it."""
    found: list[tuple[RoomID, RoomKind, ChannelKind | None]] = []
    for room, state in states.items():
        if room == server.server_id:
            found.append((room, RoomKind.SPACE, None))
        elif (CHANNEL_EVENT, "") in state:
            channel = state[(CHANNEL_EVENT, "")]
            default = channel.get("default") is True
            kind = RoomKind.DEFAULT_CHANNEL if default else RoomKind.CHANNEL
            found.append((room, kind, channel_kind(channel)))
        elif (CATEGORY_EVENT, "") in state:
            found.append((room, RoomKind.CATEGORY, None))
        elif is_role_room(state.get(("m.room.create", ""))):
            found.append((room, RoomKind.ROLE_ROOM, None))
    return found


def derived_problems(stack: Stack, server_id: str, states: States) -> tuple[Server, list[str]]:
    """The model the Matrix state makes, and every room that differs from what it derives."""
    bot = UserID(stack.bot_user_id)
    server = assemble(RoomID(server_id), states, bot=bot)
    ctx = ServerRooms(server, room_kinds(server, states), states, bot, stack.server_name)
    return server, [f"derived: {d.line()}" for d in divergences(ctx)]


async def _api_members(api: Api, server_id: str) -> dict[str, dict[str, Any]]:
    members: dict[str, dict[str, Any]] = {}
    start: str | None = None
    while True:
        path = f"/servers/{server_id}/members?limit=500"
        if start is not None:
            path += f"&from={start}"
        status, page = await api.call("GET", path)
        assert status == 200, page
        members |= {m["user_id"]: m for m in page["members"]}
        start = page.get("next")
        if start is None:
            return members


async def api_problems(stack: Stack, server: Server, owner: User) -> list[str]:
    """Where the API, asked as the owner, says something else than the Matrix state."""
    api = Api(stack, owner)
    status, shown = await api.call("GET", f"/servers/{server.server_id}")
    if status != 200:
        return [f"api: GET /servers/{server.server_id} answered {status}: {shown}"]
    problems: list[str] = []

    def differ(what: str, api_value: Any, matrix_value: Any) -> None:
        if api_value != matrix_value:
            problems.append(f"api: {what}: the API says {api_value!r}, Matrix {matrix_value!r}")

    differ("owner", shown["owner"], server.state.owner)
    differ("name", shown["name"], server.name)
    differ(
        "channels",
        sorted(
            ((c["channel_id"], c["category_id"], c["allowed_roles"]) for c in shown["channels"]),
            key=repr,
        ),
        sorted(
            ((c.channel_id, c.category_id, _gate(c.allowed_roles)) for c in server.channels),
            key=repr,
        ),
    )
    differ(
        "categories",
        sorted(c["category_id"] for c in shown["categories"]),
        sorted(c.category_id for c in server.categories),
    )
    differ(
        "roles",
        sorted((r["role_id"], r["power"]) for r in shown["roles"]),
        sorted((r.role_id, r.power) for r in server.roles),
    )
    members = await _api_members(api, server.server_id)
    differ("members", sorted(members), sorted(server.members | {server.state.owner}))
    for user, member in sorted(members.items()):
        uid = UserID(user)
        differ(f"roles of {user}", member["roles"], [r.role_id for r in server.roles_of(uid)])
        differ(f"power of {user}", member["power"], power_of(server, uid))
    return problems


def _gate(allowed_roles: tuple[str, ...] | None) -> list[str] | None:
    return None if allowed_roles is None else list(allowed_roles)


async def member_view_problems(
    stack: Stack, states: States, users: Iterable[User], server: Server
) -> list[str]:
    """Where a member, reading a room they are joined to, sees other state than the bot."""
    problems: list[str] = []
    for user in users:
        if not server.is_member(UserID(user.user_id)):
            continue
        async with stack.nio_client(user) as client:
            for room, state in states.items():
                joined = state.get(("m.room.member", user.user_id), {}).get("membership")
                if joined != "join":
                    continue
                answer = await client.room_get_state(room)
                if not isinstance(answer, nio.RoomGetStateResponse):
                    problems.append(f"member view: {user.user_id} cannot read {room}: {answer}")
                    continue
                seen = {(e["type"], e["state_key"]): e["content"] for e in answer.events}
                for key in MEMBER_VIEW:
                    if seen.get((key, "")) != state.get((key, "")):
                        problems.append(f"member view: {user.user_id} sees another {key} in {room}")
    return problems


def stray_member_problems(server: Server, states: States, bot: str) -> list[str]:
    """Who is joined to a room of the server without being a member of it (Discord has no
    member of a channel outside the server; reconciliation removes such a join)."""
    return [
        f"matrix: {key[1]} is joined to {room} but not a member of the server"
        for room, state in states.items()
        if room != server.server_id
        for key, content in state.items()
        if key[0] == "m.room.member"
        and content.get("membership") == "join"
        and key[1] != bot
        and not server.is_member(UserID(key[1]))
    ]


async def server_problems(
    stack: Stack, server_id: str, owner: User, members: Iterable[User] = ()
) -> list[str]:
    """Every way the server's API view, Matrix state and derived state disagree (empty: none)."""
    states = await matrix_states(stack, server_id)
    server, problems = derived_problems(stack, server_id, states)
    ids = [c.channel_id for c in server.channels]
    problems += [
        f"matrix: {room} is linked from two places" for room in set(ids) if ids.count(room) > 1
    ]
    problems += stray_member_problems(server, states, stack.bot_user_id)
    problems += await api_problems(stack, server, owner)
    problems += await member_view_problems(stack, states, members, server)
    return problems


def level_of(levels: Mapping[str, Any], user_id: str) -> int:
    """A user's power as Matrix reads a power-levels content."""
    return int(levels.get("users", {}).get(user_id, levels.get("users_default", 0)))


async def power_levels_of(stack: Stack, room: str) -> tuple[int, Any]:
    """A room's power levels, read as the bot: the state endpoint's answer, or on a stack whose
    homeserver may answer it from a stale cache (`Stack.STALE_STATE_READS`), the newest
    m.room.power_levels event of the room's timeline.

    Synapse split into workers can lose the invalidation of a room's cached current state
    between its processes (docs/DEPLOYMENT.md 8): the new event is in the room, where the
    bridge wrote it and every client syncs it, but the state endpoint keeps answering the old
    one until the room's next state change. What the bridge wrote is what is checked here."""
    if not stack.STALE_STATE_READS:
        return await as_bot(stack, "GET", f"/rooms/{room}/state/m.room.power_levels/")
    only = quote(json.dumps({"types": ["m.room.power_levels"]}))
    status, page = await as_bot(stack, "GET", f"/rooms/{room}/messages?dir=b&limit=1&filter={only}")
    if status != 200:
        return status, page
    events = page.get("chunk", [])
    if not events:
        return 404, {"errcode": "M_NOT_FOUND", "error": "no power levels in the timeline"}
    return 200, events[0].get("content", {})


async def power_everywhere(
    stack: Stack, rooms: Iterable[str], user_id: str, power: int, *, deadline_s: float = 60.0
) -> None:
    """Wait until `user_id` has `power` in every room (read as the bot); on a timeout, name the
    rooms that lag and what they hold."""
    rooms = list(rooms)
    lagging: dict[str, Any] = {}

    async def settled() -> bool:
        lagging.clear()
        for room in rooms:
            status, levels = await power_levels_of(stack, room)
            if status != 200 or level_of(levels, user_id) != power:
                lagging[room] = level_of(levels, user_id) if status == 200 else status
        return not lagging

    if not await eventually(settled, deadline_s=deadline_s, interval_s=0.2):
        raise AssertionError(
            f"{user_id} lacks power {power} in: "
            + ", ".join(f"{room} ({got})" for room, got in lagging.items())
        )


async def assert_converged(
    stack: Stack,
    server_id: str,
    owner: User,
    members: Iterable[User] = (),
    *,
    deadline_s: float = 60.0,
    context: str = "",
) -> None:
    """Wait until the server has no problem; fail listing what is still wrong at the deadline."""
    members = list(members)
    last: list[str] = []

    async def none() -> bool:
        nonlocal last
        last = await server_problems(stack, server_id, owner, members)
        return not last

    if not await eventually(none, deadline_s=deadline_s, interval_s=0.5):
        listed = "\n  ".join(last)
        raise AssertionError(f"{context}server {server_id} did not converge:\n  {listed}")
