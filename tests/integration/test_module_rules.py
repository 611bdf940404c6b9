"""The module's rules against a real Synapse, driven by plain matrix-nio clients.

A small Guilds server is built as the bot (tests/harness/guilds_server.py) with an owner, an
admin, a moderator, a helper (power 50 without manage_channels or connect), a speaker (power 0
with connect), a member (no connect), a banned user and an outsider. Refusals the module makes
are told apart from Matrix's own by the module's sentence in the error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import nio
import pytest
import pytest_asyncio

from guilds.vocabulary import (
    CALL_MEMBER_EVENT,
    CHANNEL_EVENT,
    MODULE_MEMBERSHIP_PATH,
    ROLE_EVENT,
    SERVER_EVENT,
)
from tests.harness.api import eventually
from tests.harness.guilds_server import (
    GuildsServer,
    MatrixError,
    build_guilds_server,
    join,
)
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE


@pytest_asyncio.fixture(scope="module")
async def server(stack: Stack) -> AsyncIterator[GuildsServer]:
    yield await build_guilds_server(stack)


async def put_state(
    stack: Stack, user: User, room_id: str, event_type: str, content: dict[str, Any], key: str = ""
) -> Any:
    async with stack.nio_client(user) as client:
        return await client.room_put_state(room_id, event_type, content, key)


def assert_allowed(response: Any) -> None:
    assert isinstance(
        response, nio.RoomPutStateResponse | nio.JoinResponse | nio.RoomInviteResponse
    ), response


def assert_forbidden(response: Any, *fragments: str) -> None:
    assert getattr(response, "status_code", None) == "M_FORBIDDEN", response
    for fragment in fragments:
        assert fragment in response.message, response.message


def call_member(user: User, suffix: str = "") -> tuple[dict[str, Any], str]:
    """A membership as Element Call writes it; `suffix` "_m.call" gives matrix-js-sdk 43's key."""
    content = {
        "application": "m.call",
        "call_id": "",
        "scope": "m.room",
        "device_id": user.device_id,
        "expires": 3_600_000,
        "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
        "foci_preferred": [],
    }
    return content, f"_{user.user_id}_{user.device_id}{suffix}"


# --- 1. channels and the space tree need manage_channels -------------------------------------


async def test_channel_edits_without_manage_channels_are_refused(
    stack: Stack, server: GuildsServer
) -> None:
    helper = server["helper"]
    edits: list[tuple[str, str, dict[str, Any], str]] = [
        (server.lounge, "m.room.name", {"name": "renamed"}, ""),
        (server.lounge, "m.room.topic", {"topic": "new topic"}, ""),
        (
            server.lounge,
            CHANNEL_EVENT,
            {"kind": "video", "server_id": server.server_id, "default": False},
            "",
        ),
        (server.lounge, "m.space.parent", {}, server.server_id),
        (server.server_id, "m.space.child", {}, server.lounge),
        # A reorder made with another client: the link kept, its order changed.
        (
            server.server_id,
            "m.space.child",
            {"via": [stack.server_name], "order": "000009"},
            server.lounge,
        ),
    ]
    for room_id, event_type, content, key in edits:
        # The helper's power (50) passes Matrix's thresholds: only the module refuses.
        response = await put_state(stack, helper, room_id, event_type, content, key)
        assert_forbidden(response, "manage_channels")
    # A member (power 0) is refused by Matrix's own power levels already.
    response = await put_state(stack, server["member"], server.lounge, "m.room.name", {"name": "x"})
    assert_forbidden(response)
    reorder = {"via": [stack.server_name], "order": "000009"}
    response = await put_state(
        stack, server["member"], server.server_id, "m.space.child", reorder, server.lounge
    )
    assert_forbidden(response)


