"""The bridge clears call memberships that outlived their expiry (bridge/services/calls.py).

A plain matrix-nio client writes MatrixRTC memberships into a Guilds voice channel: one already
expired (as a crashed tab leaves it), one expired by `expires_ts`, one live for an hour. Within
the sweep interval the bridge writes `{}` over the expired ones only, as the bot. A device that
joins a second channel without leaving the first is taken out of the first within seconds.
"""

from __future__ import annotations

import time
from typing import Any

import nio

from bridge.services.calls import DEFAULT_SWEEP_INTERVAL_S
from guilds.vocabulary import CALL_MEMBER_EVENT
from tests.harness.api import create_server, eventually, join_server
from tests.harness.call_steps import add_channel
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
    room_id = await add_channel(stack, alice, sid, "talk", "voice")
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


async def test_a_device_joining_a_second_channel_leaves_the_first(
    stack: Stack, alice: User, bob: User
) -> None:
    """A client that never empties its old membership (another app, an old tab) is still in one
    channel at a time: the bridge empties the older membership of the same device."""
    server = await create_server(stack, alice, "Two rooms")
    sid = server["server_id"]
    one = await add_channel(stack, alice, sid, "one", "voice")
    two = await add_channel(stack, alice, sid, "two", "voice")
    await join_server(stack, sid, bob)
    now = int(time.time() * 1000)
    device = bob.device_id
    key = f"_{bob.user_id}_{device}_m.call"
    other_key = f"_{bob.user_id}_OTHERDEVICE_m.call"
    async with stack.nio_client(bob) as client:
        for room_id in (one, two):
            joined = await client.join(room_id)
            assert isinstance(joined, nio.JoinResponse), joined

        async def put(room_id: str, state_key: str, content: dict[str, Any]) -> None:
            response = await client.room_put_state(room_id, CALL_MEMBER_EVENT, content, state_key)
            assert isinstance(response, nio.RoomPutStateResponse), response

        async def content_of(room_id: str, state_key: str) -> dict[str, Any]:
            response = await client.room_get_state_event(room_id, CALL_MEMBER_EVENT, state_key)
            assert isinstance(response, nio.RoomGetStateEventResponse), response
            return dict(response.content)

        # In "one" for an hour, from this device and from another one.
        await put(one, key, membership(bob, device, created_ts=now, expires=3_600_000))
        kept = membership(bob, "OTHERDEVICE", created_ts=now, expires=3_600_000)
        await put(one, other_key, kept)
        # The same device joins "two" later, without a word to "one".
        joined_two = membership(bob, device, created_ts=now + 1_000, expires=3_600_000)
        await put(two, key, joined_two)

        async def left_one() -> bool:
            return await content_of(one, key) == {}

        started = time.monotonic()
        assert await eventually(left_one, 15.0, 0.5, what="the device's membership in one emptied")
        print(f"the older membership was emptied in {time.monotonic() - started:.1f} s")
        assert await content_of(two, key) == joined_two
        assert await content_of(one, other_key) == kept


async def test_a_user_who_leaves_the_channel_leaves_its_call(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Departures")
    sid = server["server_id"]
    room_id = await add_channel(stack, alice, sid, "talk", "voice")
    await join_server(stack, sid, bob)
    key = f"_{bob.user_id}_{bob.device_id}_m.call"
    now = int(time.time() * 1000)
    async with stack.nio_client(bob) as client:
        joined = await client.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        content = membership(bob, bob.device_id, created_ts=now, expires=3_600_000)
        put = await client.room_put_state(room_id, CALL_MEMBER_EVENT, content, key)
        assert isinstance(put, nio.RoomPutStateResponse), put
        left = await client.room_leave(room_id)
        assert isinstance(left, nio.RoomLeaveResponse), left

    async with stack.nio_client(alice) as watcher:
        assert isinstance(await watcher.join(room_id), nio.JoinResponse)

        async def emptied() -> bool:
            response = await watcher.room_get_state_event(room_id, CALL_MEMBER_EVENT, key)
            return isinstance(response, nio.RoomGetStateEventResponse) and not response.content

        started = time.monotonic()
        assert await eventually(emptied, 15.0, 0.5, what="bob's membership emptied after leaving")
        print(f"emptied {time.monotonic() - started:.1f} s after bob left the room")
