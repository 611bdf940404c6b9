"""The module acting for local users, with a mocked ModuleApi (background work run inline)."""

from __future__ import annotations

from collections.abc import Coroutine
from types import SimpleNamespace
from typing import Any

from guilds.layout import AUTO_JOIN_KEY
from guilds.vocabulary import ROLE_ROOM_TYPE
from tests.unit.test_module_vetoes import (
    ADMIN_ROOM,
    BOT,
    GENERAL,
    MEMBER,
    MOD,
    MOD_ROOM,
    SPACE,
    STAFF,
    State,
    ev,
    guilds,
    server_state,
)


def member_event(room_id: str, user: str, content: dict[str, Any], sender: str) -> Any:
    return SimpleNamespace(
        type="m.room.member", state_key=user, room_id=room_id, sender=sender, content=content
    )


async def act(state: State, event: Any) -> Any:
    module, api = guilds(state)
    pending: list[Coroutine[Any, Any, Any]] = []
    api.run_as_background_process.side_effect = lambda desc, func, *args: pending.append(
        func(*args)
    )
    await module.on_new_event(event, state.get(event.room_id, {}))
    for coroutine in pending:
        await coroutine
    return api


async def test_bot_invites_with_auto_join_are_accepted_once() -> None:
    state = server_state()
    state[STAFF][("m.room.member", MOD)] = ev({"membership": "invite"})
    invite = member_event(STAFF, MOD, {"membership": "invite", AUTO_JOIN_KEY: True}, BOT)
    api = await act(state, invite)
    api.update_room_membership.assert_awaited_once_with(MOD, MOD, STAFF, "join")
    # Seen again after the join: nothing to do.
    state[STAFF][("m.room.member", MOD)] = ev({"membership": "join"})
    (await act(state, invite)).update_room_membership.assert_not_called()


async def test_invites_without_the_flag_or_from_others_are_left_alone() -> None:
    state = server_state()
    state[STAFF][("m.room.member", MOD)] = ev({"membership": "invite"})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"membership": "invite"}, BOT),
        ({"membership": "invite", AUTO_JOIN_KEY: True}, MEMBER),
    ]
    for content, sender in cases:
        api = await act(state, member_event(STAFF, MOD, content, sender))
        api.update_room_membership.assert_not_called()
        api.run_as_background_process.assert_not_called()


async def test_joining_the_space_joins_the_default_channel() -> None:
    state = server_state()
    join = member_event(SPACE, MEMBER, {"membership": "join"}, MEMBER)
    api = await act(state, join)
    api.update_room_membership.assert_awaited_once_with(MEMBER, MEMBER, GENERAL, "join")
    state[GENERAL][("m.room.member", MEMBER)] = ev({"membership": "join"})
    (await act(state, join)).update_room_membership.assert_not_called()


async def test_leaving_a_role_room_leaves_the_channels_it_alone_opened() -> None:
    state = server_state()
    state[SPACE][("m.space.child", STAFF)] = ev({"via": ["here"]})
    state[STAFF][("m.room.member", MOD)] = ev({"membership": "join"})
    state[GENERAL][("m.room.member", MOD)] = ev({"membership": "join"})
    state[MOD_ROOM] = {
        ("m.room.create", ""): ev({"type": ROLE_ROOM_TYPE, "server_id": SPACE}),
        ("m.room.member", MOD): ev({"membership": "leave"}),
    }
    leave = member_event(MOD_ROOM, MOD, {"membership": "leave"}, BOT)
    api = await act(state, leave)
    api.update_room_membership.assert_awaited_once_with(MOD, MOD, STAFF, "leave")
    # An admin keeps every channel.
    state[ADMIN_ROOM][("m.room.member", MOD)] = ev({"membership": "join"})
    (await act(state, leave)).update_room_membership.assert_not_called()
