"""Load: many matrix-nio users chat in a server's channels while an admin reshapes it by the API.

No error, no lost message (every event id sent is seen by a reader's sync), power levels match
the roles in every room at the end, and the bridge's memory stays flat. `make test` runs a short
smoke version (8 users, 3 channels, 10 s: every check above, on both backends); `make soak` the
full one (GUILDS_LOAD_USERS, GUILDS_LOAD_CHANNELS, GUILDS_LOAD_SECONDS).
Memory is compared between a warm-up sample and the end with a generous bound; no timing is
asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from pathlib import Path
from typing import Any

import nio

from tests.harness.api import Api, as_bot, create_server, eventually, join_as, join_server
from tests.harness.stack import Stack, User

USERS = int(os.environ.get("GUILDS_LOAD_USERS", "8"))
CHANNELS = int(os.environ.get("GUILDS_LOAD_CHANNELS", "3"))
SECONDS = float(os.environ.get("GUILDS_LOAD_SECONDS", "10"))
# Generous: the bridge's caches fill while the test runs; a leak grows without bound.
RSS_GROWTH_BOUND_KB = 64 * 1024


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def chat(
    stack: Stack, user: User, channels: list[str], until: float, sent: dict[str, str]
) -> int:
    errors = 0
    async with stack.nio_client(user) as client:
        for n in itertools.count():
            if time.monotonic() > until:
                return errors
            room = random.choice(channels)
            answer = await client.room_send(
                room, "m.room.message", {"msgtype": "m.text", "body": f"{user.localpart} {n}"}
            )
            if isinstance(answer, nio.RoomSendResponse):
                sent[answer.event_id] = room
            else:
                errors += 1
    return errors


async def admin_churn(
    stack: Stack, owner: User, sid: str, members: list[User], until: float
) -> list[Any]:
    """Roles granted and taken, channels made, renamed and deleted, until the time is up."""
    api = Api(stack, owner)
    failures: list[Any] = []
    for n in itertools.count():
        if time.monotonic() > until:
            return failures
        who = random.choice(members).user_id
        steps: list[tuple[str, str, Any, int]] = [
            ("PUT", f"/servers/{sid}/members/{who}/roles/moderator", None, 200),
            ("DELETE", f"/servers/{sid}/members/{who}/roles/moderator", None, 200),
        ]
        for method, path, body, expected in steps:
            status, answer = await api.call(method, path, body)
            if status != expected:
                failures.append((method, path, status, answer))
        status, channel = await api.call(
            "POST", f"/servers/{sid}/channels", {"name": f"churn-{n}", "kind": "text"}
        )
        if status != 201:
            failures.append(("create channel", status, channel))
            continue
        cid = channel["channel_id"]
        changes = [("PATCH", {"name": f"renamed-{n}"}, 200), ("DELETE", None, 204)]
        for method, body, expected in changes:
            status, answer = await api.call(method, f"/servers/{sid}/channels/{cid}", body)
            if status != expected:
                failures.append((method, cid, status, answer))
    return failures


async def seen_by_sync(stack: Stack, reader: User, wanted: set[str]) -> set[str]:
    """Event ids of `wanted` that the reader's own sync delivers, from the start of the test."""
    seen: set[str] = set()
    async with stack.nio_client(reader) as client:
        since: str | None = None
        filter_ = {"room": {"timeline": {"limit": 1000, "types": ["m.room.message"]}}}

        async def caught_up() -> bool:
            nonlocal since
            answer = await client.sync(timeout=1000, since=since, sync_filter=filter_)
            assert isinstance(answer, nio.SyncResponse), answer
            since = answer.next_batch
            for room_id, room in answer.rooms.join.items():
                seen.update(e.event_id for e in room.timeline.events if e.event_id in wanted)
                if room.timeline.limited:
                    # A gap: fetch it, so nothing is missed for lack of a large enough window.
                    seen.update(await _backfill(client, room_id, room.timeline.prev_batch, wanted))
            return seen >= wanted

        await eventually(caught_up, deadline_s=120)
    return seen


async def _backfill(
    client: nio.AsyncClient, room_id: str, token: str | None, wanted: set[str]
) -> set[str]:
    """Page backwards from `token` through /messages until the room's start."""
    found: set[str] = set()
    while token:
        answer = await client.room_messages(room_id, start=token, limit=1000)
        assert isinstance(answer, nio.RoomMessagesResponse), answer
        found.update(e.event_id for e in answer.chunk if e.event_id in wanted)
        if not answer.chunk or answer.end == token:
            break
        token = answer.end
    return found


async def test_chatting_under_admin_churn_loses_nothing(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Busy")
    sid = server["server_id"]
    channels = [server["default_channel_id"]]
    for n in range(CHANNELS - 1):
        status, channel = await Api(stack, alice).call(
            "POST", f"/servers/{sid}/channels", {"name": f"room-{n}", "kind": "text"}
        )
        assert status == 201, channel
        channels.append(channel["channel_id"])
    users = [await stack.register_user() for _ in range(USERS)]
    for user in users:
        await join_server(stack, sid, user)
    await asyncio.gather(*(join_as(stack, u, c) for u in [alice, *users] for c in channels))
    assert stack.guilds_proc is not None
    pid = stack.guilds_proc.pid

    # Warm-up: a few seconds of the same traffic before the first memory sample.
    sent: dict[str, str] = {}
    warm_until = time.monotonic() + min(5.0, SECONDS / 4)
    await asyncio.gather(*(chat(stack, u, channels, warm_until, sent) for u in users))
    warm_rss = rss_kb(pid)

    started = time.monotonic()
    until = started + SECONDS
    results = await asyncio.gather(
        admin_churn(stack, alice, sid, users, until),
        *(chat(stack, u, channels, until, sent) for u in users),
    )
    churn_failures, send_errors = results[0], results[1:]
    end_rss = rss_kb(pid)
    assert churn_failures == [], churn_failures[:5]
    assert sum(send_errors) == 0, send_errors

    # Every message the homeserver accepted reaches another member's sync: none lost.
    seen = await seen_by_sync(stack, alice, set(sent))
    assert seen == set(sent), f"{len(set(sent) - seen)} of {len(sent)} messages never seen"

    # Invariant: power levels in the space and every channel match the roles, once settled.
    async def levels_match() -> bool:
        status, listed = await Api(stack, alice).call("GET", f"/servers/{sid}/members?limit=100")
        assert status == 200
        expected = {m["user_id"]: m["power"] for m in listed["members"]}
        for room in [sid, *channels]:
            status, levels = await as_bot(stack, "GET", f"/rooms/{room}/state/m.room.power_levels")
            assert status == 200, levels
            default = levels.get("users_default", 0)
            actual = {u: levels.get("users", {}).get(u, default) for u in expected}
            if actual != expected:
                return False
        return True

    assert await eventually(levels_match, deadline_s=60), "power levels never matched the roles"
    status, final = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert status == 200 and len(final["channels"]) == CHANNELS

    growth = end_rss - warm_rss
    print(
        f"{USERS} users, {CHANNELS} channels, {SECONDS:.0f} s: {len(sent)} messages; "
        f"bridge RSS {warm_rss} kB after warm-up, {end_rss} kB at the end ({growth:+d} kB)"
    )
    assert growth < RSS_GROWTH_BOUND_KB, (warm_rss, end_rss)
