"""The rules of a Guilds server as pure functions of room state, shared by the module and bridge.

Each `*_refusal` function answers "why may this not happen?" with a human sentence, or None
when it may. They take plain event contents, never Synapse or HTTP objects, so they are unit
tested without a homeserver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from guilds.model import (
    ADMIN_POSITION,
    ADMIN_POWER,
    ALL_PERMISSIONS,
    CATEGORY_EVENT,
    COLOR_RE,
    MAX_CUSTOM_POWER,
    MEMBER_POSITION,
    MEMBER_POWER,
    ROLE_ID_RE,
    BuiltinRole,
    InvalidContent,
    Permission,
    Role,
    name_problem,
    parse_role,
)
from guilds.vocabulary import (
    CALL_MEMBER_EVENT,
    CHANNEL_EVENT,
    ROLE_EVENT,
    ROLE_ROOM_KEY,
    SERVER_EVENT,
    ChannelKind,
    is_role_room,
)


def channel_kind(channel_content: Mapping[str, Any] | None) -> ChannelKind | None:
    """The kind a channel's state declares, or None when the room is not a Guilds channel."""
    if channel_content is None:
        return None
    kind = channel_content.get("kind")
    try:
        return ChannelKind(kind) if isinstance(kind, str) else ChannelKind.TEXT
    except ValueError:
        # A Guilds channel with a kind we do not know: treat it as text, the most restrictive.
        return ChannelKind.TEXT


def call_membership_refusal(channel_content: Mapping[str, Any] | None) -> str | None:
    """Why call membership may not be written in this room, given its channel state."""
    kind = channel_kind(channel_content)
    if kind is None or kind.has_calls:
        return None
    return "Calls can only be joined in voice and video channels; this is a text channel."


