"""Moderation from any client: every permission a Matrix threshold stands for is the module's.

Issue 15's observations 1, 5, 9, 10 and 11, each reproduced with raw Client-Server calls
(matrix-nio) against a server built through the provisioning API: Matrix's thresholds are the
lowest power of any role holding a permission, so whoever passes one without holding the
permission must be refused by the module, with a sentence naming the permission.
"""

from __future__ import annotations

import secrets
from typing import Any

import nio
import pytest
import pytest_asyncio

from tests.harness.api import (
    Api,
    create_server,
    eventually,
    grant,
    hierarchy,
    join_as,
    join_server,
    role_room,
    state_of,
)
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE_AND_WORKERS

DEADLINE_S = 10.0
PINNED = "m.room.pinned_events"


async def new_role(
    stack: Stack, owner: User, sid: str, name: str, power: int, perms: list[str]
) -> str:
    status, role = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/roles", {"name": name, "power": power, "permissions": perms}
    )
    assert status == 201, role
    return str(role["role_id"])


async def member(stack: Stack, sid: str, *roles: str, owner: User) -> User:
    user = await stack.register_user(f"m{secrets.token_hex(4)}")
    await join_server(stack, sid, user)
    for role_id in roles:
        await grant(stack, sid, owner, user, role_id)
    return user


async def in_room(stack: Stack, user: User, room_id: str, *, default: bool = False) -> None:
    """`user` joined to `room_id`. The `default` channel is joined for a new member by Guilds
    itself: that join is waited for, not raced (on Synapse workers two joins of one user on two
    processes fork the room, and its next event is refused for duplicate auth events)."""

    async def joined() -> bool:
        return await membership(stack, user, room_id, user.user_id) == "join"

    if default and await eventually(joined, deadline_s=AUTO_JOIN_S, interval_s=0.2):
        return
    assert isinstance(await join_as(stack, user, room_id), nio.JoinResponse)


# How long a new member's join of the default channel by Guilds may take before a test joins.
AUTO_JOIN_S = 10.0


async def send(stack: Stack, user: User, room_id: str, body: str = "hello") -> Any:
    async with stack.nio_client(user) as client:
        return await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body}
        )


async def redact(stack: Stack, user: User, room_id: str, event_id: str) -> Any:
    async with stack.nio_client(user) as client:
        return await client.room_redact(room_id, event_id, reason="test")


def refused(response: Any, *fragments: str) -> None:
    assert isinstance(response, nio.ErrorResponse), response
    assert response.status_code == "M_FORBIDDEN", response
    for fragment in fragments:
        assert fragment in response.message, response.message


def allowed(response: Any) -> None:
    assert not isinstance(response, nio.ErrorResponse), response


async def membership(stack: Stack, viewer: User, room_id: str, user_id: str) -> str | None:
    async with stack.nio_client(viewer) as client:
        response = await client.room_get_state_event(room_id, "m.room.member", user_id)
    if not isinstance(response, nio.RoomGetStateEventResponse):
        return None
    found = response.content.get("membership")
    return found if isinstance(found, str) else None


class SharedServer:
    """A server as `create_server` makes it, shared by the tests of this module that change
    nothing server-wide (no member role edit, no role that lowers a threshold, no channel every
    member is joined to): each makes its own members, roles and rooms and acts on those alone,
    so none depends on another having run or not. Tests that do change the whole server
    (thresholds, the member role, an adopted channel) make a server of their own."""

    def __init__(self, owner: User, server: dict[str, Any]) -> None:
        self.owner = owner
        self.sid, self.general = server["server_id"], server["default_channel_id"]


@pytest_asyncio.fixture(scope="module")
async def shared(stack: Stack) -> SharedServer:
    owner = await stack.register_user(f"owner{secrets.token_hex(3)}")
    return SharedServer(owner, await create_server(stack, owner, "Moderation"))


# --- observation 1: thresholds are not permissions ----------------------------------------------


