"""What every room of a server must hold, derived from its model, and how the rooms differ from it.

The model (roles, assignments, channels, gates, owner, bans) is read from Matrix state
(`guilds.snapshot.assemble`); everything else in the server's rooms follows from it:

- power levels (users and thresholds, creators-aware; `bridge.room_levels` owns them);
- role-room memberships: only members of the server hold roles, and the owner is an admin;
- channel and category memberships: only members of the server are inside, and a gated
  channel holds only those its roles let in; with `join_all_channels` (the `join_channels: all`
  policy), every member is inside every channel they may enter (the default channel is joined
  by the module when they enter the server, so it is left to that one join);
- the space tree: every channel and category names its parent (`m.space.parent`); a category
  and an open channel are linked from that parent alone, a gated (private) channel from its
  roles' rooms and the admins' alone, never from the space or a category that every member
  reads; the space links every role room made as a space (so other clients nest it under the
  server); nothing links a room the bot has left (a deleted channel linked again by a client);
- join rules: a channel opens to the space or to its roles' rooms, a category to the space;
- bans: whoever is banned from the space is banned from every room, and nobody else is;
- role rooms are spaces: one of the older shape is replaced (`_role_room_moves`).

`divergences` compares the rooms' actual state with that and lists each difference as
`(room, what, expected, actual)`; `repair_plan` turns the list into journal steps. Both are pure
functions of `ServerRooms` (bridge/plans/rooms.py), unit tested without a homeserver
(tests/unit/test_derived.py); bridge/readback/convergence.py decides when to run them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
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
from bridge.plans.channels import allow_rooms, gate_rooms
from bridge.plans.levels import new_room_levels, room_version_of, wanted_levels
from bridge.plans.rooms import RoomStates, ServerRooms
from guilds.ids import RoomID, UserID
from guilds.layout import AUTO_JOIN_KEY, channel_allow, role_link, role_room_body, space_child
from guilds.model import BuiltinRole, Channel, Role, Server
from guilds.permissions import may_enter
from guilds.rules import RoomKind
from guilds.vocabulary import ROLE_EVENT, ROLE_ROOM_TYPE, SPACE_ROOM_TYPE

POWER_LEVELS: Final = "m.room.power_levels"
MEMBER: Final = "m.room.member"
JOIN_RULES: Final = "m.room.join_rules"
SPACE_PARENT: Final = "m.space.parent"
SPACE_CHILD: Final = "m.space.child"

NOT_A_MEMBER_REASON: Final = "Not a member of the server"
CHANNEL_REASON: Final = "Members are in every channel they may enter"
GATE_REASON: Final = "You no longer have a role that may enter this channel"
BANNED_REASON: Final = "Banned from the server"
OWNER_REASON: Final = "The owner is always an admin"
MOVED_REASON: Final = "Your role's room moved to a new one"
TOMBSTONE: Final = "m.room.tombstone"


@dataclass(frozen=True)
class Divergence:
    """One difference between a room and what the model derives for it.

    `what` names the part of the room: `power_levels.users.<user>`, `power_levels.<key>`,
    `member.<user>`, `join_rules`, `space.parent.<room>`, `space.child.<room>`. `expected` and
    `actual` are plain
    JSON values (None for absent), so the doctor prints them and the log records them.
    """

    room: RoomID
    what: str
    expected: Any
    actual: Any

    def line(self) -> str:
        return f"{self.room}  {self.what}: expected {self.expected!r}, actual {self.actual!r}"

    def to_json(self) -> dict[str, Any]:
        return {
            "room_id": self.room,
            "what": self.what,
            "expected": self.expected,
            "actual": self.actual,
        }


def with_pending_roles(rooms: ServerRooms) -> Server:
    """The model counting the bot's auto-join invites to role rooms as held roles.

    The module accepts those invites a moment later; reading them as held already keeps a
    derivation made in between (a second power-level change, a convergence check) from undoing
    the role a grant or a read-back has just given.
    """
    server = rooms.server
    assignments = {user: set(held) for user, held in server.assignments.items()}
    for role in server.roles:
        if role.room_id is None:
            continue
        for (event_type, user), content in rooms.state(role.room_id).items():
            if (
                event_type == MEMBER
                and user != rooms.bot
                and content.get("membership") == "invite"
                and content.get(AUTO_JOIN_KEY) is True
            ):
                assignments.setdefault(UserID(user), set()).add(role.role_id)
    return replace(server, assignments={u: frozenset(h) for u, h in assignments.items()})


# -- reading the rooms ----------------------------------------------------------------------------


def _memberships(states: RoomStates, room: RoomID) -> dict[UserID, str]:
    found: dict[UserID, str] = {}
    for (event_type, key), content in states.get(room, {}).items():
        membership = content.get("membership")
        if event_type == MEMBER and isinstance(membership, str):
            found[UserID(key)] = membership
    return found


def _inside(memberships: Mapping[UserID, str]) -> set[UserID]:
    return {u for u, m in memberships.items() if m in ("join", "invite")}


def _allowed_rooms(content: Mapping[str, Any] | None) -> list[str]:
    allow = (content or {}).get("allow")
    if not isinstance(allow, list):
        return []
    return sorted(
        str(entry["room_id"])
        for entry in allow
        if isinstance(entry, dict) and isinstance(entry.get("room_id"), str)
    )


def _linked(content: Mapping[str, Any] | None) -> bool:
    via = (content or {}).get("via")
    return isinstance(via, list) and bool(via)


def _parents(ctx: ServerRooms) -> dict[RoomID, RoomID]:
    """Each channel and category of the model, and the one container that must link it.

    A channel linked from two containers (the space and a category, say a link added by hand)
    belongs to the one its own `m.space.parent` names; when that does not decide, the default
    channel belongs to the space and any other to its category.
    """
    server = ctx.server
    found: dict[RoomID, RoomID] = {c.category_id: server.server_id for c in server.categories}
    linking: dict[RoomID, list[RoomID]] = {}
    for channel in server.channels:
        parent = channel.category_id or server.server_id
        if parent not in linking.setdefault(channel.channel_id, []):
            linking[channel.channel_id].append(parent)
    for room, containers in linking.items():
        if len(containers) == 1:
            found[room] = containers[0]
            continue
        state = ctx.states.get(room, {})
        named = [c for c in containers if _linked(state.get((SPACE_PARENT, c)))]
        if len(named) == 1:
            found[room] = named[0]
        elif room == server.state.default_channel:
            found[room] = server.server_id
        else:
            found[room] = next((c for c in containers if c != server.server_id), containers[0])
    return found


def _links_wanted(ctx: ServerRooms, parents: Mapping[RoomID, RoomID]) -> dict[RoomID, list[RoomID]]:
    """Each channel and category of the model, and the containers that must link it.

    A category: the space. A channel open to every member: the one parent it belongs to. A
    gated (private) channel: the rooms of its roles and the admins' room, never the space or
    a category, whose state every member reads (docs/DESIGN.md, "Private channels").
    """
    server = ctx.server
    wanted: dict[RoomID, list[RoomID]] = {room: [parent] for room, parent in parents.items()}
    for channel in server.channels:
        gate = gate_rooms(server, channel.allowed_roles)
        if gate:
            wanted[channel.channel_id] = gate
    return wanted


def _containers(ctx: ServerRooms) -> list[RoomID]:
    """Every room that may link a channel or a category: the space, the categories, the role
    rooms."""
    server = ctx.server
    return sorted(
        {
            server.server_id,
            *(c.category_id for c in server.categories),
            *(room for r in server.roles for room in r.room_ids),
        }
    )


def _stray_links(ctx: ServerRooms, wanted: Mapping[RoomID, list[RoomID]]) -> list[Divergence]:
    """Links to a channel or category from a container other than those that must link it."""
    found: list[Divergence] = []
    for container in _containers(ctx):
        state = ctx.states.get(container, {})
        for (event_type, child), content in sorted(state.items()):
            if event_type != SPACE_CHILD or not _linked(content):
                continue
            linking = wanted.get(RoomID(child))
            if linking is not None and container not in linking:
                found.append(Divergence(container, f"space.child.{child}", "unlinked", "linked"))
    return found


def _links_to_left_rooms(
    ctx: ServerRooms, wanted: Mapping[RoomID, list[RoomID]]
) -> list[Divergence]:
    """Links to a room the bot has left: a channel or category deleted while another client
    linked it again (a reorder racing the deletion's unlink, say). No rule reaches such a room
    and the bot cannot enter it again, so the link goes, wherever it is."""
    found: list[Divergence] = []
    if not ctx.left:
        return found
    for container in _containers(ctx):
        state = ctx.states.get(container, {})
        for (event_type, child), content in sorted(state.items()):
            if event_type != SPACE_CHILD or not _linked(content):
                continue
            if RoomID(child) in ctx.left and RoomID(child) not in wanted:
                found.append(Divergence(container, f"space.child.{child}", "unlinked", "linked"))
    return found


def _missing_links(ctx: ServerRooms, wanted: Mapping[RoomID, list[RoomID]]) -> list[Divergence]:
    """Containers that must link a channel and do not (a channel just gated, or ungated)."""
    found: list[Divergence] = []
    for child, linking in sorted(wanted.items()):
        for container in linking:
            if not _linked(ctx.states.get(container, {}).get((SPACE_CHILD, child))):
                found.append(Divergence(container, f"space.child.{child}", "linked", "missing"))
    return found


def _unlinked_role_rooms(ctx: ServerRooms) -> list[Divergence]:
    """Role rooms made as spaces that the server's space does not link.

    Unlinked, Element, Cinny and nheko show such a room as a space of its own in their space
    bars. Role rooms of the older shape (not spaces) stay unlinked: linked, clients would list
    them among the server's rooms.
    """
    space = ctx.server.server_id
    links = ctx.states.get(space, {})
    found: list[Divergence] = []
    for role in ctx.server.roles:
        if role.room_id is None:
            continue
        create = ctx.states.get(role.room_id, {}).get(("m.room.create", ""))
        if create is None or create.get("type") != SPACE_ROOM_TYPE:
            continue
        if not _linked(links.get((SPACE_CHILD, role.room_id))):
            found.append(Divergence(space, f"space.child.{role.room_id}", "linked", "missing"))
    return found


def _role_room_moves(ctx: ServerRooms) -> list[Divergence]:
    """The steps left in replacing each role room of the older shape by a role space.

    Each is read from the rooms as they are, so a crash anywhere resumes at the right one
    (docs/DESIGN.md, "Role rooms of the older shape"):

    1. `role.<id>.room` — an older-shape room the bot is in, no move begun: a role space is
       created and the role names it in `room_id`, the older room in `previous_room_id`. From
       then on the model counts the members of either room as holders, gated channels allow
       both rooms, and the ordinary checks link the space and move the private channels' links.
    2. `member.<user>` on the new room — a holder in the older room only: invited (auto-join);
       on the older room — a holder joined in both: removed from the older room (the module
       keeps them in their channels: the new room opens them too).
    3. `retired` — the older room holds nobody but the bot: tombstoned (pointing at the new
       room) and closed, then the bot leaves it, then `role.<id>.previous_room_id` — the role
       forgets it, and the gated channels' `allow` drops it.
    """
    space = ctx.server.server_id
    found: list[Divergence] = []
    for role in ctx.server.roles:
        if role.room_id is None:
            continue
        old = role.previous_room_id
        if old is None:
            create = ctx.states.get(role.room_id, {}).get(("m.room.create", "")) or {}
            joined = _memberships(ctx.states, role.room_id).get(ctx.bot) == "join"
            if create.get("type") == ROLE_ROOM_TYPE and joined:
                found.append(Divergence(space, f"role.{role.role_id}.room", "space", "room"))
            continue
        old_members = _memberships(ctx.states, old)
        if old_members.get(ctx.bot) != "join":
            found.append(Divergence(space, f"role.{role.role_id}.previous_room_id", None, old))
            continue
        new_members = _memberships(ctx.states, role.room_id)
        holders = sorted(
            u for u, m in old_members.items() if m == "join" and ctx.server.is_member(u)
        )
        for user in holders:
            if new_members.get(user) == "join":
                found.append(Divergence(old, f"member.{user}", "leave", "join"))
            elif new_members.get(user) not in ("invite", "ban"):
                found.append(
                    Divergence(role.room_id, f"member.{user}", "join", new_members.get(user))
                )
        if not _inside(old_members) - {ctx.bot}:
            found.append(Divergence(old, "retired", True, False))
    return found


# -- what each room must hold ---------------------------------------------------------------------


def expected_join_rules(ctx: ServerRooms, room: RoomID) -> dict[str, Any] | None:
    """The join rules a channel or category must have; None for rooms whose rules are not
    derived (the space and the role rooms: their rules are set once, at creation)."""
    server = ctx.server
    if any(c.category_id == room for c in server.categories):
        return {"join_rule": "restricted", "allow": channel_allow(server.server_id, None)}
    channel = _channel(server, room)
    if channel is None:
        return None
    gate = allow_rooms(server, channel.allowed_roles)
    return {"join_rule": "restricted", "allow": channel_allow(server.server_id, gate)}


def _channel(server: Server, room: RoomID) -> Channel | None:
    return next((c for c in server.channels if c.channel_id == room), None)


def _level(levels: Mapping[str, Any] | None, user: str) -> int | None:
    if levels is None:
        return None
    users = levels.get("users")
    listed = users.get(user) if isinstance(users, Mapping) else None
    if isinstance(listed, int) and not isinstance(listed, bool):
        return listed
    default = levels.get("users_default", 0)
    return default if isinstance(default, int) and not isinstance(default, bool) else 0


def _levels_divergences(
    room: RoomID, wanted: Mapping[str, Any], actual: Mapping[str, Any] | None
) -> list[Divergence]:
    if actual is not None and dict(actual) == dict(wanted):
        return []
    found: list[Divergence] = []
    wanted_users = wanted.get("users") or {}
    actual_users = (actual or {}).get("users")
    listed = set(wanted_users) | (set(actual_users) if isinstance(actual_users, Mapping) else set())
    for user in sorted(listed):
        expected, got = _level(wanted, user), _level(actual, user)
        if expected != got:
            found.append(Divergence(room, f"power_levels.users.{user}", expected, got))
    for key in sorted(set(wanted) | set(actual or {})):
        if key == "users":
            continue
        expected, got = wanted.get(key), (actual or {}).get(key)
        if expected != got:
            found.append(Divergence(room, f"power_levels.{key}", expected, got))
    if not found:
        # Equal in effect, different in form (say, a user listed at the default): one line.
        found.append(Divergence(room, "power_levels", dict(wanted), dict(actual or {})))
    return found


def divergences(ctx: ServerRooms) -> list[Divergence]:
    """Every difference between the server's rooms and what its model derives, room by room."""
    ctx = ctx.modelled()
    # Who may enter a channel is decided by the roles held, not by a pending invite: the
    # module refuses a gated channel's join until the role room's is done.
    held = ctx.server
    server = with_pending_roles(ctx)
    ctx = ctx.with_model(server)
    space = server.server_id
    owner = server.state.owner
    bot = ctx.bot
    found: list[Divergence] = []
    space_members = _memberships(ctx.states, space)
    banned = {u for u, m in space_members.items() if m == "ban"} - {bot, owner}
    parents = _parents(ctx)
    containers = {space, *(c.category_id for c in server.categories)}
    wanted_links = _links_wanted(ctx, parents)
    found += _stray_links(ctx, wanted_links)
    found += _links_to_left_rooms(ctx, wanted_links)
    found += _missing_links(ctx, wanted_links)
    found += _unlinked_role_rooms(ctx)
    found += _role_room_moves(ctx)
    role_of_room = {r.room_id: r for r in server.roles if r.room_id is not None}
    by_shape: dict[Any, dict[str, Any]] = {}
    # The members in id order, sorted once for every channel (under join_all_channels).
    everyone: list[UserID] | None = None

    for room, kind, channel_kind in ctx.kinds:
        state = ctx.states.get(room, {})
        # Power levels.
        wanted = wanted_levels(server, room, kind, channel_kind, ctx, by_shape)
        found += _levels_divergences(room, wanted, state.get((POWER_LEVELS, "")))
        # Join rules of channels and categories.
        rules = expected_join_rules(ctx, room)
        if rules is not None:
            actual_rules = state.get((JOIN_RULES, ""))
            got = (actual_rules or {}).get("join_rule"), _allowed_rooms(actual_rules)
            want = rules["join_rule"], _allowed_rooms(rules)
            if got != want:
                found.append(
                    Divergence(
                        room,
                        "join_rules",
                        {"join_rule": want[0], "allow": want[1]},
                        {"join_rule": got[0], "allow": got[1]},
                    )
                )
        # The space tree: the room names the container that links it.
        parent = parents.get(room)
        if parent is not None:
            if not _linked(state.get((SPACE_PARENT, parent))):
                found.append(Divergence(room, f"space.parent.{parent}", "linked", "missing"))
            for (event_type, key), content in sorted(state.items()):
                if event_type == SPACE_PARENT and key != parent and key in containers:
                    if _linked(content):
                        found.append(Divergence(room, f"space.parent.{key}", "unlinked", "linked"))
        # Memberships: bans first, then who may be inside.
        members = _memberships(ctx.states, room)
        if room != space:
            for user in sorted(banned):
                if members.get(user) != "ban":
                    found.append(Divergence(room, f"member.{user}", "ban", members.get(user)))
            for user, membership in sorted(members.items()):
                if membership == "ban" and user not in banned:
                    found.append(Divergence(room, f"member.{user}", "leave", "ban"))
        inside = _inside(members) - {bot}
        role = role_of_room.get(room)
        if room == space:
            if owner not in inside:
                found.append(Divergence(room, f"member.{owner}", "join", members.get(owner)))
            continue
        channel = _channel(server, room)
        for user in sorted(inside):
            if user in banned:
                continue  # the ban above removes them
            if not server.is_member(user):
                found.append(Divergence(room, f"member.{user}", "leave", members[user]))
            elif channel is not None and not may_enter(server, user, channel):
                found.append(Divergence(room, f"member.{user}", "leave", members[user]))
        if role is not None and role.role_id == BuiltinRole.ADMIN.value and owner not in inside:
            found.append(Divergence(room, f"member.{owner}", "join", members.get(owner)))
        if ctx.join_all_channels and channel is not None:
            if everyone is None:
                everyone = sorted(held.members | {owner})
            found += _missing_members(held, everyone, room, channel, members, banned, bot)
    return found


def _missing_members(
    server: Server,
    everyone: Iterable[UserID],
    room: RoomID,
    channel: Channel,
    members: Mapping[UserID, str],
    banned: set[UserID],
    bot: UserID,
) -> list[Divergence]:
    """The members who may enter the channel and are not in it (nor invited).

    Not the default channel: the module joins a new member to it the moment they enter the
    server, and a second join of the same user racing it on another Synapse worker would fork
    the room. A member banned from this one room is unbanned first (the ban divergence).
    """
    if room == server.state.default_channel:
        return []
    found: list[Divergence] = []
    for user in everyone:
        if user == bot or user in banned or members.get(user) in ("join", "invite", "ban"):
            continue
        if may_enter(server, user, channel):
            found.append(Divergence(room, f"member.{user}", "join", members.get(user)))
    return found


# -- repairing ------------------------------------------------------------------------------------


def repair_plan(ctx: ServerRooms, found: Iterable[Divergence]) -> Plan:
    """Journal steps bringing every divergent room to what the model derives.

    First stage: state (power levels, join rules, parent links) and bans and unbans; second:
    removing whoever may not be inside, and the owner back into the admins' room. Power levels
    and join rules are written whole, so one step repairs every divergence of that event.
    Replacing a role room of the older shape adds a stage before (creating its role space) and
    one after (the role forgetting the older room once the bot has left it).
    """
    ctx = ctx.modelled()
    server = with_pending_roles(ctx)
    ctx = ctx.with_model(server)
    kinds = {room: (kind, ck) for room, kind, ck in ctx.kinds}
    moving_to = {r.room_id: r for r in server.roles if r.previous_room_id is not None}
    moving_from = {r.previous_room_id: r for r in server.roles if r.previous_room_id is not None}
    created: list[Step] = []
    first: list[Step] = []
    second: list[Step] = []
    third: list[Step] = []
    # (room, what) already repaired by a step of the plan.
    done: set[tuple[RoomID, str]] = set()
    for divergence in found:
        room, what = divergence.room, divergence.what
        if room not in kinds:
            continue
        if what.startswith("role.") and what.endswith(".room"):
            role = server.role(what.removeprefix("role.").removesuffix(".room"))
            if role is None or role.room_id is None:
                continue
            name = f"role_space_{len(created)}"
            created.append(CreateRoom(name=name, body=_role_space_body(ctx, role, role.room_id)))
            content = {
                **role.content(),
                "room_id": Ref(name, "room_id"),
                "previous_room_id": role.room_id,
            }
            first.append(_state(f"role_move_{len(first)}", room, ROLE_EVENT, role.role_id, content))
        elif what.startswith("role.") and what.endswith(".previous_room_id"):
            role = server.role(what.removeprefix("role.").removesuffix(".previous_room_id"))
            if role is not None:
                content = replace(role, previous_room_id=None).content()
                third.append(
                    _state(f"role_moved_{len(third)}", room, ROLE_EVENT, role.role_id, content)
                )
        elif what == "retired":
            role = moving_from.get(room)
            if role is None or role.room_id is None:
                continue
            tombstone = {"body": "This role's room moved.", "replacement_room": role.room_id}
            first.append(_state(f"tombstone_{len(first)}", room, TOMBSTONE, "", tombstone))
            first.append(
                _state(f"close_{len(first)}", room, JOIN_RULES, "", {"join_rule": "invite"})
            )
            second.append(Leave(name=f"leave_{len(second)}", room=room))
            content = replace(role, previous_room_id=None).content()
            key = role.role_id
            third.append(
                _state(f"role_moved_{len(third)}", server.server_id, ROLE_EVENT, key, content)
            )
        elif what.startswith("power_levels"):
            if (room, POWER_LEVELS) in done:
                continue
            done.add((room, POWER_LEVELS))
            kind, ck = kinds[room]
            content = wanted_levels(server, room, kind, ck, ctx)
            first.append(_state(f"levels_{len(first)}", room, POWER_LEVELS, "", content))
        elif what == "join_rules":
            rules = expected_join_rules(ctx, room)
            if rules is not None:
                held = ctx.states.get(room, {}).get((JOIN_RULES, "")) or {}
                content = {**held, **rules}
                first.append(_state(f"join_rules_{len(first)}", room, JOIN_RULES, "", content))
        elif what.startswith("space.child."):
            child = RoomID(what.removeprefix("space.child."))
            if divergence.expected == "linked":
                link = _link_content(ctx, room, child)
                first.append(_state(f"link_{len(first)}", room, SPACE_CHILD, child, link))
            else:
                # Unlinked once the new links are written: the child never leaves the tree.
                second.append(_state(f"unlink_{len(second)}", room, SPACE_CHILD, child, {}))
        elif what.startswith("space.parent."):
            parent = what.removeprefix("space.parent.")
            unlinked = divergence.expected == "unlinked"
            content = {} if unlinked else {"via": [ctx.via], "canonical": True}
            first.append(_state(f"parent_{len(first)}", room, SPACE_PARENT, parent, content))
        elif what.startswith("member."):
            user = UserID(what.removeprefix("member."))
            if divergence.expected == "ban":
                first.append(Ban(name=f"ban_{len(first)}", room=room, user=user, reason=None))
            elif divergence.expected == "join":
                if (room, f"invite {user}") in done:
                    continue  # the owner into a moving admins' room: found twice
                done.add((room, f"invite {user}"))
                if divergence.actual == "ban" and (room, f"unban {user}") not in done:
                    # The owner banned by hand: unbanned first, then back in.
                    done.add((room, f"unban {user}"))
                    first.append(Unban(name=f"unban_{len(first)}", room=room, user=user))
                reason = (
                    CHANNEL_REASON
                    if _channel(server, room) is not None
                    else MOVED_REASON
                    if room in moving_to
                    else OWNER_REASON
                )
                second.append(
                    AutoJoinInvite(
                        name=f"invite_{len(second)}", room=room, user=user, reason=reason
                    )
                )
            elif divergence.actual == "ban":
                if (room, f"unban {user}") not in done:
                    done.add((room, f"unban {user}"))
                    first.append(Unban(name=f"unban_{len(first)}", room=room, user=user))
            else:
                member = ctx.server.is_member(user)
                reason = GATE_REASON if member else NOT_A_MEMBER_REASON
                if member and room in moving_from:
                    reason = MOVED_REASON
                second.append(Kick(name=f"kick_{len(second)}", room=room, user=user, reason=reason))
    return Plan.of(*[stage for stage in (created, first, second, third) if stage])


def _role_space_body(ctx: ServerRooms, role: Role, older: RoomID) -> dict[str, Any]:
    """The createRoom body of the role space replacing `older`: in the older room's version,
    naming it as its predecessor (as a room upgrade does)."""
    version = room_version_of(ctx.states, older)
    levels = new_room_levels(ctx.server, RoomKind.ROLE_ROOM, bot=ctx.bot, room_version=version)
    body = role_room_body(server_id=ctx.server.server_id, role=role, power_levels=levels)
    body["room_version"] = version
    body["creation_content"] = {**body["creation_content"], "predecessor": {"room_id": older}}
    return body


def _link_content(ctx: ServerRooms, container: RoomID, child: RoomID) -> dict[str, Any]:
    """The `m.space.child` a container must hold for `child`: a role room's link, or a
    channel's or category's at its order (a channel's with its kind), keeping what the
    container's link said before."""
    server = ctx.server
    if any(r.room_id == child for r in server.roles):
        return role_link(ctx.via)
    channel = _channel(server, child)
    category = next((c for c in server.categories if c.category_id == child), None)
    order = channel.order if channel else category.order if category else ""
    held = ctx.states.get(container, {}).get((SPACE_CHILD, child)) or {}
    return {**held, **space_child(order, ctx.via, channel.kind if channel else None)}


def _state(name: str, room: RoomID, event_type: str, key: str, content: Any) -> SendState:
    return SendState(name=name, room=room, type=event_type, state_key=key, content=content)
