"""Reading the few state entries a Guilds rule needs, through Synapse's public ModuleApi only.

Nothing here loads a room's whole state: every read names the (type, state key) pairs it
needs, and the role lookups happen only for the event types whose rule depends on roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from synapse.module_api import EventBase, ModuleApi

from guilds.ids import RoomID, UserID
from guilds.model import (
    CATEGORY_EVENT,
    BuiltinRole,
    InvalidContent,
    Role,
    Server,
    ServerState,
    parse_role,
    parse_server_state,
)
from guilds.permissions import actor as actor_of
from guilds.rules import Actor, RoomKind, channel_kind
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT, ChannelKind, is_role_room

CREATE: Final = "m.room.create"
MEMBER: Final = "m.room.member"
JOIN_RULES: Final = "m.room.join_rules"
SPACE_PARENT: Final = "m.space.parent"
SPACE_CHILD: Final = "m.space.child"

StateMap = Mapping[tuple[str, str], EventBase]

# What tells a Guilds room apart from any other room, and which server it belongs to.
ROOM_MARKERS: Final[tuple[tuple[str, str], ...]] = (
    (SERVER_EVENT, ""),
    (CHANNEL_EVENT, ""),
    (CATEGORY_EVENT, ""),
    (CREATE, ""),
)


@dataclass(frozen=True)
class GuildsRoom:
    """What a room is to Guilds, read from its own markers (no lookup in the space yet)."""

    room_id: str
    kind: RoomKind
    server_id: str
    channel_kind: ChannelKind | None = None
    # A channel that says so itself; the space's `<ns>.server` may name it too.
    marked_default: bool = False


def content_of(state: StateMap, key: tuple[str, str]) -> Mapping[str, Any] | None:
    event = state.get(key)
    return event.content if event is not None else None


def membership_in(state: StateMap, user_id: str) -> str | None:
    content = content_of(state, (MEMBER, user_id))
    membership = content.get("membership") if content is not None else None
    return membership if isinstance(membership, str) else None


def classify(room_id: str, state: StateMap) -> GuildsRoom | None:
    """The Guilds room this state describes, or None for a room Guilds does not manage.

    `state` holds at least ROOM_MARKERS (and `m.space.parent` entries for the fallback).
    """
    if content_of(state, (SERVER_EVENT, "")) is not None:
        return GuildsRoom(room_id, RoomKind.SPACE, room_id)
    channel = content_of(state, (CHANNEL_EVENT, ""))
    if channel is not None:
        server_id = _str(channel.get("server_id")) or _canonical_parent(state)
        if server_id is None:
            return None
        return GuildsRoom(
            room_id,
            RoomKind.CHANNEL,
            server_id,
            channel_kind(channel),
            marked_default=channel.get("default") is True,
        )
    category = content_of(state, (CATEGORY_EVENT, ""))
    if category is not None:
        server_id = _str(category.get("server_id")) or _canonical_parent(state)
        return GuildsRoom(room_id, RoomKind.CATEGORY, server_id) if server_id else None
    create = content_of(state, (CREATE, ""))
    if create is not None and is_role_room(create):
        # The first role rooms of a server are created before its space, without server_id.
        server_id = _str(create.get("server_id")) or _canonical_parent(state)
        return GuildsRoom(room_id, RoomKind.ROLE_ROOM, server_id) if server_id else None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _canonical_parent(state: StateMap) -> str | None:
    """The space a channel names in `m.space.parent` (the canonical one first)."""
    linked = [
        (content.get("canonical") is not True, key)
        for (event_type, key), event in state.items()
        if event_type == SPACE_PARENT
        and isinstance((content := event.content).get("via"), list)
        and content["via"]
    ]
    return min(linked)[1] if linked else None


def allowed_rooms(join_rules: Mapping[str, Any] | None) -> list[str] | None:
    """The rooms a `restricted` join rule lets members of in, or None if it is not restricted."""
    if join_rules is None or join_rules.get("join_rule") not in ("restricted", "knock_restricted"):
        return None
    allow = join_rules.get("allow")
    if not isinstance(allow, list):
        return []
    return [
        entry["room_id"]
        for entry in allow
        if isinstance(entry, Mapping)
        and entry.get("type") == "m.room_membership"
        and isinstance(entry.get("room_id"), str)
    ]


def parse_roles(state: StateMap) -> tuple[Role, ...]:
    """Every well-formed `<ns>.role` in this (space) state; broken ones grant nothing."""
    roles = []
    for (event_type, role_id), event in state.items():
        if event_type != ROLE_EVENT or not event.content:
            continue
        try:
            roles.append(parse_role(role_id, event.content))
        except (InvalidContent, ValueError):
            continue
    return tuple(roles)


def server_state(state: StateMap) -> ServerState | None:
    content = content_of(state, (SERVER_EVENT, ""))
    if not content:
        return None
    try:
        return parse_server_state(content)
    except InvalidContent:
        return None


def admin_room(state: StateMap) -> str | None:
    """The admin role's room, whose members may enter every gated channel."""
    content = content_of(state, (ROLE_EVENT, BuiltinRole.ADMIN.value))
    if not content:
        return None
    try:
        return parse_role(BuiltinRole.ADMIN, content).room_id
    except (InvalidContent, ValueError):
        return None


class StateReader:
    """The lookups the rules and the acting callbacks make, each naming its state entries."""

    def __init__(self, api: ModuleApi) -> None:
        self._api = api

    async def read(self, room_id: str, keys: Iterable[tuple[str, str | None]]) -> StateMap:
        # Plain `str` only: a StrEnum state key makes Synapse's state filter match nothing,
        # silently (seen with Synapse 1.163 on SQLite).
        filter_ = [(str(t), None if k is None else str(k)) for t, k in keys]
        return await self._api.get_room_state(room_id, filter_)

    async def membership(self, room_id: str, user_id: str) -> str | None:
        return membership_in(await self.read(room_id, [(MEMBER, user_id)]), user_id)

    async def is_joined_to_any(self, room_ids: Iterable[str], user_id: str) -> bool:
        for room_id in room_ids:
            if await self.membership(room_id, user_id) == "join":
                return True
        return False

    async def actor(
        self,
        server_id: str,
        server: ServerState,
        roles: tuple[Role, ...],
        space_membership: str | None,
        user_id: str,
        bot: str,
    ) -> Actor:
        """The sender as the shared rules see them: roles held through role-room membership.

        One membership lookup per role with a role room (a handful); none for the owner,
        who holds every permission, nor for someone not joined to the space, who holds none.
        """
        held: set[str] = set()
        joined = space_membership == "join"
        if joined and user_id != server.owner:
            for role in roles:
                if role.role_id == BuiltinRole.MEMBER:
                    continue
                # A role moving to a new room is held through either (docs/DESIGN.md).
                for room in role.room_ids:
                    if await self.membership(room, user_id) == "join":
                        held.add(role.role_id)
                        break
        model = Server(
            server_id=RoomID(server_id),
            name="",
            topic="",
            icon=None,
            state=server,
            roles=roles,
            assignments={UserID(user_id): frozenset(held)},
            members=frozenset({UserID(user_id)}) if joined else frozenset(),
        )
        return actor_of(model, UserID(user_id), bot=UserID(bot))
