"""Reconciliation: what an admin does in another Matrix client (a raw matrix-nio client here)
is brought into line across the server, and the provisioning API shows it.

The revert paths need a federated sender, which one test homeserver cannot provide: their
decisions are unit tested in tests/unit/test_reconcile.py.
"""

from __future__ import annotations

from typing import Any

import nio

from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT
from tests.harness.api import Api, create_server, eventually, join_server, state_of
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE_AND_WORKERS

# Reconciliation follows other clients the same way when Synapse runs with workers (on
# PostgreSQL: this module's PostgreSQL run).
pytestmark = ON_SQLITE_AND_WORKERS

DEADLINE_S = 10.0


async def put_state(
    client: nio.AsyncClient, room_id: str, event_type: str, content: dict[str, Any], key: str = ""
) -> None:
    response = await client.room_put_state(room_id, event_type, content, state_key=key)
    assert isinstance(response, nio.RoomPutStateResponse), response


async def membership(client: nio.AsyncClient, room_id: str, user_id: str) -> str | None:
    """The user's membership as `client` sees it; None if `client` may not read the room."""
    response = await client.room_get_state_event(room_id, "m.room.member", user_id)
    if not isinstance(response, nio.RoomGetStateEventResponse):
        return None
    return response.content.get("membership")


async def roles_of(stack: Stack, owner: User, server_id: str, user_id: str) -> list[str]:
    status, page = await Api(stack, owner).call("GET", f"/servers/{server_id}/members?limit=100")
    assert status == 200, page
    member = next((m for m in page["members"] if m["user_id"] == user_id), None)
    return member["roles"] if member else []


async def create_channel(stack: Stack, owner: User, server_id: str, name: str) -> str:
    """A text channel made through the API, which the owner then joins (to read it)."""
    status, channel = await Api(stack, owner).call(
        "POST", f"/servers/{server_id}/channels", {"name": name, "kind": "text"}
    )
    assert status == 201, channel
    async with stack.nio_client(owner) as client:
        joined = await client.join(channel["channel_id"])
        assert isinstance(joined, nio.JoinResponse), joined
    return str(channel["channel_id"])


