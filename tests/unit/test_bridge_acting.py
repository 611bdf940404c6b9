"""Which membership events make the bridge ask the module to act, and how it treats the answer."""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import HomeserverUnavailable, MatrixClient, MatrixRequestError
from bridge.readback.acting import MembershipActing
from bridge.readback.directory import ServerDirectory
from bridge.readback.rooms import RoomsReader
from guilds.ids import RoomID, UserID
from guilds.layout import AUTO_JOIN_KEY
from guilds.rules import RoomKind
from guilds.vocabulary import MODULE_MEMBERSHIP_PATH

BOT = UserID("@guilds:here")
USER = "@ann:here"
KINDS = {
    "!space:here": RoomKind.SPACE,
    "!general:here": RoomKind.DEFAULT_CHANNEL,
    "!lounge:here": RoomKind.CHANNEL,
    "!mods:here": RoomKind.ROLE_ROOM,
}


def member_event(
    room_id: str,
    content: dict[str, Any],
    *,
    user: str = USER,
    sender: str = USER,
    prev: dict[str, Any] | None = None,
) -> InboxEvent:
    event: dict[str, Any] = {"content": content}
    if prev is not None:
        event["unsigned"] = {"prev_content": prev}
    return InboxEvent(
        seq=1,
        event_id="$e",
        room_id=room_id,
        type="m.room.member",
        state_key=user,
        sender=sender,
        attempts=0,
        event=event,
    )


def acting(answer: Any = None) -> tuple[MembershipActing, Mock]:
    matrix = Mock(spec=MatrixClient)
    if isinstance(answer, Exception):
        matrix.request = AsyncMock(side_effect=answer)
    else:
        matrix.request = AsyncMock(return_value=answer or {"action": None})
    directory = Mock(spec=ServerDirectory)
    directory.room_kind.side_effect = lambda room_id: KINDS.get(room_id)
    return MembershipActing(matrix, RoomsReader(directory, bot=BOT, via="here")), matrix


JOIN = {"membership": "join"}
AUTO_INVITE = {"membership": "invite", AUTO_JOIN_KEY: True}


@pytest.mark.parametrize(
    ("event", "asks"),
    [
        # The bot's auto-join invites, wherever they are; no other invite.
        (member_event("!mods:here", AUTO_INVITE, sender=BOT), True),
        (member_event("!lounge:here", {"membership": "invite"}, sender=BOT), False),
        (member_event("!mods:here", AUTO_INVITE, sender="@mallory:here"), False),
        # Joining a space (the default channel follows); a room the directory does not know
        # yet may be one. Joins of channels, and renames (a join after a join), need nothing.
        (member_event("!space:here", JOIN), True),
        (member_event("!unknown:here", JOIN), True),
        (member_event("!general:here", JOIN), False),
        (member_event("!space:here", {**JOIN, "displayname": "Ann"}, prev=JOIN), False),
        (member_event("!space:here", JOIN, prev={"membership": "invite"}), True),
        # Leaving or banned from a role room (its gated channels follow); not from others.
        (member_event("!mods:here", {"membership": "leave"}, sender=BOT), True),
        (member_event("!mods:here", {"membership": "ban"}, sender=BOT), True),
        (member_event("!unknown:here", {"membership": "leave"}), True),
        (member_event("!lounge:here", {"membership": "leave"}), False),
        (member_event("!space:here", {"membership": "knock"}), False),
        # Only local users other than the bot.
        (member_event("!space:here", JOIN, user="@far:elsewhere"), False),
        (member_event("!space:here", JOIN, user=BOT, sender=BOT), False),
        (member_event("!space:here", JOIN, user="@ann:here.evil"), False),
    ],
)
async def test_which_membership_changes_are_sent_to_the_module(
    event: InboxEvent, asks: bool
) -> None:
    handler, matrix = acting()
    await handler.handle(event)
    if asks:
        matrix.request.assert_awaited_once_with(
            "POST",
            MODULE_MEMBERSHIP_PATH,
            json={"user_id": event.state_key, "room_id": RoomID(event.room_id)},
        )
    else:
        matrix.request.assert_not_called()


async def test_an_outage_or_a_rate_limit_is_retried_a_refusal_is_not() -> None:
    event = member_event("!space:here", JOIN)
    for retried in (
        HomeserverUnavailable("down"),
        MatrixRequestError(429, "M_LIMIT_EXCEEDED", "slow down"),
        MatrixRequestError(500, "M_UNKNOWN", "bug"),
    ):
        handler, _ = acting(retried)
        with pytest.raises(type(retried)):
            await handler.handle(event)
    # A module that is not loaded (404) or refuses the bridge (403) will not change its mind.
    for final in (
        MatrixRequestError(404, "M_UNRECOGNIZED", "Unrecognized request"),
        MatrixRequestError(403, "M_FORBIDDEN", "Only the Guilds bridge may ask"),
    ):
        handler, matrix = acting(final)
        await handler.handle(event)
        matrix.request.assert_awaited_once()
