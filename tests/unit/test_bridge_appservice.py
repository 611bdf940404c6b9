"""The appservice endpoints Synapse calls, over HTTP, with a real SQLite store and no homeserver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.appservice import create_appservice_app
from bridge.engine.inbox import InboxEvent, TransactionInbox
from bridge.engine.migrations import migrate
from bridge.engine.store import Database, StoreUnavailable

HS_TOKEN = "hs-" + "a" * 61
BOT = "@guilds:localhost"
TXN = "/_matrix/app/v1/transactions/"


@dataclass
class Recorder:
    """An inbox handler that records calls and can be told to fail the first attempts."""

    calls: list[str] = field(default_factory=list)
    failures_left: int = 0

    async def __call__(self, event: InboxEvent) -> None:
        self.calls.append(event.event_id)
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError("handler failed")


@dataclass
class Service:
    client: TestClient[Any, Any]
    inbox: TransactionInbox
    db: Database
    recorder: Recorder

    async def put(self, txn_id: str, body: Any, token: str | None = HS_TOKEN) -> tuple[int, Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        resp = await self.client.put(TXN + txn_id, json=body, headers=headers)
        return resp.status, await resp.json()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    db = await Database.open(f"sqlite:///{tmp_path / 'bridge.db'}")
    await migrate(db)
    inbox = TransactionInbox(db, max_attempts=3, base_backoff_s=0.01, max_backoff_s=0.05)
    recorder = Recorder()
    inbox.add_handler(recorder)
    inbox.start()
    app = create_appservice_app(hs_token=HS_TOKEN, bot_user_id=BOT, inbox=inbox)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Service(client, inbox, db, recorder)
    finally:
        await client.close()
        await inbox.stop()
        await db.close()


def event(n: int, room: str = "!room:localhost") -> dict[str, Any]:
    return {
        "event_id": f"$e{n}",
        "room_id": room,
        "type": "m.room.message",
        "sender": "@alice:localhost",
        "origin_server_ts": 1_700_000_000_000 + n,
        "content": {"msgtype": "m.text", "body": f"hello {n}"},
    }


async def test_missing_token_is_unauthorized(service: Service) -> None:
    assert await service.put("t1", {"events": [event(1)]}, token=None) == (
        401,
        {"errcode": "M_UNAUTHORIZED", "error": "Missing Authorization: Bearer <hs_token>"},
    )
    resp = await service.client.put(
        TXN + "t1", json={"events": []}, headers={"Authorization": f"Basic {HS_TOKEN}"}
    )
    assert resp.status == 401
    assert (await resp.json())["errcode"] == "M_UNAUTHORIZED"


async def test_wrong_token_is_forbidden_and_stores_nothing(service: Service) -> None:
    status, body = await service.put("t1", {"events": [event(1)]}, token=HS_TOKEN + "x")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    # Synapse's legacy query-string token is not accepted either.
    resp = await service.client.put(
        TXN + "t1", params={"access_token": HS_TOKEN}, json={"events": [event(1)]}
    )
    assert resp.status == 401
    row = await service.db.fetchone("SELECT COUNT(*) AS n FROM inbox")
    assert row == {"n": 0}


async def test_transaction_is_acknowledged_and_handled(service: Service) -> None:
    assert await service.put("t1", {"events": [event(1), event(2)], "ephemeral": []}) == (200, {})
    await service.inbox.wait_idle(within_s=5)
    assert service.recorder.calls == ["$e1", "$e2"]


async def test_replayed_transaction_is_processed_once(service: Service) -> None:
    body = {"events": [event(1), event(2)]}
    assert await service.put("t1", body) == (200, {})
    await service.inbox.wait_idle(within_s=5)
    assert await service.put("t1", body) == (200, {})
    await service.inbox.wait_idle(within_s=5)
    assert service.recorder.calls == ["$e1", "$e2"]


async def test_concurrent_duplicate_delivery_is_processed_once(service: Service) -> None:
    body = {"events": [event(n) for n in range(10)]}
    answers = await asyncio.gather(*(service.put("t-race", body) for _ in range(5)))
    assert answers == [(200, {})] * 5
    await service.inbox.wait_idle(within_s=5)
    assert service.recorder.calls == [f"$e{n}" for n in range(10)]


async def test_event_repeated_in_a_later_transaction_is_processed_once(service: Service) -> None:
    assert await service.put("t1", {"events": [event(1)]}) == (200, {})
    assert await service.put("t2", {"events": [event(1), event(2)]}) == (200, {})
    await service.inbox.wait_idle(within_s=5)
    assert service.recorder.calls == ["$e1", "$e2"]


async def test_handler_failure_does_not_lose_the_event(service: Service) -> None:
    service.recorder.failures_left = 2
    assert await service.put("t1", {"events": [event(1)]}) == (200, {})
    await service.inbox.wait_idle(within_s=5)
    # Failed twice, succeeded on the third attempt.
    assert service.recorder.calls == ["$e1", "$e1", "$e1"]
    row = await service.db.fetchone(
        "SELECT attempts, handled_at, failed_at FROM inbox WHERE event_id = ?", "$e1"
    )
    assert row is not None
    assert row["attempts"] == 3 and row["handled_at"] is not None and row["failed_at"] is None


async def test_non_json_body_is_refused(service: Service) -> None:
    resp = await service.client.put(
        TXN + "t1", data=b"{not json", headers={"Authorization": f"Bearer {HS_TOKEN}"}
    )
    assert resp.status == 400
    assert (await resp.json())["errcode"] == "M_NOT_JSON"
    status, body = await service.put("t2", [event(1)])
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await service.put("t3", {"events": "nope"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    # Refused transactions are not recorded: Synapse's retry must be able to succeed.
    row = await service.db.fetchone("SELECT COUNT(*) AS n FROM appservice_txn")
    assert row == {"n": 0}


async def test_user_query_knows_only_the_bot(service: Service) -> None:
    auth = {"Authorization": f"Bearer {HS_TOKEN}"}
    resp = await service.client.get("/_matrix/app/v1/users/%40guilds%3Alocalhost", headers=auth)
    assert (resp.status, await resp.json()) == (200, {})
    resp = await service.client.get("/_matrix/app/v1/users/%40someone%3Alocalhost", headers=auth)
    assert resp.status == 404
    assert (await resp.json())["errcode"] == "M_NOT_FOUND"
    resp = await service.client.get("/_matrix/app/v1/users/%40guilds%3Alocalhost")
    assert resp.status == 401


async def test_room_alias_query_is_not_found(service: Service) -> None:
    resp = await service.client.get(
        "/_matrix/app/v1/rooms/%23general%3Alocalhost",
        headers={"Authorization": f"Bearer {HS_TOKEN}"},
    )
    assert resp.status == 404
    assert (await resp.json())["errcode"] == "M_NOT_FOUND"


async def test_ping(service: Service) -> None:
    auth = {"Authorization": f"Bearer {HS_TOKEN}"}
    resp = await service.client.post(
        "/_matrix/app/v1/ping", json={"transaction_id": "abc"}, headers=auth
    )
    assert (resp.status, await resp.json()) == (200, {})
    resp = await service.client.post("/_matrix/app/v1/ping", json={})
    assert resp.status == 401


async def test_unknown_route_is_unrecognized(service: Service) -> None:
    auth = {"Authorization": f"Bearer {HS_TOKEN}"}
    resp = await service.client.get("/_matrix/app/v1/thirdparty/protocol/irc", headers=auth)
    assert resp.status == 404
    assert (await resp.json())["errcode"] == "M_UNRECOGNIZED"
    resp = await service.client.delete(TXN + "t1", headers=auth)
    assert resp.status == 405
    assert (await resp.json())["errcode"] == "M_UNRECOGNIZED"


async def test_oversized_body_is_too_large(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        await migrate(db)
        app = create_appservice_app(
            hs_token=HS_TOKEN, bot_user_id=BOT, inbox=TransactionInbox(db), client_max_size=1024
        )
        async with TestClient(TestServer(app)) as client:
            resp = await client.put(
                TXN + "big",
                json={"events": [event(n) for n in range(50)]},
                headers={"Authorization": f"Bearer {HS_TOKEN}"},
            )
            assert resp.status == 413
            assert (await resp.json())["errcode"] == "M_TOO_LARGE"
    finally:
        await db.close()


async def test_database_trouble_is_503_and_not_acknowledged(service: Service) -> None:
    await service.inbox.stop()
    await service.db.close()
    status, body = await service.put("t1", {"events": [event(1)]})
    # A closed database is a bug, not an outage: 500, still never a 200 that drops events.
    assert status == 500
    assert body == {"errcode": "M_UNKNOWN", "error": "Internal server error"}


async def test_database_unavailable_is_503_so_synapse_retries(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(txn_id: str, events: Any) -> int:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(service.inbox, "record", unavailable)
    resp = await service.client.put(
        TXN + "t1", json={"events": [event(1)]}, headers={"Authorization": f"Bearer {HS_TOKEN}"}
    )
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    body = await resp.json()
    assert body["errcode"] == "M_UNAVAILABLE" and body["retry_after_ms"] == 1000
