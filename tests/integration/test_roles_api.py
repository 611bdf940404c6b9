"""The role endpoints of the provisioning API, and what they do to Matrix, seen by matrix-nio."""

from __future__ import annotations

from typing import Any

import nio
import pytest

from guilds.vocabulary import ROLE_EVENT, ROLE_ROOM_KEY
from tests.harness.api import Api, as_bot, create_server, join_server, state_of
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE


async def levels_of(client: nio.AsyncClient, room_id: str) -> dict[str, Any]:
    return (await state_of(client, room_id))[("m.room.power_levels", "")]


async def roles(stack: Stack, user: User, sid: str) -> list[dict[str, Any]]:
    status, answer = await Api(stack, user).call("GET", f"/servers/{sid}/roles")
    assert status == 200, answer
    return answer["roles"]


async def test_roles_are_listed_for_members_only(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Ranks")
    sid = server["server_id"]
    listed = await roles(stack, alice, sid)
    assert [r["role_id"] for r in listed] == ["admin", "moderator", "member"]
    assert listed == server["roles"]
    admin = listed[0]
    assert admin["power"] == 100 and admin["builtin"] is True and len(admin["permissions"]) == 10
    status, error = await Api(stack, bob).call("GET", f"/servers/{sid}/roles")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    await join_server(stack, sid, bob)
    assert await roles(stack, bob, sid) == listed


async def test_create_role_builds_its_room_state_and_power_levels(
    stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "New roles")
    sid, general = server["server_id"], server["default_channel_id"]
    api = Api(stack, alice)
    body = {
        "name": "Voice Mods",
        "color": "#12ab34",
        "power": 20,
        "permissions": ["kick_members", "send_messages"],
    }
    status, role = await api.call("POST", f"/servers/{sid}/roles", body)
    assert status == 201, role
    assert role == {
        "role_id": "voice-mods",
        "name": "Voice Mods",
        "color": "#12ab34",
        "power": 20,
        "position": 1,
        "permissions": ["kick_members", "send_messages"],
        "builtin": False,
    }
    assert role in await roles(stack, alice, sid)

    async with stack.nio_client(alice) as client:
        space = await state_of(client, sid)
        content = space[(ROLE_EVENT, "voice-mods")]
        assert {k: content[k] for k in ("name", "color", "power", "position")} == {
            "name": "Voice Mods",
            "color": "#12ab34",
            "power": 20,
            "position": 1,
        }
        room_id = content["room_id"]
        # The role room is Guilds' bookkeeping; the bot reads it, so does a plain client once in.
        status, create = await as_bot(stack, "GET", f"/rooms/{room_id}/state/m.room.create/")
        assert status == 200
        # A space marked as a role room, linked from the server's space (issue 17).
        assert create["type"] == "m.space" and create[ROLE_ROOM_KEY] is True
        assert create["server_id"] == sid and create["role_id"] == "voice-mods"
        assert space[("m.space.child", room_id)]["via"], space.get(("m.space.child", room_id))
        # Holders of kick_members now start at power 20: the threshold follows, everywhere.
        for room in (sid, general):
            assert (await levels_of(client, room))["kick"] == 20

    # A second role whose name makes the same slug gets a distinct id and the next position.
    status, second = await api.call("POST", f"/servers/{sid}/roles", {"name": "voice  mods!"})
    assert status == 201, second
    assert (second["role_id"], second["position"], second["power"]) == ("voice-mods-2", 2, 0)
    assert second["permissions"] == [] and second["color"] is None


BAD_CREATES: list[tuple[Any, int, str]] = [
    ({}, 400, "M_MISSING_PARAM"),
    ({"name": ""}, 400, "M_INVALID_PARAM"),
    ({"name": 5}, 400, "M_INVALID_PARAM"),
    ({"name": "x" * 101}, 400, "M_INVALID_PARAM"),
    ({"name": "bad\nname"}, 400, "M_INVALID_PARAM"),
    ({"name": "ok", "color": "red"}, 400, "M_INVALID_PARAM"),
    ({"name": "ok", "power": 100}, 400, "M_INVALID_PARAM"),
    ({"name": "ok", "power": -1}, 400, "M_INVALID_PARAM"),
    ({"name": "ok", "power": "5"}, 400, "M_INVALID_PARAM"),
    ({"name": "ok", "power": True}, 400, "M_INVALID_PARAM"),
    ({"name": "ok", "permissions": ["fly"]}, 400, "M_INVALID_PARAM"),
    ({"name": "ok", "permissions": "kick_members"}, 400, "M_INVALID_PARAM"),
    ({"name": "MODERATOR"}, 409, "M_CONFLICT"),
    ([1], 400, "M_BAD_JSON"),
]


async def test_create_errors_change_nothing(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Strict")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    api = Api(stack, alice)
    before = await roles(stack, alice, sid)
    async with stack.nio_client(alice) as client:
        space_before = await state_of(client, sid)
    for body, status_code, errcode in BAD_CREATES:
        status, error = await api.call("POST", f"/servers/{sid}/roles", body)
        assert (status, error["errcode"]) == (status_code, errcode), (body, error)
    status, error = await api.call("POST", f"/servers/{sid}/roles", raw=b"{nope")
    assert (status, error["errcode"]) == (400, "M_NOT_JSON")
    huge = b'{"name": "' + b"x" * (70 * 1024) + b'"}'
    status, error = await api.call("POST", f"/servers/{sid}/roles", raw=huge)
    assert (status, error["errcode"]) == (413, "M_TOO_LARGE")
    status, error = await Api(stack, bob).call("POST", f"/servers/{sid}/roles", {"name": "Mine"})
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    assert "manage_roles" in error["error"]
    status, error = await api.call("POST", "/servers/!nothing:localhost/roles", {"name": "x"})
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    assert await roles(stack, alice, sid) == before
    async with stack.nio_client(alice) as client:
        assert await state_of(client, sid) == space_before


async def test_a_role_manager_creates_only_below_themselves(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Delegated")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    owner = Api(stack, alice)
    status, managers = await owner.call(
        "POST",
        f"/servers/{sid}/roles",
        {"name": "Managers", "power": 30, "permissions": ["manage_roles", "send_messages"]},
    )
    assert status == 201
    # New roles start at the bottom; the owner moves this one up to delegate to it.
    status, managers = await owner.call(
        "PATCH", f"/servers/{sid}/roles/{managers['role_id']}", {"position": 400}
    )
    assert status == 200 and managers["position"] == 400
    status, _ = await owner.call(
        "PUT", f"/servers/{sid}/members/{bob.user_id}/roles/{managers['role_id']}"
    )
    assert status == 200
    before = await roles(stack, alice, sid)
    manager = Api(stack, bob)
    for body in (
        {"name": "Strong", "power": 31},  # more power than the manager has
        {"name": "Banners", "permissions": ["ban_members"]},  # a permission they lack
    ):
        status, error = await manager.call("POST", f"/servers/{sid}/roles", body)
        assert (status, error["errcode"]) == (403, "M_FORBIDDEN"), body
    assert await roles(stack, alice, sid) == before
    status, role = await manager.call(
        "POST",
        f"/servers/{sid}/roles",
        {"name": "Helpers", "power": 30, "permissions": ["send_messages"]},
    )
    assert status == 201, role
    # At the bottom, below the manager's own role.
    assert role["position"] < managers["position"]
    # Nor may they edit or delete a role at their own rank.
    status, error = await manager.call(
        "PATCH", f"/servers/{sid}/roles/{managers['role_id']}", {"name": "Bosses"}
    )
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    status, error = await manager.call("DELETE", f"/servers/{sid}/roles/{managers['role_id']}")
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")


async def test_edit_role_rewrites_power_levels_everywhere(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Edits")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    api = Api(stack, alice)
    assert (await api.call("PUT", f"/servers/{sid}/members/{bob.user_id}/roles/moderator"))[
        0
    ] == 200

    status, moderator = await api.call(
        "PATCH",
        f"/servers/{sid}/roles/moderator",
        {"power": 60, "name": "Mods", "color": "#000000", "permissions": ["kick_members"]},
    )
    assert status == 200, moderator
    assert moderator["power"] == 60 and moderator["name"] == "Mods"
    assert moderator["permissions"] == ["kick_members"] and moderator["builtin"] is True
    async with stack.nio_client(alice) as client:
        for room in (sid, general):
            levels = await levels_of(client, room)
            assert levels["users"][bob.user_id] == 60
            assert levels["kick"] == 60
            # Nobody below admin can ban or redact any more.
            assert levels["ban"] == 100 and levels["redact"] == 100
        space = await state_of(client, sid)
        assert space[(ROLE_EVENT, "moderator")]["name"] == "Mods"
        room_id = space[(ROLE_EVENT, "moderator")]["room_id"]
    async with stack.nio_client(bob) as client:
        assert (await state_of(client, room_id))[("m.room.name", "")]["name"] == "Mods (role)"
    status, member = await api.call("GET", f"/servers/{sid}/members")
    assert next(m for m in member["members"] if m["user_id"] == bob.user_id)["power"] == 60
    # The admin role can be renamed; the same request twice changes nothing.
    status, admin = await api.call("PATCH", f"/servers/{sid}/roles/admin", {"name": "Admins"})
    assert status == 200 and admin["name"] == "Admins"
    status, again = await api.call("PATCH", f"/servers/{sid}/roles/admin", {"name": "Admins"})
    assert (status, again) == (200, admin)


async def test_edit_errors_change_nothing(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Edit rules")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    api = Api(stack, alice)
    status, custom = await api.call("POST", f"/servers/{sid}/roles", {"name": "Crew"})
    assert status == 201
    crew = f"/servers/{sid}/roles/{custom['role_id']}"
    before = await roles(stack, alice, sid)
    async with stack.nio_client(alice) as client:
        space_before = await state_of(client, sid)
    cases: list[tuple[User, str, Any, int, str]] = [
        (bob, crew, {"name": "Mine"}, 403, "M_FORBIDDEN"),
        (alice, f"/servers/{sid}/roles/ghost", {"name": "x"}, 404, "M_NOT_FOUND"),
        (alice, crew, {"name": ""}, 400, "M_INVALID_PARAM"),
        (alice, crew, {"color": "blue"}, 400, "M_INVALID_PARAM"),
        (alice, crew, {"power": 100}, 400, "M_INVALID_PARAM"),
        (alice, crew, {"power": "high"}, 400, "M_INVALID_PARAM"),
        (alice, crew, {"permissions": ["fly"]}, 400, "M_INVALID_PARAM"),
        (alice, crew, {"position": 1000}, 400, "M_INVALID_PARAM"),
        (alice, crew, {"position": 500}, 409, "M_CONFLICT"),  # moderator's
        (alice, crew, {"name": "member"}, 409, "M_CONFLICT"),
        (
            alice,
            f"/servers/{sid}/roles/admin",
            {"permissions": ["send_messages"]},
            409,
            "M_CONFLICT",
        ),
        (alice, f"/servers/{sid}/roles/admin", {"power": 99}, 409, "M_CONFLICT"),
        (alice, f"/servers/{sid}/roles/member", {"power": 10}, 409, "M_CONFLICT"),
        (alice, f"/servers/{sid}/roles/member", {"position": 3}, 409, "M_CONFLICT"),
        (alice, crew, [1], 400, "M_BAD_JSON"),
    ]
    for caller, path, body, status_code, errcode in cases:
        status, error = await Api(stack, caller).call("PATCH", path, body)
        assert (status, error["errcode"]) == (status_code, errcode), (path, body, error)
        if caller is bob:
            assert "manage_roles" in error["error"]
    assert await roles(stack, alice, sid) == before
    async with stack.nio_client(alice) as client:
        assert await state_of(client, sid) == space_before


async def test_delete_role_regates_and_empties_everything(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Deletions")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    api = Api(stack, alice)
    status, role = await api.call(
        "POST", f"/servers/{sid}/roles", {"name": "Stage", "power": 20, "permissions": ["connect"]}
    )
    assert status == 201
    rid = role["role_id"]
    status, stage = await api.call(
        "POST",
        f"/servers/{sid}/channels",
        {"name": "stage", "kind": "voice", "allowed_roles": [rid, "moderator"]},
    )
    assert status == 201, stage
    assert (await api.call("PUT", f"/servers/{sid}/members/{bob.user_id}/roles/{rid}"))[0] == 200
    async with stack.nio_client(bob) as client:
        assert isinstance(await client.join(stage["channel_id"]), nio.JoinResponse)
    async with stack.nio_client(alice) as client:
        assert isinstance(await client.join(stage["channel_id"]), nio.JoinResponse)
        role_room = (await state_of(client, sid))[(ROLE_EVENT, rid)]["room_id"]
        assert (await levels_of(client, sid))["users"][bob.user_id] == 20

    status, _ = await api.call("DELETE", f"/servers/{sid}/roles/{rid}")
    assert status == 204
    assert rid not in {r["role_id"] for r in await roles(stack, alice, sid)}
    status, listed = await api.call("GET", f"/servers/{sid}")
    channel = next(c for c in listed["channels"] if c["channel_id"] == stage["channel_id"])
    assert channel["allowed_roles"] == ["moderator"]
    async with stack.nio_client(alice) as client:
        space = await state_of(client, sid)
        assert space[(ROLE_EVENT, rid)] == {}
        assert bob.user_id not in (await levels_of(client, sid))["users"]
        rules = (await state_of(client, stage["channel_id"]))[("m.room.join_rules", "")]
        allowed = {entry["room_id"] for entry in rules["allow"]}
        assert role_room not in allowed
        assert (await state_of(client, stage["channel_id"]))[("m.room.member", bob.user_id)][
            "membership"
        ] == "leave"
    async with stack.nio_client(bob) as client:
        rooms = await client.joined_rooms()
        assert isinstance(rooms, nio.JoinedRoomsResponse)
        assert role_room not in rooms.rooms and stage["channel_id"] not in rooms.rooms
        answer = await client.join(stage["channel_id"])
        assert isinstance(answer, nio.JoinError) and answer.status_code == "M_FORBIDDEN", answer
    # The bot has left the closed role room: nobody is left to let anyone in.
    status, joined = await as_bot(stack, "GET", "/joined_rooms")
    assert status == 200 and role_room not in joined["joined_rooms"]
    status, error = await api.call("DELETE", f"/servers/{sid}/roles/{rid}")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("role_id", ["admin", "moderator", "member"])
async def test_builtin_roles_cannot_be_deleted(stack: Stack, alice: User, role_id: str) -> None:
    server = await create_server(stack, alice, "Built in")
    sid = server["server_id"]
    status, error = await Api(stack, alice).call("DELETE", f"/servers/{sid}/roles/{role_id}")
    assert (status, error["errcode"]) == (409, "M_CONFLICT")
    assert await roles(stack, alice, sid) == server["roles"]


async def test_delete_needs_manage_roles(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Keep")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    status, role = await Api(stack, alice).call("POST", f"/servers/{sid}/roles", {"name": "Kept"})
    assert status == 201
    status, error = await Api(stack, bob).call("DELETE", f"/servers/{sid}/roles/{role['role_id']}")
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN") and "manage_roles" in error["error"]
    assert role in await roles(stack, alice, sid)
