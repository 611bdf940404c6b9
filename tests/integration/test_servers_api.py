"""The server endpoints of the provisioning API, and what they do to Matrix, seen by matrix-nio."""

from __future__ import annotations

from typing import Any

import nio
import pytest

from guilds.model import CATEGORY_EVENT
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from tests.harness.api import Api, create_server, eventually, join_server, state_of
from tests.harness.invariants import assert_converged
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE


async def test_create_server_builds_the_space_its_roles_and_general(
    stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice)
    assert server["name"] == "Friends" and server["topic"] == "hi"
    assert server["owner"] == alice.user_id
    assert [c["name"] for c in server["channels"]] == ["general"]
    general = server["channels"][0]
    assert general["channel_id"] == server["default_channel_id"]
    assert general["kind"] == "text" and general["allowed_roles"] is None
    assert {r["role_id"] for r in server["roles"]} == {"admin", "moderator", "member"}
    assert server["me"]["power"] == 100 and "admin" in server["me"]["roles"]

    # What any Matrix client sees.
    async with stack.nio_client(alice) as client:
        space = await state_of(client, server["server_id"])
        assert space[("m.room.create", "")]["type"] == "m.space"
        assert space[("m.room.join_rules", "")]["join_rule"] == "invite"
        assert space[(SERVER_EVENT, "")] == {
            "owner": alice.user_id,
            "default_channel": general["channel_id"],
        }
        assert space[("m.space.child", general["channel_id"])]["via"] == [stack.server_name]
        assert {key for (kind, key) in space if kind == ROLE_EVENT} == {
            "admin",
            "moderator",
            "member",
        }
        assert space[("m.room.member", alice.user_id)]["membership"] == "join"
        levels = space[("m.room.power_levels", "")]
        assert levels["users"][alice.user_id] == 100
        version = space[("m.room.create", "")].get("room_version", "1")
        if int(version) >= 12:
            assert stack.bot_user_id not in levels["users"]
        else:
            assert levels["users"][stack.bot_user_id] == 100

        channel = await state_of(client, general["channel_id"])
        assert channel[(CHANNEL_EVENT, "")]["default"] is True
        assert channel[("m.space.parent", server["server_id"])]["canonical"] is True
        rules = channel[("m.room.join_rules", "")]
        assert rules["join_rule"] == "restricted"
        assert rules["allow"] == [{"type": "m.room_membership", "room_id": server["server_id"]}]
        assert channel[("m.room.member", alice.user_id)]["membership"] == "join"
        assert CATEGORY_EVENT not in {kind for kind, _ in channel}


async def test_list_and_read_only_for_members(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Listed")
    status, listed = await Api(stack, alice).call("GET", "/servers")
    assert status == 200
    summary = next(s for s in listed["servers"] if s["server_id"] == server["server_id"])
    assert summary == {
        "server_id": server["server_id"],
        "name": "Listed",
        "icon": None,
        "member_count": 1,
    }
    status, others = await Api(stack, bob).call("GET", "/servers")
    assert status == 200 and server["server_id"] not in {s["server_id"] for s in others["servers"]}
    # A server the caller cannot see is simply not found.
    status, error = await Api(stack, bob).call("GET", f"/servers/{server['server_id']}")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    status, error = await Api(stack, alice).call("GET", "/servers/!nothing:localhost")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")


async def test_authentication_errors(stack: Stack) -> None:
    status, error = await Api(stack, None).call("GET", "/servers")
    assert (status, error["errcode"]) == (401, "M_MISSING_TOKEN")
    nobody = User("@nobody:localhost", "x", "not-a-real-token", "DEVICE")
    status, error = await Api(stack, nobody).call("POST", "/servers", {"name": "x"})
    assert (status, error["errcode"]) == (401, "M_UNKNOWN_TOKEN")


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({}, "M_INVALID_PARAM"),
        ({"name": ""}, "M_INVALID_PARAM"),
        ({"name": "x" * 101}, "M_INVALID_PARAM"),
        ({"name": "bad\u0007name"}, "M_INVALID_PARAM"),
        ({"name": 42}, "M_INVALID_PARAM"),
        ({"name": "ok", "topic": 5}, "M_INVALID_PARAM"),
        ({"name": "ok", "icon": "http://example.org/x.png"}, "M_INVALID_PARAM"),
        ([1, 2], "M_BAD_JSON"),
    ],
)
async def test_create_refuses_bad_input(stack: Stack, alice: User, body: Any, errcode: str) -> None:
    before = {
        s["server_id"] for s in (await Api(stack, alice).call("GET", "/servers"))[1]["servers"]
    }
    status, error = await Api(stack, alice).call("POST", "/servers", body)
    assert (status, error["errcode"]) == (400, errcode)
    after = {
        s["server_id"] for s in (await Api(stack, alice).call("GET", "/servers"))[1]["servers"]
    }
    assert after == before