async def test_a_powerful_role_without_the_permissions_cannot_moderate(
    stack: Stack, shared: SharedServer
) -> None:
    """A role at power 60 holding only send_messages passes the kick (50), ban (50), invite
    (50) and redact (50) thresholds; each of those actions is refused, naming the permission."""
    sid, general, alice = shared.sid, shared.general, shared.owner
    herald = await new_role(stack, alice, sid, "Herald", 60, ["send_messages"])
    loud = await member(stack, sid, herald, owner=alice)
    target = await member(stack, sid, owner=alice)
    outsider = await stack.register_user(f"out{secrets.token_hex(4)}")
    for user in (loud, target):
        await in_room(stack, user, general, default=True)
    sent = await send(stack, target, general, "mine")
    assert isinstance(sent, nio.RoomSendResponse), sent

    async with stack.nio_client(loud) as client:
        refused(await client.room_kick(general, target.user_id), "kick_members")
        refused(await client.room_kick(sid, target.user_id), "kick_members")
        refused(await client.room_ban(sid, target.user_id), "ban_members")
        refused(await client.room_ban(general, target.user_id), "ban_members")
        refused(await client.room_invite(sid, outsider.user_id), "create_invites")
        refused(await client.room_redact(general, sent.event_id), "manage_messages")
        # Pinning is moderating messages too (issue 18): past the level of 50, still refused.
        pins = {"pinned": [sent.event_id]}
        refused(
            await client.room_put_state(general, PINNED, pins),
            "manage_messages permission for pinning messages",
        )
        # Their own messages stay theirs to remove.
        own = await client.room_send(general, "m.room.message", {"msgtype": "m.text", "body": "x"})
        assert isinstance(own, nio.RoomSendResponse), own
        allowed(await client.room_redact(general, own.event_id))
    # Nothing happened: the target is still in, the outsider never invited.
    assert await membership(stack, alice, sid, target.user_id) == "join"
    assert await membership(stack, alice, general, target.user_id) == "join"
    assert await membership(stack, alice, sid, outsider.user_id) is None
    async with stack.nio_client(outsider) as client:
        assert isinstance(await client.join(sid), nio.JoinError)


