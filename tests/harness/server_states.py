"""A whole Guilds server as raw room state, for the pure tests of derivation and convergence.

`build` makes the rooms as the bridge creates them (power levels derived from the roles), `kinds`
classifies them as the directory does, `context` assembles the model, and `apply` is what the
homeserver (and the module's auto-join) make of a plan's steps.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from bridge.engine.steps import AutoJoinInvite, Ban, CreateRoom, Kick, Leave, Plan, SendState, Unban
from bridge.plans.levels import wanted_levels
from bridge.plans.rooms import ServerRooms
from guilds.ids import RoomID, UserID
from guilds.layout import channel_allow, role_link
from guilds.model import BUILTIN_ROLES, CATEGORY_EVENT, Role
from guilds.rules import RoomKind
from guilds.snapshot import assemble
from guilds.vocabulary import (
    CHANNEL_EVENT,
    ROLE_EVENT,
    ROLE_ROOM_KEY,
    ROLE_ROOM_TYPE,
    SERVER_EVENT,
    ChannelKind,
)

SPACE, GENERAL, CHAT, SECRET, CATEGORY, NOOK = (
    RoomID(f"!{n}:hs") for n in ("space", "general", "chat", "secret", "category", "nook")
)
ADMIN_ROOM, MOD_ROOM, VIP_ROOM = RoomID("!admins:hs"), RoomID("!mods:hs"), RoomID("!vips:hs")
OWNER, MOD, VIP, PLAIN, OUTSIDER = (
    UserID(f"@{n}:hs") for n in ("owner", "mod", "vip", "plain", "outsider")
)
BOT = UserID("@bot:hs")
USERS = (OWNER, MOD, VIP, PLAIN, OUTSIDER)
VIA = "hs"

States = dict[RoomID, dict[tuple[str, str], dict[str, Any]]]


def joined_with_bot(*users: UserID) -> dict[tuple[str, str], dict[str, Any]]:
    return {("m.room.member", u): {"membership": "join"} for u in (*users, BOT)}


def create_content(version: str, room_type: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"room_version": version}
    if room_type is not None:
        content["type"] = room_type
    return content


def build(version: str = "12", *, older_vip_room: bool = False) -> States:
    """A whole server as the bridge makes it, its power levels derived from its roles.

    `older_vip_room`: the VIPs' role room as made before issue 17 (a room of its own type,
    unlinked from the space), which convergence replaces by a role space.
    """
    vip = Role("vip", "VIP", None, 10, 300, frozenset({"send_messages"}), VIP_ROOM)  # type: ignore[arg-type]
    rooms = {"admin": ADMIN_ROOM, "moderator": MOD_ROOM}
    roles = [
        Role(r.role_id, r.name, r.color, r.power, r.position, r.permissions, rooms.get(r.role_id))
        for r in BUILTIN_ROLES
    ] + [vip]
    space: dict[tuple[str, str], dict[str, Any]] = {
        ("m.room.create", ""): create_content(version, "m.space"),
        (SERVER_EVENT, ""): {"owner": OWNER, "default_channel": GENERAL},
        **{(ROLE_EVENT, r.role_id): r.content() for r in roles},
        **joined_with_bot(OWNER, MOD, VIP, PLAIN),
    }
    states: States = {SPACE: space}
    for order, child in enumerate((GENERAL, CHAT, SECRET, CATEGORY)):
        if child != SECRET:
            space[("m.space.child", child)] = {"via": [VIA], "order": f"{order:06d}"}

    def channel(room: RoomID, parent: RoomID, allow: list[RoomID] | None, *inside: UserID) -> None:
        states[room] = {
            ("m.room.create", ""): create_content(version),
            (CHANNEL_EVENT, ""): {"kind": "text", "server_id": SPACE, "default": room == GENERAL},
            ("m.room.name", ""): {"name": room},
            ("m.room.join_rules", ""): {
                "join_rule": "restricted",
                "allow": channel_allow(SPACE, allow),
            },
            ("m.space.parent", parent): {"via": [VIA], "canonical": True},
            **joined_with_bot(*inside),
        }

    channel(GENERAL, SPACE, None, OWNER, MOD, VIP, PLAIN)
    channel(CHAT, SPACE, None, OWNER, PLAIN)
    channel(SECRET, SPACE, [ADMIN_ROOM, VIP_ROOM], OWNER, VIP)
    channel(NOOK, CATEGORY, None, MOD)
    states[CATEGORY] = {
        ("m.room.create", ""): create_content(version, "m.space"),
        (CATEGORY_EVENT, ""): {"server_id": SPACE},
        ("m.room.join_rules", ""): {"join_rule": "restricted", "allow": channel_allow(SPACE, None)},
        ("m.space.parent", SPACE): {"via": [VIA], "canonical": True},
        ("m.space.child", NOOK): {"via": [VIA], "order": "000000"},
        **joined_with_bot(),
    }
    # The role rooms as made now (spaces linked from the server's space), or the VIPs' as
    # made before issue 17.
    for room, holders in ((ADMIN_ROOM, [OWNER]), (MOD_ROOM, [MOD]), (VIP_ROOM, [VIP])):
        if room == VIP_ROOM and older_vip_room:
            create = create_content(version, ROLE_ROOM_TYPE)
        else:
            create = {**create_content(version, "m.space"), ROLE_ROOM_KEY: True}
            space[("m.space.child", room)] = role_link(VIA)
        states[room] = {
            ("m.room.create", ""): create,
            **joined_with_bot(*holders),
        }
        if room in (ADMIN_ROOM, VIP_ROOM):
            # SECRET is private (gated on VIP): linked from its roles' rooms, not the space.
            states[room][("m.space.child", SECRET)] = {"via": [VIA], "order": "000002"}
    ctx = context(states)
    for room, kind, ck in ctx.kinds:
        states[room][("m.room.power_levels", "")] = wanted_levels(ctx.server, room, kind, ck, ctx)
    return states


def kinds(states: States) -> list[tuple[RoomID, RoomKind, ChannelKind | None]]:
    found: list[tuple[RoomID, RoomKind, ChannelKind | None]] = []
    for room, state in states.items():
        if room == SPACE:
            found.append((room, RoomKind.SPACE, None))
        elif (CHANNEL_EVENT, "") in state:
            default = state[(CHANNEL_EVENT, "")].get("default") is True
            kind = RoomKind.DEFAULT_CHANNEL if default else RoomKind.CHANNEL
            found.append((room, kind, ChannelKind.TEXT))
        elif (CATEGORY_EVENT, "") in state:
            found.append((room, RoomKind.CATEGORY, None))
        else:
            found.append((room, RoomKind.ROLE_ROOM, None))
    return found


def context(states: States, *, join_all: bool = False) -> ServerRooms:
    """The server's context; `join_all`: under the policy `join_channels: all`."""
    server = assemble(SPACE, states, bot=BOT)
    return ServerRooms(server, kinds(states), states, BOT, VIA, join_all_channels=join_all)


