"""Convergence (issue 15, observations 2–4): once quiet, every room equals what the roles derive.

Role changes racing channel creations, a kick racing a role's power edit: whatever order the
homeserver took the writes in, the bridge compares every room with the model and repairs it.
Each test ends with the invariant checker (tests/harness/invariants.py): API view == Matrix
state (as the bot and as each member reads it) == derived state, for every room.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import nio

from tests.harness.api import (
    Api,
    as_bot,
    create_server,
    eventually,
    grant,
    join_as,
    join_server,
    settled,
)
from tests.harness.invariants import assert_converged, power_everywhere, room_state
from tests.harness.stack import Stack, User


async def _users(stack: Stack, *names: str) -> list[User]:
    return [await stack.register_user(f"{n}_{secrets.token_hex(3)}") for n in names]


async def _channel(api: Api, sid: str, name: str, **body: Any) -> str:
    status, answer = await settled(
        api, "POST", f"/servers/{sid}/channels", {"name": name, "kind": "text", **body}
    )
    assert status == 201, answer
    return str(answer["channel_id"])


def _forbidden(answer: Any) -> bool:
    return isinstance(answer, nio.ErrorResponse) and answer.status_code == "M_FORBIDDEN"


# -- observation 2 --------------------------------------------------------------------------------


async def test_a_member_promoted_after_channels_were_made_has_the_power_in_them(
    stack: Stack,
) -> None:
    owner, user = await _users(stack, "owner", "promoted")
    server = await create_server(stack, owner, "Promotion")
    sid, api = server["server_id"], Api(stack, owner)
    status, category = await api.call("POST", f"/servers/{sid}/categories", {"name": "Den"})
    assert status == 201, category
    channels = [
        await _channel(api, sid, "first"),
        await _channel(api, sid, "second"),
        await _channel(api, sid, "tucked", category_id=category["category_id"]),
    ]
    await join_server(stack, sid, user)
    for room in channels:
        assert isinstance(await join_as(stack, user, room), nio.JoinResponse)
    await grant(stack, sid, owner, user, "moderator")
    rooms = [sid, server["default_channel_id"], category["category_id"], *channels]
    await power_everywhere(stack, rooms, user.user_id, 50)
    # As the promoted member reads it, too, and everything else agrees.
    async with stack.nio_client(user) as client:
        for room in channels:
            answer = await client.room_get_state_event(room, "m.room.power_levels")
            assert isinstance(answer, nio.RoomGetStateEventResponse), answer
            assert answer.content["users"][user.user_id] == 50, room
    await assert_converged(stack, sid, owner, [user])


# -- observation 3 --------------------------------------------------------------------------------


async def test_removing_a_role_while_channels_are_made_leaves_no_channel_with_its_power(
    stack: Stack,
) -> None:
    owner, moderator, plain = await _users(stack, "owner", "demoted", "plain")
    server = await create_server(stack, owner, "Demotion")
    sid, api = server["server_id"], Api(stack, owner)
    for user in (moderator, plain):
        await join_server(stack, sid, user)
    await grant(stack, sid, owner, moderator, "moderator")

    async def revoke() -> None:
        path = f"/servers/{sid}/members/{moderator.user_id}/roles/moderator"
        status, answer = await settled(api, "DELETE", path)
        assert status == 200, answer

    made = await asyncio.gather(
        _channel(api, sid, "one"),
        revoke(),
        _channel(api, sid, "two"),
        _channel(api, sid, "three"),
        _channel(api, sid, "four"),
    )
    channels = [room for room in made if isinstance(room, str)]
    await assert_converged(stack, sid, owner, [moderator, plain])
    await power_everywhere(stack, [sid, *channels], moderator.user_id, 0)
    # And Matrix holds them to it: no redaction, kick or ban in the new channels.
    async with (
        stack.nio_client(owner) as owner_client,
        stack.nio_client(moderator) as client,
    ):
        for room in channels:
            for user in (owner, moderator, plain):
                assert isinstance(await join_as(stack, user, room), nio.JoinResponse)
            sent = await owner_client.room_send(
                room, "m.room.message", {"msgtype": "m.text", "body": "mine"}
            )
            assert isinstance(sent, nio.RoomSendResponse), sent
            assert _forbidden(await client.room_redact(room, sent.event_id)), room
            assert _forbidden(await client.room_kick(room, plain.user_id)), room
            assert _forbidden(await client.room_ban(room, plain.user_id)), room


# -- observation 4 --------------------------------------------------------------------------------


async def test_grants_racing_channel_creations_reach_every_channel(stack: Stack) -> None:
    owner, *crew = await _users(stack, "owner", *(f"crew{i}" for i in range(6)))
    server = await create_server(stack, owner, "Crew")
    sid, api = server["server_id"], Api(stack, owner)
    for user in crew:
        await join_server(stack, sid, user)

    async def give(user: User) -> None:
        path = f"/servers/{sid}/members/{user.user_id}/roles/moderator"
        status, answer = await settled(api, "PUT", path)
        assert status == 200, answer

    made = await asyncio.gather(
        *(give(user) for user in crew), *(_channel(api, sid, f"room{i}") for i in range(6))
    )
    channels = [room for room in made if isinstance(room, str)]
    assert len(channels) == 6
    for user in crew:
        await power_everywhere(stack, [sid, *channels], user.user_id, 50)
    await assert_converged(stack, sid, owner, crew)


async def test_a_kick_racing_a_role_power_edit_leaves_every_room_at_the_new_power(
    stack: Stack,
) -> None:
    owner, holder, other, *leaving = await _users(
        stack, "owner", "holder", "other", "leaving1", "leaving2", "leaving3"
    )
    server = await create_server(stack, owner, "Race")
    sid, api = server["server_id"], Api(stack, owner)
    channels = [await _channel(api, sid, f"c{i}") for i in range(3)]
    for user in (holder, other, *leaving):
        await join_server(stack, sid, user)
    for user in (holder, other):
        await grant(stack, sid, owner, user, "moderator")

    async def kick(user: User) -> None:
        path = f"/servers/{sid}/members/{user.user_id}/kick"
        status, answer = await settled(api, "POST", path, {})
        assert status == 204, answer

    async def edit(power: int) -> None:
        path = f"/servers/{sid}/roles/moderator"
        status, answer = await settled(api, "PATCH", path, {"power": power})
        assert status == 200, answer

    rooms = [sid, server["default_channel_id"], *channels]
    # Round after round, so an interleaving that loses a write is met at least once.
    for user, power in zip(leaving, (47, 43, 47), strict=True):
        await asyncio.gather(kick(user), edit(power))
    for user in (holder, other):
        await power_everywhere(stack, rooms, user.user_id, 47)
    await assert_converged(stack, sid, owner, [holder, other])


# -- convergence keeps what reconciliation reads back ---------------------------------------------


async def test_a_power_set_by_hand_becomes_a_role_and_is_kept_everywhere(stack: Stack) -> None:
    """An admin sets a member's power to 50 in the space from another client: it is read back
    as the moderator role (reconcile.py) first, and convergence then derives 50 everywhere
    instead of restoring the 0 the model had a moment before."""
    owner, user = await _users(stack, "owner", "promoted_by_hand")
    server = await create_server(stack, owner, "By hand")
    sid, api = server["server_id"], Api(stack, owner)
    channels = [await _channel(api, sid, "a"), await _channel(api, sid, "b")]
    await join_server(stack, sid, user)
    async with stack.nio_client(owner) as client:
        got = await client.room_get_state_event(sid, "m.room.power_levels")
        assert isinstance(got, nio.RoomGetStateEventResponse), got
        content = dict(got.content)
        content["users"] = {**content["users"], user.user_id: 50}
        put = await client.room_put_state(sid, "m.room.power_levels", content)
        assert isinstance(put, nio.RoomPutStateResponse), put
    rooms = [sid, server["default_channel_id"], *channels]
    await power_everywhere(stack, rooms, user.user_id, 50)

    async def holds() -> bool:
        # The read-back's invite to the role room is accepted by the module a moment later.
        status, shown = await Api(stack, user).call("GET", f"/servers/{sid}")
        return status == 200 and "moderator" in shown["me"]["roles"]

    await eventually(holds, deadline_s=60, what="the power set by hand to become moderator")
    await assert_converged(stack, sid, owner, [user])


# -- a link to a deleted channel ----------------------------------------------------------------


async def test_a_deleted_channel_linked_again_by_hand_is_unlinked(stack: Stack) -> None:
    """Interleavings seeds 3064343009 and 4232041617: the owner rewrote the space's link to a
    channel by hand (a reorder) while the bridge deleted it, just after the deletion's unlink;
    the bot then closed the room and left it, and the space linked it for good: a closed room
    nobody can enter, which the API does not list.

    The deletion's writes (bridge/plans/channels.py `delete_channel_plan`) are made here as the
    bot, in that order, with the owner's write between them, while the bridge is stopped: the
    order is fixed, not left to chance. (Once the deletion is over the module refuses such a
    link; before the deletion's unlink, a reorder is not a new link and is not checked.) The
    bridge cannot adopt the room back, so convergence removes the link."""
    (owner,) = await _users(stack, "owner")
    server = await create_server(stack, owner, "Relinked")
    sid, api = server["server_id"], Api(stack, owner)
    doomed = await _channel(api, sid, "doomed")
    stack.stop_guilds()
    try:
        unlink = await as_bot(stack, "PUT", f"/rooms/{sid}/state/m.space.child/{doomed}", {})
        assert unlink[0] == 200, unlink
        async with stack.nio_client(owner) as client:
            link = {"via": [stack.server_name], "order": "000004"}
            put = await client.room_put_state(sid, "m.space.child", link, doomed)
            assert isinstance(put, nio.RoomPutStateResponse), put
        for path, body in (
            (f"/rooms/{doomed}/state/m.room.join_rules/", {"join_rule": "invite"}),
            (f"/rooms/{doomed}/state/m.space.parent/{sid}", {}),
        ):
            status, answer = await as_bot(stack, "PUT", path, body)
            assert status == 200, answer
        status, members = await as_bot(stack, "GET", f"/rooms/{doomed}/joined_members")
        assert status == 200, members
        for user in set(members["joined"]) - {stack.bot_user_id}:
            kicked = await as_bot(stack, "POST", f"/rooms/{doomed}/kick", {"user_id": user})
            assert kicked[0] == 200, kicked
        left = await as_bot(stack, "POST", f"/rooms/{doomed}/leave", {})
        assert left[0] == 200, left
    finally:
        stack.start_guilds()

    async def unlinked() -> bool:
        state = await room_state(stack, sid)
        return state is not None and not state.get(("m.space.child", doomed), {}).get("via")

    await eventually(unlinked, deadline_s=30, what="the link to the deleted channel to go")
    await assert_converged(stack, sid, owner)