async def test_a_power_zero_role_with_manage_messages_does_not_arm_every_member(
    stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Redactions")
    sid, general = server["server_id"], server["default_channel_id"]
    janitor = await new_role(stack, alice, sid, "Janitor", 0, ["send_messages", "manage_messages"])
    plain = await member(stack, sid, owner=alice)
    cleaner = await member(stack, sid, janitor, owner=alice)
    for user in (alice, plain, cleaner):
        await join_as(stack, user, general)
    first = await send(stack, alice, general, "the owner's")
    second = await send(stack, alice, general, "the owner's again")
    assert isinstance(first, nio.RoomSendResponse) and isinstance(second, nio.RoomSendResponse)
    # The redact threshold is 0 now (Janitor's power): the module is what refuses.
    levels = (await _state(stack, alice, general))[("m.room.power_levels", "")]
    assert levels["redact"] == 0, levels
    refused(await redact(stack, plain, general, first.event_id), "manage_messages")
    allowed(await redact(stack, cleaner, general, second.event_id))
    own = await send(stack, plain, general, "plain's own")
    assert isinstance(own, nio.RoomSendResponse), own
    allowed(await redact(stack, plain, general, own.event_id))
    # @room follows the same threshold (notifications.room is 0 now): only holders ping all.
    assert levels["notifications"]["room"] == 0, levels
    ping = {"msgtype": "m.text", "body": "hey", "m.mentions": {"room": True}}
    async with stack.nio_client(plain) as client:
        refused(await client.room_send(general, "m.room.message", ping), "manage_messages")
        quoted = {"msgtype": "m.text", "body": "I said @room", "m.mentions": {}}
        allowed(await client.room_send(general, "m.room.message", quoted))
    async with stack.nio_client(cleaner) as client:
        allowed(await client.room_send(general, "m.room.message", ping))
    # Pins follow it as well (issue 18): level 0, and the permission is what decides.
    assert levels["events"][PINNED] == 0, levels
    pins = {"pinned": [first.event_id]}
    async with stack.nio_client(plain) as client:
        refused(await client.room_put_state(general, PINNED, pins), "manage_messages")
    async with stack.nio_client(cleaner) as client:
        allowed(await client.room_put_state(general, PINNED, pins))


async def test_channels_are_entered_through_the_server(stack: Stack, shared: SharedServer) -> None:
    """An invite into a channel alone would carry an outsider past its restricted join rule."""
    sid, general, alice = shared.sid, shared.general, shared.owner
    moderator = await member(stack, sid, "moderator", owner=alice)
    leaver = await member(stack, sid, owner=alice)
    outsider = await stack.register_user(f"out{secrets.token_hex(4)}")
    await in_room(stack, moderator, general, default=True)
    async with stack.nio_client(moderator) as client:
        refused(await client.room_invite(general, outsider.user_id), "invite them to the server")
    async with stack.nio_client(leaver) as client:
        allowed(await client.room_leave(general))
    async with stack.nio_client(moderator) as client:
        allowed(await client.room_invite(general, leaver.user_id))
    await in_room(stack, leaver, general, default=True)


async def test_send_messages_is_the_permission_not_the_threshold(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Quiet")
    sid, general = server["server_id"], server["default_channel_id"]
    speaker = await new_role(stack, alice, sid, "Speaker", 0, ["send_messages"])
    status, role = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/roles/member", {"permissions": ["connect", "video"]}
    )
    assert status == 200, role
    quiet = await member(stack, sid, owner=alice)
    talker = await member(stack, sid, speaker, owner=alice)
    for user in (quiet, talker):
        await join_as(stack, user, general)
    levels = (await _state(stack, alice, general))[("m.room.power_levels", "")]
    assert levels["events_default"] == 0, levels
    refused(await send(stack, quiet, general), "send_messages")
    said = await send(stack, talker, general)
    assert isinstance(said, nio.RoomSendResponse), said
    async with stack.nio_client(quiet) as client:
        relation = {"rel_type": "m.annotation", "event_id": said.event_id, "key": "+1"}
        reaction = await client.room_send(general, "m.reaction", {"m.relates_to": relation})
        refused(reaction, "send_messages")
    allowed(await send(stack, alice, general))


async def _state(stack: Stack, user: User, room_id: str) -> dict[tuple[str, str], dict]:
    async with stack.nio_client(user) as client:
        return await state_of(client, room_id)


# --- observation 5: role rooms change only through the bot --------------------------------------


async def test_role_room_membership_changes_only_through_guilds(
    stack: Stack, shared: SharedServer
) -> None:
    sid, alice = shared.sid, shared.owner
    admin = await member(stack, sid, "admin", owner=alice)
    other_admin = await member(stack, sid, "admin", owner=alice)
    plain = await member(stack, sid, owner=alice)
    admins = await role_room(stack, sid, "admin")
    for who in (admin, alice):
        async with stack.nio_client(who) as client:
            refused(await client.room_invite(admins, plain.user_id), "Guilds")
            refused(await client.room_kick(admins, other_admin.user_id), "Guilds")
    async with stack.nio_client(plain) as client:
        assert isinstance(await client.join(admins), nio.JoinError)
    status, body = await Api(stack, alice).call("GET", f"/servers/{sid}/members?limit=100")
    assert status == 200, body
    roles = {m["user_id"]: m["roles"] for m in body["members"]}
    assert "admin" not in roles[plain.user_id] and "admin" in roles[other_admin.user_id]
    # Leaving a role one holds is one's own business.
    async with stack.nio_client(other_admin) as client:
        allowed(await client.room_leave(admins))


# --- observations 9 and 11: a room joins the space only if Guilds can adopt it ------------------


async def test_a_kick_from_one_channel_is_refused_saying_how(
    stack: Stack, shared: SharedServer
) -> None:
    # Issue 17, observation 7: "remove from room" in a channel, as Element and Cinny offer it.
    sid, general, alice = shared.sid, shared.general, shared.owner
    moderator = await member(stack, sid, "moderator", owner=alice)
    target = await member(stack, sid, owner=alice)
    for user in (moderator, target, alice):
        await in_room(stack, user, general, default=True)
    for kicker in (moderator, alice):
        async with stack.nio_client(kicker) as client:
            refused(await client.room_kick(general, target.user_id), "kick them from the server")
    assert await membership(stack, alice, general, target.user_id) == "join"
    # The server kick is the one that works, and it takes the member out of the channel too.
    async with stack.nio_client(moderator) as client:
        allowed(await client.room_kick(sid, target.user_id, "bye"))

    async def out_of_the_channel() -> bool:
        return await membership(stack, alice, general, target.user_id) == "leave"

    assert await eventually(out_of_the_channel, deadline_s=DEADLINE_S)


async def test_a_ban_in_one_channel_is_refused_saying_how(
    stack: Stack, shared: SharedServer
) -> None:
    # Element's "ban from room" in a channel was allowed, then undone by convergence.
    sid, general, alice = shared.sid, shared.general, shared.owner
    moderator = await member(stack, sid, "moderator", owner=alice)
    target = await member(stack, sid, owner=alice)
    for user in (moderator, target, alice):
        await in_room(stack, user, general, default=True)
    for banner in (moderator, alice):
        async with stack.nio_client(banner) as client:
            refused(await client.room_ban(general, target.user_id), "ban them from the server")
    assert await membership(stack, alice, general, target.user_id) == "join"
    # The server ban works and reaches the channel; lifting it in the channel is refused, on
    # the server it works.
    async with stack.nio_client(moderator) as client:
        allowed(await client.room_ban(sid, target.user_id, "bye"))

    async def banned_from_the_channel() -> bool:
        return await membership(stack, alice, general, target.user_id) == "ban"

    assert await eventually(banned_from_the_channel, deadline_s=DEADLINE_S)
    async with stack.nio_client(moderator) as client:
        refused(await client.room_unban(general, target.user_id), "lift it on the server")
        allowed(await client.room_unban(sid, target.user_id))

    async def unbanned_in_the_channel() -> bool:
        return await membership(stack, alice, general, target.user_id) != "ban"

    assert await eventually(unbanned_in_the_channel, deadline_s=DEADLINE_S)


async def test_a_room_the_bot_cannot_adopt_cannot_be_linked(
    stack: Stack, shared: SharedServer
) -> None:
    """Observations 9 and 11: a room linked without the bot stayed in the space, unadopted."""
    sid, alice = shared.sid, shared.owner
    moderator = await member(stack, sid, "moderator", owner=alice)
    stranger = await member(stack, sid, owner=alice)
    link = {"via": [stack.server_name]}
    for who in (alice, moderator):
        async with stack.nio_client(who) as client:
            made = await client.room_create(
                name=f"own room {secrets.token_hex(2)}", room_version="11"
            )
            assert isinstance(made, nio.RoomCreateResponse), made
            answer = await client.room_put_state(sid, "m.space.child", link, made.room_id)
            refused(answer, stack.bot_user_id, "power 100")
            assert made.room_id not in await hierarchy(client, sid)
    async with stack.nio_client(stranger) as client:
        assert made.room_id not in await hierarchy(client, sid)
    # Nor into a category, which is a space of the server too.
    status, category = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/categories", {"name": "Zone"}
    )
    assert status == 201, category
    await in_room(stack, alice, category["category_id"])
    async with stack.nio_client(alice) as client:
        answer = await client.room_put_state(
            category["category_id"], "m.space.child", link, made.room_id
        )
        refused(answer, stack.bot_user_id, "power 100")
    # A power equal to the bot's cannot be lowered by it: such a room is refused too.
    async with stack.nio_client(moderator) as client:
        made = await client.room_create(
            name="equal power",
            room_version="11",
            invite=[stack.bot_user_id],
            power_level_override={"users": {stack.bot_user_id: 100, moderator.user_id: 100}},
        )
        assert isinstance(made, nio.RoomCreateResponse), made
        answer = await client.room_put_state(sid, "m.space.child", link, made.room_id)
        refused(answer, moderator.user_id, "below 100")
    # Under room version 12 the moderator would stay the room's creator, with a power no role,
    # kick or ban takes away: even with the bot at 100 there, the room cannot join the server.
    async with stack.nio_client(moderator) as client:
        made = await client.room_create(
            name="creator's room",
            room_version="12",
            invite=[stack.bot_user_id],
            power_level_override={"users": {stack.bot_user_id: 100}},
        )
        assert isinstance(made, nio.RoomCreateResponse), made
        answer = await client.room_put_state(sid, "m.space.child", link, made.room_id)
        refused(answer, "unlimited power")


