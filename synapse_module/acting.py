"""Acting for local users where the protocol needs the user's own membership event.

The bridge asks (synapse_module/acting_http.py): it receives every membership event of every
Guilds room by appservice transaction, and tells the module "this local user's membership in
this room changed". The module then reads the few state entries it needs — never the room's
whole state — and does what Guilds does: accept the bot's auto-join invites, join a new member
of a server to its default channel, leave the channels a lost role alone opened. Each action
first checks that it is still needed, so a request repeated (the bridge retries after a
failure) acts once.

This replaces an `on_new_event` callback: Synapse loads a room's entire current state before
calling it, for every event of every room, on the path that wakes `/sync` listeners — a cost
every message paid, growing with the room (docs/PERFORMANCE.md, figure 1). Any Synapse process
can serve the request; each action it takes is logged with the process's name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from synapse.module_api import ModuleApi

from guilds.layout import AUTO_JOIN_KEY
from guilds.model import CATEGORY_EVENT, BuiltinRole
from guilds.rules import RoomKind
from guilds.vocabulary import ROLE_EVENT, SERVER_EVENT
from synapse_module.state import (
    JOIN_RULES,
    MEMBER,
    ROOM_MARKERS,
    SPACE_CHILD,
    SPACE_PARENT,
    StateMap,
    StateReader,
    admin_room,
    allowed_rooms,
    classify,
    content_of,
    membership_in,
    server_state,
)

logger = logging.getLogger(__name__)

# Categories nest one level below the space; deeper sub-spaces are not Guilds'.
_MAX_DEPTH: Final = 2

ACCEPT_INVITE: Final = "accept_invite"
JOIN_DEFAULT_CHANNEL: Final = "join_default_channel"
LEAVE_UNGATED_CHANNELS: Final = "leave_ungated_channels"


class Acting:
    def __init__(self, api: ModuleApi, bot_user_id: str) -> None:
        self._api = api
        self._bot = bot_user_id
        self._state = StateReader(api)

    async def on_membership(self, user_id: str, room_id: str) -> str | None:
        """Do what Guilds does after `user_id`'s membership in `room_id` changed, as it stands
        now; return the action taken, or None when there was nothing to do."""
        if user_id == self._bot or not self._api.is_mine(user_id):
            return None
        state = await self._state.read(
            room_id, [(MEMBER, user_id), *ROOM_MARKERS, (SPACE_PARENT, None)]
        )
        member = state.get((MEMBER, user_id))
        membership = membership_in(state, user_id)
        if membership == "invite":
            if member is not None and member.sender == self._bot:
                if member.content.get(AUTO_JOIN_KEY) is True:
                    return await self._act(ACCEPT_INVITE, self.accept_invite, user_id, room_id)
        elif membership == "join":
            server = server_state(state)
            if server is not None:
                return await self._act(
                    JOIN_DEFAULT_CHANNEL,
                    self.join_default_channel,
                    user_id,
                    server.default_channel,
                )
        elif membership in ("leave", "ban"):
            room = classify(room_id, state)
            if room is not None and room.kind is RoomKind.ROLE_ROOM:
                return await self._act(
                    LEAVE_UNGATED_CHANNELS,
                    self.leave_ungated_channels,
                    user_id,
                    room.server_id,
                    room_id,
                )
        return None

    async def _act(self, action: str, func: Any, *args: Any) -> str | None:
        if not await func(*args):
            return None
        # One line per action taken, naming the process: with workers, these lines across
        # every process's log show each action was taken once.
        logger.info("Guilds acted on %s: %s%r", self._api.worker_name or "main", action, args)
        return action

    async def accept_invite(self, user_id: str, room_id: str) -> bool:
        """Join a room the bot invited the user to with the auto-join flag (just read)."""
        await self._api.update_room_membership(user_id, user_id, room_id, "join")
        return True

    async def join_default_channel(self, user_id: str, channel_id: str) -> bool:
        """Join a new member of a server to its default channel.

        A direct join rather than a bot invite: the channel is restricted to members of the
        space, which the user now is, so one event suffices and no invite lingers if it fails.
        A ban in the channel, or being joined already, leaves things as they are.
        """
        if await self._state.membership(channel_id, user_id) in ("join", "ban"):
            return False
        await self._api.update_room_membership(user_id, user_id, channel_id, "join")
        return True

    async def leave_ungated_channels(self, user_id: str, server_id: str, role_room: str) -> bool:
        """Leave the channels the lost role gated that no other role of the user still opens."""
        if await self._state.membership(role_room, user_id) == "join":
            return False  # the role was given back meanwhile
        space = await self._state.read(
            server_id, [(SERVER_EVENT, ""), (SPACE_CHILD, None), (ROLE_EVENT, BuiltinRole.ADMIN)]
        )
        server = server_state(space)
        if server is None or server.owner == user_id:
            return False
        admins = admin_room(space)
        joined: dict[str, bool] = {}

        async def holds(room_id: str) -> bool:
            if room_id not in joined:
                joined[room_id] = await self._state.membership(room_id, user_id) == "join"
            return joined[room_id]

        if admins is not None and admins != role_room and await holds(admins):
            return False
        left = False
        # The channels the lost role gated are linked from its room (docs/DESIGN.md, "Private
        # channels"); the space's tree is walked too, for links convergence has not moved yet.
        lost = await self._state.read(role_room, [(SPACE_CHILD, None)])
        pending = [(child, 1) for child in (*_children(space), *_children(lost))]
        seen: set[str] = set()
        while pending:
            room_id, depth = pending.pop()
            if room_id in seen:
                continue
            seen.add(room_id)
            here = await self._state.read(
                room_id,
                [(JOIN_RULES, ""), (MEMBER, user_id), (CATEGORY_EVENT, ""), (SPACE_CHILD, None)],
            )
            if content_of(here, (CATEGORY_EVENT, "")) is not None:
                if depth < _MAX_DEPTH:
                    pending += [(child, depth + 1) for child in _children(here)]
                continue
            if membership_in(here, user_id) != "join":
                continue
            allow = allowed_rooms(content_of(here, (JOIN_RULES, "")))
            if not allow or role_room not in allow or server_id in allow:
                continue
            still_open = False
            for other in allow:
                if other != role_room and await holds(other):
                    still_open = True
                    break
            if not still_open:
                await self._api.update_room_membership(user_id, user_id, room_id, "leave")
                left = True
        return left


def _children(state: StateMap) -> list[str]:
    return [
        key
        for (event_type, key), event in state.items()
        if event_type == SPACE_CHILD and _links(event.content)
    ]


def _links(content: Mapping[str, Any]) -> bool:
    via = content.get("via")
    return isinstance(via, list) and bool(via)
