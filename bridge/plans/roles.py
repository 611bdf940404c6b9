"""Plans of role and member operations: pure functions from the model to steps, no I/O.

The services (bridge/services/roles.py, bridge/services/members.py) check a request, build the
model as it will
be afterwards, and ask these functions which rooms to change; the journal carries the plan out
(bridge/engine/journal.py). Each takes the server's rooms as they are (`ServerRooms`,
bridge/plans/rooms.py) and, when the operation changes the model, that model as it will be
(`after`). Power levels are always re-derived from the model afterwards
(`bridge.plans.levels.levels_plan`, which also knows the creators of rooms adopted from
other clients), so every plan ends with the rooms matching the roles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from bridge.engine.steps import (
    AutoJoinInvite,
    Ban,
    CreateRoom,
    Kick,
    Leave,
    Plan,
    Ref,
    SendState,
    Step,
    Unban,
)
from bridge.plans.levels import levels_plan
from bridge.plans.rooms import ServerRooms
from guilds.ids import RoomID, UserID, split_user_id
from guilds.layout import role_link, role_room_body
from guilds.model import (
    ADMIN_POSITION,
    MEMBER_POSITION,
    BuiltinRole,
    Channel,
    Role,
    Server,
)
from guilds.permissions import highest_position, may_enter
from guilds.rules import SPACE_CHILD
from guilds.vocabulary import ROLE_EVENT

ROLE_ID_MAX: Final = 32
ROLE_REMOVED_REASON: Final = "Role removed"
ROLE_DELETED_REASON: Final = "The role was deleted"
GATE_REASON: Final = "You no longer have a role that may enter this channel"
JOIN_RULES: Final = "m.room.join_rules"

# -- model changes -------------------------------------------------------------------------------


def with_role(server: Server, role: Role) -> Server:
    """The server with `role` added, or replacing the role of the same id."""
    roles = [r for r in server.roles if r.role_id != role.role_id] + [role]
    return replace(server, roles=tuple(sorted(roles, key=lambda r: (-r.position, r.role_id))))


def without_role(server: Server, role_id: str) -> Server:
    """The server once a role is deleted: gone from the roles, the holders and the gates."""
    assignments = {user: held - {role_id} for user, held in server.assignments.items()}
    channels = tuple(
        replace(c, allowed_roles=tuple(r for r in c.allowed_roles if r != role_id))
        if c.allowed_roles is not None
        else c
        for c in server.channels
    )
    return replace(
        server,
        roles=tuple(r for r in server.roles if r.role_id != role_id),
        assignments=assignments,
        channels=channels,
    )


def with_assignment(server: Server, user: UserID, role_id: str, *, held: bool) -> Server:
    """The server once `user` holds (or no longer holds) the role."""
    current = server.assignments.get(user, frozenset())
    changed = current | {role_id} if held else current - {role_id}
    return replace(server, assignments={**server.assignments, user: changed})


def without_member(server: Server, user: UserID) -> Server:
    """The server once `user` was kicked or banned: no longer a member, holding no role."""
    assignments = {u: held for u, held in server.assignments.items() if u != user}
    return replace(server, members=server.members - {user}, assignments=assignments)


# -- naming and placing a new role ---------------------------------------------------------------


def role_slug(name: str, taken: Iterable[str]) -> str:
    """A role id derived from the name (`Voice Mods!` → `voice-mods`), unique among `taken`.

    Always matches `guilds.model.ROLE_ID_RE`: lower-case ASCII letters, digits and '-', at most
    32 characters; a name with none of those (say, all emoji) becomes `role`.
    """
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:ROLE_ID_MAX].strip("-") or "role"
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: ROLE_ID_MAX - len(suffix)].rstrip("-") + suffix
        if candidate not in used:
            return candidate
        n += 1


def free_position(server: Server, actor: UserID) -> int | None:
    """The lowest free position above `member` and below the actor's highest role, or None.

    As in Discord, a new role starts at the bottom, just above everyone: a cosmetic role does
    not outrank the moderators who must still be able to act on its holders; it is moved up
    deliberately (PATCH position). Positions are unique so "at or above" is always decided.
    """
    taken = {r.position for r in server.roles}
    ceiling = min(highest_position(server, actor), ADMIN_POSITION)
    for position in range(MEMBER_POSITION + 1, ceiling):
        if position not in taken:
            return position
    return None


# -- power levels --------------------------------------------------------------------------------


def power_level_steps(after: Server, rooms: ServerRooms) -> list[Step]:
    """`m.room.power_levels` writes for every room whose content differs from `after`'s."""
    plan = levels_plan(after, rooms)
    return [step for stage in plan.stages for step in stage]


def plan_of(*stages: list[Step]) -> Plan | None:
    """A plan of the stages that have something to do; None when none has."""
    kept = [stage for stage in stages if stage]
    return Plan.of(*kept) if kept else None


# -- roles ---------------------------------------------------------------------------------------


