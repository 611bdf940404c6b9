"""The module's vetoes with a mocked ModuleApi holding a small server's state in memory."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from synapse.module_api import NOT_SPAM
from synapse.module_api.errors import Codes

from guilds.model import CATEGORY_EVENT
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from tests.harness.module_server import (
    BANNED,
    BOT,
    GENERAL,
    LOUNGE,
    MEMBER,
    MOD,
    OWNER,
    SPACE,
    STAFF,
    ev,
    guilds,
    server_state,
)


def state_event(
    room_id: str, type_: str, content: dict[str, Any], sender: str, key: str = ""
) -> Any:
    return SimpleNamespace(
        type=type_,
        state_key=key,
        room_id=room_id,
        sender=sender,
        content=content,
        is_state=lambda: True,
    )


async def test_renaming_a_channel_needs_manage_channels() -> None:
    module, _ = guilds()
    rename = state_event(LOUNGE, "m.room.name", {"name": "x"}, MEMBER)
    assert "manage_channels" in await module.check_event_for_spam(rename)
    assert await module.check_event_for_spam(replace_sender(rename, MOD)) == NOT_SPAM


def replace_sender(event: Any, sender: str) -> Any:
    return SimpleNamespace(**{**vars(event), "sender": sender})


async def test_the_default_channel_is_protected_from_everyone_even_the_bot() -> None:
    module, _ = guilds()
    for sender in (OWNER, BOT):
        rename = state_event(GENERAL, "m.room.name", {"name": "lobby"}, sender)
        assert "renamed" in await module.check_event_for_spam(rename)
        unlink = state_event(SPACE, "m.space.child", {}, sender, GENERAL)
        assert "removed" in await module.check_event_for_spam(unlink)
    # The same name again is no rename; the topic is free.
    same = state_event(GENERAL, "m.room.name", {"name": "a channel"}, OWNER)
    assert await module.check_event_for_spam(same) == NOT_SPAM


async def test_the_first_name_of_the_default_channel_passes() -> None:
    state = server_state()
    del state[GENERAL][("m.room.name", "")]
    module, _ = guilds(state)
    name = state_event(GENERAL, "m.room.name", {"name": "general"}, BOT)
    assert await module.check_event_for_spam(name) == NOT_SPAM


async def test_the_bot_is_not_looked_up_outside_default_channel_rules() -> None:
    module, api = guilds()
    levels = state_event(LOUNGE, "m.room.power_levels", {"kick": 0}, BOT)
    assert await module.check_event_for_spam(levels) == NOT_SPAM
    api.get_room_state.assert_not_called()


async def test_markers_are_the_bots_alone() -> None:
    module, api = guilds()
    for type_ in (SERVER_EVENT, CATEGORY_EVENT):
        forged = state_event("!mine:here", type_, {"owner": OWNER}, OWNER)
        assert "Only Guilds itself" in await module.check_event_for_spam(forged)
    api.get_room_state.assert_not_called()
    channel = state_event("!mine:here", CHANNEL_EVENT, {"kind": "text"}, OWNER)
    assert "Only Guilds itself" in await module.check_event_for_spam(channel)


async def test_threshold_changes_are_refused_to_all_but_the_bot() -> None:
    module, _ = guilds()
    levels = state_event(LOUNGE, "m.room.power_levels", {"kick": 0}, OWNER)
    assert "follows the server's roles" in await module.check_event_for_spam(levels)


async def test_role_edits_need_manage_roles() -> None:
    module, _ = guilds()
    role = state_event(SPACE, ROLE_EVENT, {"name": "x", "power": 0, "position": 5}, MOD, "x")
    assert "manage_roles" in await module.check_event_for_spam(role)


async def test_calls_need_connect_in_voice_channels() -> None:
    state = server_state()
    member_role = state[SPACE][(ROLE_EVENT, "member")].content
    state[SPACE][(ROLE_EVENT, "member")] = ev({**member_role, "permissions": ["send_messages"]})
    module, _ = guilds(state)
    call = state_event(LOUNGE, CALL_MEMBER_EVENT, {"device_id": "D"}, MEMBER, f"_{MEMBER}_D")
    assert "connect" in await module.check_event_for_spam(call)
    mods = state_event(LOUNGE, CALL_MEMBER_EVENT, {"device_id": "D"}, MOD, f"_{MOD}_D")
    assert await module.check_event_for_spam(mods) == NOT_SPAM
    leave = state_event(LOUNGE, CALL_MEMBER_EVENT, {}, MEMBER, f"_{MEMBER}_D")
    assert await module.check_event_for_spam(leave) == NOT_SPAM
    # A membership's key names its sender: nobody joins or ends a call for someone else.
    for content in ({"device_id": "D"}, {}):
        forged = state_event(LOUNGE, CALL_MEMBER_EVENT, content, MOD, f"_{MEMBER}_D")
        assert "as yourself" in await module.check_event_for_spam(forged)


async def test_gated_channels_need_a_gating_role_whichever_way_in() -> None:
    module, _ = guilds()
    refused: Any = await module.user_may_join_room(MEMBER, STAFF, True)
    assert refused != NOT_SPAM and refused[0] == Codes.FORBIDDEN
    assert "roles" in refused[1]["error"]
    assert await module.user_may_join_room(MOD, STAFF, False) == NOT_SPAM
    assert await module.user_may_join_room(OWNER, STAFF, False) == NOT_SPAM
    assert await module.user_may_join_room(MEMBER, LOUNGE, False) == NOT_SPAM
    assert (await module.user_may_invite(MOD, MEMBER, STAFF))[0] == Codes.FORBIDDEN
    # The bot's invites are the bridge's decisions; the join itself is still checked.
    assert await module.user_may_invite(BOT, MEMBER, STAFF) == NOT_SPAM


async def test_banned_users_enter_no_room_of_the_server() -> None:
    module, _ = guilds()
    for room_id in (SPACE, GENERAL, LOUNGE):
        refused: Any = await module.user_may_join_room(BANNED, room_id, True)
        assert refused != NOT_SPAM and "banned" in refused[1]["error"]
    invited: Any = await module.user_may_invite(MOD, BANNED, LOUNGE)
    assert "banned" in invited[1]["error"]


async def test_rooms_outside_guilds_are_left_alone() -> None:
    module, api = guilds()
    assert await module.user_may_join_room(MEMBER, "!other:here", False) == NOT_SPAM
    name = state_event("!other:here", "m.room.name", {"name": "x"}, MEMBER)
    assert await module.check_event_for_spam(name) == NOT_SPAM
    # Only the room's own markers were read.
    assert api.get_room_state.await_count == 2