async def test_a_moderators_linked_room_follows_the_server(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Adopted")
    sid = server["server_id"]
    moderator = await member(stack, sid, "moderator", owner=alice)
    async with stack.nio_client(moderator) as client:
        # Version 11: the moderator's 100 as creator is a plain power level, which adoption
        # brings back to the moderator role's 50.
        made = await client.room_create(
            name="mod room",
            room_version="11",
            invite=[stack.bot_user_id],
            power_level_override={"users": {stack.bot_user_id: 100, moderator.user_id: 100}},
        )
        assert isinstance(made, nio.RoomCreateResponse), made
        room = made.room_id
        # Equal to the bot's, the moderator's power would be out of the bot's reach.
        levels = (await state_of(client, room))[("m.room.power_levels", "")]
        levels["users"][moderator.user_id] = 99
        allowed(await client.room_put_state(room, "m.room.power_levels", levels))
        linked = await client.room_put_state(
            sid, "m.space.child", {"via": [stack.server_name]}, room
        )
        allowed(linked)

    async def adopted() -> bool:
        status, body = await Api(stack, alice).call("GET", f"/servers/{sid}")
        return status == 200 and any(c["channel_id"] == room for c in body["channels"])

    assert await eventually(adopted, DEADLINE_S), "the room never became a channel"
    await join_as(stack, alice, room)
    posted = await send(stack, alice, room, "the owner's")
    assert isinstance(posted, nio.RoomSendResponse), posted
    status, answer = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/members/{moderator.user_id}/ban"
    )
    assert status == 204, answer

    async def banned_there() -> bool:
        return await membership(stack, alice, room, moderator.user_id) == "ban"

    assert await eventually(banned_there, DEADLINE_S), "the ban did not reach the adopted room"
    async with stack.nio_client(moderator) as client:
        assert isinstance(
            await client.room_send(room, "m.room.message", {"body": "x", "msgtype": "m.text"}),
            nio.ErrorResponse,
        )
        assert isinstance(await client.room_redact(room, posted.event_id), nio.ErrorResponse)
        public = await client.room_put_state(room, "m.room.join_rules", {"join_rule": "public"})
        assert isinstance(public, nio.ErrorResponse), public
    rules = (await _state(stack, alice, room))[("m.room.join_rules", "")]
    assert rules["join_rule"] == "restricted", rules


