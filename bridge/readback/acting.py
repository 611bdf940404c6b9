"""Asking the Synapse module to act for local users whose membership changed.

Where the protocol needs a user's own membership event — accepting the bot's auto-join
invites, joining a new member of a server to its default channel, leaving the channels a lost
role alone opened — only the module, inside Synapse, can send it. The bridge receives every
membership event of every Guilds room by transaction, and for those that may call for such an
action tells the module which user and room (synapse_module/acting_http.py); the module reads
the room's current state and decides. As an inbox handler this is durable: a request that
fails because Synapse is away is retried with the event.
"""

from __future__ import annotations

import logging

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import MatrixClient, MatrixRequestError
from bridge.readback.rooms import RoomsReader
from guilds.ids import RoomID
from guilds.layout import AUTO_JOIN_KEY
from guilds.rules import RoomKind
from guilds.vocabulary import MODULE_MEMBERSHIP_PATH

log = logging.getLogger(__name__)


class MembershipActing:
    """Inbox handler for `m.room.member`: asks the module to act when the change may call for it."""

    def __init__(self, matrix: MatrixClient, rooms: RoomsReader) -> None:
        self._matrix = matrix
        self._directory = rooms.directory
        self._bot = rooms.bot
        # Local users are those of the homeserver the bot's links name.
        self._local_suffix = f":{rooms.via}"

    def may_call_for_action(self, event: InboxEvent) -> bool:
        """Whether the module may have something to do: a superset of what it acts on, since
        it decides from the room's state; the rooms the directory knows narrow it down."""
        user = event.state_key
        if not user or user == self._bot or not user.endswith(self._local_suffix):
            return False
        membership = event.content.get("membership")
        if membership == "invite":
            return event.sender == self._bot and event.content.get(AUTO_JOIN_KEY) is True
        kind = self._directory.room_kind(RoomID(event.room_id))
        if membership == "join":
            # A join after a join is a new display name or avatar, not a new member.
            previous = (event.prev_content or {}).get("membership")
            return previous != "join" and kind in (None, RoomKind.SPACE)
        if membership in ("leave", "ban"):
            return kind in (None, RoomKind.ROLE_ROOM)
        return False

    async def handle(self, event: InboxEvent) -> None:
        if not self.may_call_for_action(event):
            return
        body = {"user_id": event.state_key, "room_id": event.room_id}
        try:
            answer = await self._matrix.request("POST", MODULE_MEMBERSHIP_PATH, json=body)
        except MatrixRequestError as exc:
            if exc.status == 429 or exc.status >= 500:
                raise  # the inbox retries the event later
            # A refusal is final (a misconfigured module: 404 if Synapse does not load it).
            log.error(
                "The Guilds module refused to act on %s (%s): %s",
                event.event_id,
                event.type,
                exc,
            )
            return
        if answer.get("action"):
            log.debug("The module acted on %s: %s", event.event_id, answer["action"])
