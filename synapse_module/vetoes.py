"""The vetoes: what a local user may not do in a Guilds server, whichever client sends it.

Each callback starts with checks that need no lookup (event type, local sender, the bot), so
the message path stays O(1); only the event types a rule concerns read state, and then only
the entries the rule needs. The rules themselves are the shared pure functions of
`guilds.rules`; this file only gathers their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi
from synapse.module_api.errors import Codes

from guilds.model import CATEGORY_EVENT, NON_MEMBER_POSITION, BuiltinRole
from guilds.rules import (
    POWER_LEVELS,
    ROOM_AVATAR,
    ROOM_NAME,
    ROOM_TOPIC,
    SPACE_CHILD,
    SPACE_PARENT,
    TOMBSTONE,
    Actor,
    RoomContext,
    RoomKind,
    call_membership_refusal,
    default_channel_refusal,
    guilds_state_refusal,
    room_creation_refusal,
    state_event_refusal,
)
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from synapse_module.policies import call_user
from synapse_module.state import (
    JOIN_RULES,
    MEMBER,
    ROOM_MARKERS,
    GuildsRoom,
    StateReader,
    admin_room,
    allowed_rooms,
    classify,
    content_of,
    membership_in,
    parse_roles,
    server_state,
)

# The state event types some Guilds rule is about; every other event passes untouched.
RULED_STATE: Final = frozenset(
    {
        ROOM_NAME,
        ROOM_TOPIC,
        ROOM_AVATAR,
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
        if event.type not in RULED_STATE or not event.is_state():
            return NOT_SPAM
        if not self._api.is_mine(event.sender):
            # Refusing a federated event would fork the room's history.
            return NOT_SPAM
        refusal = await self.state_refusal(event)
        return refusal if refusal is not None else NOT_SPAM

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
        return state_event_refusal(
            actor, context, event_type, state_key, prev_content, new_content, roles=roles
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
        refusal = await self.entry_refusal(invitee, room_id, invited_by_other=True)
        return NOT_SPAM if refusal is None else forbidden(refusal)

    async def entry_refusal(
        self, user_id: str, room_id: str, *, invited_by_other: bool
    ) -> str | None:
        """Why this user may not enter this room: banned from its server, or lacking its roles."""
        here = await self._state.read(
            room_id, [*ROOM_MARKERS, (JOIN_RULES, ""), (SPACE_PARENT, None)]
        )
        room = classify(room_id, here)
        if room is None:
            return None
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