async def test_channel_edits_with_manage_channels_are_allowed(
    stack: Stack, server: GuildsServer
) -> None:
    moderator = server["moderator"]
    assert_allowed(
        await put_state(stack, moderator, server.lounge, "m.room.topic", {"topic": "chill"})
    )
    assert_allowed(
        await put_state(stack, moderator, server.lounge, "m.room.name", {"name": "lounge 2"})
    )
    for kind in ("video", "voice"):
        content = {"kind": kind, "server_id": server.server_id, "default": False}
        assert_allowed(await put_state(stack, moderator, server.lounge, CHANNEL_EVENT, content))
    child = {"via": [stack.server_name], "order": "000009", "suggested": True}
    assert_allowed(
        await put_state(stack, moderator, server.server_id, "m.space.child", child, server.lounge)
    )


# --- 2. the default channel -----------------------------------------------------------------


async def test_nobody_renames_retypes_or_removes_the_default_channel(
    stack: Stack, server: GuildsServer
) -> None:
    owner = server["owner"]
    response = await put_state(stack, owner, server.general, "m.room.name", {"name": "lobby"})
    assert_forbidden(response, "cannot be renamed")
    retype = {"kind": "voice", "server_id": server.server_id, "default": True}
    assert_forbidden(await put_state(stack, owner, server.general, CHANNEL_EVENT, retype))
    response = await put_state(stack, owner, server.general, "m.space.parent", {}, server.server_id)
    assert_forbidden(response, "cannot be removed")
    response = await put_state(stack, owner, server.server_id, "m.space.child", {}, server.general)
    assert_forbidden(response, "cannot be removed")
    # The bot too: it carries out the API's decisions, and the API never makes these.
    bot_edits: list[tuple[str, str, dict[str, Any], str]] = [
        (server.general, "m.room.name", {"name": "lobby"}, ""),
        (server.general, CHANNEL_EVENT, retype, ""),
        (server.server_id, "m.space.child", {}, server.general),
    ]
    for room_id, event_type, content, key in bot_edits:
        with pytest.raises(MatrixError) as raised:
            await server.bot.put_state(room_id, event_type, content, key)
        assert (raised.value.status, raised.value.errcode) == (403, "M_FORBIDDEN")
    assert (await server.bot.state(server.general, "m.room.name"))["name"] == "general"


async def test_the_default_channel_keeps_its_other_edits(
    stack: Stack, server: GuildsServer
) -> None:
    owner = server["owner"]
    topic = {"topic": "Say hello"}
    assert_allowed(await put_state(stack, owner, server.general, "m.room.topic", topic))
    # Writing the same name again renames nothing.
    await server.bot.put_state(server.general, "m.room.name", {"name": "general"})


# --- 3. power levels, roles and Guilds markers ------------------------------------------------


async def test_power_levels_beyond_ones_roles_are_refused(
    stack: Stack, server: GuildsServer
) -> None:
    levels = dict(server.power_levels[server.general])
    admin, member = server["admin"], server["member"]
    # An admin (100) passes Matrix's checks for both; the roles do not allow either.
    response = await put_state(
        stack, admin, server.general, "m.room.power_levels", {**levels, "kick": 0}
    )
    assert_forbidden(response, "follows the server's roles")
    raised = {**levels, "users": {**levels["users"], member.user_id: 100}}
    response = await put_state(stack, admin, server.general, "m.room.power_levels", raised)
    assert_forbidden(response, "below your own")
    # A moderator (50) is refused by Matrix: power levels are admin-only.
    response = await put_state(
        stack, server["moderator"], server.general, "m.room.power_levels", raised
    )
    assert_forbidden(response)


async def test_power_levels_within_ones_roles_are_allowed(
    stack: Stack, server: GuildsServer
) -> None:
    levels = dict(server.power_levels[server.general])
    member = server["member"]
    lowered = {**levels, "users": {**levels["users"], member.user_id: 20}}
    response = await put_state(
        stack, server["owner"], server.general, "m.room.power_levels", lowered
    )
    assert_allowed(response)
    response = await put_state(
        stack, server["owner"], server.general, "m.room.power_levels", levels
    )
    assert_allowed(response)


