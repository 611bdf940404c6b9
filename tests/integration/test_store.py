"""The bridge's storage layer and durable inbox, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.engine.inbox import RETENTION_MS, InboxEvent, TransactionInbox
from bridge.engine.migrations import LATEST_VERSION, MIGRATIONS, migrate
from bridge.engine.store import (
    Database,
    IntegrityError,
    Migration,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    Transaction,
    upgrade,
)

POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def _postgres_admin():  # type: ignore[no-untyped-def]
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(POSTGRES_ADMIN_DSN, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    conn.autocommit = True
    return conn


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh, empty database, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'guilds.db'}"
        return
    name = f"guilds_test_{secrets.token_hex(6)}"
    admin = _postgres_admin()
    try:
        with admin.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                " TEMPLATE template0"
            )
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            # FORCE: a test that failed half-way may have left a connection open.
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(db_url)
    try:
        await migrate(database)
        yield database
    finally:
        await database.close()


def _event(n: int, room: str = "!room:localhost", **extra: object) -> dict[str, object]:
    return {
        "event_id": f"$event{n}",
        "room_id": room,
        "type": "m.room.message",
        "sender": "@alice:localhost",
        "content": {"body": f"message {n}", "msgtype": "m.text"},
        "origin_server_ts": 1_700_000_000_000 + n,
        **extra,
    }


async def _ignore(event: InboxEvent) -> None:
    pass


def _inbox(db: Database) -> TransactionInbox:
    """An inbox that keeps every event (a handler wants them all)."""
    inbox = TransactionInbox(db)
    inbox.add_handler(_ignore)
    return inbox


async def _count(db: Database, table: str) -> int:
    row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 - test constant
    assert row is not None
    return int(row["n"])


# -- migrations ---------------------------------------------------------------------------------


async def test_migrations_apply_once_and_record_the_version(db_url: str) -> None:
    db = await Database.open(db_url)
    try:
        assert await migrate(db) == LATEST_VERSION
        rows = await db.fetchall("SELECT version, description FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, LATEST_VERSION + 1))
        assert rows[0]["description"] == MIGRATIONS[0].description
        # The tables of migration 1 exist and are empty.
        assert await _count(db, "appservice_txn") == 0
        assert await _count(db, "inbox") == 0
    finally:
        await db.close()


async def test_reopening_a_migrated_database_changes_nothing(db_url: str) -> None:
    db = await Database.open(db_url)
    try:
        await migrate(db)
        before = await db.fetchall("SELECT * FROM schema_version ORDER BY version")
        await db.execute(
            "INSERT INTO appservice_txn (txn_id, events_digest, event_count, received_at)"
            " VALUES (?, ?, ?, ?)",
            "kept",
            "d",
            0,
            1,
        )
    finally:
        await db.close()
    db = await Database.open(db_url)
    try:
        assert await migrate(db) == LATEST_VERSION
        assert await db.fetchall("SELECT * FROM schema_version ORDER BY version") == before
        row = await db.fetchone("SELECT txn_id FROM appservice_txn")
        assert row == {"txn_id": "kept"}
    finally:
        await db.close()


async def test_a_schema_newer_than_the_code_is_refused(db_url: str) -> None:
    db = await Database.open(db_url)
    try:
        await migrate(db)
        await db.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            LATEST_VERSION + 1,
            "from the future",
            1,
        )
    finally:
        await db.close()
    db = await Database.open(db_url)
    try:
        with pytest.raises(SchemaTooNew, match="newer Guilds"):
            await migrate(db)
        # Refusing touched nothing.
        assert await _count(db, "schema_version") == LATEST_VERSION + 1
    finally:
        await db.close()


async def test_a_failing_migration_leaves_the_previous_version(db_url: str) -> None:
    async def create(tx: Transaction) -> None:
        await tx.execute("CREATE TABLE one (x INTEGER)")

    async def broken(tx: Transaction) -> None:
        await tx.execute("CREATE TABLE two (x INTEGER)")
        raise RuntimeError("migration bug")

    db = await Database.open(db_url)
    try:
        with pytest.raises(RuntimeError, match="migration bug"):
            await upgrade(db, [Migration(1, "one", create), Migration(2, "two", broken)])
        rows = await db.fetchall("SELECT version FROM schema_version")
        assert rows == [{"version": 1}]
        # Migration 2 ran in its own transaction, rolled back with its table.
        with pytest.raises(StoreError):
            await db.fetchall("SELECT * FROM two")
        assert await db.fetchall("SELECT * FROM one") == []
    finally:
        await db.close()


# -- statements and transactions ----------------------------------------------------------------


async def test_placeholders_and_percent_signs_are_translated(db: Database) -> None:
    row = await db.fetchone("SELECT '100% sure?' AS text, ? AS arg", "50% and ?")
    assert row == {"text": "100% sure?", "arg": "50% and ?"}


async def test_a_transaction_commits_together(db: Database, db_url: str) -> None:
    async with db.transaction() as tx:
        for n in range(3):
            await tx.execute(
                "INSERT INTO appservice_txn (txn_id, events_digest, event_count, received_at)"
                " VALUES (?, ?, ?, ?)",
                f"t{n}",
                "d",
                n,
                n,
            )
    # Visible from another connection: committed, not just cached.
    other = await Database.open(db_url)
    try:
        rows = await other.fetchall("SELECT txn_id FROM appservice_txn ORDER BY txn_id")
        assert [r["txn_id"] for r in rows] == ["t0", "t1", "t2"]
    finally:
        await other.close()


async def test_a_transaction_rolls_back_on_error(db: Database) -> None:
    insert = (
        "INSERT INTO appservice_txn (txn_id, events_digest, event_count, received_at)"
        " VALUES (?, ?, ?, ?)"
    )
    with pytest.raises(ValueError, match="boom"):
        async with db.transaction() as tx:
            await tx.execute(insert, "a", "d", 0, 0)
            raise ValueError("boom")
    with pytest.raises(IntegrityError):
        async with db.transaction() as tx:
            await tx.execute(insert, "b", "d", 0, 0)
            await tx.execute(insert, "b", "d", 0, 0)
    assert await _count(db, "appservice_txn") == 0
    # The connection is usable afterwards.
    await db.execute(insert, "c", "d", 0, 0)
    assert await _count(db, "appservice_txn") == 1


async def test_using_the_database_inside_its_own_transaction_is_refused(db: Database) -> None:
    async with db.transaction() as tx:
        with pytest.raises(RuntimeError, match="transaction's methods"):
            await db.fetchone("SELECT 1 AS one")
        assert await tx.fetchone("SELECT 1 AS one") == {"one": 1}


async def test_an_unreachable_postgres_is_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        await Database.open("postgresql://postgres@127.0.0.1:1/nothing")


async def test_a_locked_sqlite_database_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge.engine.store.SQLITE_BUSY_TIMEOUT_MS", 50)
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    holder = await Database.open(url)
    waiter = await Database.open(url)
    try:
        await migrate(holder)
        async with holder.transaction():
            # The holder's BEGIN IMMEDIATE owns the write lock until this block ends.
            with pytest.raises(StoreUnavailable):
                async with waiter.transaction() as tx:
                    await tx.execute("DELETE FROM inbox")
    finally:
        await waiter.close()
        await holder.close()


# -- the inbox ----------------------------------------------------------------------------------


async def test_a_transaction_is_recorded_once(db: Database) -> None:
    inbox = _inbox(db)
    events = [_event(1), _event(2)]
    assert await inbox.record("txn1", events) == 2
    assert await inbox.record("txn1", events) == 0
    assert await _count(db, "appservice_txn") == 1
    assert await _count(db, "inbox") == 2


async def test_a_transaction_delivered_twice_concurrently_is_recorded_once(
    db: Database, db_url: str
) -> None:
    # A second connection races the first at the database, not only inside one process.
    other = await Database.open(db_url)
    try:
        events = [_event(n) for n in range(20)]
        inboxes = [_inbox(db), _inbox(other)] * 2
        results = await asyncio.gather(*(i.record("txn-race", events) for i in inboxes))
        assert sorted(results) == [0, 0, 0, 20]
        assert await _count(db, "appservice_txn") == 1
        assert await _count(db, "inbox") == 20
    finally:
        await other.close()


async def test_an_event_redelivered_in_another_transaction_is_kept_once(db: Database) -> None:
    inbox = _inbox(db)
    assert await inbox.record("txn1", [_event(1), _event(2)]) == 2
    assert await inbox.record("txn2", [_event(2), _event(3)]) == 1
    rows = await db.fetchall("SELECT event_id, txn_id FROM inbox ORDER BY seq")
    assert [(r["event_id"], r["txn_id"]) for r in rows] == [
        ("$event1", "txn1"),
        ("$event2", "txn1"),
        ("$event3", "txn2"),
    ]


async def test_a_reused_txn_id_with_new_events_keeps_them(db: Database) -> None:
    # What a homeserver whose database was reset does: numbering starts again.
    inbox = _inbox(db)
    assert await inbox.record("1", [_event(1)]) == 1
    assert await inbox.record("1", [_event(9)]) == 1
    assert await _count(db, "inbox") == 2


async def test_only_events_a_handler_wants_are_stored(db: Database) -> None:
    # The bridge's handlers read state events: messages are not copied into its database.
    inbox = TransactionInbox(db)
    handled: list[str] = []

    async def on_state(event: InboxEvent) -> None:
        handled.append(event.event_id)

    inbox.add_handler(on_state, state_only=True)
    inbox.add_handler(on_state, "m.call.invite")
    state = _event(2, type="m.room.topic", state_key="", content={"topic": "t"})
    invite = _event(3, type="m.call.invite")
    assert await inbox.record("txn1", [_event(1), state, invite]) == 2
    # A retry of the transaction stores nothing again.
    assert await inbox.record("txn1", [_event(1), state, invite]) == 0
    # A transaction of messages alone is not even recorded: there is nothing to store twice.
    assert await inbox.record("txn2", [_event(4)]) == 0
    assert await _count(db, "appservice_txn") == 1
    rows = await db.fetchall("SELECT event_id FROM inbox ORDER BY seq")
    assert [r["event_id"] for r in rows] == ["$event2", "$event3"]
    await inbox.process_pending()
    assert handled == ["$event2", "$event3"]


async def test_handled_events_and_old_transactions_are_pruned(db: Database) -> None:
    inbox = TransactionInbox(db, max_attempts=1)

    async def fail_on_5(event: InboxEvent) -> None:
        if event.event_id == "$event5":
            raise RuntimeError("handler bug")

    inbox.add_handler(fail_on_5)
    await inbox.record("old", [_event(1), _event(2), _event(5, room="!other:x")])
    await inbox.process_pending()  # 1 and 2 handled, 5 given up on
    await inbox.record("new", [_event(3)])  # not handled yet
    # A day passes for the old transaction and what was handled of it.
    await db.execute(
        "UPDATE inbox SET handled_at = handled_at - ? WHERE handled_at IS NOT NULL", RETENTION_MS
    )
    await db.execute(
        "UPDATE appservice_txn SET received_at = received_at - ? WHERE txn_id = ?",
        RETENTION_MS,
        "old",
    )
    assert await inbox.prune(int(time.time() * 1000) - RETENTION_MS) == 2
    # The event not yet handled stays, and so does the one given up on (for the admin).
    rows = await db.fetchall("SELECT event_id FROM inbox ORDER BY seq")
    assert [r["event_id"] for r in rows] == ["$event5", "$event3"]
    assert [r["txn_id"] for r in await db.fetchall("SELECT txn_id FROM appservice_txn")] == ["new"]


async def test_awkward_text_is_stored_and_returned_intact(db: Database) -> None:
    inbox = TransactionInbox(db)
    seen: list[InboxEvent] = []

    async def handler(e: InboxEvent) -> None:
        seen.append(e)

    inbox.add_handler(handler)
    event = _event(1, state_key="a/b\x00\ud800", content={"body": "nul\x00 é 🎉 \ud800"})
    assert await inbox.record("txn1", [event, {"not": "an event"}, "junk"]) == 1
    await inbox.process_pending()
    assert [e.event_id for e in seen] == ["$event1"]
    assert seen[0].content == {"body": "nul\x00 é 🎉 \ud800"}
    assert seen[0].state_key is not None and seen[0].state_key.startswith("a/b")


async def test_unhandled_events_are_resumed_after_reopening(db_url: str) -> None:
    db = await Database.open(db_url)
    try:
        await migrate(db)
        # Stored and acknowledged, then the process dies before any handler ran.
        await _inbox(db).record("txn1", [_event(n) for n in range(5)])
    finally:
        await db.close()

    handled: list[str] = []

    async def handler(event: InboxEvent) -> None:
        handled.append(event.event_id)

    db = await Database.open(db_url)
    try:
        await migrate(db)
        inbox = TransactionInbox(db)
        inbox.add_handler(handler)
        inbox.start()
        try:
            await inbox.wait_idle(within_s=10)
        finally:
            await inbox.stop()
        assert handled == [f"$event{n}" for n in range(5)]
        row = await db.fetchone("SELECT COUNT(*) AS n FROM inbox WHERE handled_at IS NOT NULL")
        assert row == {"n": 5}
    finally:
        await db.close()

    # Handled events are not handed out again after the next restart.
    db = await Database.open(db_url)
    try:
        inbox = TransactionInbox(db)
        inbox.add_handler(handler)
        await inbox.process_pending()
        assert len(handled) == 5
    finally:
        await db.close()


async def test_a_failing_event_is_retried_then_given_up_without_blocking_others(
    db: Database,
) -> None:
    inbox = TransactionInbox(db, max_attempts=3, base_backoff_s=0.01, max_backoff_s=0.02)
    attempts: dict[str, int] = {}
    handled: list[str] = []

    async def handler(event: InboxEvent) -> None:
        attempts[event.event_id] = attempts.get(event.event_id, 0) + 1
        if event.event_id == "$event1":
            raise RuntimeError("handler bug")
        handled.append(event.event_id)

    inbox.add_handler(handler)
    await inbox.record(
        "txn1",
        [_event(1, room="!a:x"), _event(2, room="!a:x"), _event(3, room="!b:x")],
    )
    inbox.start()
    try:
        await inbox.wait_idle(within_s=10)
    finally:
        await inbox.stop()
    assert attempts["$event1"] == 3
    # The other room went on at once; the same room waited for the failing event, in order.
    assert handled == ["$event3", "$event2"]
    row = await db.fetchone(
        "SELECT attempts, last_error, failed_at, handled_at FROM inbox WHERE event_id = ?",
        "$event1",
    )
    assert row is not None
    assert row["attempts"] == 3
    assert row["last_error"] == "RuntimeError"
    assert row["failed_at"] is not None and row["handled_at"] is None


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_lost_postgres_connection_is_unavailable_then_reconnected(db: Database) -> None:
    row = await db.fetchone("SELECT pg_backend_pid() AS pid")
    assert row is not None
    # What a PostgreSQL restart or failover does to the bridge's connection.
    admin = _postgres_admin()
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
    finally:
        admin.close()
    with pytest.raises(StoreUnavailable):
        await db.fetchone("SELECT 1 AS one")
    # The next call connects again.
    assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
    async with db.transaction() as tx:
        assert await tx.fetchone("SELECT 2 AS two") == {"two": 2}