# --- observation 10: an unban from any client reaches every room ----------------------------------


async def test_an_unban_from_a_matrix_client_reaches_every_channel(
    stack: Stack, shared: SharedServer
) -> None:
    sid, general, alice = shared.sid, shared.general, shared.owner
    target = await member(stack, sid, owner=alice)
    status, answer = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/members/{target.user_id}/ban"
    )
    assert status == 204, answer
    assert await membership(stack, alice, general, target.user_id) == "ban"
    async with stack.nio_client(alice) as client:
        allowed(await client.room_unban(sid, target.user_id))

    async def lifted() -> bool:
        return await membership(stack, alice, general, target.user_id) != "ban"

    assert await eventually(lifted, DEADLINE_S), "general still bans the user"
    await join_server(stack, sid, target)

    async def in_general() -> bool:
        return await membership(stack, alice, general, target.user_id) == "join"

    assert await eventually(in_general, DEADLINE_S), "the unbanned user never got into general"


# --- the raw matrix: each permission × role configurations thresholds cannot tell apart ----

OK, NAMED, MATRIX = "allowed", "refused naming the permission", "refused by Matrix"
ACTORS = ("holder", "plain", "high", "moderator")
# holder: a power-0 role holding the permission (its threshold drops to 0); plain: a member
# without it, at 0 like the holder; high: a power-60 role without it (above the moderator's
# 50); moderator: power 50 holding it. Matrix still needs a kicker, banner or unbanner above the
# target: a power-0 holder passes the module and is refused by Matrix.
MODERATION_TABLE: dict[str, tuple[str, dict[str, str]]] = {
    "kick": ("kick_members", {"holder": MATRIX, "plain": NAMED, "high": NAMED, "moderator": OK}),
    "ban": ("ban_members", {"holder": MATRIX, "plain": NAMED, "high": NAMED, "moderator": OK}),
    "unban": ("ban_members", {"holder": MATRIX, "plain": NAMED, "high": NAMED, "moderator": OK}),
    "invite": ("create_invites", {"holder": OK, "plain": NAMED, "high": NAMED, "moderator": OK}),
    "redact": ("manage_messages", {"holder": OK, "plain": NAMED, "high": NAMED, "moderator": OK}),
    "send": ("send_messages", {"holder": OK, "plain": NAMED, "high": NAMED, "moderator": OK}),
}