async def test_role_edits_need_manage_roles_below_ones_position(
    stack: Stack, server: GuildsServer
) -> None:
    admin = server["admin"]
    admin_role = await server.bot.state(server.server_id, ROLE_EVENT, "admin")
    response = await put_state(
        stack, admin, server.server_id, ROLE_EVENT, {**admin_role, "name": "Boss"}, "admin"
    )
    assert_forbidden(response, "below your highest role")
    helper_role = await server.bot.state(server.server_id, ROLE_EVENT, "helper")
    recoloured = {**helper_role, "color": "#00aa00"}
    assert_allowed(
        await put_state(stack, admin, server.server_id, ROLE_EVENT, recoloured, "helper")
    )
    # The helper lacks manage_roles and power 100: Matrix refuses before the module is asked.
    response = await put_state(
        stack, server["helper"], server.server_id, ROLE_EVENT, helper_role, "helper"
    )
    assert_forbidden(response)


async def test_only_the_bot_writes_guilds_markers(stack: Stack, server: GuildsServer) -> None:
    owner, member = server["owner"], server["member"]
    forged = {"owner": member.user_id, "default_channel": server.lounge}
    response = await put_state(stack, owner, server.server_id, SERVER_EVENT, forged)
    assert_forbidden(response, "Only Guilds itself")
    async with stack.nio_client(member) as client:
        created = await client.room_create(name="my room")
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
    response = await put_state(stack, member, room_id, SERVER_EVENT, forged)
    assert_forbidden(response, "Only Guilds itself")
    channel = {"kind": "text", "server_id": server.server_id, "default": False}
    response = await put_state(stack, member, room_id, CHANNEL_EVENT, channel)
    assert_forbidden(response, "Only Guilds itself")


# --- 4. entering gated channels and banned users ------------------------------------------------


async def test_gated_channel_needs_one_of_its_roles(stack: Stack, server: GuildsServer) -> None:
    member = server["member"]
    async with stack.nio_client(member) as client:
        # Synapse's restricted join rule refuses a member without the gating role room...
        assert_forbidden(await client.join(server.staff))
    # ...and the module refuses the invite path, whoever invites.
    async with stack.nio_client(server["helper"]) as client:
        response = await client.room_invite(server.staff, member.user_id)
        assert_forbidden(response, "does not have a role")
    # An invite the bot sent does not open the door either.
    await server.bot.invite(server.staff, member.user_id)
    async with stack.nio_client(member) as client:
        assert_forbidden(await client.join(server.staff), "one of this channel's roles")


async def test_gated_channel_admits_its_roles_also_by_invite(
    stack: Stack, server: GuildsServer
) -> None:
    helper = server["helper"]
    async with stack.nio_client(helper) as client:
        assert isinstance(await client.room_leave(server.staff), nio.RoomLeaveResponse)
        assert_allowed(await client.join(server.staff))
        assert isinstance(await client.room_leave(server.staff), nio.RoomLeaveResponse)
    async with stack.nio_client(server["admin"]) as client:
        assert_allowed(await client.room_invite(server.staff, helper.user_id))
    await join(stack, helper, server.staff)


async def test_banned_users_enter_no_room_of_the_server(stack: Stack, server: GuildsServer) -> None:
    banned = server["banned"]
    async with stack.nio_client(banned) as client:
        assert isinstance(await client.room_leave(server.lounge), nio.RoomLeaveResponse)
        assert_forbidden(await client.join(server.lounge), "banned from this server")
        # The space itself: Synapse refuses a banned user before asking the module.
        response = await client.join(server.server_id)
        assert isinstance(response, nio.JoinError) and response.status_code == "M_BAD_STATE"
    async with stack.nio_client(server["moderator"]) as client:
        response = await client.room_invite(server.lounge, banned.user_id)
        assert_forbidden(response, "banned from this server")
    # Even when the bot invites, to a channel or a role room, the ban holds.
    for room_id in (server.lounge, server.role_rooms["speaker"]):
        await server.bot.invite(room_id, banned.user_id)
        async with stack.nio_client(banned) as client:
            assert_forbidden(await client.join(room_id), "banned from this server")


# --- 5. call membership ----------------------------------------------------------------------


