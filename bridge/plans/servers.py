"""The plans of server-wide operations: pure functions from the model to steps, no I/O.

Each function returns a `Plan` the journal stores before anything runs, so an operation
interrupted by a crash resumes where it stopped (bridge/engine/journal.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bridge.engine.steps import (
    AutoJoinInvite,
    CreateRoom,
    EmptyRoom,
    Leave,
    Plan,
    Ref,
    SendMessage,
    SendState,
    Step,
)
from bridge.plans.levels import levels_plan, new_room_levels
from bridge.plans.rooms import ServerRooms
from guilds.config import ServerTemplate
from guilds.ids import RoomID, UserID
from guilds.layout import (
    category_body,
    channel_body,
    role_link,
    role_room_body,
    server_content,
    space_body,
    space_child,
)
from guilds.model import (
    BUILTIN_ROLES,
    BuiltinRole,
    Permission,
    Role,
    Server,
    ServerState,
    order_key,
)
from guilds.rules import SPACE_CHILD, RoomKind
from guilds.vocabulary import NAMESPACE, ROLE_EVENT, SERVER_EVENT, ChannelKind

DEFAULT_CHANNEL_NAME = "general"
# State in the space of a server declared in guilds.yaml: `{"key": <its key under servers:>}`.
DECLARED_EVENT = f"{NAMESPACE}.declared"
# Built-in roles that have a role room (everyone holds `member`: it needs none).
ROLE_ROOM_ROLES = (BuiltinRole.ADMIN.value, BuiltinRole.MODERATOR.value)


def provisional_server(
    owner: UserID,
    name: str,
    topic: str,
    icon: str | None,
    roles: tuple[Role, ...] = BUILTIN_ROLES,
) -> Server:
    """The model of a server not yet created: enough to derive its first power levels."""
    return Server(
        server_id=RoomID("!new"),
        name=name,
        topic=topic,
        icon=icon,
        state=ServerState(owner, RoomID("!new-general")),
        roles=roles,
        members=frozenset({owner}),
    )


def template_roles(template: ServerTemplate) -> tuple[Role, ...]:
    """The template's custom roles, most senior first, all just above `member` as new roles
    start (below moderator, so moderators can act on their holders until moved up)."""
    count = len(template.roles)
    return tuple(
        Role(
            role.role_id,
            role.name,
            role.color,
            role.power,
            count - i,
            frozenset(Permission(p) for p in role.permissions),
        )
        for i, role in enumerate(template.roles)
    )


def is_plain(template: ServerTemplate | None) -> bool:
    """Whether the template builds exactly today's server (the built-in `default`)."""
    return template is None or (
        not template.roles
        and not template.categories
        and not template.channels
        and template.welcome_message is None
        and template.default_channel == DEFAULT_CHANNEL_NAME
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
    template: ServerTemplate | None = None,
    declared: str | None = None,
) -> Plan:
    """A space with its roles and role rooms, and a `general` text channel linked into it.

    A template adds its custom roles (with role rooms), categories, channels (gated by role
    rooms) and a welcome message to the same plan, so a crash never leaves half a layout; the
    built-in `default` template is exactly the plan without one.
    """
    custom = () if template is None else template_roles(template)
    server = provisional_server(owner, name, topic, icon, (*BUILTIN_ROLES, *custom))

    def levels(kind: RoomKind, channel_kind: ChannelKind | None = None) -> dict[str, Any]:
        return new_room_levels(server, kind, channel_kind, bot=bot, room_version=room_version)

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
            roles=[*BUILTIN_ROLES, *custom],
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
        role_links += _role_steps(step, role, space_id, via)
    for i, role in enumerate(custom):
        step = f"custom_role_{i}"
        body = role_room_body(
            server_id=space_id, role=role, power_levels=levels(RoomKind.ROLE_ROOM)
        )
        role_rooms.append(CreateRoom(name=step, body=body))
        role_links += _role_steps(step, role, space_id, via)
    general = CreateRoom(
        name="general",
        body=channel_body(
            server_id=space_id,
            name=DEFAULT_CHANNEL_NAME if template is None else template.default_channel,
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
        content=space_child(order_key(0), via, ChannelKind.TEXT),
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
    if is_plain(template) and declared is None:
        return Plan.of([space], [*role_rooms, general], [link, mark, *role_links], invites)
    layout: tuple[list[Step], list[Step], list[Step]] = ([], [], [])
    if template is not None:
        layout = _template_layout(template, custom, levels, via)
    if declared is not None:
        # Where a declared server is found again, on every start and `guilds apply`.
        layout[1].append(
            SendState(
                name="declared",
                room=space_id,
                type=DECLARED_EVENT,
                state_key="",
                content={"key": declared},
            )
        )
    return Plan.of(
        [space],
        [*role_rooms, general, *layout[0]],
        [link, mark, *role_links, *layout[1]],
        [*invites, *layout[2]],
    )


def _role_steps(step: str, role: Role, space_id: Any, via: str) -> list[Step]:
    """The role's state in the space naming its room (made by `step`), and the space's link to
    that room, which keeps it out of other clients' space bars (guilds.layout.role_link)."""
    room = Ref(step, "room_id")
    return [
        SendState(
            name=f"{step}_state",
            room=space_id,
            type=ROLE_EVENT,
            state_key=role.role_id,
            content=_with_room(role, room).content(),
        ),
        SendState(
            name=f"{step}_link",
            room=space_id,
            type=SPACE_CHILD,
            state_key=room,
            content=role_link(via),
        ),
    ]


def _role_room_ref(role_id: str, custom: tuple[Role, ...]) -> Ref:
    for i, role in enumerate(custom):
        if role.role_id == role_id:
            return Ref(f"custom_role_{i}", "room_id")
    return Ref(f"role_{role_id}", "room_id")


def _template_layout(
    template: ServerTemplate, custom: tuple[Role, ...], levels: Any, via: str
) -> tuple[list[Step], list[Step], list[Step]]:
    """The template's categories (stage 2), channels and category links (stage 3), channel
    links and the welcome message (stage 4) of a create_server plan."""
    space_id: Any = Ref("space", "room_id")
    categories: list[Step] = []
    category_links: list[Step] = []
    category_step: dict[str, str] = {}
    # The space's children: general first, then the top-level channels and categories in the
    # template's order; each category's channels are ordered within it.
    top = 1
    for i, name in enumerate(template.categories):
        step = f"category_{i}"
        category_step[name] = step
        categories.append(
            CreateRoom(
                name=step,
                body=category_body(
                    server_id=space_id, name=name, power_levels=levels(RoomKind.CATEGORY), via=via
                ),
            )
        )
    channels: list[Step] = []
    channel_links: list[Step] = []
    inside: dict[str, int] = {}
    top_items: list[tuple[str, Any, Any]] = []
    for i, channel in enumerate(template.channels):
        kind = ChannelKind(channel.kind)
        gate: Any = None
        if channel.allowed_roles is not None:
            gate = [
                _role_room_ref(role_id, custom)
                for role_id in (BuiltinRole.ADMIN.value, *channel.allowed_roles)
            ]
        body = channel_body(
            server_id=space_id,
            name=channel.name,
            kind=kind,
            topic=channel.topic,
            default=False,
            gate_rooms=gate,
            power_levels=levels(RoomKind.CHANNEL, kind),
            via=via,
        )
        step = f"channel_{i}"
        if channel.category is not None:
            parent: Any = Ref(category_step[channel.category], "room_id")
            for event in body["initial_state"]:
                if event["type"] == "m.space.parent":
                    event["state_key"] = parent
            order = inside.get(channel.category, 0)
            inside[channel.category] = order + 1
            channel_links += _channel_links(step, gate or [parent], order_key(order), via, kind)
        else:
            top_items.append((step, channel, gate))
        channels.append(CreateRoom(name=step, body=body))
    for step in category_step.values():
        top_items.append((step, None, None))
    # Top-level channels before categories, as Discord lists them.
    for index, (step, channel, gate) in enumerate(top_items, start=top):
        if channel is not None:
            kind = ChannelKind(channel.kind)
            channel_links += _channel_links(step, gate or [space_id], order_key(index), via, kind)
            continue
        category_links.append(
            SendState(
                name=f"link_{step}",
                room=space_id,
                type="m.space.child",
                state_key=Ref(step, "room_id"),
                content=space_child(order_key(index), via, None),
            )
        )
    late: list[Step] = list(channel_links)
    if template.welcome_message is not None:
        late.append(
            SendMessage(
                name="welcome",
                room=Ref("general", "room_id"),
                content={"msgtype": "m.text", "body": template.welcome_message},
            )
        )
    return categories, [*category_links, *channels], late


def _channel_links(
    step: str, containers: list[Any], order: str, via: str, kind: ChannelKind
) -> list[Step]:
    """The links to a template's channel: from its parent, or, when gated, from its roles'
    rooms alone (bridge.plans.channels.containers; docs/DESIGN.md, "Private channels")."""
    return [
        SendState(
            name=f"link_{step}" if i == 0 else f"link_{step}_{i}",
            room=container,
            type="m.space.child",
            state_key=Ref(step, "room_id"),
            content=space_child(order, via, kind),
        )
        for i, container in enumerate(containers)
    ]


def _with_room(role: Role, room: Any) -> Role:
    # `room` is a Ref until the plan runs; the journal resolves it inside the state content.
    return Role(
        role.role_id, role.name, role.color, role.power, role.position, role.permissions, room
    )


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


def transfer_plan(rooms: ServerRooms, owner: UserID) -> Plan:
    """Make `owner` the owner: the marker, the admin role room, then every room's power levels.

    The new owner joins the admin role room, since gated channels admit by role-room
    membership (issue 15: an owner outside it was refused a channel gated to admins); the
    power levels are derived from the server as it is after the transfer.
    """
    server = rooms.server
    after = replace(server, state=replace(server.state, owner=owner))
    stages: list[list[Step]] = [
        [SendState("owner", server.server_id, SERVER_EVENT, "", after.state.content())]
    ]
    admin = server.role(BuiltinRole.ADMIN.value)
    if admin is not None and admin.room_id is not None:
        if owner not in rooms.joined_or_invited(admin.room_id):
            stages.append([AutoJoinInvite("owner_admin", admin.room_id, owner)])
    stages.extend(list(stage) for stage in levels_plan(after, rooms).stages)
    return Plan.of(*stages)
