"""Role rooms of the older shape are replaced by role spaces (docs/DESIGN.md, "Role rooms of the
older shape"; issue 17).

A server is made with the bridge, then, with the bridge stopped, one role's room is remade the
way Guilds made role rooms before issue 17: a room of the type `chat.guilds.role` (not a
space), unlinked from the server's space, holding the role's holders, named by the role's state,
the gated channel's `allow` and the private channel's link. Started again, the bridge's
convergence replaces it: a role space, the holders moved into it, the gate and the links
pointing at it, the older room tombstoned and left by the bot. Killed with SIGKILL halfway, it
ends the same. Afterwards the invariants hold (API view = Matrix state = roles), a holder's
restricted join succeeds and a member without the role is refused. Before the move and after
it, a member without the role reads the role's rooms named only where every member reads the
role itself, never their names, and nothing of the private channel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import nio
import pytest

from guilds.ids import RoomID
from guilds.layout import role_room_body
from guilds.model import parse_role
from guilds.vocabulary import ROLE_EVENT, ROLE_ROOM_KEY, ROLE_ROOM_TYPE
from tests.harness.api import (
    Api,
    as_bot,
    bot_invite,
    create_server,
    eventually,
    grant,
    join_as,
    join_server,
    role_room,
)
from tests.harness.invariants import assert_converged
from tests.harness.jssdk import run_scenario
from tests.harness.readable import everything_readable, mentions
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

pytestmark = ON_SQLITE

SPACE_CHILD = "m.space.child"
JOIN_RULES = "m.room.join_rules"
# The name Guilds gives the role's room (guilds.layout.role_room_body), old shape and new.
ROLE_ROOM_NAME = "Crew (role)"


async def state(stack: Stack, room: str, event_type: str, key: str = "") -> Any:
    """One state event's content as the bot reads it; None when absent or unreadable."""
    status, content = await as_bot(
        stack, "GET", f"/rooms/{quote(room)}/state/{event_type}/{quote(key)}"
    )
    return content if status == 200 else None


async def put_state(stack: Stack, room: str, event_type: str, key: str, content: Any) -> None:
    path = f"/rooms/{quote(room)}/state/{event_type}/{quote(key)}"
    status, answer = await as_bot(stack, "PUT", path, content)
    assert status == 200, answer


async def member_event_id(stack: Stack, room: str, user: str) -> str | None:
    status, events = await as_bot(stack, "GET", f"/rooms/{quote(room)}/state")
    assert status == 200, events
    for event in events:
        if event["type"] == "m.room.member" and event["state_key"] == user:
            return str(event["event_id"]) if event["content"]["membership"] == "join" else None
    return None


async def remake_the_old_way(
    stack: Stack, sid: str, role_id: str, holders: list[User], gated: str
) -> tuple[str, str]:
    """With the bridge stopped, give the role a room of the older shape in place of its role
    space; return (older room, the role space it replaced)."""
    space_room = await role_room(stack, sid, role_id)
    content = await state(stack, sid, ROLE_EVENT, role_id)
    levels = await state(stack, space_room, "m.room.power_levels")
    version = (await state(stack, space_room, "m.room.create"))["room_version"]
    role = parse_role(role_id, content)
    body = role_room_body(server_id=RoomID(sid), role=role, power_levels=levels)
    # As role_room_body made it before issue 17: a room of its own type, not a space.
    body["creation_content"] = {"type": ROLE_ROOM_TYPE, "server_id": sid, "role_id": role_id}
    body["room_version"] = version
    status, created = await as_bot(stack, "POST", "/createRoom", body)
    assert status == 200, created
    old = str(created["room_id"])
    for holder in holders:
        # The bot invites, the holder's own client joins (the module accepts an auto-join
        # invite only when the bridge asks it to, and the bridge is stopped).
        await bot_invite(stack, old, holder.user_id)
        assert isinstance(await join_as(stack, holder, old), nio.JoinResponse)

    async def all_joined() -> bool:
        for holder in holders:
            if (await state(stack, old, "m.room.member", holder.user_id) or {}).get(
                "membership"
            ) != "join":
                return False
        return True

    assert await eventually(all_joined, what="the holders to join the older room")
    # The role, the gate and the private channel's link name the older room; the space does
    # not link it (older role rooms were never linked) nor the role space any more.
    await put_state(stack, sid, ROLE_EVENT, role_id, {**content, "room_id": old})
    rules = await state(stack, gated, JOIN_RULES)
    rules["allow"] = [
        {**entry, "room_id": old} if entry["room_id"] == space_room else entry
        for entry in rules["allow"]
    ]
    await put_state(stack, gated, JOIN_RULES, "", rules)
    link = await state(stack, space_room, SPACE_CHILD, gated)
    await put_state(stack, old, SPACE_CHILD, gated, link)
    await put_state(stack, space_room, SPACE_CHILD, gated, {})
    await put_state(stack, sid, SPACE_CHILD, space_room, {})
    for holder in holders:
        status, answer = await as_bot(
            stack, "POST", f"/rooms/{quote(space_room)}/kick", {"user_id": holder.user_id}
        )
        assert status == 200, answer
    status, answer = await as_bot(stack, "POST", f"/rooms/{quote(space_room)}/leave", {})
    assert status == 200, answer
    return old, space_room