async def test_call_membership_needs_a_voice_channel_and_connect(
    stack: Stack, server: GuildsServer
) -> None:
    owner, member, speaker = server["owner"], server["member"], server["speaker"]
    content, key = call_member(owner)
    response = await put_state(stack, owner, server.general, CALL_MEMBER_EVENT, content, key)
    assert_forbidden(response, "text channel")
    content, key = call_member(member)
    response = await put_state(stack, member, server.lounge, CALL_MEMBER_EVENT, content, key)
    assert_forbidden(response, "connect")
    # Leaving a call (empty content) is never refused.
    assert_allowed(await put_state(stack, member, server.lounge, CALL_MEMBER_EVENT, {}, key))
    content, key = call_member(speaker)
    response = await put_state(stack, speaker, server.lounge, CALL_MEMBER_EVENT, content, key)
    assert_allowed(response)
    state = await server.bot.state(server.lounge, CALL_MEMBER_EVENT, key)
    assert state["device_id"] == speaker.device_id


@pytest.mark.parametrize("suffix", ["", "_m.call"], ids=["guilds-key", "sdk43-key"])
async def test_nobody_writes_or_ends_another_persons_call_membership(
    stack: Stack, server: GuildsServer, suffix: str
) -> None:
    owner, speaker = server["owner"], server["speaker"]
    content, key = call_member(speaker, suffix)
    assert_allowed(await put_state(stack, speaker, server.lounge, CALL_MEMBER_EVENT, content, key))
    # The owner (unlimited power in the room) may neither end the speaker's membership...
    response = await put_state(stack, owner, server.lounge, CALL_MEMBER_EVENT, {}, key)
    assert_forbidden(response, "as yourself")
    # ...nor write one in the speaker's name.
    forged_key = f"_{speaker.user_id}_FORGED{suffix}"
    forged = {**content, "device_id": "FORGED"}
    response = await put_state(stack, owner, server.lounge, CALL_MEMBER_EVENT, forged, forged_key)
    assert_forbidden(response, "as yourself")
    assert (await server.bot.state(server.lounge, CALL_MEMBER_EVENT, key))["device_id"] == (
        speaker.device_id
    )
    # The speaker leaves on their own.
    assert_allowed(await put_state(stack, speaker, server.lounge, CALL_MEMBER_EVENT, {}, key))


# --- acting for local users ------------------------------------------------------------------


async def test_bot_invites_with_auto_join_are_accepted(stack: Stack, server: GuildsServer) -> None:
    newcomer = await stack.register_user()
    await server.bot.invite(server.server_id, newcomer.user_id, auto_join=True)
    await eventually(
        lambda: _is_joined(server, server.server_id, newcomer),
        what="the module to accept the space invite",
    )
    # Joining the space joined the default channel too.
    await eventually(
        lambda: _is_joined(server, server.general, newcomer),
        what="the module to join the default channel",
    )


async def test_joining_the_space_joins_the_default_channel(
    stack: Stack, server: GuildsServer
) -> None:
    newcomer = await stack.register_user()
    await server.bot.invite(server.server_id, newcomer.user_id)
    assert await server.bot.membership(server.server_id, newcomer.user_id) == "invite"
    await join(stack, newcomer, server.server_id)
    await eventually(
        lambda: _is_joined(server, server.general, newcomer),
        what="the module to join the default channel",
    )


async def test_losing_a_role_leaves_the_channels_it_gated(
    stack: Stack, server: GuildsServer
) -> None:
    newcomer = await stack.register_user()
    await server.bot.invite(server.server_id, newcomer.user_id)
    await join(stack, newcomer, server.server_id)
    await server.bot.invite(server.role_rooms["helper"], newcomer.user_id, auto_join=True)
    await eventually(
        lambda: _is_joined(server, server.role_rooms["helper"], newcomer),
        what="the module to accept the role room invite",
    )
    await join(stack, newcomer, server.staff)
    await join(stack, newcomer, server.lounge)
    await server.bot.kick(server.role_rooms["helper"], newcomer.user_id)

    async def left_staff() -> bool:
        return await server.bot.membership(server.staff, newcomer.user_id) == "leave"

    await eventually(left_staff, what="the module to leave the gated channel")
    # Channels the role did not gate are kept.
    assert await server.bot.membership(server.lounge, newcomer.user_id) == "join"


