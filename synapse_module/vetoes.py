"""The vetoes: what a local user may not do in a Guilds server, whichever client sends it.

Each callback starts with checks that need no lookup (event type, local sender, the bot), and
reads only the state entries its rule needs. Messages cost two point reads, both served from
Synapse's per-entry cache: the channel's marker and the space's `member` role; when `member`
holds the permission (the common case) nobody's roles are looked up. Kicks, bans and unbans
reach no spam-checker callback in Synapse, only the third-party rules' `check_event_allowed`
(see `GuildsModule`). The rules themselves are the shared pure functions of `guilds.rules`;
this file only gathers their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi
from synapse.module_api.errors import Codes

from guilds.model import CATEGORY_EVENT, NON_MEMBER_POSITION, BuiltinRole, Role, ServerState
from guilds.powerlevels import creators_have_unlimited_power
from guilds.rules import (
    ADOPTION_STATE,
    PINNED_EVENTS,
    POWER_LEVELS,
    ROOM_AVATAR,
    ROOM_NAME,
    ROOM_TOPIC,
    SPACE_CHILD,
    SPACE_PARENT,
    TOMBSTONE,
    Actor,
    LinkedRoom,
    MemberChange,
    RoomContext,
    RoomKind,
    call_membership_refusal,
    channel_kind,
    default_channel_refusal,
    guilds_state_refusal,
    link_refusal,
    member_change,
    member_change_refusal,
    message_permission,
    message_refusal,
    pings_the_room,
    redaction_refusal,
    role_room_join_refusal,
    room_creation_refusal,
    room_ping_refusal,
    state_event_refusal,
)
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from synapse_module.policies import call_user
from synapse_module.state import (
    CREATE,
    JOIN_RULES,
    MEMBER,
    ROOM_MARKERS,
    GuildsRoom,
    StateMap,
    StateReader,
    admin_room,
    allowed_rooms,
    classify,
    content_of,
    membership_in,
    parse_roles,
    server_state,
)

REDACTION: Final = "m.room.redaction"

# The state event types some Guilds rule is about; every other event passes untouched.
RULED_STATE: Final = frozenset(
    {
        ROOM_NAME,
        ROOM_TOPIC,
        ROOM_AVATAR,
        PINNED_EVENTS,
        POWER_LEVELS,
        TOMBSTONE,
        SPACE_CHILD,
        SPACE_PARENT,
        SERVER_EVENT,
        CHANNEL_EVENT,
        CATEGORY_EVENT,
        ROLE_EVENT,
        CALL_MEMBER_EVENT,
    }
)
# The types that can rename, retype, delete or detach the default channel: ruled for the bot too.
DEFAULT_CHANNEL_STATE: Final = frozenset(
    {ROOM_NAME, CHANNEL_EVENT, SPACE_CHILD, SPACE_PARENT, TOMBSTONE}
)

# Someone the rules know nothing about: used where a rule must not depend on who sends.
_ANYONE: Final = Actor(user_id="", permissions=frozenset(), position=NON_MEMBER_POSITION, power=0)

Verdict = Literal["NOT_SPAM"] | tuple[Codes, dict[str, Any]]


def forbidden(message: str) -> tuple[Codes, dict[str, Any]]:
    # Synapse answers 403 with this errcode; an `error` field replaces its generic sentence.
    return (Codes.FORBIDDEN, {"error": message})


def default_channel_protection(
    room: RoomContext,
    event_type: str,
    state_key: str,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
) -> str | None:
    """`guilds.rules.default_channel_refusal` for every sender, the bot included.

    The shared rule exempts the bot; here the default channel is protected from everyone, as
    "nobody can delete or rename the default channel" reads. The very first `m.room.name`
    names the channel rather than renaming it, so it passes.
    """
    if event_type == ROOM_NAME and prev_content is None:
        return None
    return default_channel_refusal(_ANYONE, room, event_type, state_key, prev_content, new_content)


class Vetoes:
    def __init__(self, api: ModuleApi, bot_user_id: str) -> None:
        self._api = api
        self._bot = bot_user_id
        self._state = StateReader(api)

    # --- check_event_for_spam: state events ----------------------------------------------------

    async def check_event_for_spam(self, event: EventBase) -> str:
        """NOT_SPAM, or the sentence Synapse returns with 403 M_FORBIDDEN."""
        if event.is_state():
            if event.type not in RULED_STATE:
                return NOT_SPAM
            if not self._api.is_mine(event.sender):
                # Refusing a federated event would fork the room's history.
                return NOT_SPAM
            refusal = await self.state_refusal(event)
            return refusal if refusal is not None else NOT_SPAM
        if event.sender == self._bot or not self._api.is_mine(event.sender):
            return NOT_SPAM
        if event.type == REDACTION:
            refusal = await self.redaction_refusal(event)
        else:
            refusal = await self.message_refusal(event)
        return refusal if refusal is not None else NOT_SPAM

    # --- check_event_for_spam: messages and redactions ------------------------------------------

    async def message_refusal(self, event: EventBase) -> str | None:
        """`send_messages` (or `connect` for call events) in a channel.

        The common case costs two cached point reads and no per-user lookup: the channel's
        marker, then the space's `member` role, which every member holds; only when `member`
        lacks the permission are the sender's roles read. Rooms that are not channels are
        left to Matrix: the other Guilds rooms have events_default 100 (admins, who hold every
        permission).
        """
        here = await self._state.read(event.room_id, [(CHANNEL_EVENT, "")])
        channel = content_of(here, (CHANNEL_EVENT, ""))
        if channel is None:
            return None
        server_id = channel.get("server_id")
        if not isinstance(server_id, str) or not server_id:
            # A channel marker without server_id names its server by `m.space.parent`.
            parents = await self._state.read(event.room_id, [(SPACE_PARENT, None)])
            room = classify(event.room_id, {**here, **parents})
            if room is None:
                return None
            server_id = room.server_id
        permission = message_permission(event.type)
        space = await self._state.read(server_id, [(ROLE_EVENT, BuiltinRole.MEMBER)])
        member = _role(space, BuiltinRole.MEMBER)
        pings = pings_the_room(event.content) and await self._passes_here(
            event.room_id, event.sender, "room"
        )
        if member is not None and permission in member.permissions and not pings:
            return None
        actor = await self._actor_in(server_id, event.sender)
        if actor is None:
            return None
        context = RoomContext(RoomKind.CHANNEL, channel_kind(channel))
        refusal = message_refusal(actor, context, event.type)
        if refusal is None and pings:
            refusal = room_ping_refusal(actor)
        return refusal

    async def _passes_here(self, room_id: str, user_id: str, notification: str) -> bool:
        """Whether the user reaches this `notifications` level in the room (an @room ping)."""
        here = await self._state.read(room_id, [(CREATE, ""), (POWER_LEVELS, "")])
        return _passes(here, user_id, notification, notifications=True)

    async def redaction_refusal(self, event: EventBase) -> str | None:
        """Another member's event needs manage_messages; one's own is always one's own.

        Matrix itself lets someone below the room's redact level remove their own events only,
        so they need no lookup. Above it, the redacted event's sender is read (one indexed row,
        see `_sender_of`) only when the redacter lacks manage_messages.
        """
        here = await self._state.read(event.room_id, [*ROOM_MARKERS, (POWER_LEVELS, "")])
        room = classify(event.room_id, here)
        if room is None:
            return None
        sender: str = event.sender
        if not _passes(here, sender, "redact"):
            return None
        actor = await self._actor_in(room.server_id, sender)
        if actor is None or redaction_refusal(actor, own=False) is None:
            return None
        redacts = event.redacts
        original = await self._sender_of(str(redacts), event.room_id) if redacts else None
        return redaction_refusal(actor, own=original == sender)

    async def _sender_of(self, event_id: str, room_id: str) -> str | None:
        """Who sent an event of this room, or None if the homeserver does not know it.

        Synapse's module API has no call that fetches an event by id, so this one reads the
        `events` table through `run_db_interaction` (its public way to the database): one row
        by primary key, and only for a redaction by someone who lacks manage_messages yet
        passes the redact level.
        """

        def query(txn: Any) -> str | None:
            txn.execute(
                "SELECT sender FROM events WHERE event_id = ? AND room_id = ?", (event_id, room_id)
            )
            row = txn.fetchone()
            return str(row[0]) if row else None

        result: str | None = await self._api.run_db_interaction("guilds_event_sender", query)
        return result

    async def _actor_in(self, server_id: str, user_id: str) -> Actor | None:
        """The user as the rules see them in this server, or None if it is not a server."""
        space = await self._state.read(
            server_id, [(SERVER_EVENT, ""), (ROLE_EVENT, None), (MEMBER, user_id)]
        )
        server = server_state(space)
        if server is None:
            return None
        return await self._state.actor(
            server_id, server, parse_roles(space), membership_in(space, user_id), user_id, self._bot
        )

    # --- check_event_allowed: kicks, bans, unbans -------------------------------------------------

    async def membership_refusal(self, event: EventBase, state: StateMap) -> str | None:
        """Why this local membership event about someone else breaks the server's rules.

        `state` is the room's state before the event, which Synapse hands over whole.
        Invites are judged by `user_may_invite`, which Synapse asks first.
        """
        sender: str = event.sender
        target: str = event.state_key
        after = event.content.get("membership")
        change = member_change(
            sender, target, membership_in(state, target), after if isinstance(after, str) else None
        )
        if change is None or change is MemberChange.INVITE:
            return None
        room = classify(event.room_id, state)
        if room is None:
            return None
        return await self._member_change_refusal(room, sender, target, change)

    async def _member_change_refusal(
        self, room: GuildsRoom, sender: str, target: str, change: MemberChange
    ) -> str | None:
        space = await self._state.read(
            room.server_id,
            [(SERVER_EVENT, ""), (ROLE_EVENT, None), (MEMBER, sender), (MEMBER, target)],
        )
        server = server_state(space)
        if server is None:
            return None
        roles = parse_roles(space)
        actor = await self._state.actor(
            room.server_id, server, roles, membership_in(space, sender), sender, self._bot
        )
        subject = await self._state.actor(
            room.server_id, server, roles, membership_in(space, target), target, self._bot
        )
        return member_change_refusal(
            actor, subject, self._context(room, server.default_channel), change
        )

    async def state_refusal(self, event: EventBase) -> str | None:
        sender: str = event.sender
        bot = sender == self._bot
        event_type: str = event.type
        state_key: str = event.state_key
        new_content: Mapping[str, Any] = event.content
        if bot and event_type not in DEFAULT_CHANNEL_STATE:
            return None
        if not bot and event_type in (SERVER_EVENT, CATEGORY_EVENT):
            # Markers nobody but the bot writes, wherever: no lookup needed.
            return guilds_state_refusal(
                _ANYONE, RoomContext(RoomKind.SPACE), event_type, None, new_content
            )
        here = await self._state.read(
            event.room_id, [*ROOM_MARKERS, (event_type, state_key), (SPACE_PARENT, None)]
        )
        prev_content = content_of(here, (event_type, state_key))
        if event_type == CALL_MEMBER_EVENT:
            channel = content_of(here, (CHANNEL_EVENT, ""))
            if channel is not None and call_user(state_key) != sender:
                # In these room versions a `_@user_DEVICE` key is not owned by anyone: without
                # this, anyone with connect could fake or end another person's membership.
                return "You can only join or leave a call as yourself."
            if not new_content:
                return None  # leaving a call is always allowed
            # Any room marked as a text channel refuses calls, whether or not its server is known.
            refusal = call_membership_refusal(channel)
            if refusal is not None:
                return refusal
        room = classify(event.room_id, here)
        if room is None:
            return self._forged_channel(bot, event_type)
        space_keys: list[tuple[str, str | None]] = [(SERVER_EVENT, "")]
        if not bot:
            space_keys += [(ROLE_EVENT, None), (MEMBER, sender)]
        space = await self._state.read(room.server_id, space_keys)
        server = server_state(space)
        if server is None:
            return self._forged_channel(bot, event_type)
        context = self._context(room, server.default_channel)
        refusal = default_channel_protection(
            context, event_type, state_key, prev_content, new_content
        )
        if refusal is not None or bot:
            return refusal
        roles = parse_roles(space)
        actor = await self._state.actor(
            room.server_id, server, roles, membership_in(space, sender), sender, self._bot
        )
        refusal = state_event_refusal(
            actor, context, event_type, state_key, prev_content, new_content, roles=roles
        )
        if (
            refusal is None
            and event_type == SPACE_CHILD
            and room.kind in (RoomKind.SPACE, RoomKind.CATEGORY)
            and _links(new_content)
            and not _links(prev_content)
        ):
            linked = await self._linked_room(state_key, room.server_id, server, roles)
            return link_refusal(self._bot, room.server_id, server.owner, linked)
        return refusal

    async def _linked_room(
        self, room_id: str, server_id: str, server: ServerState, roles: tuple[Role, ...]
    ) -> LinkedRoom:
        """What Guilds can do with a room someone links into a server (observations 9, 11)."""
        here = await self._state.read(
            room_id,
            [*ROOM_MARKERS, (SPACE_PARENT, None), (MEMBER, self._bot), (POWER_LEVELS, "")],
        )
        known = classify(room_id, here)
        if known is not None and known.kind in (RoomKind.CHANNEL, RoomKind.CATEGORY):
            return LinkedRoom(None, False, server_id=known.server_id)
        create = here.get((CREATE, ""))
        if create is None:
            # Not a room this homeserver is in: the bot could not join it to adopt it.
            return LinkedRoom(None, False)
        version = create.content.get("room_version")
        version = version if isinstance(version, str) else "1"
        extra = create.content.get("additional_creators")
        creators = (create.sender, *(extra if isinstance(extra, list) else ()))
        unlimited = creators_have_unlimited_power(version)
        has_power = (unlimited and self._bot in creators) or all(
            _level_of(here, self._bot) >= _needed(here, t) for t in ADOPTION_STATE
        )
        bot_level = _level_of(here, self._bot)
        out_of_reach = []
        if not unlimited:
            levels = content_of(here, (POWER_LEVELS, "")) or {}
            users = levels.get("users")
            for user, level in (users if isinstance(users, Mapping) else {}).items():
                if user == self._bot or _int(level, 0) < bot_level:
                    continue
                # Admins (and the owner) keep 100 in every room: nothing to lower for them.
                holder = await self._state.actor(
                    server_id, server, roles, "join", str(user), self._bot
                )
                if holder.power < _int(level, 0):
                    out_of_reach.append(str(user))
        return LinkedRoom(
            membership_in(here, self._bot),
            has_power,
            unlimited_creators=tuple(str(c) for c in creators) if unlimited else (),
            out_of_reach=tuple(out_of_reach),
        )

    @staticmethod
    def _forged_channel(bot: bool, event_type: str) -> str | None:
        if bot or event_type != CHANNEL_EVENT:
            return None
        return guilds_state_refusal(
            _ANYONE, RoomContext(RoomKind.SPACE), event_type, None, {"kind": "text"}
        )

    @staticmethod
    def _context(room: GuildsRoom, default_channel: str) -> RoomContext:
        if room.kind is RoomKind.SPACE:
            return RoomContext(RoomKind.SPACE, default_channel_id=default_channel)
        if room.kind is RoomKind.CHANNEL and (
            room.marked_default or room.room_id == default_channel
        ):
            return RoomContext(RoomKind.DEFAULT_CHANNEL, room.channel_kind)
        return RoomContext(room.kind, room.channel_kind)

    # --- user_may_join_room / user_may_invite: entering a server's rooms -----------------------

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> Verdict:
        # Synapse asks only for local joins. `is_invited` changes nothing: an invite lets a
        # user past the restricted join rule, so the roles are checked here either way.
        if user_id == self._bot:
            return NOT_SPAM
        refusal = await self.entry_refusal(user_id, room_id, invited_by_other=False)
        return NOT_SPAM if refusal is None else forbidden(refusal)

    async def user_may_create_room(self, user_id: str, room_config: dict[str, Any]) -> Verdict:
        # Only the request body is read: no lookup at all.
        if user_id == self._bot or not self._api.is_mine(user_id):
            return NOT_SPAM
        refusal = room_creation_refusal(room_config)
        return NOT_SPAM if refusal is None else forbidden(refusal)

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> Verdict:
        # The bot carries out invites the bridge has already decided on; the invitee's own
        # join is still checked by user_may_join_room.
        if inviter == self._bot or not self._api.is_mine(inviter):
            return NOT_SPAM
        refusal = await self.invite_refusal(inviter, invitee, room_id)
        if refusal is None:
            refusal = await self.entry_refusal(invitee, room_id, invited_by_other=True)
        return NOT_SPAM if refusal is None else forbidden(refusal)

    async def invite_refusal(self, inviter: str, invitee: str, room_id: str) -> str | None:
        """create_invites, in any Guilds room but role rooms, which only the bot fills."""
        here = await self._state.read(room_id, [*ROOM_MARKERS, (SPACE_PARENT, None)])
        room = classify(room_id, here)
        if room is None:
            return None
        return await self._member_change_refusal(room, inviter, invitee, MemberChange.INVITE)

    async def entry_refusal(
        self, user_id: str, room_id: str, *, invited_by_other: bool
    ) -> str | None:
        """Why this user may not enter this room: banned from its server, or lacking its roles."""
        here = await self._state.read(
            room_id, [*ROOM_MARKERS, (JOIN_RULES, ""), (SPACE_PARENT, None), (MEMBER, user_id)]
        )
        room = classify(room_id, here)
        if room is None:
            return None
        if room.kind is RoomKind.ROLE_ROOM and not invited_by_other:
            # A role is held by joining its room: only on the bot's invite (a grant), or a
            # joined holder's own profile change. Invites by others are refused earlier.
            own = here.get((MEMBER, user_id))
            membership = membership_in(here, user_id)
            by_bot = own is not None and own.sender == self._bot and membership == "invite"
            refusal = role_room_join_refusal(by_bot or membership == "join")
            if refusal is not None:
                return refusal
        space = await self._state.read(
            room.server_id, [(SERVER_EVENT, ""), (MEMBER, user_id), (ROLE_EVENT, BuiltinRole.ADMIN)]
        )
        server = server_state(space)
        if server is None:
            return None
        space_membership = membership_in(space, user_id)
        if space_membership == "ban":
            if invited_by_other:
                return f"{user_id} is banned from this server."
            return "You are banned from this server."
        if room.kind is not RoomKind.CHANNEL:
            return None
        if space_membership != "join" and user_id != server.owner:
            # Channels are entered through the server (as on Discord): an invite into a channel
            # alone would carry an outsider past its restricted join rule.
            if invited_by_other:
                return f"{user_id} is not a member of this server: invite them to the server first."
            return "Join the server first: its channels are for its members."
        allow = allowed_rooms(content_of(here, (JOIN_RULES, "")))
        if not allow or room.server_id in allow:
            return None  # open to every member of the server: Synapse's join rule decides
        if user_id == server.owner:
            return None
        gates = list(allow)
        admins = admin_room(space)
        if admins is not None:
            gates.append(admins)  # admins may always enter
        if space_membership == "join" and await self._state.is_joined_to_any(gates, user_id):
            return None
        if invited_by_other:
            return f"{user_id} does not have a role that may enter this channel."
        return "You need one of this channel's roles to join it."


def _role(state: StateMap, role_id: str) -> Role | None:
    roles = parse_roles({k: v for k, v in state.items() if k == (ROLE_EVENT, role_id)})
    return roles[0] if roles else None


def _links(content: Mapping[str, Any] | None) -> bool:
    via = (content or {}).get("via")
    return isinstance(via, list | tuple) and len(via) > 0


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _level_of(state: StateMap, user_id: str) -> int:
    """The user's power in the room as Matrix reads it (v12 creators aside)."""
    levels = content_of(state, (POWER_LEVELS, ""))
    if levels is None:
        create = state.get((CREATE, ""))
        return 100 if create is not None and create.sender == user_id else 0
    users = levels.get("users")
    default = _int(levels.get("users_default"), 0)
    found = users.get(user_id) if isinstance(users, Mapping) else None
    return _int(found, default)


def _needed(state: StateMap, event_type: str) -> int:
    levels = content_of(state, (POWER_LEVELS, ""))
    if levels is None:
        return 0
    events = levels.get("events")
    found = events.get(event_type) if isinstance(events, Mapping) else None
    return _int(found, _int(levels.get("state_default"), 50))


def _passes(state: StateMap, user_id: str, threshold: str, *, notifications: bool = False) -> bool:
    """Whether the user reaches this threshold (`redact`, `kick`…, or a `notifications` key)
    here; v12 creators always do."""
    create = state.get((CREATE, ""))
    if create is not None:
        version = create.content.get("room_version")
        if creators_have_unlimited_power(version if isinstance(version, str) else "1"):
            extra = create.content.get("additional_creators")
            if user_id in (create.sender, *(extra if isinstance(extra, list) else ())):
                return True
    levels = content_of(state, (POWER_LEVELS, "")) or {}
    if notifications:
        found = levels.get("notifications")
        levels = found if isinstance(found, Mapping) else {}
    needed = _int(levels.get(threshold), 50)
    return _level_of(state, user_id) >= needed
