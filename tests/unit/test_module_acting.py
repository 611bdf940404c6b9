"""The module acting for local users when the bridge asks, with a mocked ModuleApi."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from guilds.layout import AUTO_JOIN_KEY
from guilds.vocabulary import ROLE_ROOM_TYPE
from tests.harness.module_server import (
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


def member(content: dict[str, Any], sender: str) -> Any:
    return SimpleNamespace(content=content, sender=sender)


async def act(state: State, user: str, room_id: str) -> tuple[str | None, Any]:
    """What the module does when asked about `user` in `room_id`, given `state`."""
    module, api = guilds(state)
    action = await module.acting.on_membership(user, room_id)
    return action, api


async def test_bot_invites_with_auto_join_are_accepted_once() -> None:
    state = server_state()
    state[STAFF][("m.room.member", MOD)] = member(
        {"membership": "invite", AUTO_JOIN_KEY: True}, BOT
    )
    action, api = await act(state, MOD, STAFF)
    assert action == "accept_invite"
    api.update_room_membership.assert_awaited_once_with(MOD, MOD, STAFF, "join")
    # Asked again after the join: nothing to do.
    state[STAFF][("m.room.member", MOD)] = member({"membership": "join"}, MOD)
    action, api = await act(state, MOD, STAFF)
    assert action is None
    api.update_room_membership.assert_not_called()


async def test_invites_without_the_flag_or_from_others_are_left_alone() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"membership": "invite"}, BOT),
        ({"membership": "invite", AUTO_JOIN_KEY: True}, MEMBER),
    ]
    for content, sender in cases:
        state = server_state()
        state[STAFF][("m.room.member", MOD)] = member(content, sender)
        action, api = await act(state, MOD, STAFF)
        assert action is None
        api.update_room_membership.assert_not_called()


async def test_joining_the_space_joins_the_default_channel() -> None:
    state = server_state()
    action, api = await act(state, MEMBER, SPACE)
    assert action == "join_default_channel"
    api.update_room_membership.assert_awaited_once_with(MEMBER, MEMBER, GENERAL, "join")
    state[GENERAL][("m.room.member", MEMBER)] = ev({"membership": "join"})
    action, api = await act(state, MEMBER, SPACE)
    assert action is None
    api.update_room_membership.assert_not_called()


async def test_nothing_is_done_for_someone_not_in_the_state_the_request_names() -> None:
    # The module decides from the room's current state, whatever the caller claims.
    state = server_state()
    outsider = "@outsider:here"
    for room_id in (SPACE, STAFF, MOD_ROOM, "!not-guilds:here"):
        action, api = await act(state, outsider, room_id)
        assert action is None
        api.update_room_membership.assert_not_called()
    # A banned member is not joined to the default channel; remote users and the bot never act.
    for user, room_id in (("@banned:here", SPACE), ("@far:elsewhere", SPACE), (BOT, SPACE)):
        action, api = await act(state, user, room_id)
        assert action is None
        api.update_room_membership.assert_not_called()


async def test_leaving_a_role_room_leaves_the_channels_it_alone_opened() -> None:
    state = server_state()
    state[SPACE][("m.space.child", STAFF)] = ev({"via": ["here"]})
    state[STAFF][("m.room.member", MOD)] = ev({"membership": "join"})
    state[GENERAL][("m.room.member", MOD)] = ev({"membership": "join"})
    state[MOD_ROOM] = {
        ("m.room.create", ""): ev({"type": ROLE_ROOM_TYPE, "server_id": SPACE}),
        ("m.room.member", MOD): ev({"membership": "leave"}),
    }
    action, api = await act(state, MOD, MOD_ROOM)
    assert action == "leave_ungated_channels"
    api.update_room_membership.assert_awaited_once_with(MOD, MOD, STAFF, "leave")
    # An admin keeps every channel.
    state[ADMIN_ROOM][("m.room.member", MOD)] = ev({"membership": "join"})
    action, api = await act(state, MOD, MOD_ROOM)
    assert action is None
    api.update_room_membership.assert_not_called()


async def test_leaving_a_role_room_leaves_the_private_channels_it_links() -> None:
    # A private channel is linked from its roles' rooms, not the space (issue 17, observation 6):
    # the walk finds it there.
    state = server_state()
    state[STAFF][("m.room.member", MOD)] = ev({"membership": "join"})
    state[MOD_ROOM] = {
        ("m.room.create", ""): ev(
            {"type": "m.space", "chat.guilds.role_room": True, "server_id": SPACE}
        ),
        ("m.room.member", MOD): ev({"membership": "leave"}),
        ("m.space.child", STAFF): ev({"via": ["here"], "order": "000001"}),
    }
    assert ("m.space.child", STAFF) not in state[SPACE]
    action, api = await act(state, MOD, MOD_ROOM)
    assert action == "leave_ungated_channels"
    api.update_room_membership.assert_awaited_once_with(MOD, MOD, STAFF, "leave")