async def ask_to_act(stack: Stack, body: Any, token: str | None) -> tuple[int, dict[str, Any]]:
    assert stack.http is not None
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with stack.http.post(
        stack.hs_url + MODULE_MEMBERSHIP_PATH, json=body, headers=headers
    ) as response:
        return response.status, await response.json()


async def test_only_the_bridge_may_ask_the_module_to_act_and_state_decides(
    stack: Stack, server: GuildsServer
) -> None:
    as_token = stack.config.appservice.registration.as_token
    newcomer = await stack.register_user()
    ask = {"user_id": newcomer.user_id, "room_id": server.server_id}
    # The endpoint is Synapse's: its own 401s for a missing or unknown token.
    assert (await ask_to_act(stack, ask, None))[0] == 401
    status, answer = await ask_to_act(stack, ask, "syt_not_a_token")
    assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # A user's own token, even the owner's, is not the bridge's.
    for user in (newcomer, server["owner"]):
        status, answer = await ask_to_act(stack, ask, user.access_token)
        assert (status, answer["errcode"]) == (403, "M_FORBIDDEN"), answer
    for body, errcode in [
        ({"room_id": server.server_id}, "M_MISSING_PARAM"),
        ({"user_id": "newcomer", "room_id": server.server_id}, "M_INVALID_PARAM"),
        ({"user_id": newcomer.user_id, "room_id": ["!x"]}, "M_INVALID_PARAM"),
        ({"user_id": "@someone:elsewhere.example", "room_id": server.server_id}, "M_INVALID_PARAM"),
        ({"user_id": stack.bot_user_id, "room_id": server.server_id}, "M_INVALID_PARAM"),
    ]:
        status, answer = await ask_to_act(stack, body, as_token)
        assert (status, answer["errcode"]) == (400, errcode), (body, answer)
    status, answer = await ask_to_act(stack, [1, 2], as_token)
    assert (status, answer["errcode"]) == (400, "M_BAD_JSON"), answer
    # Even the bridge cannot make the module act where the state calls for nothing: the
    # newcomer is not in the space, so nobody is joined to the default channel.
    assert await ask_to_act(stack, ask, as_token) == (200, {"action": None})
    assert await server.bot.membership(server.general, newcomer.user_id) is None
    # Once the newcomer has joined the space (with nio), the module joins them to the default
    # channel — by the bridge's own request, so asking again finds nothing left to do.
    await server.bot.invite(server.server_id, newcomer.user_id)
    await join(stack, newcomer, server.server_id)
    await eventually(
        lambda: _is_joined(server, server.general, newcomer),
        what="the module to join the default channel",
    )
    assert await ask_to_act(stack, ask, as_token) == (200, {"action": None})


async def _is_joined(server: GuildsServer, room_id: str, user: User) -> bool:
    return await server.bot.membership(room_id, user.user_id) == "join"


async def test_a_new_display_name_reaches_every_room_of_the_server(
    stack: Stack, server: GuildsServer
) -> None:
    # Synapse rewrites the member event in each joined room: the module must let a profile
    # change through everywhere, gated channels included.
    newcomer = await stack.register_user()
    await server.bot.invite(server.server_id, newcomer.user_id)
    await join(stack, newcomer, server.server_id)
    await eventually(
        lambda: _is_joined(server, server.general, newcomer),
        what="the module to join the default channel",
    )
    await join(stack, newcomer, server.lounge)
    async with stack.nio_client(newcomer) as client:
        assert isinstance(
            await client.set_displayname("Renamed"), nio.ProfileSetDisplayNameResponse
        )

    async def renamed_everywhere() -> bool:
        for room_id in (server.server_id, server.general, server.lounge):
            member = await server.bot.state(room_id, "m.room.member", newcomer.user_id)
            if member.get("displayname") != "Renamed":
                return False
        return True

    await eventually(renamed_everywhere, deadline_s=60, what="the new name in every room")
