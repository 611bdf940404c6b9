"""Invite links through the provisioning API, and what redeeming one does to Matrix (matrix-nio)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import nio

from bridge.engine.store import Database
from tests.harness.api import Api, as_bot, create_server, eventually, join_server, state_of
from tests.harness.stack import Stack, User

CODE = re.compile(r"^[A-Za-z0-9_-]{8,}$")


async def create_invite(stack: Stack, user: User, sid: str, **body: Any) -> dict[str, Any]:
    status, invite = await Api(stack, user).call("POST", f"/servers/{sid}/invites", body)
    assert status == 201, invite
    return invite


async def invites_of(stack: Stack, user: User, sid: str) -> list[dict[str, Any]]:
    status, listed = await Api(stack, user).call("GET", f"/servers/{sid}/invites")
    assert status == 200, listed
    return list(listed["invites"])


async def uses_of(stack: Stack, owner: User, sid: str, code: str) -> int:
    invite = next(i for i in await invites_of(stack, owner, sid) if i["code"] == code)
    return int(invite["uses"])


async def redeem(stack: Stack, user: User, code: str) -> tuple[int, Any]:
    return await Api(stack, user).call("POST", f"/invites/{code}/redeem")


async def space_membership(stack: Stack, viewer: User, sid: str, user: User) -> str | None:
    async with stack.nio_client(viewer) as client:
        state = await state_of(client, sid)
    return state.get(("m.room.member", user.user_id), {}).get("membership")


async def expire_in_store(stack: Stack, code: str) -> None:
    """Move an invite's expiry into the past, as a minute going by would (no sleeping)."""
    db = await Database.open(stack.config.database_url)
    try:
        changed = await db.execute(
            "UPDATE invites SET expires_at = ? WHERE code = ?", int(time.time() * 1000) - 1, code
        )
        assert changed == 1
    finally:
        await db.close()


