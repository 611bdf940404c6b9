"""Event types, room types and channel kinds: the names Guilds writes into Matrix rooms."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

# The one reverse-DNS namespace of every custom event and room type.
NAMESPACE: Final = "chat.guilds"

# State in the server's space marking it as a Guilds server (owner, default channel, settings).
SERVER_EVENT: Final = f"{NAMESPACE}.server"
# State in a channel room: its kind and whether it is the server's default channel.
CHANNEL_EVENT: Final = f"{NAMESPACE}.channel"
# State in the space, one per role (state key = role id).
ROLE_EVENT: Final = f"{NAMESPACE}.role"
# Role rooms are created as spaces marked `ROLE_ROOM_KEY: true` in their creation content, and
# linked from their server's space: every client keeps spaces out of its room list, and one
# linked from a space the user is in is no space of its own in the sidebar (docs/CLIENTS.md).
# Role rooms made before that have the creation type ROLE_ROOM_TYPE, which clients list as a
# room; a room's type never changes, so both are read.
ROLE_ROOM_KEY: Final = f"{NAMESPACE}.role_room"
ROLE_ROOM_TYPE: Final = f"{NAMESPACE}.role"

# In a channel's `m.space.child` content: its kind ("text", "voice", "video"), readable from the
# space by any client before joining (docs/CLIENTS.md): the channel's own state is not.
CHANNEL_KIND_KEY: Final = f"{NAMESPACE}.kind"

# The MatrixRTC call membership that Element Call writes too.
CALL_MEMBER_EVENT: Final = "org.matrix.msc3401.call.member"

SPACE_ROOM_TYPE: Final = "m.space"


def is_role_room(create: Mapping[str, Any] | None) -> bool:
    """Whether this `m.room.create` content is a role room's, of either shape."""
    if create is None:
        return False
    return create.get("type") == ROLE_ROOM_TYPE or (
        create.get("type") == SPACE_ROOM_TYPE and create.get(ROLE_ROOM_KEY) is True
    )


# The Synapse module's one HTTP endpoint, on every Synapse process, for the bridge alone (its
# appservice token): "this local user's membership in this room changed; do what Guilds does".
MODULE_MEMBERSHIP_PATH: Final = "/_synapse/client/guilds/v1/membership"


class ChannelKind(StrEnum):
    TEXT = "text"
    VOICE = "voice"
    VIDEO = "video"

    @property
    def has_calls(self) -> bool:
        return self is not ChannelKind.TEXT
