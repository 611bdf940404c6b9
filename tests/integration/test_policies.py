"""Homeserver policies: each refuses what it should, naming itself, in the API and in Matrix.

One stack of its own (the shared `stack` keeps the default, permissive policies), with every
policy set; the module's share is checked with plain matrix-nio clients, bypassing the bridge.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import nio
import pytest
import pytest_asyncio

from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT
from tests.harness.api import Api, join_server, state_of
from tests.harness.stack import Stack, User, build_stack

POLICIES: dict[str, Any] = {
    "policies": {
        "create_servers": {"regex": "@maker[^:]*:localhost"},
        "limits": {
            "servers_per_user": 1,
            "channels_per_server": 3,
            "roles_per_server": 1,
            "members_per_voice_channel": 2,
        },
        "channel_kinds": ["text", "voice"],
        "invites": {"expires_in_s": 3600, "max_uses": 5},
        "public_servers": False,
    }
}


# SQLite alone: what a policy refuses is the same whatever the database
# (tests/harness/workers.py: ON_SQLITE).
@pytest_asyncio.fixture(scope="module", params=["sqlite"])
async def policed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend = request.param
    s = build_stack(backend, tmp_path_factory.mktemp(f"policies-{backend}"), POLICIES)
    try:
        s.http = aiohttp.ClientSession()
        s.start_guilds()
        yield s
    finally:
        await s.close()


async def maker(stack: Stack) -> User:
    return await stack.register_user(f"maker_{secrets.token_hex(4)}")


def refused(status: int, answer: Any, policy: str) -> None:
    assert status == 403, answer
    assert answer["errcode"] == "M_FORBIDDEN", answer
    assert f"policies.{policy}" in answer["error"], answer


def nio_refused(answer: Any, policy: str) -> None:
    assert isinstance(answer, nio.ErrorResponse), answer
    assert answer.status_code == "M_FORBIDDEN", answer
    assert f"policies.{policy}" in answer.message, answer


@dataclass
class Built:
    stack: Stack
    owner: User
    server_id: str
    general: str

    def api(self, user: User | None = None) -> Api:
        return Api(self.stack, user or self.owner)


async def build(stack: Stack) -> Built:
    owner = await maker(stack)
    status, server = await Api(stack, owner).call("POST", "/servers", {"name": "Policed"})
    assert status == 201, server
    return Built(stack, owner, server["server_id"], server["default_channel_id"])


# --- who may create servers, and how many -----------------------------------------------------


async def test_only_listed_users_create_servers(policed: Stack) -> None:
    outsider = await policed.register_user(f"someone_{secrets.token_hex(4)}")
    status, answer = await Api(policed, outsider).call("POST", "/servers", {"name": "Mine"})
    refused(status, answer, "create_servers")
    assert (await Api(policed, outsider).call("GET", "/servers"))[1]["servers"] == []


async def test_servers_per_user(policed: Stack) -> None:
    built = await build(policed)
    status, answer = await built.api().call("POST", "/servers", {"name": "Second"})
    refused(status, answer, "limits.servers_per_user")
    _, listed = await built.api().call("GET", "/servers")
    assert [s["server_id"] for s in listed["servers"]] == [built.server_id]


# --- channels --------------------------------------------------------------------------------


async def test_channel_kinds_and_channels_per_server(policed: Stack) -> None:
    built = await build(policed)
    sid = built.server_id
    status, answer = await built.api().call(
        "POST", f"/servers/{sid}/channels", {"name": "cams", "kind": "video"}
    )
    refused(status, answer, "channel_kinds")
    status, voice = await built.api().call(
        "POST", f"/servers/{sid}/channels", {"name": "talk", "kind": "voice"}
    )
    assert status == 201, voice
    status, answer = await built.api().call(
        "PATCH", f"/servers/{sid}/channels/{voice['channel_id']}", {"kind": "video"}
    )
    refused(status, answer, "channel_kinds")
    status, text = await built.api().call(
        "POST", f"/servers/{sid}/channels", {"name": "chat", "kind": "text"}
    )
    assert status == 201, text
    # general, talk and chat: the third is the last the policy allows.
    status, answer = await built.api().call(
        "POST", f"/servers/{sid}/channels", {"name": "more", "kind": "text"}
    )
    refused(status, answer, "limits.channels_per_server")
    assert "3 channels" in answer["error"]
    _, server = await built.api().call("GET", f"/servers/{sid}")
    assert sorted(c["name"] for c in server["channels"]) == ["chat", "general", "talk"]
    assert {c["kind"] for c in server["channels"]} == {"text", "voice"}

    # Around the bridge, with a plain Matrix client: no retyping to a kind the policy forbids,
    # and no room linked into the space by hand past the limit.
    async with policed.nio_client(built.owner) as client:
        assert isinstance(await client.join(voice["channel_id"]), nio.JoinResponse)
        marker = (await state_of(client, voice["channel_id"]))[(CHANNEL_EVENT, "")]
        answer = await client.room_put_state(
            voice["channel_id"], CHANNEL_EVENT, {**marker, "kind": "video"}
        )
        nio_refused(answer, "channel_kinds")
        created = await client.room_create(name="by hand")
        assert isinstance(created, nio.RoomCreateResponse), created
        answer = await client.room_put_state(
            sid, "m.space.child", {"via": [policed.server_name]}, created.room_id
        )
        nio_refused(answer, "limits.channels_per_server")
        space = await state_of(client, sid)
    assert ("m.space.child", created.room_id) not in space
    assert (await state_of_as(policed, built.owner, voice["channel_id"]))[(CHANNEL_EVENT, "")][
        "kind"
    ] == "voice"


async def state_of_as(stack: Stack, user: User, room_id: str) -> dict[tuple[str, str], dict]:
    async with stack.nio_client(user) as client:
        return await state_of(client, room_id)


async def test_a_room_linked_by_hand_within_the_limit_is_allowed(policed: Stack) -> None:
    built = await build(policed)
    async with policed.nio_client(built.owner) as client:
        # A room Guilds can adopt (the bot invited with power 100): the module refuses others.
        created = await client.room_create(
            name="by hand",
            invite=[policed.bot_user_id],
            power_level_override={"users": {policed.bot_user_id: 100}},
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        answer = await client.room_put_state(
            built.server_id, "m.space.child", {"via": [policed.server_name]}, created.room_id
        )
        assert isinstance(answer, nio.RoomPutStateResponse), answer


# --- roles -----------------------------------------------------------------------------------


async def test_roles_per_server(policed: Stack) -> None:
    built = await build(policed)
    path = f"/servers/{built.server_id}/roles"
    status, role = await built.api().call("POST", path, {"name": "VIP"})
    assert status == 201, role
    status, answer = await built.api().call("POST", path, {"name": "Helpers"})
    refused(status, answer, "limits.roles_per_server")
    _, roles = await built.api().call("GET", path)
    assert sorted(r["role_id"] for r in roles["roles"]) == ["admin", "member", "moderator", "vip"]


# --- invites ---------------------------------------------------------------------------------


async def test_invite_defaults_apply_when_the_creator_says_nothing(policed: Stack) -> None:
    built = await build(policed)
    path = f"/servers/{built.server_id}/invites"
    before = int(time.time() * 1000)
    status, invite = await built.api().call("POST", path, {})
    assert status == 201, invite
    assert invite["max_uses"] == 5
    assert before + 3_600_000 <= invite["expires_at"] <= int(time.time() * 1000) + 3_600_000
    # Saying so still wins over the defaults.
    status, chosen = await built.api().call("POST", path, {"max_uses": 1, "expires_in_s": None})
    assert status == 201, chosen
    assert chosen["max_uses"] == 1 and chosen["expires_at"] is None


# --- public servers ----------------------------------------------------------------------------


async def test_servers_cannot_be_made_public(policed: Stack) -> None:
    built = await build(policed)
    sid = built.server_id
    status, answer = await built.api().call("PATCH", f"/servers/{sid}", {"public": True})
    refused(status, answer, "public_servers")
    status, _ = await built.api().call("PATCH", f"/servers/{sid}", {"public": False})
    assert status == 200
    async with policed.nio_client(built.owner) as client:
        answer = await client.room_put_state(sid, "m.room.join_rules", {"join_rule": "public"})
        nio_refused(answer, "public_servers")
        rules = (await state_of(client, sid))[("m.room.join_rules", "")]
    assert rules["join_rule"] == "invite"


# --- calls -----------------------------------------------------------------------------------


def call_member(user: User) -> tuple[dict[str, Any], str]:
    content = {
        "application": "m.call",
        "call_id": "",
        "scope": "m.room",
        "device_id": user.device_id,
        "expires": 3_600_000,
        "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
        "foci_preferred": [],
    }
    return content, f"_{user.user_id}_{user.device_id}"


async def test_members_per_voice_channel(policed: Stack) -> None:
    built = await build(policed)
    status, voice = await built.api().call(
        "POST", f"/servers/{built.server_id}/channels", {"name": "talk", "kind": "voice"}
    )
    assert status == 201, voice
    room = voice["channel_id"]
    users = [built.owner]
    for _ in range(2):
        user = await policed.register_user()
        await join_server(policed, built.server_id, user)
        users.append(user)
    answers = []
    for user in users:
        async with policed.nio_client(user) as client:
            joined = await client.join(room)
            assert isinstance(joined, nio.JoinResponse), joined
            content, key = call_member(user)
            answers.append(await client.room_put_state(room, CALL_MEMBER_EVENT, content, key))
    assert all(isinstance(a, nio.RoomPutStateResponse) for a in answers[:2]), answers
    nio_refused(answers[2], "limits.members_per_voice_channel")
    # Once someone leaves the call, there is room again.
    async with policed.nio_client(users[0]) as client:
        _, key = call_member(users[0])
        left = await client.room_put_state(room, CALL_MEMBER_EVENT, {}, key)
        assert isinstance(left, nio.RoomPutStateResponse), left
    async with policed.nio_client(users[2]) as client:
        content, key = call_member(users[2])
        answer = await client.room_put_state(room, CALL_MEMBER_EVENT, content, key)
        assert isinstance(answer, nio.RoomPutStateResponse), answer
