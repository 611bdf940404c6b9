"""The pure rules for membership, redactions, messages and space links (issue 15).

Each case is a role configuration Matrix's thresholds cannot tell apart: a high-power role
without the permission, a power-0 role with it.
"""

from __future__ import annotations

import pytest

from guilds.model import NON_MEMBER_POSITION, OWNER_POSITION, Permission
from guilds.rules import (
    Actor,
    LinkedRoom,
    MemberChange,
    RoomContext,
    RoomKind,
    link_refusal,
    member_change,
    member_change_refusal,
    message_permission,
    message_refusal,
    pings_the_room,
    redaction_refusal,
    role_room_join_refusal,
    room_ping_refusal,
)
from guilds.vocabulary import ChannelKind

BOT, OWNER = "@guilds:here", "@owner:here"
CHANNEL = RoomContext(RoomKind.CHANNEL, ChannelKind.TEXT)
SPACE = RoomContext(RoomKind.SPACE)


def actor(*perms: Permission, position: int = 100, power: int = 0, **flags: bool) -> Actor:
    return Actor("@a:here", frozenset(perms), position, power, **flags)


PLAIN = actor(Permission.SEND_MESSAGES, position=0)
# Observation 1: power 60, only send_messages.
HERALD = actor(Permission.SEND_MESSAGES, position=200, power=60)
OWNER_ACTOR = Actor(OWNER, frozenset(), OWNER_POSITION, 100, owner=True)


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        ("join", "leave", MemberChange.KICK),
        ("knock", "leave", MemberChange.KICK),
        ("join", "ban", MemberChange.BAN),
        (None, "ban", MemberChange.BAN),
        ("ban", "leave", MemberChange.UNBAN),
        (None, "invite", MemberChange.INVITE),
        ("invite", "leave", MemberChange.WITHDRAW_INVITE),
        ("leave", "leave", None),
        (None, "leave", None),
    ],
)
def test_member_change_of_another_user(before: str | None, after: str, change: object) -> None:
    assert member_change("@a:here", "@t:here", before, after) is change


def test_ones_own_membership_is_no_change() -> None:
    for before, after in (("join", "leave"), (None, "join"), ("invite", "leave")):
        assert member_change("@a:here", "@a:here", before, after) is None


@pytest.mark.parametrize(
    ("change", "permission"),
    [
        (MemberChange.KICK, "kick_members"),
        (MemberChange.BAN, "ban_members"),
        (MemberChange.UNBAN, "ban_members"),
        (MemberChange.INVITE, "create_invites"),
        (MemberChange.WITHDRAW_INVITE, "create_invites"),
    ],
)
def test_a_powerful_role_without_the_permission_is_refused_naming_it(
    change: MemberChange, permission: str
) -> None:
    for room in (CHANNEL, SPACE):
        refusal = member_change_refusal(HERALD, PLAIN, room, change)
        assert refusal is not None and permission in refusal
    holder = actor(Permission(permission), position=200)
    assert member_change_refusal(holder, PLAIN, SPACE, change) is None


def test_rank_applies_to_kicks_and_bans_not_to_invites_or_unbans() -> None:
    kicker = actor(Permission.KICK_MEMBERS, Permission.BAN_MEMBERS, Permission.CREATE_INVITES)
    peer = actor(position=100)
    for change in (MemberChange.KICK, MemberChange.BAN):
        assert "at or above" in (member_change_refusal(kicker, peer, SPACE, change) or "")
        assert "owner" in (member_change_refusal(kicker, OWNER_ACTOR, SPACE, change) or "")
    outsider = actor(position=NON_MEMBER_POSITION)
    assert member_change_refusal(kicker, outsider, SPACE, MemberChange.UNBAN) is None
    assert member_change_refusal(kicker, peer, SPACE, MemberChange.INVITE) is None
    # The owner outranks everyone; the bot is never refused.
    assert member_change_refusal(OWNER_ACTOR, peer, SPACE, MemberChange.BAN) is None
    assert member_change_refusal(actor(bot=True), OWNER_ACTOR, SPACE, MemberChange.KICK) is None


def test_role_rooms_change_only_through_the_bot() -> None:
    # Observation 5: an admin's raw invite into the admin role room.
    role_room = RoomContext(RoomKind.ROLE_ROOM)
    for change in MemberChange:
        refusal = member_change_refusal(OWNER_ACTOR, PLAIN, role_room, change)
        assert refusal is not None and "Guilds" in refusal
    assert role_room_join_refusal(invited_by_bot=False) is not None
    assert role_room_join_refusal(invited_by_bot=True) is None


def test_redacting_another_members_event_needs_manage_messages() -> None:
    refusal = redaction_refusal(HERALD, own=False)
    assert refusal is not None and "manage_messages" in refusal
    assert redaction_refusal(HERALD, own=True) is None
    # A power-0 role holding it (observation 1): its holders may, others still may not.
    assert redaction_refusal(actor(Permission.MANAGE_MESSAGES, power=0), own=False) is None
    assert redaction_refusal(PLAIN, own=False) is not None
    assert redaction_refusal(OWNER_ACTOR, own=False) is None


