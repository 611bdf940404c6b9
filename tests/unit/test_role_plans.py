"""The plans of role and member operations, as pure functions of the model and room state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bridge.engine.steps import AutoJoinInvite, Ban, Kick, Leave, SendState, Unban
from bridge.plans.roles import (
    ban_plan,
    delete_role_plan,
    free_position,
    grant_plan,
    kick_plan,
    regated_allow,
    revoke_plan,
    role_slug,
    unban_plan,
    with_assignment,
    without_member,
)
from bridge.plans.rooms import ServerRooms
from guilds.ids import RoomID, UserID
from guilds.model import (
    BUILTIN_ROLES,
    ROLE_ID_RE,
    Channel,
    Permission,
    Role,
    Server,
    ServerState,
)
from guilds.rules import RoomKind
from guilds.vocabulary import ROLE_EVENT, ChannelKind

SPACE, GENERAL, GATED = RoomID("!space"), RoomID("!general"), RoomID("!gated")
ADMIN_ROOM, MOD_ROOM, VIP_ROOM = RoomID("!admins"), RoomID("!mods"), RoomID("!vips")
OWNER, MOD, VIP, PLAIN = UserID("@o:x"), UserID("@m:x"), UserID("@v:x"), UserID("@p:x")
BOT = UserID("@bot:x")
VIP_ROLE = Role("vip", "VIP", None, 10, 300, frozenset({Permission.SEND_MESSAGES}), VIP_ROOM)


def server() -> Server:
    rooms = {"admin": ADMIN_ROOM, "moderator": MOD_ROOM}
    roles = tuple(replace(r, room_id=rooms.get(r.role_id)) for r in BUILTIN_ROLES) + (VIP_ROLE,)
    return Server(
        server_id=SPACE,
        name="s",
        topic="",
        icon=None,
        state=ServerState(OWNER, GENERAL),
        roles=tuple(sorted(roles, key=lambda r: -r.position)),
        channels=(
            Channel(GENERAL, "general", ChannelKind.TEXT, "", None, "000000", None, True),
            Channel(GATED, "vip", ChannelKind.TEXT, "", None, "000001", ("vip",)),
        ),
        assignments={MOD: frozenset({"moderator"}), VIP: frozenset({"vip"})},
        members=frozenset({OWNER, MOD, VIP, PLAIN}),
    )


ROOMS = [
    (SPACE, RoomKind.SPACE, None),
    (GENERAL, RoomKind.DEFAULT_CHANNEL, ChannelKind.TEXT),
    (GATED, RoomKind.CHANNEL, ChannelKind.TEXT),
    (ADMIN_ROOM, RoomKind.ROLE_ROOM, None),
    (MOD_ROOM, RoomKind.ROLE_ROOM, None),
    (VIP_ROOM, RoomKind.ROLE_ROOM, None),
]


def states(*, vip_in_gated: bool = True) -> dict[RoomID, dict[tuple[str, str], Any]]:
    def members(*users: UserID) -> dict[tuple[str, str], Any]:
        return {("m.room.member", u): {"membership": "join"} for u in (*users, BOT)}

    gated = members(OWNER, VIP) if vip_in_gated else members(OWNER)
    gated[("m.room.join_rules", "")] = {
        "join_rule": "restricted",
        "allow": [
            {"type": "m.room_membership", "room_id": ADMIN_ROOM},
            {"type": "m.room_membership", "room_id": VIP_ROOM},
        ],
    }
    return {
        SPACE: members(OWNER, MOD, VIP, PLAIN),
        GENERAL: members(OWNER, MOD, VIP, PLAIN),
        GATED: gated,
        ADMIN_ROOM: members(OWNER),
        MOD_ROOM: members(MOD),
        VIP_ROOM: members(VIP),
    }


def rooms(held: dict[RoomID, dict[tuple[str, str], Any]] | None = None) -> ServerRooms:
    """The server's rooms as the directory would hold them."""
    return ServerRooms(server(), ROOMS, held if held is not None else states(), BOT, "x")


@pytest.mark.parametrize(
    ("name", "taken", "slug"),
    [
        ("Voice Mods", [], "voice-mods"),
        ("Voice Mods", ["voice-mods"], "voice-mods-2"),
        ("Voice Mods", ["voice-mods", "voice-mods-2"], "voice-mods-3"),
        ("  ~~Admin!! ", ["admin"], "admin-2"),
        ("🎉🎉", [], "role"),
        ("x" * 40, ["x" * 32], "x" * 30 + "-2"),
        ("Ünïcode Ñame", [], "n-code-ame"),
    ],
)
def test_role_slugs_are_valid_and_unique(name: str, taken: list[str], slug: str) -> None:
    assert role_slug(name, taken) == slug
    assert ROLE_ID_RE.match(slug)


def test_new_roles_go_just_below_their_creator() -> None:
    s = server()
    # New roles start at the bottom, just above member, whoever creates them.
    assert free_position(s, OWNER) == 1
    assert free_position(s, MOD) == 1
    taken = replace(s, roles=(*s.roles, replace(VIP_ROLE, role_id="x", position=1)))
    assert free_position(taken, MOD) == 2
    # Nothing free below the actor: positions 1..499 all taken under a moderator.
    full = replace(
        s,
        roles=(*s.roles, *(replace(VIP_ROLE, role_id=f"r{p}", position=p) for p in range(1, 500))),
    )
    assert free_position(full, MOD) is None
    assert free_position(s, PLAIN) is None  # nothing lies between member and member