class Moderation:
    """Two servers: in `sid` the member role keeps send_messages and a power-0 role holds each
    moderation permission; in `quiet_sid` the member role lacks send_messages and a power-0
    role holds it. In both, a power-60 role holds none of them."""

    def __init__(self, stack: Stack, owner: User) -> None:
        self.stack = stack
        self.owner = owner
        self.sid = self.general = self.quiet_sid = self.quiet_general = ""
        self.users: dict[tuple[str, str], User] = {}

    async def build(self) -> None:
        stack, owner = self.stack, self.owner
        server = await create_server(stack, owner, "Moderation matrix")
        self.sid, self.general = server["server_id"], server["default_channel_id"]
        high = await new_role(stack, owner, self.sid, "High", 60, ["send_messages"])
        for action in ("kick", "ban", "unban", "invite", "redact"):
            permission = MODERATION_TABLE[action][0]
            if ("holder", permission) not in self.users:
                role = await new_role(
                    stack, owner, self.sid, f"Zero {permission}", 0, ["send_messages", permission]
                )
                self.users[("holder", permission)] = await member(
                    stack, self.sid, role, owner=owner
                )
        self.users[("plain", "")] = await member(stack, self.sid, owner=owner)
        self.users[("high", "")] = await member(stack, self.sid, high, owner=owner)
        self.users[("moderator", "")] = await member(stack, self.sid, "moderator", owner=owner)
        quiet = await create_server(stack, owner, "Quiet matrix")
        self.quiet_sid, self.quiet_general = quiet["server_id"], quiet["default_channel_id"]
        speaker = await new_role(stack, owner, self.quiet_sid, "Speaker", 0, ["send_messages"])
        mute = await new_role(stack, owner, self.quiet_sid, "Loud", 60, ["connect"])
        status, role = await Api(stack, owner).call(
            "PATCH", f"/servers/{self.quiet_sid}/roles/member", {"permissions": ["connect"]}
        )
        assert status == 200, role
        for who, roles in (("holder", [speaker]), ("plain", []), ("high", [mute])):
            self.users[(who, "quiet")] = await member(stack, self.quiet_sid, *roles, owner=owner)
        self.users[("moderator", "quiet")] = await member(
            stack, self.quiet_sid, "moderator", owner=owner
        )
        for (_, where), user in self.users.items():
            room = self.quiet_general if where == "quiet" else self.general
            await in_room(stack, user, room, default=True)
        await in_room(stack, owner, self.general, default=True)

    def actor(self, who: str, action: str) -> User:
        if action == "send":
            return self.users[(who, "quiet")]
        return self.users[(who, MODERATION_TABLE[action][0] if who == "holder" else "")]


@pytest_asyncio.fixture(scope="module")
async def moderation(stack: Stack) -> Moderation:
    built = Moderation(stack, await stack.register_user(f"owner{secrets.token_hex(3)}"))
    await built.build()
    return built


async def _moderate(m: Moderation, action: str, actor: User) -> Any:
    stack = m.stack
    if action == "send":
        return await send(stack, actor, m.quiet_general)
    if action == "redact":
        posted = await send(stack, m.owner, m.general, "the owner's")
        assert isinstance(posted, nio.RoomSendResponse), posted
        return await redact(stack, actor, m.general, posted.event_id)
    if action == "invite":
        outsider = await stack.register_user(f"out{secrets.token_hex(4)}")
        async with stack.nio_client(actor) as client:
            return await client.room_invite(m.sid, outsider.user_id)
    target = await member(stack, m.sid, owner=m.owner)
    if action == "kick":
        # A kick is from the server (its space); one from a channel is refused for everyone
        # (test_a_kick_from_one_channel_is_refused_saying_how).
        async with stack.nio_client(actor) as client:
            return await client.room_kick(m.sid, target.user_id)
    if action == "ban":
        async with stack.nio_client(actor) as client:
            return await client.room_ban(m.sid, target.user_id)
    async with stack.nio_client(m.owner) as client:
        allowed(await client.room_ban(m.sid, target.user_id))
    async with stack.nio_client(actor) as client:
        return await client.room_unban(m.sid, target.user_id)


# Also on the worker deployment: an event is vetoed on whichever process creates it,
# and the redaction path reads the database through run_db_interaction from any process
# (on PostgreSQL there: the matrix's PostgreSQL run).
@ON_SQLITE_AND_WORKERS
@pytest.mark.parametrize(
    ("action", "who"),
    [pytest.param(a, w, id=f"{a}-{w}") for a in MODERATION_TABLE for w in ACTORS],
)
async def test_moderation_matrix(moderation: Moderation, action: str, who: str) -> None:
    permission, outcomes = MODERATION_TABLE[action]
    expected = outcomes[who]
    response = await _moderate(moderation, action, moderation.actor(who, action))
    if expected == OK:
        allowed(response)
    elif expected == NAMED:
        refused(response, permission)
    else:
        assert isinstance(response, nio.ErrorResponse), response
        assert permission not in response.message, response.message
