"""A server the bridge evicted from memory behaves exactly as before once used again.

The bridge here holds at most one server in full, compacts any server unused for a second and
keeps no compacted server in memory (`compacted_budget_mib: 0`), so every idle server is
evicted to its file: each step below starts from every server evicted. Evicting and taking
back must change nothing: not the API's answers, not the rooms' state in Matrix, not what the
rooms derive; and events from a client that is not ours (matrix-nio), a rename and membership
changes, that arrive while a server is evicted must reach it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nio
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.api import Api, add_channel, create_server, eventually, join_server
from tests.harness.invariants import States, assert_converged, derived_problems, matrix_states
from tests.harness.stack import Stack, build_stack

EVICTING = {"directory": {"max_loaded_servers": 1, "idle_s": 1, "compacted_budget_mib": 0}}
GAUGES = ("guilds_servers_loaded", "guilds_servers_compacted", "guilds_servers_evicted")


@pytest_asyncio.fixture(scope="module")
async def evicting(tmp_path_factory: Any) -> AsyncIterator[Stack]:
    # Storage plays no part here: one backend.
    s = build_stack("sqlite", tmp_path_factory.mktemp("evicting"), EVICTING)
    try:
        s.http = aiohttp.ClientSession()
        s.start_guilds()
        yield s
    finally:
        await s.close()


async def directory_metrics(stack: Stack) -> dict[str, float]:
    assert stack.http is not None
    async with stack.http.get(stack.metrics_url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in (*GAUGES, "guilds_directory_reloads_total")
    }


async def all_evicted(stack: Stack, servers: int) -> float:
    """Wait until every server is evicted; the reloads counted so far."""
    found: dict[str, float] = {}

    async def evicted() -> bool:
        nonlocal found
        found = await directory_metrics(stack)
        return [found.get(g) for g in GAUGES] == [0, 0, servers]

    await eventually(evicted, deadline_s=60, interval_s=0.3, what="every server evicted")
    return found["guilds_directory_reloads_total"]


def assert_same_states(now: States, before: States) -> None:
    """The same rooms with the same state; else the entries that differ, named."""
    differ = [
        f"{room} {key}: {before.get(room, {}).get(key)} -> {now.get(room, {}).get(key)}"
        for room in sorted(set(now) | set(before))
        for key in sorted(set(now.get(room, {})) | set(before.get(room, {})))
        if now.get(room, {}).get(key) != before.get(room, {}).get(key)
    ]
    assert not differ, "\n".join(differ)


async def test_an_evicted_server_is_read_and_kept_current_as_before(evicting: Stack) -> None:
    stack = evicting
    alice, bob = await stack.register_user(), await stack.register_user()
    server = await create_server(stack, alice, "Evicted")
    sid = server["server_id"]
    # Not the default channel: nobody may rename that one.
    channel = await add_channel(stack, alice, sid, "lounge")
    await join_server(stack, sid, bob)
    await create_server(stack, bob, "Other")
    owner, member = Api(stack, alice), Api(stack, bob)

    async def views() -> dict[str, Any]:
        return {
            "server": await owner.call("GET", f"/servers/{sid}"),
            "members": await owner.call("GET", f"/servers/{sid}/members"),
            "roles": await member.call("GET", f"/servers/{sid}/roles"),
            "alice's servers": await owner.call("GET", "/servers"),
            "bob's servers": await member.call("GET", "/servers"),
        }

    await assert_converged(stack, sid, alice, [bob])
    before = await views()
    assert before["server"][0] == 200 and len(before["bob's servers"][1]["servers"]) == 2
    matrix_before = await matrix_states(stack, sid)
    _, problems = derived_problems(stack, sid, matrix_before)
    assert problems == []

    # Evicted, then read through the API: the same answers, and taking the server back
    # changed nothing in Matrix.
    reloads = await all_evicted(stack, 2)
    assert await views() == before
    assert (await directory_metrics(stack))["guilds_directory_reloads_total"] > reloads
    assert_same_states(await matrix_states(stack, sid), matrix_before)

    # A rename by the owner's own Matrix client while the server is evicted.
    reloads = await all_evicted(stack, 2)
    async with stack.nio_client(alice) as client:
        sent = await client.room_put_state(channel, "m.room.name", {"name": "lobby"})
        assert isinstance(sent, nio.RoomPutStateResponse), sent

    async def renamed() -> bool:
        status, answer = await owner.call("GET", f"/servers/{sid}")
        names = {c["channel_id"]: c["name"] for c in answer.get("channels", [])}
        return status == 200 and names.get(channel) == "lobby"

    await eventually(renamed, deadline_s=60, interval_s=0.3, what="the rename in the API")

    # Bob leaves with his own client while the server is evicted; a newcomer joins with hers.
    await all_evicted(stack, 2)
    async with stack.nio_client(bob) as client:
        left = await client.room_leave(sid)
        assert isinstance(left, nio.RoomLeaveResponse), left
    await all_evicted(stack, 2)
    carol = await stack.register_user()
    await join_server(stack, sid, carol)

    async def members_now() -> set[str] | None:
        status, answer = await owner.call("GET", f"/servers/{sid}/members")
        ids = {m["user_id"] for m in answer["members"]} if status == 200 else set()
        return ids if ids == {alice.user_id, carol.user_id} else None

    await eventually(members_now, deadline_s=60, interval_s=0.3, what="bob gone, carol in")
    assert (await directory_metrics(stack))["guilds_directory_reloads_total"] > reloads
    # What the rooms derive holds (bob removed from the channels, carol given them), and once
    # evicted and taken back again, everything reads the same.
    await assert_converged(stack, sid, alice, [carol])
    # Every server evicted means none has work queued (a busy server is kept): settled.
    await all_evicted(stack, 2)
    matrix_settled = await matrix_states(stack, sid)
    settled = await views()
    await all_evicted(stack, 2)
    assert await views() == settled
    assert_same_states(await matrix_states(stack, sid), matrix_settled)
