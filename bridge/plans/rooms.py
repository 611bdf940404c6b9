"""A server's rooms as every plan reads them: its model, what each room is, their state, the bot.

One object passed once, as mautrix passes its `StateStore`: plans (bridge/plans/), services
(bridge/services/) and read-back (bridge/readback/) take a `ServerRooms` instead of threading
the room kinds, the room states and the bot through every call. It is built in one place,
from the directory (`bridge.readback.rooms.RoomsReader`); the pure tests build it from plain
dictionaries.

A plan about the server as an operation will leave it (a role granted, a member kicked) takes
that model as its own argument (`after`) beside the rooms as they are now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from guilds.ids import RoomID, UserID
from guilds.model import Server
from guilds.rules import RoomKind
from guilds.vocabulary import ChannelKind

# Room id -> (event type, state key) -> content: the state of the rooms the bridge tracks.
RoomStates = Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]
# Each room of a server and what it is, as power levels and rules need to know.
RoomKinds = Sequence[tuple[RoomID, RoomKind, ChannelKind | None]]


@dataclass(frozen=True)
class ServerRooms:
    """What planning needs of one server: its model, what each room is, their state, the bot."""

    server: Server
    kinds: RoomKinds
    # The state of every tracked room (those of other servers included: a room being adopted
    # is not one of this server's yet).
    states: RoomStates
    bot: UserID
    # The homeserver named in `via` of the space links the bot writes.
    via: str
    # Whether every member is in every channel they may enter (policy `join_channels: all`),
    # not only in the default channel.
    join_all_channels: bool = False
    # Rooms of the server the bot has left (a deleted channel or category) that a container
    # may still link: a client linked one again while it was being deleted. The directory
    # does not track them (nothing in them can be changed), so they are named here.
    left: frozenset[RoomID] = frozenset()

    def state(self, room: RoomID) -> Mapping[tuple[str, str], Mapping[str, Any]]:
        """One room's state; empty for a room not tracked."""
        return self.states.get(room, {})

    def joined_or_invited(self, room: RoomID) -> set[UserID]:
        """Who is in the room or invited to it (the bot included)."""
        return {
            UserID(key)
            for (event_type, key), content in self.state(room).items()
            if event_type == "m.room.member" and content.get("membership") in ("join", "invite")
        }

    def with_model(self, server: Server) -> ServerRooms:
        """The same rooms, read with another model of the server (one counting pending roles)."""
        return replace(self, server=server)

    def only(self, rooms: Iterable[RoomID]) -> ServerRooms:
        """The same context, over the listed rooms alone."""
        kept = set(rooms)
        return replace(self, kinds=[k for k in self.kinds if k[0] in kept])

    def without(self, room: RoomID) -> ServerRooms:
        """The same context without one room (a role room being deleted)."""
        return replace(self, kinds=[k for k in self.kinds if k[0] != room])

    def modelled(self) -> ServerRooms:
        """The rooms the model knows: the space, its channels, categories and role rooms.

        The directory may track a room the model leaves out for a moment (a deleted role's room
        before the bot has left it); derivation compares only the rooms the model names.
        """
        server = self.server
        known = {
            server.server_id,
            *(c.channel_id for c in server.channels),
            *(c.category_id for c in server.categories),
            *(room for r in server.roles for room in r.room_ids),
        }
        return self.only(known)
