"""How each Guilds room is laid out in Matrix: the `createRoom` bodies and the links between rooms.

The bridge builds its plans from these functions, the module recognises rooms by what they
write, and the tests check rooms against them, so the shape of a Guilds room is defined once.
Power levels are passed in (derived by `guilds.powerlevels`), never invented here.
"""

from __future__ import annotations

from typing import Any

from guilds.ids import RoomID, UserID
from guilds.model import CATEGORY_EVENT, Role
from guilds.vocabulary import (
    CHANNEL_EVENT,
    CHANNEL_KIND_KEY,
    ROLE_EVENT,
    ROLE_ROOM_KEY,
    SERVER_EVENT,
    SPACE_ROOM_TYPE,
    ChannelKind,
)

# Invites the bot sends with this flag in their content are accepted by the module on the
# invitee's behalf (role rooms, default channels, the creator's own new server).
AUTO_JOIN_KEY = "chat.guilds.auto_join"

# Rooms created by Guilds are never published in the room directory.
_PRIVATE = {"visibility": "private"}


def _state(event_type: str, content: dict[str, Any], state_key: str = "") -> dict[str, Any]:
    return {"type": event_type, "state_key": state_key, "content": content}


def _common(name: str, topic: str, power_levels: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        **_PRIVATE,
        "name": name,
        "power_level_content_override": power_levels,
        "initial_state": [
            # Members see the history of a channel from before they joined, as in Discord.
            _state("m.room.history_visibility", {"history_visibility": "shared"}),
            _state("m.room.guest_access", {"guest_access": "forbidden"}),
        ],
    }
    if topic:
        body["topic"] = topic
    return body


def space_body(
    *,
    name: str,
    topic: str,
    icon: str | None,
    roles: list[Role],
    power_levels: dict[str, Any],
) -> dict[str, Any]:
    """The server's space: invite-only, with one `<ns>.role` state event per role."""
    body = _common(name, topic, power_levels)
    body["creation_content"] = {"type": SPACE_ROOM_TYPE}
    body["preset"] = "private_chat"
    state = body["initial_state"]
    state.append(_state("m.room.join_rules", {"join_rule": "invite"}))
    if icon:
        state.append(_state("m.room.avatar", {"url": icon}))
    for role in roles:
        state.append(_state(ROLE_EVENT, role.content(), role.role_id))
    return body


def server_content(owner: UserID, default_channel: RoomID) -> dict[str, Any]:
    return {"owner": owner, "default_channel": default_channel}


def channel_allow(server_id: RoomID, gate_rooms: list[RoomID] | None) -> list[dict[str, str]]:
    """The restricted join rule's `allow`: the space, or only the gating role rooms."""
    rooms = [server_id] if gate_rooms is None else gate_rooms
    return [{"type": "m.room_membership", "room_id": room_id} for room_id in rooms]


def channel_body(
    *,
    server_id: RoomID,
    name: str,
    kind: ChannelKind,
    topic: str,
    default: bool,
    gate_rooms: list[RoomID] | None,
    power_levels: dict[str, Any],
    via: str,
) -> dict[str, Any]:
    """A channel: a restricted room, child of the space (the parent link is set here)."""
    body = _common(name, topic, power_levels)
    body["preset"] = "private_chat"
    body["initial_state"] += [
        _state(CHANNEL_EVENT, {"kind": kind.value, "server_id": server_id, "default": default}),
        _state(
            "m.room.join_rules",
            {"join_rule": "restricted", "allow": channel_allow(server_id, gate_rooms)},
        ),
        _state("m.space.parent", {"via": [via], "canonical": True}, server_id),
    ]
    return body


def category_body(
    *, server_id: RoomID, name: str, power_levels: dict[str, Any], via: str
) -> dict[str, Any]:
    """A category: a sub-space of the server, restricted to its members like a channel."""
    body = _common(name, "", power_levels)
    body["creation_content"] = {"type": SPACE_ROOM_TYPE}
    body["preset"] = "private_chat"
    body["initial_state"] += [
        _state(CATEGORY_EVENT, {"server_id": server_id}),
        _state(
            "m.room.join_rules",
            {"join_rule": "restricted", "allow": channel_allow(server_id, None)},
        ),
        _state("m.space.parent", {"via": [via], "canonical": True}, server_id),
    ]
    return body


def role_room_body(
    *, server_id: RoomID, role: Role, power_levels: dict[str, Any]
) -> dict[str, Any]:
    """A role room: its membership is the role assignment.

    A space, so that other clients keep it out of their room lists, linked from the server's
    space (`role_link`) so that it is no space of its own in their space bars; it links only the
    private channels its role opens (docs/DESIGN.md, "Private channels"), and Cinny shows no
    sub-space without rooms (docs/CLIENTS.md). Its server is in its
    creation content, which nobody can change afterwards: that is where the module looks it up.
    """
    body = _common(f"{role.name} (role)", "", power_levels)
    body["creation_content"] = {
        "type": SPACE_ROOM_TYPE,
        ROLE_ROOM_KEY: True,
        "server_id": server_id,
        "role_id": role.role_id,
    }
    body["preset"] = "private_chat"
    body["initial_state"].append(_state("m.room.join_rules", {"join_rule": "invite"}))
    return body


def role_link(via: str) -> dict[str, Any]:
    """Content of the server space's `m.space.child` linking a role room (a space) into it.

    Never suggested, and no order: it is there so that clients nest the role room under the
    server instead of showing it as a space of its own. Members without the role cannot see
    the room behind it (`/hierarchy` leaves out rooms one may not join). Marked, so that the
    channels' and categories' order never counts it (`guilds.snapshot.children`).
    """
    return {"via": [via], "suggested": False, ROLE_ROOM_KEY: True}


def space_child(order: str, via: str, kind: ChannelKind | None) -> dict[str, Any]:
    """Content of the `m.space.child` event linking a channel or category into its parent.

    A channel's link carries its kind (`kind`; None for a category, or where a caller rewrites
    only the order and keeps what the link held): other clients read `/hierarchy` before
    joining, and a channel's own state is unreadable until then. The kind is not a room type
    in `m.room.create`: that cannot change when a channel is retyped, and Element reads its own
    video-room types as "join Element Call here", a call Guilds members are not in.
    """
    content: dict[str, Any] = {"via": [via], "order": order, "suggested": True}
    if kind is not None:
        content[CHANNEL_KIND_KEY] = kind.value
    return content


def auto_join_invite(reason: str | None = None) -> dict[str, Any]:
    """Extra content of a bot invite that the module accepts on the invitee's behalf."""
    content: dict[str, Any] = {AUTO_JOIN_KEY: True}
    if reason:
        content["reason"] = reason
    return content


__all__ = [
    "AUTO_JOIN_KEY",
    "SERVER_EVENT",
    "auto_join_invite",
    "category_body",
    "channel_allow",
    "channel_body",
    "role_link",
    "role_room_body",
    "server_content",
    "space_body",
    "space_child",
]