def leave_out_events(value: Any, leave_out: Callable[[dict[str, Any]], bool]) -> Any:
    """`value` (JSON) without the state events, whole or stripped, that `leave_out` picks."""
    if isinstance(value, dict):
        if isinstance(value.get("type"), str) and "state_key" in value and leave_out(value):
            return None
        return {key: leave_out_events(inner, leave_out) for key, inner in value.items()}
    if isinstance(value, list):
        return [leave_out_events(inner, leave_out) for inner in value]
    return value


async def reads_no_role_room(
    stack: Stack, member: User, sid: str, rooms: list[str], role_rooms: list[str], private: str
) -> None:
    """What `member`, who holds no role, reads (a full /sync; the state, timeline and hierarchy
    of `rooms`, the role's rooms and the private channel) names the role's rooms only where
    every member reads the role itself: the role's state in the server's space and the space's
    link to its room (docs/CLIENTS.md, "Role rooms"). Never their name, nothing from inside them,
    and nothing of the private channel they gate."""
    seen = await everything_readable(stack, member, [*rooms, *role_rooms, private])
    # The role's state in the space does name its room for her: what is left aside below.
    assert mentions(seen[f"state {sid}"], tuple(role_rooms)), seen[f"state {sid}"]
    for room in [*role_rooms, private]:
        inside = {what: seen[f"{what} {room}"] for what in ("state", "messages", "hierarchy")}
        assert all(isinstance(answer, int) for answer in inside.values()), (room, inside)
    leaks = {where: mentions(value, (ROLE_ROOM_NAME, private)) for where, value in seen.items()}
    assert not any(leaks.values()), leaks

    def names_the_role(event: dict[str, Any]) -> bool:
        return event["type"] == ROLE_EVENT or (
            event["type"] == SPACE_CHILD and event["state_key"] in role_rooms
        )

    leaks = {
        where: mentions(leave_out_events(value, names_the_role), tuple(role_rooms))
        for where, value in seen.items()
    }
    assert not any(leaks.values()), leaks


