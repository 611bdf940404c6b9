"""A server the bridge compacted (idle) behaves exactly as before once used again.

The bridge here holds at most one server in full and compacts any server unused for a second
(`directory` in guilds.yaml), so every step below finds the server compacted: an API read, a
role made and edited, a rename and a power-levels change made by raw Matrix clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.api import (
    Api,
    as_bot,
    create_server,
    eventually,
    grant,
    join_server,
    settled,
)
from tests.harness.invariants import assert_converged, power_everywhere
from tests.harness.stack import Stack, build_stack

COMPACTING = {"directory": {"max_loaded_servers": 1, "idle_s": 1}}


@pytest_asyncio.fixture(scope="module")
async def compacting(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    # Storage plays no part here: one backend.
    s = build_stack("sqlite", tmp_path_factory.mktemp("compacting"), COMPACTING)
    try:
        s.http = aiohttp.ClientSession()
        s.start_guilds()
        yield s
    finally:
        await s.close()


async def directory_gauges(stack: Stack) -> dict[str, float]:
    assert stack.http is not None
    async with stack.http.get(stack.metrics_url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in ("guilds_servers_loaded", "guilds_servers_compacted")
    }


async def all_compacted(stack: Stack, servers: int) -> None:
    async def compacted() -> bool:
        gauges = await directory_gauges(stack)
        return gauges == {"guilds_servers_loaded": 0, "guilds_servers_compacted": servers}

    await eventually(compacted, deadline_s=60, interval_s=0.3, what="every server compacted")


async def test_a_compacted_server_is_read_edited_and_kept_current(compacting: Stack) -> None:
    stack = compacting
    alice, bob = await stack.register_user(), await stack.register_user()
    server = await create_server(stack, alice, "Compacted")
    sid = server["server_id"]
    channel = server["default_channel_id"]
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

    before = await views()
    assert before["server"][0] == 200 and len(before["bob's servers"][1]["servers"]) == 2
    await all_compacted(stack, 2)
    # API reads: the same answers from a compacted server as from one held in full.
    assert await views() == before

    # A role made and given, then edited, each time on a compacted server.
    await all_compacted(stack, 2)
    status, role = await settled(
        owner, "POST", f"/servers/{sid}/roles", {"name": "helpers", "power": 30}
    )
    assert status == 201, role
    await all_compacted(stack, 2)
    await grant(stack, sid, alice, bob, role["role_id"])
    await power_everywhere(stack, [sid, channel], bob.user_id, 30)
    await all_compacted(stack, 2)
    status, edited = await settled(
        owner, "PATCH", f"/servers/{sid}/roles/{role['role_id']}", {"power": 40}
    )
    assert status == 200 and edited["power"] == 40, edited
    await power_everywhere(stack, [sid, channel], bob.user_id, 40)

    # Events from raw clients reach a compacted server: a newcomer's own client joins...
    await all_compacted(stack, 2)
    carol = await stack.register_user()
    await join_server(stack, sid, carol)
    status, members = await owner.call("GET", f"/servers/{sid}/members")
    assert status == 200 and carol.user_id in {m["user_id"] for m in members["members"]}

    # ...and power levels changed by hand are set back to what the roles derive.
    await all_compacted(stack, 2)
    status, levels = await as_bot(stack, "GET", f"/rooms/{channel}/state/m.room.power_levels/")
    assert status == 200, levels
    levels["users"][bob.user_id] = 0
    status, answer = await as_bot(
        stack, "PUT", f"/rooms/{channel}/state/m.room.power_levels/", levels
    )
    assert status == 200, answer
    await power_everywhere(stack, [channel], bob.user_id, 40)
    await assert_converged(stack, sid, alice, [bob, carol])
