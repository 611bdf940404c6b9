"""Faults of the processes around the bridge: Synapse restarted or stuck, the database away.

Each test breaks the shared stack on purpose and mends it in a `finally`, so the tests after it
find it whole. While something is down the API must answer 503 `M_UNAVAILABLE` with
`retry_after_ms` (never hang, never 500), write nothing by halves, and recover by itself; the
bridge's inbox must hold every Matrix event exactly once, whatever the homeserver re-sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from typing import Any
from urllib.parse import urlsplit

import nio
import psycopg2

from bridge.engine.store import Database, StoreUnavailable
from tests.harness.api import Api, create_server, eventually, join_as, join_server
from tests.harness.stack import PG_HOST, PG_PORT, PG_USER, Stack, User

# Slack for a slow machine over the bridge's own bounds on a refusal (`refusal_bound`).
REFUSAL_SLACK_S = 20


def refusal_bound(stack: Stack) -> float:
    """How long a call that needs the homeserver or the database may take to be refused, at
    most: the stack's bounds (guilds.yaml's token check timeout and SQLite busy timeout, short
    in test stacks) plus slack."""
    config = stack.config
    return (
        config.homeserver.token_check_timeout_s + config.database_busy_timeout_s + REFUSAL_SLACK_S
    )


async def send(client: nio.AsyncClient, room_id: str, body: str) -> str:
    """An event the bridge stores (it keeps state events only): a room nickname of the sender."""
    answer = await client.room_put_state(
        room_id, "m.room.member", {"membership": "join", "displayname": body}, client.user_id
    )
    assert isinstance(answer, nio.RoomPutStateResponse), answer
    return str(answer.event_id)


async def inbox_rows(db: Database, event_id: str) -> list[dict[str, Any]]:
    return await db.fetchall(
        "SELECT txn_id, handled_at, failed_at FROM inbox WHERE event_id = ?", event_id
    )


async def recorded_once(db: Database, event_ids: list[str]) -> None:
    """Every event reaches the inbox, is handled, and is there exactly once."""

    async def all_handled() -> bool:
        for event_id in event_ids:
            rows = await inbox_rows(db, event_id)
            if not rows or rows[0]["handled_at"] is None:
                return False
        return True

    if not await eventually(all_handled, deadline_s=90):
        missing = [e for e in event_ids if not await inbox_rows(db, e)]
        raise AssertionError(f"events never handled by the bridge (missing: {missing})")
    for event_id in event_ids:
        rows = await inbox_rows(db, event_id)
        assert len(rows) == 1 and rows[0]["failed_at"] is None, (event_id, rows)


async def refused_as_unavailable(
    stack: Stack, user: User, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    status, answer = await asyncio.wait_for(
        Api(stack, user).call(method, path, body), timeout=refusal_bound(stack)
    )
    assert status == 503, (method, path, status, answer)
    assert answer["errcode"] == "M_UNAVAILABLE", answer
    assert isinstance(answer["retry_after_ms"], int) and answer["retry_after_ms"] > 0, answer
    return dict(answer)


async def operations_running(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) AS n FROM operations WHERE status = 'running'")
    assert row is not None
    return int(row["n"])


async def test_synapse_restarted_under_the_bridge(stack: Stack, db: Database, alice: User) -> None:
    server = await create_server(stack, alice, "Restartable")
    sid, general = server["server_id"], server["default_channel_id"]
    bob = await stack.register_user()
    await join_server(stack, sid, bob)
    await join_as(stack, bob, general)
    # A token the bridge has never resolved: during the outage it cannot be checked at all.
    newcomer = await stack.register_user()
    async with stack.nio_client(bob) as client:
        before = await send(client, general, "before anything")
        await recorded_once(db, [before])
        # The bridge away: Synapse keeps the transaction and has to send it again later.
        stack.stop_guilds()
        try:
            unacknowledged = await send(client, general, "while the bridge is away")
        finally:
            stack.start_guilds()
        # Then Synapse itself goes down, once it has handed over what it had: an event it has
        # only queued in memory when it stops is lost by Synapse itself (element-hq/synapse#11637,
        # see docs/SECURITY.md), which no appservice can receive.
        last_before = await send(client, general, "just before the restart")
        await recorded_once(db, [before, unacknowledged, last_before])
        await asyncio.to_thread(stack.homeserver.stop)
        try:
            await refused_as_unavailable(stack, newcomer, "GET", "/servers")
            await refused_as_unavailable(stack, newcomer, "POST", "/invites/abcdefgh12/redeem")
            await refused_as_unavailable(stack, alice, "POST", "/servers", {"name": "Outage"})
            await refused_as_unavailable(
                stack,
                alice,
                "POST",
                f"/servers/{sid}/channels",
                {"name": "during-outage", "kind": "text"},
            )
            await refused_as_unavailable(stack, alice, "PATCH", f"/servers/{sid}", {"topic": "x"})
            await refused_as_unavailable(
                stack, alice, "PUT", f"/servers/{sid}/members/{bob.user_id}/roles/moderator"
            )
        finally:
            await asyncio.to_thread(stack.homeserver.start)
        after = await send(client, general, "after the restart")

    await recorded_once(db, [before, unacknowledged, last_before, after])
    # The bridge resumed without help: a token it never saw is resolved, changes go through.
    status, listed = await Api(stack, newcomer).call("GET", "/servers")
    assert status == 200 and listed["servers"] == []
    status, channel = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/channels", {"name": "after-outage", "kind": "text"}
    )
    assert status == 201, channel
    assert await eventually(lambda: _no_operation_running(db), deadline_s=60)
    # Nothing refused during the outage was carried out afterwards.
    status, now = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert status == 200
    assert sorted(c["name"] for c in now["channels"]) == ["after-outage", "general"]
    assert now["topic"] == server["topic"]
    assert "moderator" not in next(
        m["roles"]
        for m in (await Api(stack, alice).call("GET", f"/servers/{sid}/members"))[1]["members"]
        if m["user_id"] == bob.user_id
    )
    status, mine = await Api(stack, alice).call("GET", "/servers")
    assert "Outage" not in [s["name"] for s in mine["servers"]]


async def _no_operation_running(db: Database) -> bool:
    return await operations_running(db) == 0


async def test_a_stuck_homeserver_is_a_503_not_a_hang(stack: Stack) -> None:
    newcomer = await stack.register_user()
    proc = stack.homeserver.proc
    assert proc is not None and proc.poll() is None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        answer = await refused_as_unavailable(stack, newcomer, "GET", "/servers")
        assert "homeserver" in answer["error"]
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    status, _ = await Api(stack, newcomer).call("GET", "/servers")
    assert status == 200


# -- the database away ------------------------------------------------------------------------


@contextmanager
def sqlite_locked(path: str) -> Iterator[None]:
    """Another process's write lock on the bridge's SQLite file (WAL: writers wait, then fail)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