@pytest.mark.parametrize("killed", [False, True], ids=["whole", "killed-midway"])
async def test_a_role_room_of_the_older_shape_becomes_a_role_space(
    stack: Stack, alice: User, killed: bool
) -> None:
    server = await create_server(stack, alice, "Old shape")
    sid = server["server_id"]
    api = Api(stack, alice)
    status, role = await api.call(
        "POST", f"/servers/{sid}/roles", {"name": "Crew", "power": 10, "permissions": []}
    )
    assert status == 201, role
    crew = str(role["role_id"])
    status, channel = await api.call(
        "POST",
        f"/servers/{sid}/channels",
        {"name": "plans", "kind": "text", "allowed_roles": [crew]},
    )
    assert status == 201, channel
    plans = str(channel["channel_id"])
    users = {}
    for name in ("carol", "dave", "erin"):
        users[name] = await stack.register_user(f"{name}m{killed:d}")
        await join_server(stack, sid, users[name])
    carol, dave, erin = users["carol"], users["dave"], users["erin"]
    await grant(stack, sid, alice, dave, crew)
    await assert_converged(stack, sid, alice, [carol, dave, erin], context="as made: ")
    assert isinstance(await join_as(stack, dave, plans), nio.JoinResponse)
    in_plans = await member_event_id(stack, plans, dave.user_id)
    assert in_plans is not None
    public = [sid, server["default_channel_id"]]

    stack.stop_guilds()
    try:
        old, replaced = await remake_the_old_way(stack, sid, crew, [dave], plans)
        assert (await state(stack, old, "m.room.create"))["type"] == ROLE_ROOM_TYPE
        # Carol, without the role, before the move.
        await reads_no_role_room(stack, carol, sid, public, [old, replaced], plans)
    finally:
        if killed:
            stack.start_guilds()

            async def halfway() -> bool:
                role_state = await state(stack, sid, ROLE_EVENT, crew) or {}
                return role_state.get("previous_room_id") == old

            # The kill must land while the older room is still in use.
            await stack.kill_guilds_when(halfway)
        stack.start_guilds()

    async def moved() -> bool:
        role_state = await state(stack, sid, ROLE_EVENT, crew) or {}
        return (
            role_state.get("room_id") not in (None, old)
            and "previous_room_id" not in role_state
            and (await state(stack, plans, JOIN_RULES) or {}).get("allow") is not None
            and old not in {a["room_id"] for a in (await state(stack, plans, JOIN_RULES))["allow"]}
        )

    assert await eventually(moved, deadline_s=90, interval_s=0.5, what="the role room to move")
    await assert_converged(stack, sid, alice, [carol, dave, erin], context="moved: ")

    new = await role_room(stack, sid, crew)
    assert new not in (old, replaced)
    create = await state(stack, new, "m.room.create")
    assert create["type"] == "m.space" and create[ROLE_ROOM_KEY] is True, create
    assert create["predecessor"]["room_id"] == old, create
    assert (await state(stack, sid, SPACE_CHILD, new) or {}).get("via"), "the space links it"
    # The gate and the private channel's link name the new room, not the older one.
    allow = {a["room_id"] for a in (await state(stack, plans, JOIN_RULES))["allow"]}
    assert allow == {await role_room(stack, sid, "admin"), new}, allow
    assert (await state(stack, new, SPACE_CHILD, plans) or {}).get("via")
    # Dave holds the role through the new room, and never left the channel meanwhile.
    assert (await state(stack, new, "m.room.member", dave.user_id))["membership"] == "join"
    assert await member_event_id(stack, plans, dave.user_id) == in_plans
    status, view = await Api(stack, dave).call("GET", f"/servers/{sid}")
    assert status == 200 and crew in view["me"]["roles"], view
    # The older room: emptied of holders, closed and tombstoned, and left by the bot last
    # (what the bot reads of it is the state at its leave).
    status, joined = await as_bot(stack, "GET", "/joined_rooms")
    assert status == 200 and old not in joined["joined_rooms"], "the bot is still in it"
    status, events = await as_bot(stack, "GET", f"/rooms/{quote(old)}/state")
    assert status == 200, events
    at_leave = {(e["type"], e["state_key"]): e["content"] for e in events}
    assert at_leave[("m.room.tombstone", "")]["replacement_room"] == new
    assert at_leave[(JOIN_RULES, "")]["join_rule"] == "invite"
    assert at_leave[("m.room.member", dave.user_id)]["membership"] == "leave"
    assert not at_leave.get((SPACE_CHILD, plans), {}).get("via"), "its links were moved"

    # Restricted joins: a holder granted after the move enters, a member without the role not.
    await grant(stack, sid, alice, erin, crew)
    assert isinstance(await join_as(stack, erin, plans), nio.JoinResponse)
    assert isinstance(await join_as(stack, carol, plans), nio.JoinError)
    # Other clients' room lists (Element's, Cinny's Home) show neither role room to Dave.
    lists = (await run_scenario("room_list", stack, dave, room_ids=[sid, plans])).result
    for view_name in ("element", "cinny_home"):
        shown = {row["room_id"] for row in lists[view_name]}
        assert not shown & {old, new}, (view_name, lists[view_name])
    await assert_converged(stack, sid, alice, [carol, dave, erin], context="after: ")
    # Carol, without the role, after the move: the older room, the space it replaced and the new
    # one alike.
    await reads_no_role_room(stack, carol, sid, public, [old, replaced, new], plans)
