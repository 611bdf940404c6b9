"""How the bot answers changes to its own membership: joining the rooms it is invited to."""

from __future__ import annotations

import logging

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import MatrixClient, MatrixRequestError

log = logging.getLogger(__name__)


class BotMembership:
    """Inbox handler: the bot joins every room it is invited to, so that room's events reach it."""

    def __init__(self, matrix: MatrixClient, bot_user_id: str) -> None:
        self.matrix = matrix
        self.bot_user_id = bot_user_id

    async def __call__(self, event: InboxEvent) -> None:
        if event.type != "m.room.member" or event.state_key != self.bot_user_id:
            return
        if event.content.get("membership") != "invite":
            return
        try:
            await self.matrix.join_room(event.room_id)
        except MatrixRequestError as exc:
            if exc.status == 429 or exc.status >= 500:
                raise  # worth another try: the inbox retries with backoff
            # Refused for good (invite withdrawn, room gone, bot banned): retrying cannot help.
            # HomeserverUnavailable propagates, so the inbox retries that too.
            log.warning(
                "Could not join %s after an invite from %s: %s",
                event.room_id,
                event.sender,
                exc.errcode,
            )
            return
        log.info("Joined %s, invited by %s", event.room_id, event.sender)
