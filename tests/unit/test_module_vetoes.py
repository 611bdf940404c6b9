"""The module's vetoes with a mocked ModuleApi holding a small server's state in memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

from synapse.module_api import NOT_SPAM, ModuleApi
from synapse.module_api.errors import Codes

from guilds.ids import RoomID
from guilds.layout import channel_allow
from guilds.model import BUILTIN_ROLES, CATEGORY_EVENT
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from synapse_module import GuildsModule

BOT = "@guilds:here"
OWNER, MOD, MEMBER, BANNED = "@owner:here", "@mod:here", "@member:here", "@banned:here"
SPACE, GENERAL, STAFF, LOUNGE = "!space:here", "!general:here", "!staff:here", "!lounge:here"
ADMIN_ROOM, MOD_ROOM = "!admins:here", "!mods:here"

State = dict[str, dict[tuple[str, str], Any]]


def ev(content: dict[str, Any]) -> Any:
    return SimpleNamespace(content=content)


def server_state() -> State:
    roles = {r.role_id: r for r in BUILTIN_ROLES}
    space = {
        (SERVER_EVENT, ""): ev({"owner": OWNER, "default_channel": GENERAL}),
        (ROLE_EVENT, "admin"): ev(replace(roles["admin"], room_id=RoomID(ADMIN_ROOM)).content()),
        (ROLE_EVENT, "moderator"): ev(
            replace(roles["moderator"], room_id=RoomID(MOD_ROOM)).content()
        ),
        (ROLE_EVENT, "member"): ev(roles["member"].content()),
        ("m.space.child", GENERAL): ev({"via": ["here"]}),
        ("m.room.member", BANNED): ev({"membership": "ban"}),
    }
    for user in (OWNER, MOD, MEMBER):
        space[("m.room.member", user)] = ev({"membership": "join"})

    def channel(kind: str, default: bool, allow: list[str] | None) -> dict[tuple[str, str], Any]:
        return {
            (CHANNEL_EVENT, ""): ev({"kind": kind, "server_id": SPACE, "default": default}),
            ("m.room.name", ""): ev({"name": "a channel"}),
            ("m.room.join_rules", ""): ev(
                {"join_rule": "restricted", "allow": channel_allow(SPACE, allow)}  # type: ignore[arg-type]
            ),
        }

    return {
        SPACE: space,
        GENERAL: channel("text", True, None),
        STAFF: channel("text", False, [ADMIN_ROOM, MOD_ROOM]),
        LOUNGE: channel("voice", False, None),
        ADMIN_ROOM: {("m.room.member", OWNER): ev({"membership": "join"})},
        MOD_ROOM: {("m.room.member", MOD): ev({"membership": "join"})},
    }


def make_api(state: State) -> Mock:
    api = Mock(spec=ModuleApi)
    api.worker_name = None
    api.is_mine.side_effect = lambda user_id: user_id.endswith(":here")

    async def get_room_state(room_id: str, keys: Iterable[tuple[str, str | None]]) -> Any:
        room = state.get(room_id, {})
        wanted = list(keys)
        return {
            (t, k): e
            for (t, k), e in room.items()
            if any(t == wt and (wk is None or wk == k) for wt, wk in wanted)
        }

    api.get_room_state = AsyncMock(side_effect=get_room_state)
    return api


def guilds(state: State | None = None) -> tuple[GuildsModule, Mock]:
    api = make_api(server_state() if state is None else state)
    return GuildsModule(GuildsModule.parse_config({"bot_user_id": BOT}), api), api


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