async def test_a_power_level_set_in_another_client_becomes_a_role(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Read back")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    second = await create_channel(stack, alice, sid, "second")
    channels = [server["default_channel_id"], second]

    async with stack.nio_client(alice) as client, stack.nio_client(bob) as bob_client:
        space = await state_of(client, sid)
        mod_room = space[(ROLE_EVENT, "moderator")]["room_id"]
        levels = space[("m.room.power_levels", "")]
        await put_state(
            client,
            sid,
            "m.room.power_levels",
            {**levels, "users": {**levels["users"], bob.user_id: 50}},
        )

        async def bob_is_moderator() -> bool:
            if "moderator" not in await roles_of(stack, alice, sid, bob.user_id):
                return False
            if await membership(bob_client, mod_room, bob.user_id) != "join":
                return False
            for channel in channels:
                pl = (await state_of(client, channel))[("m.room.power_levels", "")]
                if pl["users"].get(bob.user_id) != 50:
                    return False
            return True

        assert await eventually(bob_is_moderator, DEADLINE_S), "bob never became a moderator"

        levels = (await state_of(client, sid))[("m.room.power_levels", "")]
        users = {k: v for k, v in levels["users"].items() if k != bob.user_id}
        await put_state(client, sid, "m.room.power_levels", {**levels, "users": users})

        async def bob_is_plain_member() -> bool:
            if await roles_of(stack, alice, sid, bob.user_id) != ["member"]:
                return False
            if await membership(bob_client, mod_room, bob.user_id) != "leave":
                return False
            for channel in channels:
                pl = (await state_of(client, channel))[("m.room.power_levels", "")]
                if bob.user_id in pl["users"]:
                    return False
            return True

        assert await eventually(bob_is_plain_member, DEADLINE_S), "the role was not removed"


async def test_a_room_added_to_the_space_becomes_a_text_channel(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Adoption")
    sid = server["server_id"]
    async with stack.nio_client(alice) as client:
        space = await state_of(client, sid)
        version = space[("m.room.create", "")].get("room_version", "1")
        users = {stack.bot_user_id: 100}
        if int(version) < 12:
            users[alice.user_id] = 100  # before v12 the creator holds power from `users`
        created = await client.room_create(
            name="made elsewhere",
            invite=[stack.bot_user_id],
            power_level_override={"users": users},
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await put_state(client, sid, "m.space.child", {"via": [stack.server_name]}, room_id)

        async def adopted() -> dict[str, Any] | None:
            status, body = await Api(stack, alice).call("GET", f"/servers/{sid}")
            assert status == 200, body
            channel = next((c for c in body["channels"] if c["channel_id"] == room_id), None)
            # Reconciliation runs at the server's turn, beside the inbox: the room may be
            # listed between the adoption's first write and its last (its link's order).
            return channel if channel is not None and channel["order"] == "000001" else None

        channel = await eventually(adopted, DEADLINE_S)
        assert channel is not None, "the room never became a channel"
        assert channel["kind"] == "text" and channel["name"] == "made elsewhere"
        assert channel["allowed_roles"] is None and channel["order"] == "000001"

        state = await state_of(client, room_id)
        marker = state[(CHANNEL_EVENT, "")]
        assert (marker["kind"], marker["server_id"], marker["default"]) == ("text", sid, False)
        assert state[("m.space.parent", sid)]["via"] == [stack.server_name]
        assert state[("m.room.join_rules", "")] == {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": sid}],
        }
        levels = state[("m.room.power_levels", "")]
        assert levels["users"][stack.bot_user_id] == 100
        if int(version) >= 12:
            # Alice created the room: she keeps a creator's power and is not listed.
            assert alice.user_id not in levels["users"]
            assert marker["creators"] == [alice.user_id]
        assert (await state_of(client, sid))[("m.space.child", room_id)]["order"] == "000001"


async def test_a_channel_renamed_in_another_client_shows_in_the_api(
    stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Renames")
    sid = server["server_id"]
    channel_id = await create_channel(stack, alice, sid, "before")
    async with stack.nio_client(alice) as client:
        await put_state(client, channel_id, "m.room.name", {"name": "after"})
        await put_state(client, channel_id, "m.room.topic", {"topic": "new topic"})

    async def renamed() -> bool:
        status, body = await Api(stack, alice).call("GET", f"/servers/{sid}")
        assert status == 200, body
        channel = next(c for c in body["channels"] if c["channel_id"] == channel_id)
        return bool(channel["name"] == "after" and channel["topic"] == "new topic")

    assert await eventually(renamed, DEADLINE_S)


async def test_a_kick_from_the_space_in_another_client_removes_from_every_channel(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Kicks")
    sid = server["server_id"]
    second = await create_channel(stack, alice, sid, "second")
    await join_server(stack, sid, bob)
    channels = [server["default_channel_id"], second]
    async with stack.nio_client(bob) as bob_client:
        joined = await bob_client.join(second)
        assert isinstance(joined, nio.JoinResponse), joined
    async with stack.nio_client(alice) as client:

        async def bob_in_channels() -> bool:
            return all([await membership(client, c, bob.user_id) == "join" for c in channels])

        assert await eventually(bob_in_channels, DEADLINE_S)
        kicked = await client.room_kick(sid, bob.user_id, reason="bye")
        assert isinstance(kicked, nio.RoomKickResponse), kicked

        async def bob_gone() -> bool:
            return all([await membership(client, c, bob.user_id) == "leave" for c in channels])

        assert await eventually(bob_gone, DEADLINE_S), "bob is still in a channel"
    status, error = await Api(stack, bob).call("GET", f"/servers/{sid}")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
