"""Event types, room types and channel kinds: the names Guilds writes into Matrix rooms."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# The one reverse-DNS namespace of every custom event and room type.
NAMESPACE: Final = "chat.guilds"

# State in the server's space marking it as a Guilds server (owner, default channel, settings).
SERVER_EVENT: Final = f"{NAMESPACE}.server"
# State in a channel room: its kind and whether it is the server's default channel.
CHANNEL_EVENT: Final = f"{NAMESPACE}.channel"
# State in the space, one per role (state key = role id); also the creation type of role rooms.
ROLE_EVENT: Final = f"{NAMESPACE}.role"
ROLE_ROOM_TYPE: Final = f"{NAMESPACE}.role"

# In a channel's `m.space.child` content: its kind ("text", "voice", "video"), readable from the
# space by any client before joining (docs/CLIENTS.md): the channel's own state is not.
CHANNEL_KIND_KEY: Final = f"{NAMESPACE}.kind"

# The MatrixRTC call membership that Element Call writes too.
CALL_MEMBER_EVENT: Final = "org.matrix.msc3401.call.member"

SPACE_ROOM_TYPE: Final = "m.space"

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