def apply(states: States, plan: Plan) -> States:
    """What the homeserver (and the module's auto-join) make of the plan's steps.

    A created room gets an id made from the step's name and the plan's contents (the same
    plan makes the same room), its creation content and initial state, and the bot inside.
    """
    after = copy.deepcopy(states)
    results: dict[str, dict[str, Any]] = {}
    for _, _, planned in plan.steps():
        step = planned.resolved(results, plan)
        if isinstance(step, CreateRoom):
            digest = hashlib.sha256(json.dumps(plan.to_json(), sort_keys=True).encode())
            room = RoomID(f"!{step.name}_{digest.hexdigest()[:8]}:hs")
            body = step.body
            version = str(body.get("room_version", "12"))
            created = {**create_content(version), **body.get("creation_content", {})}
            after[room] = {("m.room.create", ""): created, **joined_with_bot()}
            for event in body.get("initial_state", []):
                after[room][(event["type"], event.get("state_key", ""))] = dict(event["content"])
            if "power_level_content_override" in body:
                levels = dict(body["power_level_content_override"])
                after[room][("m.room.power_levels", "")] = levels
            results[step.name] = {"room_id": room}
            continue
        room = RoomID(str(getattr(step, "room", "")))
        if isinstance(step, SendState):
            after[room][(step.type, str(step.state_key))] = dict(step.content)
            results[step.name] = {"event_id": f"${step.name}"}
            continue
        if isinstance(step, Leave):
            after[room][("m.room.member", BOT)] = {"membership": "leave"}
            continue
        assert isinstance(step, Ban | Unban | Kick | AutoJoinInvite), step
        membership = {Ban: "ban", Unban: "leave", Kick: "leave", AutoJoinInvite: "join"}[type(step)]
        after[room][("m.room.member", str(step.user))] = {"membership": membership}
    return after
