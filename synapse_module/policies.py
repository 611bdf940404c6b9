"""The homeserver admin's policies where a client could bypass the bridge: vetoed in Synapse.

Four policies can be broken without the provisioning API: a room linked into a server by hand
(channels per server), a call joined beyond its size (members per voice channel), a channel
retyped by hand (allowed channel kinds) and a space's join rule made public (public servers).
Only the event types of the policies that are set are looked at; every other event, messages
first of all, passes on one set lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from synapse.module_api import EventBase, ModuleApi

from guilds.config import ModulePolicies
from guilds.model import CATEGORY_EVENT
from guilds.policies import (
    call_members_refusal,
    channel_count_refusal,
    module_channel_kind_refusal,
    public_refusal,
)
from guilds.rules import RoomKind
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ChannelKind, is_role_room
from synapse_module.state import (
    JOIN_RULES,
    ROOM_MARKERS,
    SPACE_CHILD,
    StateReader,
    classify,
    content_of,
)

SPACE_PARENT: Final = "m.space.parent"
# What a room linked into a server's tree is, for counting channels.
_CATEGORY: Final = "category"
_ROLE_ROOM: Final = "role_room"
_CHANNEL: Final = "channel"


def call_user(state_key: str) -> str:
    """The user a MatrixRTC membership's state key belongs to.

    Keys are `_@user:server_DEVICE`, `@user:server_DEVICE` or `@user:server`; server names
    hold no underscore, so the user id ends at the first one after the colon.
    """
    key = state_key[1:] if state_key.startswith("_") else state_key
    colon = key.find(":")
    if colon < 0:
        return key
    underscore = key.find("_", colon)
    return key if underscore < 0 else key[:underscore]


def _linked(content: Any) -> bool:
    # Synapse hands content over as its own read-only JSON object, not a dict.
    get = getattr(content, "get", None)
    if get is None:
        return False
    via = get("via")
    return isinstance(via, Sequence) and not isinstance(via, str) and len(via) > 0


class PolicyVetoes:
    def __init__(self, api: ModuleApi, bot_user_id: str, policies: ModulePolicies) -> None:
        self._api = api
        self._bot = bot_user_id
        self._policies = policies
        self._state = StateReader(api)
        # Only the types of the policies that are set: with none, nothing is ever looked at.
        types: set[str] = set()
        if policies.channels_per_server is not None:
            types.add(SPACE_CHILD)
        if policies.members_per_voice_channel is not None:
            types.add(CALL_MEMBER_EVENT)
        if len(policies.channel_kinds) < len(ChannelKind):
            types.add(CHANNEL_EVENT)
        if not policies.public_servers:
            types.add(JOIN_RULES)
        self.types: Final = frozenset(types)

    async def refusal(self, event: EventBase) -> str | None:
        """The sentence refusing this event, or None; O(1) for every type no policy rules."""
        if event.type not in self.types or not event.is_state():
            return None
        sender: str = event.sender
        if sender == self._bot or not self._api.is_mine(sender):
            return None
        content = event.content
        if event.type == CHANNEL_EVENT:
            return module_channel_kind_refusal(self._policies, content.get("kind"))
        if event.type == JOIN_RULES:
            if content.get("join_rule") != "public":
                return None
            room = classify(event.room_id, await self._state.read(event.room_id, ROOM_MARKERS))
            if room is None or room.kind is not RoomKind.SPACE:
                return None
            return public_refusal(self._policies.public_servers)
        if event.type == CALL_MEMBER_EVENT:
            return await self._call_refusal(event)
        return await self._link_refusal(event)

    async def _call_refusal(self, event: EventBase) -> str | None:
        if not event.content:
            return None  # leaving a call is always allowed
        here = await self._state.read(
            event.room_id, [(CHANNEL_EVENT, ""), (CALL_MEMBER_EVENT, None)]
        )
        sender: str = event.sender
        others = {
            call_user(key)
            for (event_type, key), member in here.items()
            if event_type == CALL_MEMBER_EVENT and member.content
        } - {sender}
        return call_members_refusal(self._policies.members_per_voice_channel, len(others))

    async def _link_refusal(self, event: EventBase) -> str | None:
        """A room linked into a server's space or category by hand counts as one more channel."""
        child: str = event.state_key
        if not _linked(event.content):
            return None
        here = await self._state.read(
            event.room_id, [*ROOM_MARKERS, (SPACE_PARENT, None), (SPACE_CHILD, child)]
        )
        parent = classify(event.room_id, here)
        if parent is None or parent.kind not in (RoomKind.SPACE, RoomKind.CATEGORY):
            return None
        if _linked(content_of(here, (SPACE_CHILD, child))):
            return None  # already linked: an edit of the link adds nothing
        if await self._kind_of_child(child) != _CHANNEL:
            return None
        channels = await self._channel_count(parent.server_id)
        return channel_count_refusal(self._policies.channels_per_server, channels)

    async def _kind_of_child(self, room_id: str) -> str:
        """What a linked room is, from one read of its state: a category, a role room (linked
        from the space so that clients nest it, never a channel) or a channel."""
        state = await self._state.read(room_id, [(CATEGORY_EVENT, ""), ("m.room.create", "")])
        if content_of(state, (CATEGORY_EVENT, "")) is not None:
            return _CATEGORY
        if is_role_room(content_of(state, ("m.room.create", ""))):
            return _ROLE_ROOM
        return _CHANNEL

    async def _children(self, room_id: str) -> list[str]:
        state = await self._state.read(room_id, [(SPACE_CHILD, None)])
        return [
            key
            for (event_type, key), link in state.items()
            if event_type == SPACE_CHILD and _linked(link.content)
        ]

    async def _channel_count(self, server_id: str) -> int:
        """The rooms linked into the server's tree that are neither categories nor role rooms:
        those of the space and its categories, and the private channels its role rooms link."""
        channels: set[str] = set()
        for child in await self._children(server_id):
            kind = await self._kind_of_child(child)
            if kind in (_CATEGORY, _ROLE_ROOM):
                channels.update(await self._children(child))
            elif kind == _CHANNEL:
                channels.add(child)
        return len(channels)
