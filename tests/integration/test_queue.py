"""One writer per server (issue 15): concurrent requests take turns, none gives up, answers are
bounded, and what was accepted is carried out whatever happens to Synapse or the bridge.

Requests that outlive the answer bound are followed through their operation resource
(`GET /_guilds/v1/operations/{id}`), as a client would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

from bridge.engine.store import Database
from guilds.vocabulary import SERVER_EVENT
from tests.harness.api import (
    Api,
    as_bot,
    create_server,
    eventually,
    grant,
    join_server,
    outcome,
    role_room,
)
from tests.harness.contract import assert_conforms
from tests.harness.stack import Stack, User
from tests.harness.workers import ALSO_ON_WORKERS

# Slack over the configured bound for a loaded machine; an answer later than this is a hang.
SLACK_S = 20.0


def answer_bound(stack: Stack) -> float:
    return stack.config.answer_within_s + SLACK_S


async def call(stack: Stack, user: User, method: str, path: str, body: Any = None) -> tuple:
    """The API's first answer, which must come within the bound (a 202 when not done yet)."""
    return await asyncio.wait_for(
        Api(stack, user).call(method, path, body, follow=False), timeout=answer_bound(stack)
    )


async def levels(stack: Stack, room: str) -> dict[str, Any]:
    status, content = await as_bot(stack, "GET", f"/rooms/{room}/state/m.room.power_levels/")
    assert status == 200, content
    return dict(content)


async def users_levels(stack: Stack, rooms: list[str]) -> dict[str, dict[str, int]]:
    """Each room's `users` power levels, read at once."""
    read = await asyncio.gather(*(levels(stack, room) for room in rooms))
    return {room: dict(content["users"]) for room, content in zip(rooms, read, strict=True)}


async def every_room(stack: Stack, owner: User, sid: str) -> list[str]:
    status, server = await Api(stack, owner).call("GET", f"/servers/{sid}")
    assert status == 200, server
    roles = [await role_room(stack, sid, r) for r in ("admin", "moderator")]
    return [sid, *(c["channel_id"] for c in server["channels"]), *roles]


# -- observation 6: two transfers at once ---------------------------------------------------


@ALSO_ON_WORKERS
async def test_two_concurrent_transfers_leave_exactly_one_owner(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Contested")
    sid = server["server_id"]
    bob, carol = await stack.register_user(), await stack.register_user()
    for user in (bob, carol):
        await join_server(stack, sid, user)
    answers = await asyncio.gather(
        *(
            call(stack, alice, "POST", f"/servers/{sid}/transfer", {"user_id": u.user_id})
            for u in (bob, carol)
        )
    )
    results = [await outcome(stack, alice, status, answer) for status, answer in answers]
    statuses = sorted(status for status, _ in results)
    # The second ran after the first, when alice was no longer the owner.
    assert statuses == [200, 403], results
    winner = next(answer["owner"] for status, answer in results if status == 200)
    assert winner in (bob.user_id, carol.user_id)
    loser_answer = next(answer for status, answer in results if status == 403)
    assert loser_answer["errcode"] == "M_FORBIDDEN"

    status, now = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert status == 200 and now["owner"] == winner
    marker = await as_bot(stack, "GET", f"/rooms/{sid}/state/{SERVER_EVENT}/")
    assert marker[1]["owner"] == winner
    assert (await levels(stack, sid))["users"][winner] == 100
    # The new owner is in the admin role room, which gates admins-only channels.
    admin_room = await role_room(stack, sid, "admin")

    async def in_admin_room() -> bool:
        code, member = await as_bot(
            stack, "GET", f"/rooms/{admin_room}/state/m.room.member/{winner}"
        )
        return code == 200 and member.get("membership") == "join"

    assert await eventually(in_admin_room, deadline_s=30), "the new owner is not in the admin room"


# -- observation 12: many changes to one role at once ------------------------------------------


@ALSO_ON_WORKERS
async def test_forty_concurrent_edits_of_one_role_all_complete_in_turn(
    stack: Stack, db: Database, alice: User
) -> None:
    server = await create_server(stack, alice, "Busy role")
    sid = server["server_id"]
    bob = await stack.register_user()
    await join_server(stack, sid, bob)
    await grant(stack, sid, alice, bob, "moderator")
    powers = list(range(10, 50))
    answers = await asyncio.gather(
        *(
            call(stack, alice, "PATCH", f"/servers/{sid}/roles/moderator", {"power": p})
            for p in powers
        )
    )
    results = [await outcome(stack, alice, status, answer) for status, answer in answers]
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200]
    # Each answer is the role right after its own edit: they ran one at a time.
    assert sorted(answer["power"] for _, answer in results) == powers

    # The final state is the last edit applied (the queue's order, as stored).
    last = await db.fetchone(
        "SELECT body_json FROM queued_jobs WHERE server_id = ? AND kind = 'role.update'"
        " AND state = 'done' ORDER BY updated_at DESC, created_at DESC LIMIT 1",
        sid,
    )
    assert last is not None
    final_power = int(json.loads(last["body_json"])["power"])
    status, roles = await Api(stack, alice).call("GET", f"/servers/{sid}/roles")
    assert status == 200
    assert next(r for r in roles["roles"] if r["role_id"] == "moderator")["power"] == final_power
    rooms_levels = await users_levels(stack, await every_room(stack, alice, sid))
    for room, room_users in rooms_levels.items():
        assert room_users.get(bob.user_id) == final_power, room