def create_role_plan(
    after: Server,
    role: Role,
    *,
    rooms: ServerRooms,
    room_power_levels: dict[str, Any],
) -> Plan:
    """The role room, then the role's state in the space naming it, the space's link to it,
    and the power levels.

    A new role holds nobody, but its permissions may lower a threshold (a role with
    kick_members at power 20 lets power 20 kick), so every room is checked. The link names
    the bot's homeserver in `via`: the bot created the room and is always in it.
    """
    room = CreateRoom(
        name="role_room",
        body=role_room_body(server_id=after.server_id, role=role, power_levels=room_power_levels),
    )
    content = role.content()
    content["room_id"] = Ref("role_room", "room_id")
    state = SendState(
        name="role_state",
        room=after.server_id,
        type=ROLE_EVENT,
        state_key=role.role_id,
        content=content,
    )
    link = SendState(
        name="role_link",
        room=after.server_id,
        type=SPACE_CHILD,
        state_key=Ref("role_room", "room_id"),
        content=role_link(split_user_id(rooms.bot)[1]),
    )
    return Plan.of([room], [state, link, *power_level_steps(after, rooms)])


def edit_role_plan(
    after: Server,
    role: Role,
    *,
    renamed: bool,
    rooms: ServerRooms,
) -> Plan | None:
    """The role's new state, its room's new name, and the power levels it changes."""
    steps: list[Step] = [
        SendState(
            name="role_state",
            room=after.server_id,
            type=ROLE_EVENT,
            state_key=role.role_id,
            content=role.content(),
        )
    ]
    if renamed and role.room_id is not None:
        steps.append(
            SendState(
                name="role_room_name",
                room=role.room_id,
                type="m.room.name",
                state_key="",
                content={"name": f"{role.name} (role)"},
            )
        )
    return plan_of(steps + power_level_steps(after, rooms))


def regated_allow(
    content: Mapping[str, Any] | None,
    removed: RoomID | Iterable[RoomID],
    admin_room: RoomID | None,
) -> list[dict[str, Any]]:
    """A gated channel's `allow` without the deleted role's room (admins always remain).

    The other entries are kept as they are, so a gate written by another client survives; a
    channel the deleted role alone opened stays closed to all but admins, never opens to all.
    """
    allow = (content or {}).get("allow")
    entries = [e for e in allow if isinstance(e, dict)] if isinstance(allow, list) else []
    gone = {removed} if isinstance(removed, str) else set(removed)
    kept = [e for e in entries if e.get("room_id") not in gone]
    if admin_room is not None and not any(e.get("room_id") == admin_room for e in kept):
        kept.insert(0, {"type": "m.room_membership", "room_id": admin_room})
    return kept


def delete_role_plan(rooms: ServerRooms, role: Role) -> Plan | None:
    """Delete a role everywhere, in three stages:

    1. the role's state in the space is emptied, each channel it gated is re-gated without its
       room, and power levels follow the roles without it;
    2. its holders are removed from the role room, and members who may no longer enter a
       re-gated channel are removed from it;
    3. the role room is closed to joins and the bot leaves it.

    The space's link to the role room goes in the first stage.
    """
    before = rooms.server
    bot = rooms.bot
    after = without_role(before, role.role_id)
    admin = before.role(BuiltinRole.ADMIN.value)
    admin_room = admin.room_id if admin is not None else None
    first: list[Step] = [
        SendState(
            name="role_state",
            room=before.server_id,
            type=ROLE_EVENT,
            state_key=role.role_id,
            content={},
        )
    ]
    second: list[Step] = []
    for i, channel in enumerate(before.channels):
        if channel.allowed_roles is None or role.role_id not in channel.allowed_roles:
            continue
        rules = rooms.state(channel.channel_id).get((JOIN_RULES, ""))
        first.append(
            SendState(
                name=f"regate_{i}",
                room=channel.channel_id,
                type=JOIN_RULES,
                state_key="",
                content={
                    **(rules or {}),
                    "join_rule": "restricted",
                    "allow": regated_allow(rules, role.room_ids, admin_room),
                },
            )
        )
        regated = next(c for c in after.channels if c.channel_id == channel.channel_id)
        for j, user in enumerate(outsiders(after, regated, rooms)):
            second.append(
                Kick(
                    name=f"gate_kick_{i}_{j}",
                    room=channel.channel_id,
                    user=user,
                    reason=GATE_REASON,
                )
            )
    live = rooms
    for room in role.room_ids:
        live = live.without(room)
    first += power_level_steps(after, live)
    third: list[Step] = []
    # The role's room, and the older one while the role was moving out of it.
    for k, room in enumerate(role.room_ids):
        for j, user in enumerate(sorted(rooms.joined_or_invited(room) - {bot})):
            second.append(
                Kick(
                    name=f"holder_kick_{k}_{j}" if k else f"holder_kick_{j}",
                    room=room,
                    user=user,
                    reason=ROLE_DELETED_REASON,
                )
            )
        if k:
            first.append(_close(f"previous_room_close_{k}", room))
            third.append(Leave(name=f"previous_room_leave_{k}", room=room))
    if role.room_id is not None:
        link = rooms.state(before.server_id).get((SPACE_CHILD, role.room_id))
        if link is not None and link.get("via"):
            first.append(
                SendState(
                    name="role_unlink",
                    room=before.server_id,
                    type=SPACE_CHILD,
                    state_key=role.room_id,
                    content={},
                )
            )
        first.append(_close("role_room_close", role.room_id))
        third.append(Leave(name="role_room_leave", room=role.room_id))
    return plan_of(first, second, third)