def test_messages_need_send_messages_and_call_events_connect() -> None:
    muted = actor(Permission.CONNECT)
    refusal = message_refusal(muted, CHANNEL, "m.room.message")
    assert refusal is not None and "send_messages" in refusal
    assert message_refusal(muted, CHANNEL, "m.reaction") is not None
    assert message_refusal(muted, CHANNEL, "m.call.invite") is None
    assert message_permission("m.call.invite") is Permission.CONNECT
    assert "connect" in (message_refusal(PLAIN, CHANNEL, "m.call.invite") or "")
    assert message_refusal(PLAIN, CHANNEL, "m.room.message") is None
    # Spaces, categories and role rooms are Matrix's to refuse (events_default 100).
    assert message_refusal(muted, SPACE, "m.room.message") is None


@pytest.mark.parametrize(
    ("room", "refused_with"),
    [
        (LinkedRoom("join", True), None),
        (LinkedRoom("invite", True), None),
        (LinkedRoom(None, False), BOT),
        (LinkedRoom("join", False), "power 100"),
        (LinkedRoom("leave", True), BOT),
        (LinkedRoom(None, False, server_id="!s:here"), None),
        (LinkedRoom(None, False, server_id="!other:here"), "another Guilds server"),
        (LinkedRoom("join", True, unlimited_creators=(BOT, OWNER)), None),
        (LinkedRoom("join", True, unlimited_creators=("@mod:here",)), "@mod:here"),
        (LinkedRoom("join", True, out_of_reach=("@mod:here",)), "below 100"),
    ],
)
def test_a_room_joins_a_server_only_if_guilds_can_adopt_it(
    room: LinkedRoom, refused_with: str | None
) -> None:
    # Observations 9 and 11.
    refusal = link_refusal(BOT, "!s:here", OWNER, room)
    if refused_with is None:
        assert refusal is None
    else:
        assert refusal is not None and refused_with in refusal


def test_notifying_the_whole_room_needs_manage_messages() -> None:
    # notifications.room follows manage_messages' threshold: a power-0 holder lowers it to 0.
    assert pings_the_room({"body": "hi @room", "msgtype": "m.text"})
    assert pings_the_room({"body": "x", "m.mentions": {"room": True}})
    # With intentional mentions, the body no longer pings.
    assert not pings_the_room({"body": "@room", "m.mentions": {}})
    assert not pings_the_room({"body": "hello"})
    refusal = room_ping_refusal(PLAIN)
    assert refusal is not None and "manage_messages" in refusal
    assert room_ping_refusal(actor(Permission.MANAGE_MESSAGES)) is None
    assert room_ping_refusal(OWNER_ACTOR) is None


def test_a_ban_and_its_lifting_are_from_the_server_never_from_one_channel() -> None:
    # A channel ban looked done in Element and was undone by convergence (the member's roles
    # still open the channel): refused like a channel kick, saying where it works.
    banner = actor(Permission.BAN_MEMBERS, position=200, power=50)
    category = RoomContext(RoomKind.CATEGORY)
    default = RoomContext(RoomKind.DEFAULT_CHANNEL, ChannelKind.TEXT)
    for room in (CHANNEL, default, category):
        for who in (banner, OWNER_ACTOR):
            ban = member_change_refusal(who, PLAIN, room, MemberChange.BAN)
            assert ban is not None and "ban them from the server" in ban
            unban = member_change_refusal(who, PLAIN, room, MemberChange.UNBAN)
            assert unban is not None and "lift it on the server" in unban
        assert "ban_members" in (member_change_refusal(HERALD, PLAIN, room, MemberChange.BAN) or "")
        # The bot carries a server ban and its lifting into every room.
        for change in (MemberChange.BAN, MemberChange.UNBAN):
            assert member_change_refusal(actor(bot=True), PLAIN, room, change) is None
    for change in (MemberChange.BAN, MemberChange.UNBAN):
        assert member_change_refusal(banner, PLAIN, SPACE, change) is None


def test_a_kick_is_from_the_server_never_from_one_channel() -> None:
    # Issue 17, observation 7: Element's and Cinny's "remove from room" in a channel. Discord has
    # no channel kick and the member could walk straight back in, so it is refused, saying how.
    kicker = actor(Permission.KICK_MEMBERS, position=200, power=50)
    category = RoomContext(RoomKind.CATEGORY)
    default = RoomContext(RoomKind.DEFAULT_CHANNEL, ChannelKind.TEXT)
    for room in (CHANNEL, default, category):
        for who in (kicker, OWNER_ACTOR):
            refusal = member_change_refusal(who, PLAIN, room, MemberChange.KICK)
            assert refusal is not None and "kick them from the server" in refusal
        # Without the permission, the permission is what they hear.
        assert "kick_members" in (
            member_change_refusal(HERALD, PLAIN, room, MemberChange.KICK) or ""
        )
        # Taking back an invite stays what it was; the bot cascades a server kick to channels.
        inviter = actor(Permission.CREATE_INVITES, position=200, power=50)
        assert member_change_refusal(inviter, PLAIN, room, MemberChange.WITHDRAW_INVITE) is None
        assert member_change_refusal(actor(bot=True), PLAIN, room, MemberChange.KICK) is None
    assert member_change_refusal(kicker, PLAIN, SPACE, MemberChange.KICK) is None