# --- Who is acting, and where ---------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """What the rules need to know about whoever sends an event or calls the API.

    Built from the model by `guilds.permissions.actor`; the module may build it from room state.
    """

    user_id: str
    permissions: frozenset[Permission]
    # Highest role position (OWNER_POSITION for the owner, NON_MEMBER_POSITION for outsiders).
    position: int
    # Power in the derived power levels: the highest power among the actor's roles.
    power: int
    owner: bool = False
    # The bridge's bot carries out requests the bridge has already checked, and creates every
    # room: the rules never refuse it.
    bot: bool = False


class RoomKind(StrEnum):
    SPACE = "space"
    CATEGORY = "category"
    CHANNEL = "channel"
    DEFAULT_CHANNEL = "default_channel"
    ROLE_ROOM = "role_room"

    @property
    def is_channel(self) -> bool:
        return self in (RoomKind.CHANNEL, RoomKind.DEFAULT_CHANNEL)


@dataclass(frozen=True)
class RoomContext:
    """What a Guilds room is, as far as the rules care."""

    kind: RoomKind
    # For channels: their kind (voice and video channels carry calls).
    channel_kind: ChannelKind | None = None
    # For the server space: which child is the default channel (it may never be removed).
    default_channel_id: str | None = None


# --- Which permission gates which state event -------------------------------------------------
#
# One table, read both by the power-level derivation (the threshold of each event type is the
# lowest power holding its permission) and by the veto below (who passes Matrix's threshold but
# lacks the permission is refused). Types absent from the table fall back to `state_default`,
# which is 100: admins only.

ROOM_NAME: Final = "m.room.name"
ROOM_TOPIC: Final = "m.room.topic"
ROOM_AVATAR: Final = "m.room.avatar"
POWER_LEVELS: Final = "m.room.power_levels"
TOMBSTONE: Final = "m.room.tombstone"
SPACE_CHILD: Final = "m.space.child"
SPACE_PARENT: Final = "m.space.parent"
PINNED_EVENTS: Final = "m.room.pinned_events"

# Event types only admins (power 100) may send in any Guilds room.
ADMIN_ONLY_STATE: Final = (
    POWER_LEVELS,
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.encryption",
    "m.room.server_acl",
    TOMBSTONE,
    SERVER_EVENT,
)

_CHANNEL_STATE: Final[Mapping[str, Permission]] = {
    ROOM_NAME: Permission.MANAGE_CHANNELS,
    ROOM_TOPIC: Permission.MANAGE_CHANNELS,
    ROOM_AVATAR: Permission.MANAGE_CHANNELS,
    CHANNEL_EVENT: Permission.MANAGE_CHANNELS,
    SPACE_PARENT: Permission.MANAGE_CHANNELS,
    # Pinning is moderating messages, as Discord's "Manage Messages" long was: the pins are
    # one list every member sees, so who may change it is who may remove others' messages.
    PINNED_EVENTS: Permission.MANAGE_MESSAGES,
}
_SPACE_STATE: Final[Mapping[str, Permission]] = {
    SPACE_CHILD: Permission.MANAGE_CHANNELS,
    ROOM_NAME: Permission.MANAGE_SERVER,
    ROOM_TOPIC: Permission.MANAGE_SERVER,
    ROOM_AVATAR: Permission.MANAGE_SERVER,
    ROLE_EVENT: Permission.MANAGE_ROLES,
}
# A category is a sub-space that only groups channels: editing it is managing channels.
_CATEGORY_STATE: Final[Mapping[str, Permission]] = {
    SPACE_CHILD: Permission.MANAGE_CHANNELS,
    SPACE_PARENT: Permission.MANAGE_CHANNELS,
    ROOM_NAME: Permission.MANAGE_CHANNELS,
    ROOM_TOPIC: Permission.MANAGE_CHANNELS,
    ROOM_AVATAR: Permission.MANAGE_CHANNELS,
}


def state_permissions(room: RoomKind, kind: ChannelKind | None = None) -> Mapping[str, Permission]:
    """Event type → the permission that gates it in this kind of room (role rooms: none)."""
    if room is RoomKind.SPACE:
        return _SPACE_STATE
    if room is RoomKind.CATEGORY:
        return _CATEGORY_STATE
    if room.is_channel:
        table = dict(_CHANNEL_STATE)
        if kind is not None and kind.has_calls:
            table[CALL_MEMBER_EVENT] = Permission.CONNECT
        return table
    # Role rooms are the bot's bookkeeping: nobody else writes state there.
    return {}


_WHAT: Final[Mapping[str, str]] = {
    ROOM_NAME: "renaming",
    ROOM_TOPIC: "changing the topic of",
    ROOM_AVATAR: "changing the icon of",
    CHANNEL_EVENT: "changing the kind of",
    SPACE_PARENT: "moving",
    SPACE_CHILD: "adding, moving or removing channels in",
    ROLE_EVENT: "editing the roles of",
    CALL_MEMBER_EVENT: "joining the call in",
    PINNED_EVENTS: "pinning messages in",
}

_ROOM_NOUN: Final[Mapping[RoomKind, str]] = {
    RoomKind.SPACE: "this server",
    RoomKind.CATEGORY: "this category",
    RoomKind.CHANNEL: "this channel",
    RoomKind.DEFAULT_CHANNEL: "this channel",
    RoomKind.ROLE_ROOM: "this role room",
}


def missing_permission_sentence(permission: Permission, doing: str | None = None) -> str:
    """The sentence a user reads when a permission is missing; it always names the permission."""
    if doing:
        return f"You need the {permission.value} permission for {doing}."
    return f"You need the {permission.value} permission to do this."


def _has(actor: Actor, permission: Permission) -> bool:
    return actor.bot or actor.owner or permission in actor.permissions


def _is_removal(content: Mapping[str, Any] | None) -> bool:
    """`m.space.child`/`m.space.parent` without a usable `via` list no longer link the rooms."""
    if not content:
        return True
    via = content.get("via")
    return not isinstance(via, list) or not via


# --- The rules --------------------------------------------------------------------------------


def state_permission_refusal(actor: Actor, room: RoomContext, event_type: str) -> str | None:
    """Why the actor's roles do not allow this event type here (Matrix's threshold aside)."""
    permission = state_permissions(room.kind, room.channel_kind).get(event_type)
    if permission is None or _has(actor, permission):
        return None
    doing = _WHAT.get(event_type)
    return missing_permission_sentence(
        permission, f"{doing} {_ROOM_NOUN[room.kind]}" if doing else None
    )


def default_channel_refusal(
    actor: Actor,
    room: RoomContext,
    event_type: str,
    state_key: str,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
) -> str | None:
    """Why this would rename, retype, delete or detach the server's default channel.

    Nobody may, the owner included (API.md: "nobody can delete or rename the default
    channel"); only the bot, which writes the channel's state when creating it.
    """
    if actor.bot:
        return None
    if room.kind is RoomKind.SPACE:
        if (
            event_type == SPACE_CHILD
            and room.default_channel_id is not None
            and state_key == room.default_channel_id
            and _is_removal(new_content)
        ):
            return "The default channel cannot be removed from the server."
        return None
    if room.kind is not RoomKind.DEFAULT_CHANNEL:
        return None
    if event_type == ROOM_NAME and (prev_content or {}).get("name") != new_content.get("name"):
        return "The default channel cannot be renamed."
    if event_type == CHANNEL_EVENT and (prev_content or {}).get("kind") != new_content.get("kind"):
        return "The default channel's kind cannot be changed."
    if event_type == SPACE_PARENT and _is_removal(new_content) and not _is_removal(prev_content):
        return "The default channel cannot be removed from the server."
    if event_type == TOMBSTONE:
        return "The default channel cannot be deleted or replaced."
    return None


def guilds_state_refusal(
    actor: Actor,
    room: RoomContext,
    event_type: str,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
) -> str | None:
    """Why a non-bot may not write this Guilds marker (`<ns>.server`, `.channel`, `.category`).

    Those events say what a room *is*; anyone who could write them could turn any room into a
    server or a channel of someone else's server. The one exception: with manage_channels, a
    channel's kind may change (a retype from another client), and nothing else in it.
    """
    if actor.bot:
        return None
    if event_type == SERVER_EVENT:
        return "Only Guilds itself can mark a room as a server."
    if event_type == CATEGORY_EVENT:
        return "Only Guilds itself can mark a room as a category."
    if event_type != CHANNEL_EVENT:
        return None
    if not room.kind.is_channel or not prev_content:
        return "Only Guilds itself can mark a room as a channel."
    prev_rest = {k: v for k, v in prev_content.items() if k != "kind"}
    new_rest = {k: v for k, v in new_content.items() if k != "kind"}
    if prev_rest != new_rest:
        return "Only a channel's kind can be changed; the rest is written by Guilds itself."
    if new_content.get("kind") not in {k.value for k in ChannelKind}:
        return "A channel's kind must be text, voice or video."
    return None


def power_levels_refusal(
    actor: Actor,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
    derived: Mapping[str, Any] | None,
) -> str | None:
    """Why this `m.room.power_levels` change goes beyond what the sender's roles allow.

    `derived` is what the roles say the content should be (`guilds.powerlevels`). Every
    threshold (kick, ban, invite, redact, events_default, state_default, users_default,
    notifications and each `events` entry) may only change *to* its derived value: thresholds
    follow the roles' permissions, so they are edited by editing a role. A user's power may
    change only:
      - with manage_roles (a power change is read back as a role change);
      - for a user whose current power is below the sender's, or for the sender lowering
        their own — the owner excepted, whose power nobody changes;
      - to a value below the sender's own power (the owner may go up to their own), which is
        the rule for granting roles: nobody grants at or above their own rank.
    Changes *towards* the derived content are always allowed: they repair, never escalate.
    """
    if actor.bot:
        return None
    old = prev_content or {}
    target = derived if derived is not None else old
    for key in _THRESHOLD_KEYS:
        before, after = old.get(key), new_content.get(key)
        if before != after and after != target.get(key):
            return (
                f"The {key!r} level follows the server's roles; "
                "change a role's permissions instead."
            )
    for key in ("events", "notifications"):
        before_map = _mapping(old.get(key))
        after_map = _mapping(new_content.get(key))
        target_map = _mapping(target.get(key))
        for name in set(before_map) | set(after_map):
            after = after_map.get(name)
            if before_map.get(name) == after or after == target_map.get(name):
                continue
            if name not in target_map and _harmless_extra(key, after):
                # What `guilds.powerlevels.merged_power_levels` keeps, a sender may write.
                continue
            return (
                f"The level of {name!r} follows the server's roles; "
                "change a role's permissions instead."
            )
    old_default = _int(old.get("users_default"), 0)
    new_default = _int(new_content.get("users_default"), 0)
    old_users = _mapping(old.get("users"))
    new_users = _mapping(new_content.get("users"))
    target_users = _mapping(target.get("users"))
    target_default = _int(target.get("users_default"), 0)
    for user in sorted(set(old_users) | set(new_users)):
        before = _int(old_users.get(user), old_default)
        after = _int(new_users.get(user), new_default)
        if before == after:
            continue
        if after == _int(target_users.get(user), target_default):
            continue
        refusal = _user_power_refusal(actor, user, before, after, target_users, target_default)
        if refusal is not None:
            return refusal
    return None


_THRESHOLD_KEYS: Final = (
    "users_default",
    "events_default",
    "state_default",
    "kick",
    "ban",
    "invite",
    "redact",
)


def _user_power_refusal(
    actor: Actor,
    user: str,
    before: int,
    after: int,
    target_users: Mapping[str, Any],
    target_default: int,
) -> str | None:
    if not _has(actor, Permission.MANAGE_ROLES):
        return missing_permission_sentence(Permission.MANAGE_ROLES, "changing members' power")
    if actor.owner:
        if user == actor.user_id:
            return "The owner's power cannot change; transfer ownership instead."
        if after > actor.power:
            return "Nobody can be given more power than you have."
        return None
    if user == actor.user_id:
        if after > before:
            return "You cannot raise your own power."
        return None
    if before >= actor.power:
        return "You cannot change the power of members at or above your own."
    if after >= actor.power:
        return "You can only give power below your own."
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _harmless_extra(key: str, level: Any) -> bool:
    """An entry for a type or notification Guilds does not derive that grants no power.

    Events: only admin-only (100) entries, which restrict (removing one returns to the derived
    content, allowed above). Notification keys gate no event at all.
    """
    if key == "notifications":
        return True
    return _int(level, -1) == ADMIN_POWER


def _int(value: Any, default: int) -> int:
    # Room versions ≥ 10 require integers; anything else is treated as absent.
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def role_change_refusal(
    actor: Actor,
    before: Role | None,
    after: Role | None,
    others: Iterable[Role] = (),
) -> str | None:
    """Why this creation (before None), edit, or deletion (after None) of a role is refused.

    The rules, in order:
      1. the bot may do anything; everyone else needs manage_roles;
      2. nobody creates, edits or deletes a role at or above their own highest position, nor
         moves one there (the owner is above every role, so the owner may touch any);
      3. built-in roles (admin, moderator, member) can be edited but never deleted, and no
         custom role may take their ids;
      4. admin keeps power 100, position 1000 and every permission; member keeps power 0 and
         position 0 (it is everyone, the floor of the hierarchy);
      5. every other role (moderator included) has a power of 0–99 and a position strictly
         between member's and admin's, distinct from every other role's position (ties would
         make "at or above" undecidable);
      6. a role's new power may not exceed the actor's own power (else a role would carry
         more Matrix power than its editor holds);
      7. nobody gives a role a permission they lack themselves (Discord's rule); removing one
         is fine, since the role is below them anyway;
      8. names are 1–100 characters without control characters, unique among roles ignoring
         case; colours are `#rrggbb` or none.
    """
    if actor.bot:
        return None
    if not _has(actor, Permission.MANAGE_ROLES):
        return missing_permission_sentence(Permission.MANAGE_ROLES, "managing roles")
    others = [r for r in others if r.role_id != (after or before or _NO_ROLE).role_id]
    if before is not None and before.position >= actor.position:
        return f"You can only manage roles below your highest role; {before.name!r} is not."
    if after is None:
        if before is not None and before.builtin:
            return f"The built-in role {before.name!r} cannot be deleted."
        return None
    if before is None:
        if after.builtin:
            return f"{after.role_id!r} is a built-in role."
        if not ROLE_ID_RE.match(after.role_id):
            return "A role id is 1–32 lower-case letters, digits, '-' or '_'."
    elif before.role_id != after.role_id:
        return "A role's id cannot change."
    problem = name_problem(after.name, "a role's name")
    if problem is not None:
        return _sentence(problem)
    if any(r.name.casefold() == after.name.casefold() for r in others):
        return f"A role named {after.name!r} already exists."
    if after.color is not None and not COLOR_RE.match(after.color):
        return "A role's colour must be written #rrggbb."
    if after.role_id == BuiltinRole.ADMIN:
        if after.permissions != ALL_PERMISSIONS:
            return "The admin role's permissions cannot change."
        if after.power != ADMIN_POWER or after.position != ADMIN_POSITION:
            return "The admin role always has power 100 and ranks above every other role."
        return None
    if after.role_id == BuiltinRole.MEMBER:
        if after.power != MEMBER_POWER or after.position != MEMBER_POSITION:
            return "The member role is everyone: its power is 0 and it ranks below every role."
    else:
        if not 0 <= after.power <= MAX_CUSTOM_POWER:
            return f"A role's power must be between 0 and {MAX_CUSTOM_POWER}."
        if not MEMBER_POSITION < after.position < ADMIN_POSITION:
            return (
                f"A role's position must be between {MEMBER_POSITION + 1} and {ADMIN_POSITION - 1}."
            )
        if any(r.position == after.position for r in others):
            return f"Another role already has position {after.position}."
    if after.position >= actor.position:
        return "You can only place roles below your highest role."
    if (before is None or before.power != after.power) and after.power > actor.power:
        return f"A role cannot have more power than you have ({actor.power})."
    added = after.permissions - (before.permissions if before is not None else frozenset())
    lacking = sorted(p.value for p in added if not _has(actor, p))
    if lacking:
        return f"You cannot give a role permissions you do not have: {', '.join(lacking)}."
    return None


_NO_ROLE: Final = Role("", "", None, 0, 0, frozenset())


def _sentence(problem: str) -> str:
    return problem[0].upper() + problem[1:] + "."


def role_state_refusal(
    actor: Actor,
    room: RoomContext,
    state_key: str,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
    others: Iterable[Role] = (),
) -> str | None:
    """Why this `<ns>.role` state event (a role created, edited or deleted) is refused.

    An empty content deletes the role; a content that does not parse is refused, since every
    client reading it would otherwise disagree on what the role is.
    """
    if actor.bot:
        return None
    if room.kind is not RoomKind.SPACE:
        return "Roles are defined in the server's space only."
    before = _parse_role_or_none(state_key, prev_content)
    if new_content:
        try:
            after: Role | None = parse_role(state_key, new_content)
        except (InvalidContent, ValueError):
            return "This is not a valid role."
    else:
        after = None
    return role_change_refusal(actor, before, after, others)


def _parse_role_or_none(role_id: str, content: Mapping[str, Any] | None) -> Role | None:
    if not content:
        return None
    try:
        return parse_role(role_id, content)
    except (InvalidContent, ValueError):
        # A broken role is treated as absent, so fixing it is judged as creating it.
        return None


def state_event_refusal(
    actor: Actor,
    room: RoomContext,
    event_type: str,
    state_key: str,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
    *,
    derived_power_levels: Mapping[str, Any] | None = None,
    roles: Iterable[Role] = (),
) -> str | None:
    """Why a local sender may not send this state event in a Guilds room, or None.

    The one entry point for the module: it runs the specific rules (Guilds markers, default
    channel, power levels, roles, calls), then the permission table.
    """
    if actor.bot:
        return None
    for refusal in (
        guilds_state_refusal(actor, room, event_type, prev_content, new_content),
        default_channel_refusal(actor, room, event_type, state_key, prev_content, new_content),
    ):
        if refusal is not None:
            return refusal
    if event_type == POWER_LEVELS:
        return power_levels_refusal(actor, prev_content, new_content, derived_power_levels)
    if event_type == ROLE_EVENT:
        return role_state_refusal(actor, room, state_key, prev_content, new_content, roles)
    if event_type == CALL_MEMBER_EVENT and room.kind.is_channel:
        if not new_content:
            # Leaving a call is always allowed, even where joining one is not.
            return None
        if room.channel_kind is None or not room.channel_kind.has_calls:
            return "Calls can only be joined in voice and video channels; this is a text channel."
    return state_permission_refusal(actor, room, event_type)


# The markers that make a room part of a Guilds server: only the bot writes them.
GUILDS_MARKERS: Final = frozenset({SERVER_EVENT, CHANNEL_EVENT, CATEGORY_EVENT, ROLE_EVENT})


def room_creation_refusal(room_config: Mapping[str, Any]) -> str | None:
    """Why a user (not the bot) may not create a room with this `/createRoom` body.

    State sent at creation is never spam-checked, so a room born with Guilds markers would
    slip past every state rule: creating one is the bot's alone.
    """
    creation = room_config.get("creation_content")
    if isinstance(creation, Mapping) and (is_role_room(creation) or ROLE_ROOM_KEY in creation):
        return "Only the Guilds bot creates role rooms."
    initial_state = room_config.get("initial_state")
    if isinstance(initial_state, list):
        for event in initial_state:
            if isinstance(event, Mapping) and event.get("type") in GUILDS_MARKERS:
                return (
                    f"Only the Guilds bot creates rooms with {event.get('type')} state; "
                    "create servers and channels through Guilds."
                )
    return None


# --- Membership, redactions and messages: what Matrix's thresholds stand for --------------------
#
# Matrix's kick, ban, invite, redact and events_default levels are the lowest power of any role
# holding the permission (`guilds.powerlevels.threshold`): whoever passes one without holding
# the permission is refused here. Matrix's own rules (power above the target's) still apply.


class MemberChange(StrEnum):
    """What one user's membership event does to another user."""

    KICK = "kick"
    BAN = "ban"
    UNBAN = "unban"
    INVITE = "invite"
    # An invite taken back before it was answered (a "kick" of an invited user in Matrix).
    WITHDRAW_INVITE = "withdraw_invite"


def member_change(
    sender: str, target: str, before: str | None, after: str | None
) -> MemberChange | None:
    """What a membership event sent by `sender` about `target` does; None for one's own
    joins and leaves (and for changes that change nothing), which no permission gates."""
    if sender == target or before == after:
        return None
    if after == "ban":
        return MemberChange.BAN
    if after == "invite":
        return MemberChange.INVITE
    if after == "leave":
        if before == "ban":
            return MemberChange.UNBAN
        if before == "invite":
            return MemberChange.WITHDRAW_INVITE
        if before in ("join", "knock"):
            return MemberChange.KICK
    return None


_CHANGE_PERMISSION: Final[Mapping[MemberChange, Permission]] = {
    MemberChange.KICK: Permission.KICK_MEMBERS,
    MemberChange.BAN: Permission.BAN_MEMBERS,
    MemberChange.UNBAN: Permission.BAN_MEMBERS,
    MemberChange.INVITE: Permission.CREATE_INVITES,
    MemberChange.WITHDRAW_INVITE: Permission.CREATE_INVITES,
}
_CHANGE_DOING: Final[Mapping[MemberChange, str]] = {
    MemberChange.KICK: "kicking members",
    MemberChange.BAN: "banning members",
    MemberChange.UNBAN: "unbanning members",
    MemberChange.INVITE: "inviting people",
    MemberChange.WITHDRAW_INVITE: "taking back invites",
}
ROLE_ROOM_MEMBERSHIP_SENTENCE: Final = (
    "Role rooms change only through Guilds: grant or remove the role in Guilds instead."
)
# A kick in Guilds is from the server, as on Discord: a channel-only kick would leave the member
# in the server, free to join the channel again at once (its join rule lets every member in).
CHANNEL_KICK_SENTENCE: Final = (
    "In a Guilds server a kick removes a member from the whole server: kick them from the "
    "server (its space) instead. To keep someone out of one channel, limit the channel to "
    "roles they do not hold."
)
# A ban is from the server too: the bot bans a server ban in every room, and a ban (or an unban)
# in one channel only would be undone by convergence, which keeps every member in the channels
# their roles open, so it would look done and mean nothing.
CHANNEL_BAN_SENTENCE: Final = (
    "In a Guilds server a ban is from the whole server: ban them from the server (its space) "
    "instead. To keep someone out of one channel, limit the channel to roles they do not hold."
)
CHANNEL_UNBAN_SENTENCE: Final = (
    "In a Guilds server a ban is from the whole server: lift it on the server (its space, or "
    "the server's ban list in Guilds) instead."
)
_CHANNEL_SENTENCES: Final[Mapping[MemberChange, str]] = {
    MemberChange.KICK: CHANNEL_KICK_SENTENCE,
    MemberChange.BAN: CHANNEL_BAN_SENTENCE,
    MemberChange.UNBAN: CHANNEL_UNBAN_SENTENCE,
}


def member_change_refusal(
    actor: Actor, target: Actor, room: RoomContext, change: MemberChange
) -> str | None:
    """Why the actor may not kick, ban, unban or invite the target in this Guilds room.

    The permission first (named in the sentence), then the rank, as the API's `may_act_on`:
    nobody acts on the owner, nor on a member whose highest role is at or above their own.
    Role rooms are the bot's alone: their membership *is* the role assignment, which only
    Guilds changes (a user may still leave one, giving the role up). An invite goes to a
    newcomer or an outsider, so only the permission counts for it. A kick, a ban and an unban
    are from the server (its space) only; the bot carries them into every channel.
    """
    if actor.bot:
        return None
    if room.kind is RoomKind.ROLE_ROOM:
        return ROLE_ROOM_MEMBERSHIP_SENTENCE
    permission = _CHANGE_PERMISSION[change]
    if not _has(actor, permission):
        return missing_permission_sentence(permission, _CHANGE_DOING[change])
    if change in _CHANNEL_SENTENCES and room.kind is not RoomKind.SPACE:
        return _CHANNEL_SENTENCES[change]
    if change in (MemberChange.INVITE, MemberChange.WITHDRAW_INVITE, MemberChange.UNBAN):
        return None
    verb = change.value
    if target.owner:
        return f"Nobody can {verb} the server's owner."
    if not actor.owner and target.position >= actor.position:
        return f"You cannot {verb} a member whose highest role is at or above yours."
    return None


def role_room_join_refusal(invited_by_bot: bool) -> str | None:
    """Why a user may not join a role room: only on the bot's invite (a role granted)."""
    return None if invited_by_bot else ROLE_ROOM_MEMBERSHIP_SENTENCE


def redaction_refusal(actor: Actor, own: bool) -> str | None:
    """Why the actor may not redact this event: another's needs manage_messages."""
    if actor.bot or own or _has(actor, Permission.MANAGE_MESSAGES):
        return None
    return missing_permission_sentence(
        Permission.MANAGE_MESSAGES, "removing other members' messages"
    )


# Non-state event types that belong to calls: `connect`, not `send_messages`, gates them.
CALL_EVENT_PREFIXES: Final = ("m.call.", "org.matrix.msc3401.call", "m.rtc.", "org.matrix.msc4075")


def message_permission(event_type: str) -> Permission:
    """The permission a non-state event (other than a redaction) needs in a channel."""
    if event_type.startswith(CALL_EVENT_PREFIXES):
        return Permission.CONNECT
    return Permission.SEND_MESSAGES


def message_refusal(actor: Actor, room: RoomContext, event_type: str) -> str | None:
    """Why the actor may not send this non-state event here (channels only: the other Guilds
    rooms take messages from admins alone, which Matrix's events_default of 100 says)."""
    if actor.bot or not room.kind.is_channel:
        return None
    permission = message_permission(event_type)
    if _has(actor, permission):
        return None
    doing = "calls" if permission is Permission.CONNECT else "sending messages"
    return missing_permission_sentence(permission, f"{doing} in this channel")


def pings_the_room(content: Mapping[str, Any]) -> bool:
    """Whether a message notifies everyone in the room (@room), as Matrix's push rules read it:
    `m.mentions.room`, or for a message without `m.mentions`, "@room" in its body."""
    mentions = content.get("m.mentions")
    if isinstance(mentions, Mapping):
        return mentions.get("room") is True
    body = content.get("body")
    return isinstance(body, str) and "@room" in body


def room_ping_refusal(actor: Actor) -> str | None:
    """Why the actor may not notify the whole room: Matrix's `notifications.room` level is
    manage_messages' threshold (guilds.powerlevels), so the permission is what it stands for."""
    if actor.bot or _has(actor, Permission.MANAGE_MESSAGES):
        return None
    return missing_permission_sentence(
        Permission.MANAGE_MESSAGES, "notifying the whole room (@room)"
    )


# The state types the bot writes when it adopts a room as a channel (bridge/readback/reconcile.py).
ADOPTION_STATE: Final = (CHANNEL_EVENT, SPACE_PARENT, "m.room.join_rules", POWER_LEVELS)


@dataclass(frozen=True)
class LinkedRoom:
    """What the module reads of a room someone links into a server's space or category."""

    # The bot's membership there (None: never been in it, or the room is not on this server).
    bot_membership: str | None
    # Whether the bot's power there reaches every type ADOPTION_STATE names (a v12 creator's
    # unlimited power does).
    bot_has_power: bool
    # The server it already belongs to (a channel or category being moved), if any.
    server_id: str | None = None
    # Its creators when they hold unlimited power (room version 12 and later), else empty.
    unlimited_creators: tuple[str, ...] = ()
    # Users other than the bot at or above the bot's power there whose roles give them less:
    # Matrix lets nobody lower a power equal to their own, so adoption could not either.
    out_of_reach: tuple[str, ...] = ()


def link_refusal(bot: str, server_id: str, owner: str, child: LinkedRoom) -> str | None:
    """Why a room may not become a child of this server's space or category.

    A linked room is adopted as a channel (its power levels and join rule rewritten by the
    bot), so it follows the server's rules. Guilds can only do that where the bot is in the
    room (or invited: it joins when the link arrives) with power 100; a room it could not
    adopt would sit in the space untouched by every rule, so it is refused with what to do.
    Rooms of another server are refused too: a room belongs to one server. So are rooms whose
    creators keep unlimited power (room version 12): no role, kick or ban reaches a creator
    there, so the room could never follow the server's rules. The owner, whom no rule
    restricts anyway, may link a room of their own.
    """
    if child.server_id is not None:
        if child.server_id == server_id:
            return None
        return "This room belongs to another Guilds server."
    kept = [c for c in child.unlimited_creators if c not in (bot, owner)]
    if kept:
        return (
            f"Guilds cannot adopt this room as a channel: its creator {kept[0]} keeps unlimited "
            "power in it (room version 12), beyond the server's roles. Create the channel in "
            "Guilds instead."
        )
    if child.bot_membership not in ("join", "invite") or not child.bot_has_power:
        return (
            f"Guilds cannot adopt this room as a channel: invite {bot} to it and give it "
            "power 100 there first, or create the channel in Guilds."
        )
    if child.out_of_reach:
        return (
            f"Guilds cannot adopt this room as a channel: {child.out_of_reach[0]} has as much "
            "power there as the bot, which nobody can take away; lower it below 100 first."
        )
    return None
