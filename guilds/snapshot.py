"""Assemble the model of a server from the raw state of its rooms, without any I/O.

The bridge keeps the current state of every room of a server in memory (loaded once, then
kept current from the events it receives by transaction) and calls `assemble` to read the
model back; so a read never walks room state on the homeserver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guilds.ids import RoomID, UserID
from guilds.model import (
    CATEGORY_EVENT,
    BuiltinRole,
    Category,
    Channel,
    InvalidContent,
    Role,
    Server,
    parse_role,
    parse_server_state,
)
from guilds.rules import channel_kind
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, ROLE_ROOM_KEY, SERVER_EVENT, ChannelKind

StateKey = tuple[str, str]
RoomState = Mapping[StateKey, Mapping[str, Any]]


def joined(state: RoomState) -> frozenset[UserID]:
    return frozenset(
        UserID(key)
        for (event_type, key), content in state.items()
        if event_type == "m.room.member" and content.get("membership") == "join"
    )


def banned(state: RoomState) -> frozenset[UserID]:
    return frozenset(
        UserID(key)
        for (event_type, key), content in state.items()
        if event_type == "m.room.member" and content.get("membership") == "ban"
    )


def _text(state: RoomState, event_type: str, key: str) -> str:
    value = state.get((event_type, ""), {}).get(key)
    return value if isinstance(value, str) else ""


def children(state: RoomState) -> dict[RoomID, str]:
    """Rooms linked as `m.space.child` (a child with empty content was removed), with order.

    The links to role rooms (`guilds.layout.role_link`) are left out: they hold no channel and
    take no place among the channels and categories.
    """
    found: dict[RoomID, str] = {}
    for (event_type, key), content in state.items():
        if event_type != "m.space.child" or not isinstance(content.get("via"), list):
            continue
        if content.get(ROLE_ROOM_KEY) is True:
            continue
        order = content.get("order")
        found[RoomID(key)] = order if isinstance(order, str) else ""
    return found


def is_server_space(state: RoomState) -> bool:
    return (SERVER_EVENT, "") in state


def _roles(state: RoomState) -> tuple[Role, ...]:
    roles = []
    for (event_type, key), content in state.items():
        if event_type != ROLE_EVENT or not content:
            continue
        try:
            roles.append(parse_role(key, content))
        except (InvalidContent, ValueError):
            # A malformed role (say, written by hand in another client) is ignored, not fatal.
            continue
    return tuple(sorted(roles, key=lambda r: (-r.position, r.role_id)))


def _gate(
    allow: Any, server_id: RoomID, role_by_room: Mapping[RoomID, str]
) -> tuple[str, ...] | None:
    """The role ids a restricted join rule allows; None when the whole space may enter."""
    if not isinstance(allow, list):
        return ()
    rooms = [
        RoomID(entry["room_id"])
        for entry in allow
        if isinstance(entry, dict) and isinstance(entry.get("room_id"), str)
    ]
    if server_id in rooms:
        return None
    roles = {role_by_room[r] for r in rooms if r in role_by_room}
    # Admins always may enter (API.md); they are not a gate of their own.
    roles.discard(BuiltinRole.ADMIN.value)
    return tuple(sorted(roles))


def _channel(
    room_id: RoomID,
    state: RoomState,
    server_id: RoomID,
    category_id: RoomID | None,
    order: str,
    role_by_room: Mapping[RoomID, str],
) -> Channel:
    content = state[(CHANNEL_EVENT, "")]
    kind = channel_kind(content) or ChannelKind.TEXT
    join_rules = state.get(("m.room.join_rules", ""), {})
    gated = (
        _gate(join_rules.get("allow"), server_id, role_by_room)
        if join_rules.get("join_rule") == "restricted"
        else ()
    )
    return Channel(
        channel_id=room_id,
        name=_text(state, "m.room.name", "name"),
        kind=kind,
        topic=_text(state, "m.room.topic", "topic"),
        category_id=category_id,
        order=order,
        allowed_roles=gated,
        default=content.get("default") is True,
    )


def _named_category(state: RoomState, categories: set[RoomID]) -> RoomID | None:
    """The category a channel's own `m.space.parent` names, if it names one of the server's."""
    for (event_type, key), content in sorted(state.items()):
        if event_type == "m.space.parent" and isinstance(content.get("via"), list):
            if content["via"] and RoomID(key) in categories:
                return RoomID(key)
    return None


def assemble(
    server_id: RoomID, rooms: Mapping[RoomID, RoomState], *, bot: UserID | None = None
) -> Server:
    """The model of the server whose space is `server_id`, from the state of its rooms.

    `rooms` maps room ids to their current state: the space, its children (channels and
    categories), the categories' children, the role rooms and their children (the private
    channels). Rooms missing from it are
    left out of the model (they are being loaded, or were deleted). The `bot` is in every
    room but is not a member of the server: it is left out of members and role holders.
    """
    space = rooms[server_id]
    server_state = parse_server_state(space.get((SERVER_EVENT, ""), {}))
    roles = _roles(space)
    # A role being moved to a new room is held through either (docs/DESIGN.md, "Role rooms of
    # the older shape"), and a gate naming either room is that role's.
    role_by_room = {room: r.role_id for r in roles for room in r.room_ids}

    assignments: dict[UserID, set[str]] = {}
    for role in roles:
        for room in role.room_ids:
            for user in joined(rooms.get(room, {})) - {bot}:
                assignments.setdefault(user, set()).add(role.role_id)

    channels: list[Channel] = []
    categories: list[Category] = []

    def visit(parent: RoomID, category_id: RoomID | None) -> None:
        for child_id, order in children(rooms[parent]).items():
            child = rooms.get(child_id)
            if child is None:
                continue
            if (CHANNEL_EVENT, "") in child:
                channels.append(
                    _channel(child_id, child, server_id, category_id, order, role_by_room)
                )
            elif (CATEGORY_EVENT, "") in child and category_id is None:
                # Categories nest one level deep, as in Discord.
                categories.append(Category(child_id, _text(child, "m.room.name", "name"), order))
                visit(child_id, child_id)

    visit(server_id, None)
    # Private channels: linked only from the rooms of the roles that may enter them (spaces
    # their holders alone read), not from the space or a category; the category they sit in
    # is the one their own `m.space.parent` names (docs/DESIGN.md, "Private channels").
    seen = {c.channel_id for c in channels}
    known_categories = {c.category_id for c in categories}
    for room in (room for role in roles for room in role.room_ids):
        if room not in rooms:
            continue
        for child_id, order in sorted(children(rooms[room]).items()):
            child = rooms.get(child_id)
            if child_id in seen or child is None or (CHANNEL_EVENT, "") not in child:
                continue
            seen.add(child_id)
            category_id = _named_category(child, known_categories)
            channels.append(_channel(child_id, child, server_id, category_id, order, role_by_room))
    categories.sort(key=lambda c: (c.order, c.category_id))
    channels.sort(key=lambda c: (c.order, c.channel_id))
    avatar = space.get(("m.room.avatar", ""), {}).get("url")
    return Server(
        server_id=server_id,
        name=_text(space, "m.room.name", "name"),
        topic=_text(space, "m.room.topic", "topic"),
        icon=avatar if isinstance(avatar, str) and avatar else None,
        state=server_state,
        roles=roles,
        channels=tuple(channels),
        categories=tuple(categories),
        assignments={user: frozenset(held) for user, held in assignments.items()},
        members=joined(space) - {bot},
    )


def rooms_of(server_id: RoomID, rooms: Mapping[RoomID, RoomState]) -> set[RoomID]:
    """Every room id that belongs to the server according to the state we hold."""
    space = rooms.get(server_id, {})
    found = {server_id}
    for child_id in children(space):
        found.add(child_id)
        found |= set(children(rooms.get(child_id, {})))
    for role in _roles(space):
        for room in role.room_ids:
            found.add(room)
            # The private channels its holders may enter (docs/DESIGN.md, "Private channels").
            found |= set(children(rooms.get(room, {})))
    return found