def _close(name: str, room: RoomID) -> SendState:
    """A role room closed to joins (before the bot leaves it)."""
    return SendState(
        name=name, room=room, type=JOIN_RULES, state_key="", content={"join_rule": "invite"}
    )


def outsiders(server: Server, channel: Channel, rooms: ServerRooms) -> list[UserID]:
    """Who is in the channel (or invited to it) but may not enter it under `server`."""
    inside = rooms.joined_or_invited(channel.channel_id) - {rooms.bot}
    return sorted(u for u in inside if not may_enter(server, u, channel))


# -- members -------------------------------------------------------------------------------------


def grant_plan(
    after: Server,
    user: UserID,
    role: Role,
    *,
    rooms: ServerRooms,
) -> Plan:
    """Invite the user to the role room (the module joins them), then the power levels."""
    assert role.room_id is not None
    invite = AutoJoinInvite(name="invite", room=role.room_id, user=user)
    return Plan.of(*[s for s in ([invite], power_level_steps(after, rooms)) if s])


def revoke_plan(
    after: Server,
    user: UserID,
    role: Role,
    *,
    rooms: ServerRooms,
) -> Plan:
    """Remove the user from the role room, then the power levels and the channels it opened.

    The module also makes a local user leave those channels; the bot's kicks make the effect
    independent of it (a kick of someone already gone is done, bridge/engine/steps.py).
    """
    assert role.room_id is not None
    # Both rooms while the role moves to a new one (docs/DESIGN.md, "Role rooms of the older
    # shape"): a holder not yet moved holds it through the older room.
    kicks: list[Step] = [
        Kick(name=f"kick_{i}" if i else "kick", room=room, user=user, reason=ROLE_REMOVED_REASON)
        for i, room in enumerate(role.room_ids)
    ]
    gates: list[Step] = []
    for i, channel in enumerate(after.channels):
        if channel.allowed_roles is None:
            continue
        # Whether the directory has them inside or not: a join may still be on its way.
        if not may_enter(after, user, channel):
            gates.append(
                Kick(name=f"gate_kick_{i}", room=channel.channel_id, user=user, reason=GATE_REASON)
            )
    second = gates + power_level_steps(after, rooms)
    return Plan.of(*[s for s in (kicks, second) if s])


def _cascade_plan(
    action: type[Kick] | type[Ban],
    after: Server,
    user: UserID,
    reason: str | None,
    rooms: ServerRooms,
) -> Plan:
    """`action` in the space first (so no restricted channel lets them back), then in every
    channel, category and role room, then the power levels without them.

    Every room, not only those the directory has them in: a join made a moment ago may not
    have reached the bridge yet, and a kick (or ban) already in effect is done at once.
    """
    server_id = after.server_id
    prefix = action.kind
    others: list[Step] = [
        action(name=f"{prefix}_{i}", room=room, user=user, reason=reason)
        for i, (room, _, _) in enumerate(rooms.kinds)
        if room != server_id
    ]
    space: list[Step] = [action(name=f"{prefix}_space", room=server_id, user=user, reason=reason)]
    levels = power_level_steps(after, rooms)
    return Plan.of(*[s for s in (space, others, levels) if s])


def kick_plan(
    after: Server,
    user: UserID,
    reason: str | None,
    *,
    rooms: ServerRooms,
) -> Plan:
    """Kick from every room of the server, the space first."""
    return _cascade_plan(Kick, after, user, reason, rooms)


def ban_plan(
    after: Server,
    user: UserID,
    reason: str | None,
    *,
    rooms: ServerRooms,
) -> Plan:
    """Ban in every room of the server, members or not: nobody banned can join any of them
    with any client."""
    return _cascade_plan(Ban, after, user, reason, rooms)


def unban_plan(rooms: ServerRooms, user: UserID) -> Plan:
    """Lift the ban in the space and in every other room where the user is banned."""
    server_id = rooms.server.server_id
    steps: list[Step] = [
        Unban(name=f"unban_{i}", room=room, user=user)
        for i, (room, _, _) in enumerate(rooms.kinds)
        if room == server_id or _membership(rooms, room, user) == "ban"
    ]
    return Plan.of(steps)


def _membership(rooms: ServerRooms, room: RoomID, user: UserID) -> str | None:
    membership = rooms.state(room).get(("m.room.member", user), {}).get("membership")
    return membership if isinstance(membership, str) else None
