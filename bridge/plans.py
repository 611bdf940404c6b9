"""The plans of server-wide operations: pure functions from the model to steps, no I/O.

Each function returns a `Plan` the journal stores before anything runs, so an operation
interrupted by a crash resumes where it stopped (bridge/operations.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bridge.steps import AutoJoinInvite, CreateRoom, EmptyRoom, Leave, Plan, Ref, SendState, Step
from guilds.ids import RoomID, UserID
from guilds.layout import channel_body, role_room_body, server_content, space_body, space_child
from guilds.model import BUILTIN_ROLES, BuiltinRole, Role, Server, ServerState, order_key
from guilds.powerlevels import derive_power_levels
from guilds.rules import RoomKind
from guilds.vocabulary import ROLE_EVENT, SERVER_EVENT, ChannelKind

DEFAULT_CHANNEL_NAME = "general"
# Built-in roles that have a role room (everyone holds `member`: it needs none).
ROLE_ROOM_ROLES = (BuiltinRole.ADMIN.value, BuiltinRole.MODERATOR.value)

RoomStates = Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]


def provisional_server(owner: UserID, name: str, topic: str, icon: str | None) -> Server:
    """The model of a server not yet created: enough to derive its first power levels."""
    return Server(
        server_id=RoomID("!new"),
        name=name,
        topic=topic,
        icon=icon,
        state=ServerState(owner, RoomID("!new-general")),
        roles=BUILTIN_ROLES,
        members=frozenset({owner}),
    )


def create_server_plan(
    *,
    owner: UserID,
    name: str,
    topic: str,
    icon: str | None,
    bot: UserID,
    room_version: str,
    via: str,
) -> Plan:
    """A space with its roles and role rooms, and a `general` text channel linked into it."""
    server = provisional_server(owner, name, topic, icon)

    def levels(kind: RoomKind, channel_kind: ChannelKind | None = None) -> dict[str, Any]:
        return derive_power_levels(
            server, kind, bot=bot, room_version=room_version, channel_kind=channel_kind
        )

    # Refs stand for room ids until the journal resolves them, inside any content.
    space_id: Any = Ref("space", "room_id")
    general_id: Any = Ref("general", "room_id")
    # The space first, its roles without rooms yet; then the role rooms, created knowing their
    # server (the module finds a role room's server in its creation content), and general.
    space = CreateRoom(
        name="space",
        body=space_body(
            name=name,
            topic=topic,
            icon=icon,
            roles=list(BUILTIN_ROLES),
            power_levels=levels(RoomKind.SPACE),
        ),
    )
    role_rooms: list[Step] = []
    role_links: list[Step] = []
    for role in BUILTIN_ROLES:
        if role.role_id not in ROLE_ROOM_ROLES:
            continue
        step = f"role_{role.role_id}"
        body = role_room_body(
            server_id=space_id, role=role, power_levels=levels(RoomKind.ROLE_ROOM)
        )
        role_rooms.append(CreateRoom(name=step, body=body))
        role_links.append(
            SendState(
                name=f"{step}_state",
                room=space_id,
                type=ROLE_EVENT,
                state_key=role.role_id,
                content=_with_room(role, Ref(step, "room_id")).content(),
            )
        )
    general = CreateRoom(
        name="general",
        body=channel_body(
            server_id=space_id,
            name=DEFAULT_CHANNEL_NAME,
            kind=ChannelKind.TEXT,
            topic="",
            default=True,
            gate_rooms=None,
            power_levels=levels(RoomKind.DEFAULT_CHANNEL, ChannelKind.TEXT),
            via=via,
        ),
    )
    link = SendState(
        name="link_general",
        room=Ref("space", "room_id"),
        type="m.space.child",
        state_key=Ref("general", "room_id"),
        content=space_child(order_key(0), via),
    )
    mark = SendState(
        name="server",
        room=Ref("space", "room_id"),
        type=SERVER_EVENT,
        state_key="",
        content=server_content(owner, general_id),
    )
    # Invites the module accepts for the owner, so the server ends whole even if the bridge
    # crashed before the API request could join them itself.
    invites = [
        AutoJoinInvite(name="invite_owner_space", room=Ref("space", "room_id"), user=owner),
        AutoJoinInvite(name="invite_owner_admin", room=Ref("role_admin", "room_id"), user=owner),
    ]
    return Plan.of([space], [*role_rooms, general], [link, mark, *role_links], invites)


def _with_room(role: Role, room: Any) -> Role:
    # `room` is a Ref until the plan runs; the journal resolves it inside the state content.
    return Role(
        role.role_id, role.name, role.color, role.power, role.position, role.permissions, room
    )


def joined_or_invited(states: RoomStates, room_id: RoomID) -> set[UserID]:
    return {
        UserID(key)
        for (event_type, key), content in states.get(room_id, {}).items()
        if event_type == "m.room.member" and content.get("membership") in ("join", "invite")
    }


def delete_server_plan(server: Server, rooms: Iterable[RoomID]) -> Plan:
    """Close every room of the server to joins, empty it, then the bot leaves: it is gone.

    Who is inside is read as each room is emptied, after it was closed, so a join of the last
    moment (the module joining a new member to the default channel) is not missed. The space
    goes last, so until the end its members still see why. With every join rule `invite` and
    nobody left to invite, no one can join again.
    """
    others = [r for r in rooms if r != server.server_id]
    close = [
        SendState(
            name=f"close_{i}",
            room=room,
            type="m.room.join_rules",
            state_key="",
            content={"join_rule": "invite"},
        )
        for i, room in enumerate([*others, server.server_id])
    ]
    kicks: list[Step] = [
        EmptyRoom(name=f"empty_{i}", room=room, reason="The server was deleted")
        for i, room in enumerate([*others, server.server_id])
    ]
    leaves = [Leave(name=f"leave_{i}", room=room) for i, room in enumerate(others)]
    return Plan.of(close, kicks, leaves, [Leave(name="leave_space", room=server.server_id)])