async def test_create_refuses_non_json_and_huge_bodies(stack: Stack, alice: User) -> None:
    status, error = await Api(stack, alice).call("POST", "/servers", raw=b"{not json")
    assert (status, error["errcode"]) == (400, "M_NOT_JSON")
    huge = b'{"name": "' + b"x" * (70 * 1024) + b'"}'
    status, error = await Api(stack, alice).call("POST", "/servers", raw=huge)
    assert (status, error["errcode"]) == (413, "M_TOO_LARGE")


async def test_edit_needs_manage_server(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Before")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    status, error = await Api(stack, bob).call("PATCH", f"/servers/{sid}", {"name": "Hijacked"})
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    assert "manage_server" in error["error"]

    status, edited = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}", {"name": "After", "topic": "new topic"}
    )
    assert status == 200 and (edited["name"], edited["topic"]) == ("After", "new topic")
    async with stack.nio_client(bob) as client:
        space = await state_of(client, sid)
        assert space[("m.room.name", "")]["name"] == "After"
    status, error = await Api(stack, alice).call("PATCH", f"/servers/{sid}", {"name": ""})
    assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")


async def test_leave_and_the_owner_cannot(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Leavable")
    sid = server["server_id"]
    await join_server(stack, sid, bob)

    async def bob_listed() -> bool:
        status, listed = await Api(stack, bob).call("GET", "/servers")
        return sid in {s["server_id"] for s in listed["servers"]}

    assert await bob_listed()
    status, error = await Api(stack, alice).call("POST", f"/servers/{sid}/leave")
    assert (status, error["errcode"]) == (409, "M_CONFLICT")
    status, _ = await Api(stack, bob).call("POST", f"/servers/{sid}/leave")
    assert status == 204

    async def bob_gone() -> bool:
        return not await bob_listed()

    assert await eventually(bob_gone)

    async def in_no_room_of_it() -> bool:
        async with stack.nio_client(bob) as client:
            rooms = await client.joined_rooms()
            assert isinstance(rooms, nio.JoinedRoomsResponse)
            return sid not in rooms.rooms and server["default_channel_id"] not in rooms.rooms

    # Once quiet: the module's join of bob to the default channel, triggered by his join of
    # the space a moment before, may land after his leave (CI saw it); reconciliation takes
    # such a join back (tests/unit/test_reconcile.py), and nothing else keeps him in.
    assert await eventually(in_no_room_of_it)
    await assert_converged(stack, sid, alice, [alice, bob])


async def test_transfer_ownership(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Handed over")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    status, error = await Api(stack, bob).call(
        "POST", f"/servers/{sid}/transfer", {"user_id": bob.user_id}
    )
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    status, moved = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/transfer", {"user_id": bob.user_id}
    )
    assert status == 200 and moved["owner"] == bob.user_id
    async with stack.nio_client(bob) as client:
        space = await state_of(client, sid)
        assert space[(SERVER_EVENT, "")]["owner"] == bob.user_id
        assert space[("m.room.power_levels", "")]["users"][bob.user_id] == 100


async def test_delete_server_empties_and_closes_every_room(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Doomed")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    status, error = await Api(stack, bob).call("DELETE", f"/servers/{sid}")
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")

    status, _ = await Api(stack, alice).call("DELETE", f"/servers/{sid}")
    assert status == 204
    for user in (alice, bob):
        status, listed = await Api(stack, user).call("GET", "/servers")
        assert sid not in {s["server_id"] for s in listed["servers"]}
        assert (await Api(stack, user).call("GET", f"/servers/{sid}"))[0] == 404
    async with stack.nio_client(bob) as client:
        for room in (sid, general):
            answer = await client.join(room)
            assert isinstance(answer, nio.JoinError), answer
        rooms = await client.joined_rooms()
        assert isinstance(rooms, nio.JoinedRoomsResponse)
        assert sid not in rooms.rooms and general not in rooms.rooms
