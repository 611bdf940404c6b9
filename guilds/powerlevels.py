"""`m.room.power_levels` derived from a server's roles, and read back from other clients."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from guilds.ids import UserID
from guilds.model import ADMIN_POWER, MEMBER_POWER, Permission, Server
from guilds.permissions import power_of
from guilds.rules import ADMIN_ONLY_STATE, RoomKind, state_permissions
from guilds.vocabulary import CALL_MEMBER_EVENT, ChannelKind

# Room versions in which the creators have unlimited power and must not appear in `users`
# (MSC4289). Later numeric versions are assumed to keep the rule.
_CREATOR_POWER_FROM_VERSION: Final = 12
# The bot's power in the rooms it creates in earlier versions (10, 11): one above the admins',
# so that, as a v12 creator does, it outranks every role. Matrix lets nobody lower, kick or ban
# a user whose power equals their own: at 100 beside the admins, the bot could not take the
# admin role away nor remove an admin from the server. A room's first power levels may give
# its creator any power, so the bot sets this at creation (it can never raise itself later).
BOT_POWER_BEFORE_V12: Final = ADMIN_POWER + 1

# The top-level keys Guilds derives; every other key is another client's and is kept.
DERIVED_KEYS: Final = frozenset(
    {
        "users",
        "users_default",
        "events",
        "events_default",
        "state_default",
        "kick",
        "ban",
        "invite",
        "redact",
        "notifications",
    }
)


def creators_have_unlimited_power(room_version: str) -> bool:
    """Whether the room version gives its creators unlimited power (v12, the hydra versions)."""
    if room_version.isdigit():
        return int(room_version) >= _CREATOR_POWER_FROM_VERSION
    return "hydra" in room_version


def threshold(server: Server, permission: Permission) -> int:
    """The lowest power among roles holding the permission; 100 when only admin (or none) has it.

    So Matrix's auth lets through everyone who might hold the permission, and the module vetoes
    those who pass the threshold without it.
    """
    powers = [r.power for r in server.roles if permission in r.permissions]
    return max(MEMBER_POWER, min(min(powers, default=ADMIN_POWER), ADMIN_POWER))


def derive_power_levels(
    server: Server,
    room: RoomKind,
    *,
    bot: UserID,
    room_version: str,
    channel_kind: ChannelKind | None = None,
    creators: Iterable[UserID] = (),
) -> dict[str, Any]:
    """The power-levels content a Guilds room of this kind should have.

    `creators` are the room's creators besides the bot (v12's `additional_creators`); under
    v12 the bot is always a creator. In v10/11 the bot has `BOT_POWER_BEFORE_V12`.
    """
    if room.is_channel and channel_kind is None:
        raise ValueError("a channel's power levels depend on its kind")
    users: dict[str, int] = {}
    for member in sorted(server.members | {server.state.owner}):
        power = power_of(server, member)
        if power > MEMBER_POWER:
            users[member] = power
    if creators_have_unlimited_power(room_version):
        # A creator listed in `users` makes the event invalid under v12, and needs no entry.
        for creator in {bot, *creators}:
            users.pop(creator, None)
    else:
        users[bot] = BOT_POWER_BEFORE_V12

    events: dict[str, int] = dict.fromkeys(ADMIN_ONLY_STATE, ADMIN_POWER)
    for event_type, permission in state_permissions(room, channel_kind).items():
        events[event_type] = threshold(server, permission)
    if room.is_channel and channel_kind is not None and not channel_kind.has_calls:
        # Text channels refuse call membership; the module says why, Matrix makes it admin-only.
        events[CALL_MEMBER_EVENT] = ADMIN_POWER

    managed_members = room is not RoomKind.ROLE_ROOM
    return {
        "users": users,
        "users_default": MEMBER_POWER,
        "events": events,
        # Spaces, categories and role rooms are not chat rooms: only admins (and the bot) post.
        "events_default": threshold(server, Permission.SEND_MESSAGES)
        if room.is_channel
        else ADMIN_POWER,
        "state_default": ADMIN_POWER,
        # Role-room membership *is* the role assignment: only the bot (or an admin by hand,
        # read back by the bridge) changes it.
        "kick": threshold(server, Permission.KICK_MEMBERS) if managed_members else ADMIN_POWER,
        "ban": threshold(server, Permission.BAN_MEMBERS) if managed_members else ADMIN_POWER,
        "invite": threshold(server, Permission.CREATE_INVITES) if managed_members else ADMIN_POWER,
        "redact": threshold(server, Permission.MANAGE_MESSAGES),
        # API.md is silent on @room: those who moderate messages may ping everyone (50 by
        # default, Matrix's own default).
        "notifications": {"room": threshold(server, Permission.MANAGE_MESSAGES)},
    }


def merged_power_levels(
    existing: Mapping[str, Any] | None,
    derived: Mapping[str, Any],
    *,
    creators: Iterable[str] = (),
) -> dict[str, Any]:
    """The content to write: the derived one, plus what other clients added that grants nothing.

    The choice, key by key:
      - keys Guilds derives take the derived value, except as below;
      - other top-level keys are kept: Matrix auth does not read them, so they grant nothing;
      - `events` entries for types Guilds does not derive are kept only at exactly 100. We
        cannot tell a state type (whose default is 100) from a message type (whose default is
        events_default), so anything lower may grant a power no role justifies, and anything
        higher would lock out admins and, before v12, the bot;
      - `notifications` keys other than `room` are kept: they gate notifications, not events;
      - `users` entries for users Guilds does not list are kept only when negative (a mute
        someone set by hand restricts, it grants nothing) and never for a creator, whom v12
        forbids there; everyone else with power has it from their roles.
    """
    merged: dict[str, Any] = {k: v for k, v in (existing or {}).items() if k not in DERIVED_KEYS}
    merged.update({k: _copy(v) for k, v in derived.items()})
    old = existing or {}
    old_events = _mapping(old.get("events"))
    for event_type, level in old_events.items():
        if event_type not in merged["events"] and _is_int(level) and level == ADMIN_POWER:
            merged["events"][event_type] = level
    for key, level in _mapping(old.get("notifications")).items():
        if key not in merged["notifications"]:
            merged["notifications"][key] = level
    excluded = set(creators)
    for user, level in _mapping(old.get("users")).items():
        if user not in merged["users"] and user not in excluded and _is_int(level) and level < 0:
            merged["users"][user] = level
    return merged


def needs_rewrite(
    existing: Mapping[str, Any] | None,
    derived: Mapping[str, Any],
    *,
    creators: Iterable[str] = (),
) -> bool:
    """Whether the room's power levels differ from what the roles say (key order ignored)."""
    if existing is None:
        return True
    return merged_power_levels(existing, derived, creators=creators) != dict(existing)


@dataclass(frozen=True)
class PowerChange:
    user_id: UserID
    old: int
    new: int


def power_changes(
    old_content: Mapping[str, Any] | None, new_content: Mapping[str, Any]
) -> tuple[PowerChange, ...]:
    """Every user whose effective power differs between two power-levels contents.

    Effective means as Matrix reads it: a user absent from `users` has `users_default`, so a
    change of `users_default` changes everyone not listed — those are not reported, since no
    user id names them. Sorted by user id, for a stable read-back.
    """
    old = old_content or {}
    old_default = _level(old.get("users_default"), 0)
    new_default = _level(new_content.get("users_default"), 0)
    old_users = _mapping(old.get("users"))
    new_users = _mapping(new_content.get("users"))
    changes = []
    for user in sorted(set(old_users) | set(new_users)):
        before = _level(old_users.get(user), old_default)
        after = _level(new_users.get(user), new_default)
        if before != after:
            changes.append(PowerChange(UserID(user), before, after))
    return tuple(changes)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _level(value: Any, default: int) -> int:
    return value if _is_int(value) else default


def _copy(value: Any) -> Any:
    # The derived content's nested dicts must not be shared with the merged result.
    return dict(value) if isinstance(value, Mapping) else value