async def test_create_list_and_revoke(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Inviting")
    sid = server["server_id"]
    before_ms = int(time.time() * 1000)
    first = await create_invite(stack, alice, sid)
    assert CODE.match(first["code"]), first
    assert first["url"] == f"{stack.config.web.public_url.rstrip('/')}/invite/{first['code']}"
    assert first["server_id"] == sid and first["creator"] == alice.user_id
    assert before_ms - 1000 <= first["created_at"] <= int(time.time() * 1000) + 1000
    assert (first["expires_at"], first["max_uses"], first["uses"], first["revoked"]) == (
        None,
        None,
        0,
        False,
    )
    # With no body at all, too.
    status, bare = await Api(stack, alice).call("POST", f"/servers/{sid}/invites")
    assert status == 201 and (bare["max_uses"], bare["expires_at"]) == (None, None)
    await Api(stack, alice).call("DELETE", f"/servers/{sid}/invites/{bare['code']}")
    second = await create_invite(stack, alice, sid, max_uses=5, expires_in_s=3600)
    assert second["code"] != first["code"]
    assert second["max_uses"] == 5
    assert second["expires_at"] == second["created_at"] + 3600 * 1000

    # Newest first.
    assert [i["code"] for i in await invites_of(stack, alice, sid)] == [
        second["code"],
        bare["code"],
        first["code"],
    ]
    assert (await invites_of(stack, alice, sid))[0] == second

    status, _ = await Api(stack, alice).call("DELETE", f"/servers/{sid}/invites/{first['code']}")
    assert status == 204
    listed = await invites_of(stack, alice, sid)
    assert [(i["code"], i["revoked"]) for i in listed] == [
        (second["code"], False),
        (bare["code"], True),
        (first["code"], True),
    ]
    # Revoking again is harmless.
    status, _ = await Api(stack, alice).call("DELETE", f"/servers/{sid}/invites/{first['code']}")
    assert status == 204

    # Unknown codes, and another server's code, are not found here; nothing changes.
    other = await create_server(stack, alice, "Other")
    foreign = await create_invite(stack, alice, other["server_id"])
    for code in ("nosuchcode123", foreign["code"]):
        status, error = await Api(stack, alice).call("DELETE", f"/servers/{sid}/invites/{code}")
        assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    assert (await invites_of(stack, alice, other["server_id"]))[0]["revoked"] is False
    assert await invites_of(stack, alice, sid) == listed

    # Invites live in the bridge alone: Matrix saw no invite event.
    async with stack.nio_client(alice) as client:
        state = await state_of(client, sid)
    members = {key: c["membership"] for (kind, key), c in state.items() if kind == "m.room.member"}
    assert members == {alice.user_id: "join", stack.bot_user_id: "join"}


async def test_create_refuses_bad_input_and_changes_nothing(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Strict")
    sid = server["server_id"]
    bad: list[dict[str, Any]] = [
        {"max_uses": 0},
        {"max_uses": -1},
        {"max_uses": 1_000_001},
        {"max_uses": True},
        {"max_uses": "5"},
        {"max_uses": 1.5},
        {"expires_in_s": 59},
        {"expires_in_s": 365 * 24 * 3600 + 1},
        {"expires_in_s": False},
        {"expires_in_s": "3600"},
    ]
    for body in bad:
        status, error = await Api(stack, alice).call("POST", f"/servers/{sid}/invites", body)
        assert (status, error["errcode"]) == (400, "M_INVALID_PARAM"), body
    status, error = await Api(stack, alice).call("POST", f"/servers/{sid}/invites", [1])
    assert (status, error["errcode"]) == (400, "M_BAD_JSON")
    status, error = await Api(stack, alice).call("POST", f"/servers/{sid}/invites", raw=b"{x")
    assert (status, error["errcode"]) == (400, "M_NOT_JSON")
    huge = b'{"pad": "' + b"x" * (70 * 1024) + b'"}'
    status, error = await Api(stack, alice).call("POST", f"/servers/{sid}/invites", raw=huge)
    assert (status, error["errcode"]) == (413, "M_TOO_LARGE")
    assert await invites_of(stack, alice, sid) == []
    # The upper bounds themselves are fine.
    invite = await create_invite(
        stack, alice, sid, max_uses=1_000_000, expires_in_s=365 * 24 * 3600
    )
    assert invite["max_uses"] == 1_000_000


async def test_managing_invites_needs_create_invites(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Guarded")
    sid = server["server_id"]
    invite = await create_invite(stack, alice, sid)
    carol = await stack.register_user()
    # A non-member does not even see the server.
    for method, path in (
        ("POST", f"/servers/{sid}/invites"),
        ("GET", f"/servers/{sid}/invites"),
        ("DELETE", f"/servers/{sid}/invites/{invite['code']}"),
    ):
        status, error = await Api(stack, carol).call(method, path)
        assert (status, error["errcode"]) == (404, "M_NOT_FOUND"), path
        status, error = await Api(stack, None).call(method, path)
        assert (status, error["errcode"]) == (401, "M_MISSING_TOKEN"), path
    await join_server(stack, sid, bob)
    # A plain member lacks create_invites.
    for method, path in (
        ("POST", f"/servers/{sid}/invites"),
        ("GET", f"/servers/{sid}/invites"),
        ("DELETE", f"/servers/{sid}/invites/{invite['code']}"),
    ):
        status, error = await Api(stack, bob).call(method, path)
        assert (status, error["errcode"]) == (403, "M_FORBIDDEN"), path
        assert "create_invites" in error["error"]
    assert await invites_of(stack, alice, sid) == [invite]
    status, error = await Api(stack, alice).call("GET", "/servers/!nothing:localhost/invites")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")


async def test_preview_needs_no_token(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Landing")
    sid = server["server_id"]
    invite = await create_invite(stack, alice, sid, expires_in_s=600)
    anyone = Api(stack, None)
    status, preview = await anyone.call("GET", f"/invites/{invite['code']}")
    assert status == 200
    assert preview == {
        "server_id": sid,
        "name": "Landing",
        "icon": None,
        "member_count": 1,
        "expires_at": invite["expires_at"],
        "valid": True,
        "status": "valid",
    }
    for code in ("nosuchcode123", "short", "x" * 200):
        status, error = await anyone.call("GET", f"/invites/{code}")
        assert (status, error["errcode"]) == (404, "M_NOT_FOUND"), code

    # A revoked code still answers, so the landing page can say why it no longer works.
    await Api(stack, alice).call("DELETE", f"/servers/{sid}/invites/{invite['code']}")
    status, preview = await anyone.call("GET", f"/invites/{invite['code']}")
    assert status == 200 and (preview["valid"], preview["status"]) == (False, "revoked")


async def test_redeem_invites_then_the_users_client_joins(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Welcoming")
    sid, general = server["server_id"], server["default_channel_id"]
    invite = await create_invite(stack, alice, sid)
    status, error = await Api(stack, None).call("POST", f"/invites/{invite['code']}/redeem")
    assert (status, error["errcode"]) == (401, "M_MISSING_TOKEN")

    status, answer = await redeem(stack, bob, invite["code"])
    assert (status, answer) == (200, {"server_id": sid})
    assert await space_membership(stack, alice, sid, bob) == "invite"
    assert await uses_of(stack, alice, sid, invite["code"]) == 1
    # Redeeming again before joining (say, the join failed) counts no second use.
    status, answer = await redeem(stack, bob, invite["code"])
    assert (status, answer) == (200, {"server_id": sid})
    assert await uses_of(stack, alice, sid, invite["code"]) == 1

    async with stack.nio_client(bob) as client:
        joined = await client.join(sid)
        assert isinstance(joined, nio.JoinResponse), joined

        async def member() -> bool:
            return (await Api(stack, bob).call("GET", f"/servers/{sid}"))[0] == 200

        assert await eventually(member), "bob never became a member"

        # The Synapse module joins a new member to the default channel.
        async def in_general() -> bool:
            rooms = await client.joined_rooms()
            return isinstance(rooms, nio.JoinedRoomsResponse) and general in rooms.rooms

        assert await eventually(in_general), "bob was never joined to general"

    # A member redeeming gets the same answer, and no use is counted.
    status, answer = await redeem(stack, bob, invite["code"])
    assert (status, answer) == (200, {"server_id": sid})
    assert await uses_of(stack, alice, sid, invite["code"]) == 1
    status, preview = await Api(stack, None).call("GET", f"/invites/{invite['code']}")
    assert status == 200 and preview["member_count"] == 2


async def test_unusable_codes_are_refused_and_count_nothing(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Closing")
    sid = server["server_id"]
    carol = await stack.register_user()

    status, error = await redeem(stack, carol, "nosuchcode123")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")

    # Exhausted: the first user takes the only use.
    once = await create_invite(stack, alice, sid, max_uses=1)
    assert (await redeem(stack, bob, once["code"]))[0] == 200
    status, error = await redeem(stack, carol, once["code"])
    assert (status, error["errcode"]) == (410, "GUILDS_INVITE_EXHAUSTED")
    assert await uses_of(stack, alice, sid, once["code"]) == 1
    status, preview = await Api(stack, None).call("GET", f"/invites/{once['code']}")
    assert (preview["valid"], preview["status"]) == (False, "exhausted")

    # Expired: a minute goes by in the store.
    soon = await create_invite(stack, alice, sid, expires_in_s=60)
    await expire_in_store(stack, soon["code"])
    status, error = await redeem(stack, carol, soon["code"])
    assert (status, error["errcode"]) == (410, "GUILDS_INVITE_EXPIRED")
    assert await uses_of(stack, alice, sid, soon["code"]) == 0
    status, preview = await Api(stack, None).call("GET", f"/invites/{soon['code']}")
    assert (preview["valid"], preview["status"]) == (False, "expired")

    # Revoked: refused at once.
    revoked = await create_invite(stack, alice, sid)
    status, _ = await Api(stack, alice).call("DELETE", f"/servers/{sid}/invites/{revoked['code']}")
    assert status == 204
    status, error = await redeem(stack, carol, revoked["code"])
    assert (status, error["errcode"]) == (410, "GUILDS_INVITE_REVOKED")
    assert await uses_of(stack, alice, sid, revoked["code"]) == 0

    assert await space_membership(stack, alice, sid, carol) is None


async def test_a_banned_user_is_refused(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Banning")
    sid = server["server_id"]
    carol = await stack.register_user()
    invite = await create_invite(stack, alice, sid)
    status, answer = await as_bot(
        stack, "POST", f"/rooms/{sid}/ban", {"user_id": carol.user_id, "reason": "spam"}
    )
    assert status == 200, answer
    status, error = await redeem(stack, carol, invite["code"])
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    assert await uses_of(stack, alice, sid, invite["code"]) == 0
    assert await space_membership(stack, alice, sid, carol) == "ban"


async def test_redemption_and_creation_are_rate_limited(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Limited")
    sid = server["server_id"]
    invite = await create_invite(stack, alice, sid)
    guesser = await stack.register_user()
    # Failed attempts count: guessing codes is slow.
    for i in range(10):
        status, error = await redeem(stack, guesser, f"guessedcode{i:03d}")
        assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    status, error = await redeem(stack, guesser, invite["code"])
    assert (status, error["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert isinstance(error["retry_after_ms"], int) and 0 < error["retry_after_ms"] <= 60_000
    assert await uses_of(stack, alice, sid, invite["code"]) == 0
    assert await space_membership(stack, alice, sid, guesser) is None

    # Creation: 20 a minute per user (alice has made one already).
    for _ in range(19):
        await create_invite(stack, alice, sid)
    status, error = await Api(stack, alice).call("POST", f"/servers/{sid}/invites", {})
    assert (status, error["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert error["retry_after_ms"] > 0
    assert len(await invites_of(stack, alice, sid)) == 20


async def test_two_racing_for_the_last_use_one_wins(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Racing")
    sid = server["server_id"]
    carol = await stack.register_user()
    invite = await create_invite(stack, alice, sid, max_uses=1)
    answers = await asyncio.gather(
        redeem(stack, bob, invite["code"]), redeem(stack, carol, invite["code"])
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 410], answers
    loser = next(body for status, body in answers if status == 410)
    assert loser["errcode"] == "GUILDS_INVITE_EXHAUSTED"
    assert await uses_of(stack, alice, sid, invite["code"]) == 1
    memberships = {
        await space_membership(stack, alice, sid, bob),
        await space_membership(stack, alice, sid, carol),
    }
    assert memberships == {"invite", None}


async def test_a_deleted_servers_invites_are_gone(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Ephemeral")
    sid = server["server_id"]
    invite = await create_invite(stack, alice, sid)
    status, _ = await Api(stack, alice).call("DELETE", f"/servers/{sid}")
    assert status == 204
    status, error = await Api(stack, None).call("GET", f"/invites/{invite['code']}")
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    status, error = await redeem(stack, bob, invite["code"])
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    async with stack.nio_client(bob) as client:
        answer = await client.join(sid)
        assert isinstance(answer, nio.JoinError), answer
