"""Plans and orderings for channels and categories: pure functions from the model to steps.

The service (bridge/services/channels.py) validates a request, then asks these functions what to
change, giving them the server's rooms as they are (`ServerRooms`, bridge/plans/rooms.py);
nothing here does I/O, so the space-tree bookkeeping (orders, links both ways, who must be
removed when a channel is gated) is unit tested without a homeserver.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bridge.engine.steps import CreateRoom, EmptyRoom, Kick, Leave, Plan, Ref, SendState, Step
from bridge.plans.levels import wanted_levels
from bridge.plans.rooms import ServerRooms
from guilds.ids import RoomID, UserID
from guilds.layout import category_body, channel_allow, channel_body, space_child
from guilds.model import BuiltinRole, Channel, Server, order_key
from guilds.permissions import may_enter
from guilds.rules import RoomKind
from guilds.snapshot import children
from guilds.vocabulary import CHANNEL_EVENT, CHANNEL_KIND_KEY, ChannelKind

SPACE_CHILD = "m.space.child"
SPACE_PARENT = "m.space.parent"
JOIN_RULES = "m.room.join_rules"
GATE_KICK_REASON = "You no longer have a role that may enter this channel"
CHANNEL_DELETED_REASON = "The channel was deleted"
CATEGORY_DELETED_REASON = "The category was deleted"


# -- orders --------------------------------------------------------------------------------------


def next_index(orders: Sequence[str]) -> int:
    """The index of a child placed after every existing one (orders written by `order_key`).

    Orders written by another client may not be numbers; they count as one place each.
    """
    indexes = [int(o) for o in orders if o.isdigit()]
    return max([*indexes, len(orders) - 1]) + 1


def reordered(
    siblings: Sequence[tuple[RoomID, str]], moved: RoomID, position: int | None
) -> dict[RoomID, str]:
    """New orders making `moved` the `position`-th of its siblings (the end when None).

    `siblings` are the other children of the same parent with their current orders (`moved`
    may be among them: it is taken out first). Every sibling gets a distinct, dense order so
    the order is total; only the entries whose order changes are returned, `moved` always.
    """
    ordered = sorted((s for s in siblings if s[0] != moved), key=_by_order)
    ids = [room for room, _ in ordered]
    at = len(ids) if position is None else max(0, min(position, len(ids)))
    ids.insert(at, moved)
    current = dict(siblings)
    changes: dict[RoomID, str] = {}
    for index, room in enumerate(ids):
        key = order_key(index)
        if room == moved or current.get(room) != key:
            changes[room] = key
    return changes


def position_among_all(
    siblings: Sequence[tuple[RoomID, str]],
    visible: Collection[RoomID],
    moved: RoomID,
    position: int | None,
) -> int | None:
    """The position among all `siblings` for a `position` among those the caller can see.

    A caller who may not enter a private channel is not told it exists, so the position they
    ask for counts only the channels they see: the moved channel goes just before the one
    they see at that place (after the last they see when past the end), wherever hidden ones
    lie. For a caller who sees every sibling this is `position` itself.
    """
    if position is None:
        return None
    ordered = [room for room, _ in sorted((s for s in siblings if s[0] != moved), key=_by_order)]
    seen = [room for room in ordered if room in visible]
    if position < len(seen):
        return ordered.index(seen[position])
    return ordered.index(seen[-1]) + 1 if seen else len(ordered)


def _by_order(sibling: tuple[RoomID, str]) -> tuple[str, str]:
    return (sibling[1], sibling[0])


def child_orders(rooms: ServerRooms, parent: RoomID, *, besides: RoomID | None = None) -> list[str]:
    """The orders taken under `parent` (the space or a category), but `besides`'s: its links,
    and those of the private channels that sit there, which it does not link (they are linked
    from their roles' rooms)."""
    server = rooms.server
    linked = children(rooms.state(parent))
    private = {
        c.channel_id: c.order
        for c in server.channels
        if c.allowed_roles is not None and (c.category_id or server.server_id) == parent
    }
    taken = {**private, **linked}
    return [order for room, order in taken.items() if room != besides]


# -- gates ---------------------------------------------------------------------------------------


def gate_rooms(server: Server, allowed_roles: tuple[str, ...] | None) -> list[RoomID] | None:
    """The role rooms a gated channel's join rule allows: admin's always, then the roles'."""
    if allowed_roles is None:
        return None
    rooms: list[RoomID] = []
    for role_id in (BuiltinRole.ADMIN.value, *allowed_roles):
        role = server.role(role_id)
        if role is not None and role.room_id is not None and role.room_id not in rooms:
            rooms.append(role.room_id)
    return rooms


def allow_rooms(server: Server, allowed_roles: tuple[str, ...] | None) -> list[RoomID] | None:
    """The rooms a gated channel's restricted join rule names: its gate's role rooms, then the
    older rooms those roles are being moved out of, whose members still hold the role until
    they have joined the new one (docs/DESIGN.md, "Role rooms of the older shape")."""
    rooms = gate_rooms(server, allowed_roles)
    if rooms is None:
        return None
    for role_id in (BuiltinRole.ADMIN.value, *(allowed_roles or ())):
        role = server.role(role_id)
        if role is not None and role.previous_room_id is not None:
            if role.previous_room_id not in rooms:
                rooms.append(role.previous_room_id)
    return rooms


def containers(
    server: Server, category_id: RoomID | None, allowed_roles: tuple[str, ...] | None
) -> list[RoomID]:
    """The rooms whose `m.space.child` links a channel in `category_id` with this gate.

    Open to every member: its category, or the space. Gated: the rooms of its roles and the
    admins' room (spaces only their holders read, linked from the server's space), so that
    members who may not enter it find nothing of it in the space's or the category's state,
    nor in `/hierarchy` (docs/DESIGN.md, "Private channels"). Its own `m.space.parent` still
    names the category (or the space), which only its members read.
    """
    home = category_id or server.server_id
    return gate_rooms(server, allowed_roles) or [home]


def linked_from(server: Server, room: RoomID, parent: RoomID) -> list[RoomID]:
    """Where the model says `room` (a channel, or a category under `parent`) is linked."""
    for channel in server.channels:
        if channel.channel_id == room:
            return containers(server, channel.category_id, channel.allowed_roles)
    return [parent]


def join_rules(server: Server, allowed_roles: tuple[str, ...] | None) -> dict[str, Any]:
    return {
        "join_rule": "restricted",
        "allow": channel_allow(server.server_id, allow_rooms(server, allowed_roles)),
    }


def no_longer_allowed(
    server: Server,
    channel: Channel,
    allowed_roles: tuple[str, ...] | None,
    inside: Iterable[UserID],
    bot: UserID,
) -> list[UserID]:
    """Who of those in the channel (or invited) may not enter it once it has these roles."""
    after = replace(channel, allowed_roles=allowed_roles)
    return sorted(u for u in set(inside) - {bot} if not may_enter(server, u, after))


def gate_kicks(room: RoomID, users: Iterable[UserID]) -> list[Step]:
    return [
        Kick(name=f"gate_kick_{i}", room=room, user=user, reason=GATE_KICK_REASON)
        for i, user in enumerate(users)
    ]


# -- links ---------------------------------------------------------------------------------------


def link_steps(
    name: str,
    *,
    parent: RoomID,
    child: RoomID | Ref,
    order: str,
    via: str,
    kind: ChannelKind | None,
    previous: Mapping[str, Any] | None = None,
) -> SendState:
    """The parent's `m.space.child` for `child` at `order` (keeping what another client added).

    `kind` is the channel's (None for a category, or to keep the kind the link already says).
    """
    content = {**(previous or {}), **space_child(order, via, kind)}
    return SendState(name=name, room=parent, type=SPACE_CHILD, state_key=child, content=content)


def order_steps(
    rooms: ServerRooms,
    parent: RoomID,
    changes: Mapping[RoomID, str],
    *,
    prefix: str,
    link_kinds: Mapping[RoomID, ChannelKind] | None = None,
    where: Mapping[RoomID, Sequence[RoomID]] | None = None,
) -> list[Step]:
    """Rewrite the `order` of the links of the children of `parent` named in `changes`.

    Each child's links are where the model has them (`linked_from`: a private channel's are
    in its roles' rooms), or where `where` says (a channel being moved or gated). A link
    keeps the kind it says; `link_kinds` names it for links that are new (a channel moved in).
    """
    steps: list[Step] = []
    for room, order in sorted(changes.items()):
        targets = (where or {}).get(room) or linked_from(rooms.server, room, parent)
        for container in targets:
            previous = rooms.state(container).get((SPACE_CHILD, room))
            steps.append(
                link_steps(
                    f"{prefix}_{len(steps)}",
                    parent=container,
                    child=room,
                    order=order,
                    via=rooms.via,
                    kind=(link_kinds or {}).get(room),
                    previous=previous if previous and previous.get("via") else None,
                )
            )
    return steps


def unlink_steps(
    rooms: ServerRooms, room: RoomID, before: Sequence[RoomID], after: Sequence[RoomID]
) -> list[Step]:
    """Remove the links to `room` from the containers it leaves (those of `before` not in
    `after`), once the new ones are written: the channel is never out of the tree."""
    return [
        SendState(name=f"unlink_{i}", room=container, type=SPACE_CHILD, state_key=room, content={})
        for i, container in enumerate(c for c in before if c not in after)
        if (rooms.state(container).get((SPACE_CHILD, room)) or {}).get("via")
    ]


def move_steps(
    channel: RoomID, *, old_parent: RoomID, new_parent: RoomID, via: str
) -> tuple[list[Step], list[Step]]:
    """Point the channel at its new parent (first stage), then drop the old pointer (second).

    The containers' links to it are `order_steps` and `unlink_steps`: a private channel is
    linked from its roles' rooms, not from its parent.
    """
    point: list[Step] = [
        SendState(
            name="parent_new",
            room=channel,
            type=SPACE_PARENT,
            state_key=new_parent,
            content={"via": [via], "canonical": True},
        )
    ]
    unlink: list[Step] = [
        SendState(
            name="parent_old", room=channel, type=SPACE_PARENT, state_key=old_parent, content={}
        ),
    ]
    return point, unlink


# -- retyping ------------------------------------------------------------------------------------


def retype_steps(
    rooms: ServerRooms, room: RoomID, kind: ChannelKind, *, links: bool = True
) -> list[Step]:
    """A channel's new kind, power levels for it (who may write call membership), and the
    kind its links show to clients that have not joined (`links=False` when the same edit
    rewrites them anyway: two writes of one event in one stage would race).

    The power levels come from `levels.wanted_levels`, like every other write of them: aware
    of the room's version and creators (an adopted room keeps its creators out of `users`
    and the bot at 100).
    """
    channel = next(c for c in rooms.server.channels if c.channel_id == room)
    marker = {**rooms.state(room).get((CHANNEL_EVENT, ""), {}), "kind": kind.value}
    levels = wanted_levels(rooms.server, room, RoomKind.CHANNEL, kind, rooms)
    steps: list[Step] = [
        _set(room, CHANNEL_EVENT, marker),
        _set(room, "m.room.power_levels", levels),
    ]
    if not links:
        return steps
    for i, container in enumerate(
        containers(rooms.server, channel.category_id, channel.allowed_roles)
    ):
        link = rooms.state(container).get((SPACE_CHILD, room))
        if link and link.get("via"):
            steps.append(
                SendState(
                    name=f"link_kind_{i}",
                    room=container,
                    type=SPACE_CHILD,
                    state_key=room,
                    content={**link, CHANNEL_KIND_KEY: kind.value},
                )
            )
    return steps


def _set(room: RoomID, event_type: str, content: dict[str, Any]) -> SendState:
    return SendState(
        name=f"set_{event_type}", room=room, type=event_type, state_key="", content=content
    )


# -- creating ------------------------------------------------------------------------------------


def create_channel_plan(
    rooms: ServerRooms,
    *,
    name: str,
    kind: ChannelKind,
    topic: str,
    parent: RoomID,
    allowed_roles: tuple[str, ...] | None,
    order: str,
    power_levels: dict[str, Any],
) -> Plan:
    """A restricted room naming its parent (the space, or a category), linked from it or,
    when gated, from its roles' rooms (`containers`)."""
    server, via = rooms.server, rooms.via
    body = channel_body(
        server_id=server.server_id,
        name=name,
        kind=kind,
        topic=topic,
        default=False,
        gate_rooms=gate_rooms(server, allowed_roles),
        power_levels=power_levels,
        via=via,
    )
    if parent != server.server_id:
        # channel_body links a channel to the space; one in a category names the category.
        for event in body["initial_state"]:
            if event["type"] == SPACE_PARENT:
                event["state_key"] = parent
    create = CreateRoom(name="channel", body=body)
    category = None if parent == server.server_id else parent
    links: list[Step] = [
        link_steps(
            f"link_{i}",
            parent=container,
            child=Ref("channel", "room_id"),
            order=order,
            via=via,
            kind=kind,
        )
        for i, container in enumerate(containers(server, category, allowed_roles))
    ]
    return Plan.of([create], links)


def create_category_plan(
    rooms: ServerRooms, *, name: str, order: str, power_levels: dict[str, Any]
) -> Plan:
    server, via = rooms.server, rooms.via
    body = category_body(server_id=server.server_id, name=name, power_levels=power_levels, via=via)
    create = CreateRoom(name="category", body=body)
    link = link_steps(
        "link",
        parent=server.server_id,
        child=Ref("category", "room_id"),
        order=order,
        via=via,
        kind=None,
    )
    return Plan.of([create], [link])


# -- deleting ------------------------------------------------------------------------------------


def close_room_steps(
    room: RoomID, reason: str, *, prefix: str
) -> tuple[list[Step], list[Step], list[Step]]:
    """Close a room to joins, remove everyone from it, then the bot leaves: three stages.

    Who is inside is read when the emptying step runs, after the close: a join of the last
    moment cannot slip through (bridge/engine/steps.py EmptyRoom).
    """
    close: list[Step] = [
        SendState(
            name=f"{prefix}_close",
            room=room,
            type=JOIN_RULES,
            state_key="",
            content={"join_rule": "invite"},
        )
    ]
    empty: list[Step] = [EmptyRoom(name=f"{prefix}_empty", room=room, reason=reason)]
    leave: list[Step] = [Leave(name=f"{prefix}_leave", room=room)]
    return close, empty, leave


def delete_channel_plan(rooms: ServerRooms, channel: Channel) -> Plan:
    """Unlink the channel and close it, empty it, then the bot leaves: nobody can join again.

    Unlinked from every container that links it: its parent, and the role rooms a gate put
    it in (those of its roles now, and any a stale gate left).
    """
    server = rooms.server
    room = channel.channel_id
    parent = channel.category_id or server.server_id
    close, empty, leave = close_room_steps(room, CHANNEL_DELETED_REASON, prefix="channel")
    linking = [parent, *(r.room_id for r in server.roles if r.room_id is not None)]
    unlink: list[Step] = [
        SendState(
            name=f"unlink_child_{i}", room=container, type=SPACE_CHILD, state_key=room, content={}
        )
        for i, container in enumerate(dict.fromkeys(linking))
        if (rooms.state(container).get((SPACE_CHILD, room)) or {}).get("via")
    ]
    unlink.append(
        SendState(name="unlink_parent", room=room, type=SPACE_PARENT, state_key=parent, content={})
    )
    return _plan(close + unlink, empty, leave)


def delete_category_plan(rooms: ServerRooms, category: RoomID) -> Plan:
    """Move the category's channels to the top level (after the existing children), then close
    the category room, empty it and leave it."""
    server, via = rooms.server, rooms.via
    space = server.server_id
    others = child_orders(rooms, space, besides=category)
    start = next_index(others)
    channels = [c for c in server.channels if c.category_id == category]
    relink: list[Step] = []
    unlink: list[Step] = [
        SendState(
            name="unlink_category", room=space, type=SPACE_CHILD, state_key=category, content={}
        )
    ]
    for i, moved in enumerate(channels):
        channel = moved.channel_id
        # A private channel stays linked from its roles' rooms, at its new place.
        for j, container in enumerate(containers(server, None, moved.allowed_roles)):
            relink.append(
                link_steps(
                    f"relink_{i}_{j}",
                    parent=container,
                    child=channel,
                    order=order_key(start + i),
                    via=via,
                    kind=moved.kind,
                    previous=rooms.state(container).get((SPACE_CHILD, channel)),
                )
            )
        relink.append(
            SendState(
                name=f"reparent_{i}",
                room=channel,
                type=SPACE_PARENT,
                state_key=space,
                content={"via": [via], "canonical": True},
            )
        )
        unlink.append(
            SendState(
                name=f"unparent_{i}",
                room=channel,
                type=SPACE_PARENT,
                state_key=category,
                content={},
            )
        )
        if (rooms.state(category).get((SPACE_CHILD, channel)) or {}).get("via"):
            unlink.append(
                SendState(
                    name=f"unchild_{i}",
                    room=category,
                    type=SPACE_CHILD,
                    state_key=channel,
                    content={},
                )
            )
    close, empty, leave = close_room_steps(category, CATEGORY_DELETED_REASON, prefix="category")
    return _plan(relink, unlink + close, empty, leave)


def _plan(*stages: list[Step]) -> Plan:
    # A stage with nothing to do (no members to remove, no channels to move) is left out.
    return Plan.of(*[stage for stage in stages if stage])
