"""The bridge clears call memberships that outlived their expiry (bridge/services/calls.py).

A plain matrix-nio client writes MatrixRTC memberships into a Guilds voice channel: one already
expired (as a crashed tab leaves it), one expired by `expires_ts`, one live for an hour. Within
the sweep interval the bridge writes `{}` over the expired ones only, as the bot.
"""

from __future__ import annotations

import time
from typing import Any

import nio

from bridge.services.calls import DEFAULT_SWEEP_INTERVAL_S
from guilds.vocabulary import CALL_MEMBER_EVENT
from tests.harness.api import Api, create_server, eventually, join_server
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE


def membership(user: User, device_id: str, **timing: int) -> dict[str, Any]:
    return {
        "application": "m.call",
        "call_id": "",
        "scope": "m.room",
        "device_id": device_id,
        "focus_active": {"type": "mesh"},
        "foci_preferred": [],
        "membershipID": f"test-{device_id}",
        **timing,
    }


async def test_expired_call_memberships_are_cleared_and_live_ones_kept(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Sweep")
    sid = server["server_id"]
    status, voice = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/channels", {"name": "talk", "kind": "voice"}
    )
    assert status == 201, voice
    room_id = voice["channel_id"]
    await join_server(stack, sid, bob)
    now = int(time.time() * 1000)
    keys = {
        "stale": f"_{bob.user_id}_STALE",
        "stale_ts": f"_{bob.user_id}_STALETS",
        "live": f"_{bob.user_id}_{bob.device_id}",
    }
    contents = {
        # Created two minutes ago for one minute: a tab that died without saying goodbye.
        "stale": membership(bob, "STALE", created_ts=now - 120_000, expires=60_000),
        "stale_ts": membership(bob, "STALETS", created_ts=now - 60_000, expires_ts=now - 30_000),
        "live": membership(bob, bob.device_id, created_ts=now, expires=3_600_000),
    }
    async with stack.nio_client(bob) as client:
        joined = await client.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        for name, key in keys.items():
            put = await client.room_put_state(room_id, CALL_MEMBER_EVENT, contents[name], key)
            assert isinstance(put, nio.RoomPutStateResponse), put

        async def members() -> dict[str, dict[str, Any]]:
            response = await client.room_get_state(room_id)
            assert isinstance(response, nio.RoomGetStateResponse), response
            return {
                e["state_key"]: {"content": e["content"], "sender": e["sender"]}
                for e in response.events
                if e["type"] == CALL_MEMBER_EVENT
            }

        async def swept() -> bool:
            state = await members()
            return not state[keys["stale"]]["content"] and not state[keys["stale_ts"]]["content"]

        started = time.monotonic()
        assert await eventually(swept, DEFAULT_SWEEP_INTERVAL_S * 3, 0.5, what="stale cleared")
        print(f"stale memberships cleared in {time.monotonic() - started:.1f} s")
        state = await members()
        assert state[keys["stale"]]["sender"] == stack.bot_user_id
        assert state[keys["live"]]["content"] == contents["live"]
        assert state[keys["live"]]["sender"] == bob.user_id
