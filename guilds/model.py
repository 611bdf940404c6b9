"""The Guilds model — servers, channels, categories, roles — and how it is written in Matrix state.

This is the contract between the module, the bridge and the web UI: the content of every
Guilds state event, parsed into frozen dataclasses and rendered back. No I/O happens here.

| where                | event type      | state key | content                                  |
|----------------------|-----------------|-----------|------------------------------------------|
| server space         | `<ns>.server`   | ""        | owner, default_channel                   |
| server space         | `<ns>.role`     | role id   | name, color, power, position,            |
|                      |                 |           | permissions, room_id (None for member)   |
| channel room         | `<ns>.channel`  | ""        | kind, server_id, default                 |
| category (sub-space) | `<ns>.category` | ""        | server_id                                |
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from guilds.ids import RoomID, UserID
from guilds.vocabulary import NAMESPACE, ChannelKind

CATEGORY_EVENT: Final = f"{NAMESPACE}.category"

MAX_NAME_LENGTH: Final = 100
MAX_TOPIC_LENGTH: Final = 1024
ROLE_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
COLOR_RE: Final = re.compile(r"^#[0-9a-fA-F]{6}$")

# Power levels of the built-in roles; custom roles take 0–99.
ADMIN_POWER: Final = 100
MODERATOR_POWER: Final = 50
MEMBER_POWER: Final = 0
MAX_CUSTOM_POWER: Final = 99

# Positions: the owner ranks above every role (so above admin's 1000), a non-member below
# `member`'s 0. Roles other than admin and member live strictly between the two built-ins.
ADMIN_POSITION: Final = 1000
MEMBER_POSITION: Final = 0
OWNER_POSITION: Final = 1_000_000
NON_MEMBER_POSITION: Final = -1


class Permission(StrEnum):
    MANAGE_SERVER = "manage_server"
    MANAGE_CHANNELS = "manage_channels"
    MANAGE_ROLES = "manage_roles"
    KICK_MEMBERS = "kick_members"
    BAN_MEMBERS = "ban_members"
    CREATE_INVITES = "create_invites"
    MANAGE_MESSAGES = "manage_messages"
    SEND_MESSAGES = "send_messages"
    CONNECT = "connect"
    VIDEO = "video"


ALL_PERMISSIONS: Final = frozenset(Permission)


class BuiltinRole(StrEnum):
    ADMIN = "admin"
    MODERATOR = "moderator"
    MEMBER = "member"


@dataclass(frozen=True)
class Role:
    role_id: str
    name: str
    color: str | None
    power: int
    # Higher is more senior: nobody grants or acts at or above their own highest position.
    position: int
    permissions: frozenset[Permission]
    # The role room whose membership is the assignment; None for `member` (everyone).
    room_id: RoomID | None = None
    # While a role room of the older shape is replaced (docs/DESIGN.md, "Role rooms of the
    # older shape"): that room, whose members still hold the role until each has joined
    # `room_id`, and which gated channels still allow.
    previous_room_id: RoomID | None = None

    @property
    def builtin(self) -> bool:
        return self.role_id in BuiltinRole.__members__.values()

    def content(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "color": self.color,
            "power": self.power,
            "position": self.position,
            "permissions": sorted(self.permissions),
            "room_id": self.room_id,
            **({"previous_room_id": self.previous_room_id} if self.previous_room_id else {}),
        }

    @property
    def room_ids(self) -> tuple[RoomID, ...]:
        """The rooms whose members hold the role: its room, and the one it replaces."""
        return tuple(r for r in (self.room_id, self.previous_room_id) if r is not None)


BUILTIN_ROLES: Final[tuple[Role, ...]] = (
    Role("admin", "Admin", "#e74c3c", ADMIN_POWER, ADMIN_POSITION, ALL_PERMISSIONS),
    Role(
        "moderator",
        "Moderator",
        "#3498db",
        MODERATOR_POWER,
        500,
        frozenset(
            {
                Permission.MANAGE_CHANNELS,
                Permission.KICK_MEMBERS,
                Permission.BAN_MEMBERS,
                Permission.CREATE_INVITES,
                Permission.MANAGE_MESSAGES,
                Permission.SEND_MESSAGES,
                Permission.CONNECT,
                Permission.VIDEO,
            }
        ),
    ),
    Role(
        "member",
        "Member",
        None,
        MEMBER_POWER,
        MEMBER_POSITION,
        frozenset({Permission.SEND_MESSAGES, Permission.CONNECT, Permission.VIDEO}),
    ),
)


@dataclass(frozen=True)
class Channel:
    channel_id: RoomID
    name: str
    kind: ChannelKind
    topic: str
    category_id: RoomID | None
    order: str
    # None: every member may enter; otherwise the role ids that may (admins always may).
    allowed_roles: tuple[str, ...] | None
    default: bool = False


@dataclass(frozen=True)
class Category:
    category_id: RoomID
    name: str
    order: str


@dataclass(frozen=True)
class ServerState:
    """What the `<ns>.server` event says."""

    owner: UserID
    default_channel: RoomID

    def content(self) -> dict[str, Any]:
        return {"owner": self.owner, "default_channel": self.default_channel}


@dataclass(frozen=True)
class Server:
    server_id: RoomID
    name: str
    topic: str
    icon: str | None
    state: ServerState
    roles: tuple[Role, ...]
    channels: tuple[Channel, ...] = ()
    categories: tuple[Category, ...] = ()
    # user id -> the role ids held beyond `member`
    assignments: Mapping[UserID, frozenset[str]] = field(default_factory=dict)
    # Who is joined to the space. The owner counts as a member even if absent here: the owner
    # cannot leave (API.md), so a missing entry is a stale snapshot, not a departure.
    members: frozenset[UserID] = frozenset()

    def is_member(self, user_id: UserID) -> bool:
        return user_id == self.state.owner or user_id in self.members

    def role(self, role_id: str) -> Role | None:
        return next((r for r in self.roles if r.role_id == role_id), None)

    def roles_of(self, user_id: UserID) -> tuple[Role, ...]:
        """Every role the member holds, `member` included, most senior first."""
        held = self.assignments.get(user_id, frozenset()) | {BuiltinRole.MEMBER.value}
        if user_id == self.state.owner:
            held = held | {BuiltinRole.ADMIN.value}
        held_roles = (r for r in self.roles if r.role_id in held)
        return tuple(sorted(held_roles, key=lambda r: -r.position))


class InvalidContent(ValueError):
    """State content that does not have the shape this module writes."""


def parse_role(role_id: str, content: Mapping[str, Any]) -> Role:
    if not ROLE_ID_RE.match(role_id):
        raise InvalidContent(f"role id {role_id!r}")
    name = content.get("name")
    power = content.get("power")
    position = content.get("position")
    if not isinstance(name, str) or not isinstance(power, int) or isinstance(power, bool):
        raise InvalidContent(f"role {role_id!r}: name and power")
    if not isinstance(position, int) or isinstance(position, bool):
        raise InvalidContent(f"role {role_id!r}: position")
    color = content.get("color")
    if color is not None and (not isinstance(color, str) or not COLOR_RE.match(color)):
        color = None
    perms_raw = content.get("permissions", [])
    if not isinstance(perms_raw, list):
        raise InvalidContent(f"role {role_id!r}: permissions")
    # Unknown names are dropped (a newer Guilds may know more); non-strings would not even hash.
    permissions = frozenset(
        Permission(p) for p in perms_raw if isinstance(p, str) and p in ALL_PERMISSIONS
    )
    room_id = content.get("room_id")
    previous = content.get("previous_room_id")
    return Role(
        role_id,
        name,
        color,
        power,
        position,
        permissions,
        RoomID(room_id) if isinstance(room_id, str) else None,
        RoomID(previous) if isinstance(previous, str) and previous != room_id else None,
    )


def parse_server_state(content: Mapping[str, Any]) -> ServerState:
    owner = content.get("owner")
    default_channel = content.get("default_channel")
    if not isinstance(owner, str) or not isinstance(default_channel, str):
        raise InvalidContent("server state: owner and default_channel")
    return ServerState(UserID(owner), RoomID(default_channel))


def name_problem(name: Any, what: str = "name") -> str | None:
    """Why a server, channel, category or role name is refused, or None (API.md: Names)."""
    if not isinstance(name, str):
        return f"{what} must be a string"
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"{what} must be 1 to {MAX_NAME_LENGTH} characters"
    # Cc are the C0/C1 controls; Zl/Zp (U+2028, U+2029) break lines just as well.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        return f"{what} must not contain control characters"
    if any(c in BIDI_CONTROLS for c in name):
        # They reorder what follows them, so a name could display as another one.
        return (
            f"{what} must not contain bidirectional control characters "
            "(U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C)"
        )
    if not any(is_visible(c) for c in name):
        return f"{what} must contain a visible character, not only spaces or invisible ones"
    return None


# Explicit embeddings, overrides and isolates, the marks LRM/RLM and the Arabic letter mark.
BIDI_CONTROLS: Final = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)
# Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern) and marks
# that only select a glyph's variant: a name made of them alone looks empty.
_BLANK_GRAPHICS: Final = frozenset(
    ["\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u034f"]
    + [chr(c) for c in range(0xFE00, 0xFE10)]
    + [chr(c) for c in range(0xE0100, 0xE01F0)]
)


def is_visible(char: str) -> bool:
    """Whether `char` draws something: not a space, control, format (zero-width) or blank."""
    category = unicodedata.category(char)
    return category[0] not in ("Z", "C") and char not in _BLANK_GRAPHICS


def topic_problem(topic: Any) -> str | None:
    if not isinstance(topic, str):
        return "topic must be a string"
    if len(topic) > MAX_TOPIC_LENGTH:
        return f"topic must be at most {MAX_TOPIC_LENGTH} characters"
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in topic):
        return "topic must not contain control characters"
    return None


def order_key(index: int) -> str:
    """`m.space.child` order strings that sort lexicographically like the integers."""
    return f"{index:06d}"


def sorted_roles(roles: Iterable[Role]) -> list[Role]:
    return sorted(roles, key=lambda r: (-r.position, r.role_id))
