"""A server held compacted: what the directory (bridge/readback/directory.py) keeps of an idle
server, and the measure of what it holds."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, is_dataclass
from typing import Any

from guilds.ids import RoomID, UserID
from guilds.rules import RoomKind
from guilds.vocabulary import ChannelKind


def deep_size(value: object) -> int:
    """Bytes of `value` and what it holds (dicts, lists, tuples, dataclass fields), as
    `sys.getsizeof` counts them; strings shared with other objects are counted each time."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k) + deep_size(v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        size += sum(deep_size(v) for v in value)
    elif is_dataclass(value) and hasattr(value, "__dict__"):
        size += sys.getsizeof(value.__dict__) + sum(deep_size(v) for v in vars(value).values())
    return size


@dataclass(frozen=True, slots=True)
class Compacted:
    """A server held compacted: its rooms' state as compressed JSON, and the few facts read
    across every server (membership, ownership, room kinds, call memberships) kept aside so
    that reading them does not bring the server back."""

    # zlib-compressed JSON: [[room_id, RoomStates.export(room_id)], …]
    blob: bytes
    # Whether the state assembled into a model (`get` answers None for it otherwise).
    readable: bool
    owner: UserID | None
    # "\n"-separated and framed user ids: `Server.is_member` true for them (owner included).
    members: str
    # Joined to some room of the server without being a member (see `joined_users`).
    joined_elsewhere: str
    owner_joined: bool
    kinds: tuple[tuple[RoomID, RoomKind, ChannelKind | None], ...]
    # The space's entries of KEPT_SPACE_TYPES, (type, state_key) -> content.
    kept: dict[tuple[str, str], dict[str, Any]]
    # Call memberships with content (room, state_key, content): rare, and read every sweep.
    calls: tuple[tuple[RoomID, str, dict[str, Any]], ...]
    # The space's `m.space.child` entries (room, content) for rooms the server does not track
    # (the bot could not read them): what `ServerDirectory.space_links` looks for when the bot
    # may adopt such a room. Rare.
    links: tuple[tuple[RoomID, dict[str, Any]], ...] = ()

    def size(self) -> int:
        """Bytes held, measured (not estimated): what compaction leaves of the server."""
        return (
            sys.getsizeof(self.blob)
            + sys.getsizeof(self.members)
            + sys.getsizeof(self.joined_elsewhere)
            + deep_size(self.kinds)
            + deep_size(self.kept)
            + deep_size(self.calls)
            + deep_size(self.links)
        )


def framed(users: Iterable[str]) -> str:
    """User ids one a line, framed by newlines, so `f"\n{user}\n" in framed` is a lookup
    (user ids never contain a newline)."""
    return "\n" + "\n".join(sorted(users)) + "\n" if users else ""


def in_framed(framed: str, user: str) -> bool:
    return bool(framed) and f"\n{user}\n" in framed