@ALSO_ON_WORKERS
async def test_concurrent_grants_and_removals_all_complete(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Shuffled")
    sid = server["server_id"]
    users = [await stack.register_user() for _ in range(8)]
    for user in users:
        await join_server(stack, sid, user)
    holders, newcomers = users[:4], users[4:]
    for user in holders:
        await grant(stack, sid, alice, user, "moderator")
    path = f"/servers/{sid}/members/{{}}/roles/moderator"
    answers = await asyncio.gather(
        *(call(stack, alice, "PUT", path.format(u.user_id)) for u in newcomers),
        *(call(stack, alice, "DELETE", path.format(u.user_id)) for u in holders),
    )
    results = [await outcome(stack, alice, status, answer) for status, answer in answers]
    assert all(status == 200 for status, _ in results), results

    async def settled() -> bool:
        code, listed = await Api(stack, alice).call("GET", f"/servers/{sid}/members")
        if code != 200:
            return False
        roles = {m["user_id"]: m["roles"] for m in listed["members"]}
        return all("moderator" in roles.get(u.user_id, []) for u in newcomers) and not any(
            "moderator" in roles.get(u.user_id, []) for u in holders
        )

    assert await eventually(settled, deadline_s=30), "the members' roles never settled"
    rooms_levels = await users_levels(stack, await every_room(stack, alice, sid))
    for room, room_users in rooms_levels.items():
        for user in newcomers:
            assert room_users.get(user.user_id) == 50, (room, user.user_id)
        for user in holders:
            assert room_users.get(user.user_id, 0) == 0, (room, user.user_id)


# -- observation 7: Synapse killed in the middle of a role edit ----------------------------------


async def many_channels(stack: Stack, owner: User, sid: str, count: int) -> None:
    answers = await asyncio.gather(
        *(
            call(
                stack,
                owner,
                "POST",
                f"/servers/{sid}/channels",
                {"name": f"room-{i}", "kind": "text"},
            )
            for i in range(count)
        )
    )
    for status, answer in answers:
        status, channel = await outcome(stack, owner, status, answer)
        assert status == 201, channel


async def test_a_role_edit_resumes_after_synapse_is_killed_midway(
    stack: Stack, db: Database, alice: User
) -> None:
    server = await create_server(stack, alice, "Thirty-six rooms")
    sid = server["server_id"]
    # The space, two role rooms, general and 32 channels.
    await many_channels(stack, alice, sid, 32)
    bob = await stack.register_user()
    await join_server(stack, sid, bob)
    await grant(stack, sid, alice, bob, "moderator")
    rooms = await every_room(stack, alice, sid)
    assert len(rooms) == 36

    async def started() -> bool:
        row = await db.fetchone(
            "SELECT COUNT(*) AS n FROM operation_steps s JOIN operations o ON o.op_id = s.op_id"
            " WHERE o.server_id = ? AND o.kind = 'edit_role' AND s.status = 'done'",
            sid,
        )
        return row is not None and int(row["n"]) >= 1

    edit = asyncio.create_task(
        call(stack, alice, "PATCH", f"/servers/{sid}/roles/moderator", {"power": 42})
    )
    proc = stack.homeserver.proc
    assert proc is not None
    try:
        assert await eventually(started, deadline_s=60, interval_s=0.01), "the edit never began"
        proc.kill()
        await asyncio.to_thread(proc.wait)
        # Answered while Synapse is down: accepted, not done, and not failed.
        status, answer = await edit
        assert status == 202, answer
        assert_conforms(answer, "Operation")
        assert answer["status"] == "pending" and answer["started"] is True, answer
        # It says how far it got and what it waits for, instead of giving up.
        assert 0 < answer["steps_done"] < answer["steps_total"], answer
        assert answer["waiting_for"], answer
    finally:
        await asyncio.to_thread(stack.homeserver.start)
    status, role = await outcome(stack, alice, status, answer)
    assert status == 200 and role["power"] == 42, role
    for room, room_users in (await users_levels(stack, rooms)).items():
        assert room_users.get(bob.user_id) == 42, room


# -- observation 8: Synapse stuck longer than the answer bound ------------------------------------


async def test_requests_to_a_stuck_homeserver_answer_202_and_complete(
    stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Stuck")
    sid = server["server_id"]
    # The caller's token is fresh in the bridge's cache, so it needs no homeserver to check.
    assert (await Api(stack, alice).call("GET", f"/servers/{sid}"))[0] == 200
    proc = stack.homeserver.proc
    assert proc is not None and proc.poll() is None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        created, renamed = await asyncio.gather(
            call(
                stack, alice, "POST", f"/servers/{sid}/channels", {"name": "late", "kind": "text"}
            ),
            call(stack, alice, "PATCH", f"/servers/{sid}", {"name": "Renamed while stuck"}),
        )
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    for status, answer in (created, renamed):
        assert status == 202, answer
        assert_conforms(answer, "Operation")
        assert answer["status"] == "pending" and answer["href"].endswith(answer["operation_id"])
    status, channel = await outcome(stack, alice, *created)
    assert status == 201 and channel["name"] == "late", channel
    status, renamed_server = await outcome(stack, alice, *renamed)
    assert status == 200 and renamed_server["name"] == "Renamed while stuck", renamed_server
    status, now = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert now["name"] == "Renamed while stuck"
    assert "late" in [c["name"] for c in now["channels"]]


# -- durable: what was accepted survives a bridge crash -----------------------------------------


async def test_queued_requests_run_after_a_bridge_crash_in_order(
    stack: Stack, db: Database, alice: User
) -> None:
    server = await create_server(stack, alice, "Crash queue")
    sid = server["server_id"]
    bob = await stack.register_user()
    await join_server(stack, sid, bob)
    await grant(stack, sid, alice, bob, "moderator")
    assert (await Api(stack, alice).call("GET", f"/servers/{sid}"))[0] == 200
    proc = stack.homeserver.proc
    assert proc is not None
    path = f"/servers/{sid}/roles/moderator"
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        calls = []
        # One after another, each stored before the next is sent: their order is known.
        for stored, power in enumerate((41, 43, 44), start=1):
            calls.append(asyncio.create_task(call(stack, alice, "PATCH", path, {"power": power})))

            async def queued(n: int = stored) -> bool:
                row = await db.fetchone(
                    "SELECT COUNT(*) AS n FROM queued_jobs WHERE server_id = ?", sid
                )
                return row is not None and int(row["n"]) >= n

            assert await eventually(queued, deadline_s=30, interval_s=0.02)
        answers = await asyncio.gather(*calls)
        assert [status for status, _ in answers] == [202, 202, 202], answers
        stack.kill_guilds()
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    await asyncio.to_thread(stack.start_guilds)
    finals = [await outcome(stack, alice, status, answer) for status, answer in answers]
    assert [status for status, _ in finals] == [200, 200, 200], finals
    # The first was running at the crash: its journaled change was finished, not made again.
    assert finals[0][1] is None
    assert [body["power"] for _, body in finals[1:]] == [43, 44]
    status, roles = await Api(stack, alice).call("GET", f"/servers/{sid}/roles")
    assert next(r for r in roles["roles"] if r["role_id"] == "moderator")["power"] == 44
    rooms_levels = await users_levels(stack, await every_room(stack, alice, sid))
    for room, room_users in rooms_levels.items():
        assert room_users.get(bob.user_id) == 44, room


# -- the operation resource ---------------------------------------------------------------------


async def test_an_operation_is_visible_to_its_requester_only(
    stack: Stack, db: Database, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Private operations")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    status, _ = await Api(stack, alice).call("PATCH", f"/servers/{sid}", {"topic": "new"})
    assert status == 200
    row = await db.fetchone(
        "SELECT job_id FROM queued_jobs WHERE server_id = ? AND kind = 'server.update'", sid
    )
    assert row is not None
    path = f"/operations/{row['job_id']}"
    status, operation = await Api(stack, alice).call("GET", path)
    assert status == 200, operation
    assert operation["status"] == "done" and operation["http_status"] == 200
    assert operation["result"]["topic"] == "new"
    status, refused = await Api(stack, bob).call("GET", path)
    assert (status, refused["errcode"]) == (404, "M_NOT_FOUND")
    status, unknown = await Api(stack, alice).call("GET", "/operations/0123456789abcdef")
    assert (status, unknown["errcode"]) == (404, "M_NOT_FOUND")
    status, anonymous = await Api(stack, None).call("GET", path)
    assert (status, anonymous["errcode"]) == (401, "M_MISSING_TOKEN")
    # A refusal is stored in the shape it was answered.
    status, error = await Api(stack, bob).call("PATCH", f"/servers/{sid}", {"topic": "mine"})
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    row = await db.fetchone(
        "SELECT job_id FROM queued_jobs WHERE server_id = ? AND actor = ?", sid, bob.user_id
    )
    assert row is not None
    status, failed = await Api(stack, bob).call("GET", f"/operations/{row['job_id']}")
    assert status == 200 and failed["status"] == "failed" and failed["http_status"] == 403
    assert failed["error"] == {"errcode": error["errcode"], "error": error["error"]}


# -- observations 3 and 4 (the serialization half): role changes while channels are created ------


@ALSO_ON_WORKERS
async def test_role_changes_during_channel_creation_reach_every_new_channel(
    stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Growing")
    sid = server["server_id"]
    users = [await stack.register_user() for _ in range(6)]
    for user in users:
        await join_server(stack, sid, user)
    leaving = users[0]
    await grant(stack, sid, alice, leaving, "moderator")
    path = f"/servers/{sid}/members/{{}}/roles/moderator"
    answers = await asyncio.gather(
        *(
            call(
                stack,
                alice,
                "POST",
                f"/servers/{sid}/channels",
                {"name": f"new-{i}", "kind": "text"},
            )
            for i in range(6)
        ),
        *(call(stack, alice, "PUT", path.format(u.user_id)) for u in users[1:]),
        call(stack, alice, "DELETE", path.format(leaving.user_id)),
    )
    results = [await outcome(stack, alice, status, answer) for status, answer in answers]
    assert [status for status, _ in results] == [201] * 6 + [200] * 6, results
    rooms_levels = await users_levels(stack, await every_room(stack, alice, sid))
    for room, room_users in rooms_levels.items():
        for user in users[1:]:
            assert room_users.get(user.user_id) == 50, (room, user.user_id)
        assert room_users.get(leaving.user_id, 0) == 0, room
