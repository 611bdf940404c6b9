"""Acting for local users where the protocol needs the user's own membership event.

Runs on the one process named `acting_worker`, from `on_new_event`, which Synapse calls after
an event is persisted (with the room's current state, which it has loaded anyway). Slow work
goes through `run_as_background_process`; every action first checks that it is still needed,
so an event seen twice acts once.

With Synapse workers, every process loads the module and calls `on_new_event` for every event
it hears of over replication, so the callback is registered on `acting_worker` alone (see
`GuildsModule`), and each action it schedules is logged with the process's name: the logs of
all processes show any action taken twice. Nothing is cached between calls: every read goes
to Synapse's state, so there is nothing to invalidate across workers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from synapse.module_api import EventBase, ModuleApi

from guilds.layout import AUTO_JOIN_KEY
from guilds.model import CATEGORY_EVENT, BuiltinRole
from guilds.rules import RoomKind
from guilds.vocabulary import ROLE_EVENT, SERVER_EVENT
from synapse_module.state import (
    JOIN_RULES,
    MEMBER,
    SPACE_CHILD,
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


class Acting:
    def __init__(self, api: ModuleApi, bot_user_id: str) -> None:
        self._api = api
        self._bot = bot_user_id
        self._state = StateReader(api)

    async def on_new_event(self, event: EventBase, state: StateMap) -> None:
        if event.type != MEMBER:
            return
        user_id: str = event.state_key
        if user_id == self._bot or not self._api.is_mine(user_id):
            return
        membership = event.content.get("membership")
        room_id: str = event.room_id
        if membership == "invite":
            if event.sender == self._bot and event.content.get(AUTO_JOIN_KEY) is True:
                self._background("guilds_auto_join", self.accept_invite, user_id, room_id)
        elif membership == "join":
            server = server_state(state)
            if server is not None and membership_in(state, user_id) == "join":
                self._background(
                    "guilds_join_default_channel",
                    self.join_default_channel,
                    user_id,
                    server.default_channel,
                )
        elif membership in ("leave", "ban"):
            room = classify(room_id, state)
            if room is not None and room.kind is RoomKind.ROLE_ROOM:
                self._background(
                    "guilds_leave_ungated_channels",
                    self.leave_ungated_channels,
                    user_id,
                    room.server_id,
                    room_id,
                )

    def _background(self, desc: Any, func: Any, *args: Any) -> None:
        # One line per action scheduled, naming the process: with workers, these lines across
        # every process's log show each action was taken up once, by the acting worker alone.
        logger.info("Guilds acting on %s: %s%r", self._api.worker_name or "main", desc, args)
        self._api.run_as_background_process(desc, self._logged, desc, func, *args)

    @staticmethod
    async def _logged(desc: str, func: Any, *args: Any) -> None:
        try:
            await func(*args)
        except Exception:
            logger.exception("Guilds: %s%r failed", desc, args)

    async def accept_invite(self, user_id: str, room_id: str) -> None:
        """Join a room the bot invited the user to with the auto-join flag."""
        if await self._state.membership(room_id, user_id) != "invite":
            return  # already joined, or the invite was withdrawn or declined
        await self._api.update_room_membership(user_id, user_id, room_id, "join")

    async def join_default_channel(self, user_id: str, channel_id: str) -> None:
        """Join a new member of a server to its default channel.

        A direct join rather than a bot invite: the channel is restricted to members of the
        space, which the user now is, so one event suffices and no invite lingers if it fails.
        A ban in the channel, or being joined already, leaves things as they are.
        """
        if await self._state.membership(channel_id, user_id) in ("join", "ban"):
            return
        await self._api.update_room_membership(user_id, user_id, channel_id, "join")

    async def leave_ungated_channels(self, user_id: str, server_id: str, role_room: str) -> None:
        """Leave the channels the lost role gated that no other role of the user still opens."""
        if await self._state.membership(role_room, user_id) == "join":
            return  # the role was given back meanwhile
        space = await self._state.read(
            server_id, [(SERVER_EVENT, ""), (SPACE_CHILD, None), (ROLE_EVENT, BuiltinRole.ADMIN)]
        )
        server = server_state(space)
        if server is None or server.owner == user_id:
            return
        admins = admin_room(space)
        joined: dict[str, bool] = {}

        async def holds(room_id: str) -> bool:
            if room_id not in joined:
                joined[room_id] = await self._state.membership(room_id, user_id) == "join"
            return joined[room_id]

        if admins is not None and admins != role_room and await holds(admins):
            return
        pending = [(child, 1) for child in _children(space)]
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


def _children(state: StateMap) -> list[str]:
    return [
        key
        for (event_type, key), event in state.items()
        if event_type == SPACE_CHILD and _links(event.content)
    ]


def _links(content: Mapping[str, Any]) -> bool:
    via = content.get("via")
    return isinstance(via, list) and bool(via)