@contextmanager
def postgres_cut_off(database: str) -> Iterator[None]:
    """The bridge's connections terminated, and new ones refused, until the block ends."""
    with closing(
        psycopg2.connect(dbname="postgres", host=PG_HOST, port=PG_PORT, user=PG_USER)
    ) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
            try:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                )
                assert cur.rowcount >= 1, "the bridge held no connection to terminate"
                yield
            finally:
                cur.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")


@asynccontextmanager
async def database_unavailable(stack: Stack, db: Database) -> AsyncIterator[None]:
    url = stack.config.database_url
    if stack.backend == "sqlite":
        with sqlite_locked(url[len("sqlite:///") :]):
            yield
    else:
        # Our own connection goes too; it reconnects afterwards like the bridge's.
        with postgres_cut_off(urlsplit(url).path.lstrip("/")):
            yield


async def table_counts(db: Database) -> dict[str, int]:
    counts = {}
    # Our own connection may have been cut with the bridge's: the first statement reconnects.
    with contextlib.suppress(StoreUnavailable):
        await db.fetchone("SELECT 1 AS one")
    for table in ("invites", "operations", "operation_steps", "servers"):
        row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 - fixed names
        assert row is not None
        counts[table] = int(row["n"])
    return counts


async def test_database_unavailable_is_a_503_and_recovers(
    stack: Stack, db: Database, alice: User
) -> None:
    server = await create_server(stack, alice, "Database-bound")
    sid, general = server["server_id"], server["default_channel_id"]
    status, invite = await Api(stack, alice).call("POST", f"/servers/{sid}/invites", {})
    assert status == 201, invite
    redeemer = await stack.register_user()
    await Api(stack, redeemer).call("GET", "/servers")  # its token is now resolved and cached
    await join_as(stack, alice, general)
    assert await eventually(lambda: _no_operation_running(db), deadline_s=60)
    before = await table_counts(db)
    async with stack.nio_client(alice) as client:
        async with database_unavailable(stack, db):
            for user, method, path, body in [
                (alice, "POST", f"/servers/{sid}/invites", {}),
                (alice, "DELETE", f"/servers/{sid}/invites/{invite['code']}", None),
                (redeemer, "POST", f"/invites/{invite['code']}/redeem", None),
                (alice, "POST", f"/servers/{sid}/channels", {"name": "half", "kind": "text"}),
                (alice, "DELETE", f"/servers/{sid}", None),
            ]:
                answer = await refused_as_unavailable(stack, user, method, path, body)
                assert "database" in answer["error"], answer
            # Synapse's transaction is refused (503) too, and sent again until it is stored.
            during = await send(client, general, "while the database is away")
        after = await send(client, general, "once it is back")

    # Recovery needs no one: the same calls now succeed, and nothing was half-written before.
    assert await table_counts(db) == before
    await recorded_once(db, [during, after])
    status, listed = await Api(stack, alice).call("GET", f"/servers/{sid}/invites")
    assert status == 200
    assert [(i["code"], i["uses"], i["revoked"]) for i in listed["invites"]] == [
        (invite["code"], 0, False)
    ]
    status, server_now = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert status == 200 and [c["name"] for c in server_now["channels"]] == ["general"]
    status, redeemed = await Api(stack, redeemer).call("POST", f"/invites/{invite['code']}/redeem")
    assert (status, redeemed) == (200, {"server_id": sid})
    status, _ = await Api(stack, alice).call("DELETE", f"/servers/{sid}/invites/{invite['code']}")
    assert status == 204