def test_regated_allow_keeps_other_entries_and_admins() -> None:
    allow = {"allow": [{"type": "m.room_membership", "room_id": r} for r in (ADMIN_ROOM, VIP_ROOM)]}
    assert regated_allow(allow, VIP_ROOM, ADMIN_ROOM) == [
        {"type": "m.room_membership", "room_id": ADMIN_ROOM}
    ]
    only = {"allow": [{"type": "m.room_membership", "room_id": VIP_ROOM}]}
    assert regated_allow(only, VIP_ROOM, ADMIN_ROOM) == [
        {"type": "m.room_membership", "room_id": ADMIN_ROOM}
    ]
    assert regated_allow(None, VIP_ROOM, ADMIN_ROOM) == [
        {"type": "m.room_membership", "room_id": ADMIN_ROOM}
    ]


def test_delete_role_plan_regates_removes_and_leaves() -> None:
    plan = delete_role_plan(rooms(), VIP_ROLE)
    assert plan is not None
    plan.validate()
    first, second, third = plan.stages
    by_name = {s.name: s for s in first}
    assert by_name["role_state"] == SendState("role_state", SPACE, ROLE_EVENT, "vip", {})
    regate = next(s for s in first if s.name.startswith("regate_"))
    assert isinstance(regate, SendState) and regate.room == GATED
    assert [e["room_id"] for e in regate.content["allow"]] == [ADMIN_ROOM]
    # VIP held power 10: the power levels of every room lose it, the deleted room aside.
    pl_rooms = {
        s.room for s in first if isinstance(s, SendState) and s.type == "m.room.power_levels"
    }
    assert VIP_ROOM not in pl_rooms and {SPACE, GENERAL, GATED} <= pl_rooms
    kicks = {(s.room, s.user) for s in second if isinstance(s, Kick)}
    assert kicks == {(GATED, VIP), (VIP_ROOM, VIP)}
    assert third == (Leave("role_room_leave", VIP_ROOM),)
    # A role room of the older shape is not linked from the space: nothing to unlink.
    assert "role_unlink" not in by_name


def test_delete_role_plan_unlinks_a_role_room_the_space_links() -> None:
    held = states()
    held[SPACE][("m.space.child", VIP_ROOM)] = {"via": ["hs"], "suggested": False}
    plan = delete_role_plan(rooms(held), VIP_ROLE)
    assert plan is not None
    by_name = {s.name: s for s in plan.stages[0]}
    assert by_name["role_unlink"] == SendState("role_unlink", SPACE, "m.space.child", VIP_ROOM, {})


def test_grant_and_revoke_plans() -> None:
    s = server()
    mod = s.role("moderator")
    assert mod is not None
    plan = grant_plan(
        with_assignment(s, PLAIN, "moderator", held=True),
        PLAIN,
        mod,
        rooms=rooms(),
    )
    plan.validate()
    assert plan.stages[0] == (AutoJoinInvite("invite", MOD_ROOM, PLAIN),)
    levels = [st for st in plan.stages[1] if isinstance(st, SendState)]
    assert levels and all(st.content["users"].get(PLAIN) == 50 for st in levels)

    plan = revoke_plan(
        with_assignment(s, VIP, "vip", held=False),
        VIP,
        VIP_ROLE,
        rooms=rooms(states(vip_in_gated=False)),
    )
    plan.validate()
    assert plan.stages[0] == (Kick("kick", VIP_ROOM, VIP, "Role removed"),)
    # The gated channel is left even if the directory has not seen them join it yet.
    assert any(isinstance(st, Kick) and st.room == GATED for st in plan.stages[1])


def test_kick_ban_and_unban_plans_reach_every_room() -> None:
    s = server()
    plan = kick_plan(without_member(s, MOD), MOD, "bye", rooms=rooms())
    plan.validate()
    assert plan.stages[0] == (Kick("kick_space", SPACE, MOD, "bye"),)
    assert {st.room for st in plan.stages[1] if isinstance(st, Kick)} == {
        r for r, _, _ in ROOMS
    } - {SPACE}
    # MOD's 50 goes from every room's power levels.
    assert all(MOD not in st.content["users"] for st in plan.stages[2] if isinstance(st, SendState))
    plan = ban_plan(without_member(s, VIP), VIP, None, rooms=rooms())
    bans = [st for stage in plan.stages[:2] for st in stage]
    assert all(isinstance(st, Ban) for st in bans)
    assert {st.room for st in bans if isinstance(st, Ban)} == {r for r, _, _ in ROOMS}
    held = states()
    held[SPACE][("m.room.member", VIP)] = {"membership": "ban"}
    held[GENERAL][("m.room.member", VIP)] = {"membership": "ban"}
    plan = unban_plan(rooms(held), VIP)
    assert {st.room for st in plan.stages[0] if isinstance(st, Unban)} == {SPACE, GENERAL}
