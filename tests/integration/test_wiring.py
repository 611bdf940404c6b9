"""The parts are wired together for real: Synapse calls the module, and sends the bridge its events.

Every test here runs against a real Synapse (SQLite and PostgreSQL) loading synapse_module from
its configuration, with the bridge registered as an application service; the Matrix side is
driven with matrix-nio, a plain client that is not ours.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import nio

from bridge.engine.store import Database
from guilds.vocabulary import CHANNEL_EVENT
from tests.harness.api import eventually
from tests.harness.stack import Stack, User


async def test_module_refuses_guilds_markers_in_a_users_new_room(stack: Stack, alice: User) -> None:
    """Synapse calls the module: a user's room born with Guilds markers is refused."""
    async with stack.nio_client(alice) as client:
        before = await client.joined_rooms()
        assert isinstance(before, nio.JoinedRoomsResponse)
        forged = [{"type": CHANNEL_EVENT, "state_key": "", "content": {"kind": "voice"}}]
        refused = await client.room_create(name="forged channel", initial_state=forged)
        assert isinstance(refused, nio.RoomCreateError), refused
        assert refused.status_code == "M_FORBIDDEN"
        assert "Only the Guilds bot" in refused.message
        after = await client.joined_rooms()
        assert isinstance(after, nio.JoinedRoomsResponse)
        assert set(after.rooms) == set(before.rooms), "a refused room was created anyway"
        # An ordinary room is none of the module's business.
        plain = await client.room_create(name="plain room")
        assert isinstance(plain, nio.RoomCreateResponse), plain


async def inbox_row(stack: Stack, event_id: str) -> Any:
    db = await Database.open(stack.config.database_url)
    try:
        return await db.fetchone(
            "SELECT txn_id, type, handled_at FROM inbox WHERE event_id = ?", event_id
        )
    finally:
        await db.close()


async def test_bridge_joins_when_invited_and_receives_the_rooms_events(
    stack: Stack, alice: User
) -> None:
    async with stack.nio_client(alice) as client:
        created = await client.room_create(name="with the bot", invite=[stack.bot_user_id])
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id

        async def bot_joined() -> bool:
            members = await client.joined_members(room_id)
            return isinstance(members, nio.JoinedMembersResponse) and stack.bot_user_id in {
                m.user_id for m in members.members
            }

        # The invite reached the bridge by transaction, and the bridge acted on it.
        await eventually(bot_joined, what="the bot to join")

        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bridge"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
        topic = await client.room_put_state(room_id, "m.room.topic", {"topic": "after"})
        assert isinstance(topic, nio.RoomPutStateResponse), topic
        row = await eventually(
            lambda: inbox_row(stack, topic.event_id), what="the state event in the bridge's inbox"
        )
        assert row["type"] == "m.room.topic"

        async def handled() -> bool:
            current = await inbox_row(stack, topic.event_id)
            return current is not None and current["handled_at"] is not None

        await eventually(handled, what="the event to be handled")
        # The message came first, and no handler reads messages: it was not stored.
        assert await inbox_row(stack, sent.event_id) is None


async def put_transaction(
    stack: Stack, txn_id: str, events: list[dict[str, Any]], token: str | None
) -> tuple[int, dict]:
    assert stack.http is not None
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with stack.http.put(
        f"{stack.appservice_url}/_matrix/app/v1/transactions/{txn_id}",
        json={"events": events},
        headers=headers,
    ) as response:
        return response.status, await response.json()


def fake_event(room_id: str = "!nowhere:localhost") -> dict[str, Any]:
    return {
        "event_id": f"$test-{secrets.token_hex(8)}",
        "room_id": room_id,
        # A state event: the bridge stores those (its handlers read no messages).
        "type": "m.room.topic",
        "state_key": "",
        "sender": "@someone:localhost",
        "origin_server_ts": int(time.time() * 1000),
        "content": {"topic": "replayed"},
    }


async def count(stack: Stack, sql: str, *args: Any) -> int:
    db = await Database.open(stack.config.database_url)
    try:
        row = await db.fetchone(sql, *args)
        assert row is not None
        return int(row["n"])
    finally:
        await db.close()


async def test_replayed_transaction_is_processed_once(stack: Stack) -> None:
    hs_token = stack.config.appservice.registration.hs_token
    txn_id = f"replay-{secrets.token_hex(6)}"
    event = fake_event()
    # Twice at once, then again in sequence.
    answers = await asyncio.gather(
        *(put_transaction(stack, txn_id, [event], hs_token) for _ in range(2))
    )
    assert answers == [(200, {}), (200, {})]
    assert await put_transaction(stack, txn_id, [event], hs_token) == (200, {})
    assert (
        await count(stack, "SELECT COUNT(*) AS n FROM inbox WHERE event_id = ?", event["event_id"])
        == 1
    )
    assert (
        await count(stack, "SELECT COUNT(*) AS n FROM appservice_txn WHERE txn_id = ?", txn_id) == 1
    )

    # And after a restart of the bridge, the stored txn id still makes the replay a no-op.
    stack.stop_guilds()
    stack.start_guilds()
    assert await put_transaction(stack, txn_id, [event], hs_token) == (200, {})
    assert (
        await count(stack, "SELECT COUNT(*) AS n FROM inbox WHERE event_id = ?", event["event_id"])
        == 1
    )


async def test_appservice_refuses_a_wrong_hs_token(stack: Stack) -> None:
    event = fake_event()
    status, body = await put_transaction(stack, "wrong-token", [event], "x" * 64)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await put_transaction(stack, "no-token", [event], None)
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")
    # The as_token is not the hs_token either.
    status, body = await put_transaction(
        stack, "as-token", [event], stack.config.appservice.registration.as_token
    )
    assert status == 403
    assert (
        await count(stack, "SELECT COUNT(*) AS n FROM inbox WHERE event_id = ?", event["event_id"])
        == 0
    )


async def test_homeserver_reaches_the_appservice(stack: Stack) -> None:
    """Synapse's own appservice ping goes through the bridge's /_matrix/app/v1/ping."""
    config = stack.config
    assert stack.http is not None
    async with stack.http.post(
        f"{stack.hs_url}/_matrix/client/v1/appservice/{config.appservice.registration.id}/ping",
        json={"transaction_id": "harness-ping"},
        headers={"Authorization": f"Bearer {config.appservice.registration.as_token}"},
    ) as response:
        body = await response.json()
        assert response.status == 200, body
        assert "duration_ms" in body


async def test_appservice_queries_and_unknown_routes(stack: Stack) -> None:
    assert stack.http is not None
    headers = {"Authorization": f"Bearer {stack.config.appservice.registration.hs_token}"}
    base = f"{stack.appservice_url}/_matrix/app/v1"
    async with stack.http.get(f"{base}/users/{stack.bot_user_id}", headers=headers) as response:
        assert response.status == 200
    async with stack.http.get(
        f"{base}/users/@guilds_nobody:localhost", headers=headers
    ) as response:
        assert (response.status, (await response.json())["errcode"]) == (404, "M_NOT_FOUND")
    async with stack.http.get(f"{base}/rooms/%23nothing:localhost", headers=headers) as response:
        assert (response.status, (await response.json())["errcode"]) == (404, "M_NOT_FOUND")
    async with stack.http.get(f"{base}/no/such/route", headers=headers) as response:
        assert (response.status, (await response.json())["errcode"]) == (404, "M_UNRECOGNIZED")
