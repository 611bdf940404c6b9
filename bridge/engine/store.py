"""The bridge's database facade: one URL, SQLite or PostgreSQL, SQL written once, async calls.

Both drivers (sqlite3, psycopg2) block, so each `Database` owns one connection used only from one
dedicated thread; coroutines hand it work and await the answer, and the event loop never waits
on disk or network. SQL is written with `?` placeholders and translated for psycopg2.

One connection means one transaction at a time: `transaction()` holds a lock that plain
`execute()` calls wait for. That serialises writers, which the bridge wants anyway (SQLite
allows one writer), and keeps the facade small.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from guilds.config import DEFAULT_DATABASE_BUSY_TIMEOUT_S

log = logging.getLogger(__name__)

Row = dict[str, Any]
Dialect = Literal["sqlite", "postgres"]
T = TypeVar("T")

# How long SQLite waits for another process's write lock before reporting "database is locked"
# (guilds.yaml's `database_busy_timeout_s`, by default).
SQLITE_BUSY_TIMEOUT_MS = DEFAULT_DATABASE_BUSY_TIMEOUT_S * 1000
POSTGRES_CONNECT_TIMEOUT_S = 10
# Any constant works; it only has to be the same in every process migrating this database.
_MIGRATION_LOCK_KEY = 0x6775696C6473  # "guilds"


class StoreError(Exception):
    """A database operation failed."""


class StoreUnavailable(StoreError):
    """The database cannot serve now (locked, connection lost, server down): retry later."""


class IntegrityError(StoreError):
    """A constraint (unique, not null, foreign key) refused the statement."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer Guilds than this one."""


# Set while the current task is inside `transaction()`, to refuse the self-deadlock of calling
# `db.execute` (which waits for the transaction lock) instead of `tx.execute`.
_in_transaction: contextvars.ContextVar[Database | None] = contextvars.ContextVar(
    "guilds_store_transaction", default=None
)


@functools.lru_cache(maxsize=512)
def _to_pyformat(sql: str) -> str:
    """Translate `?` placeholders to psycopg2's `%s`, escaping literal `%`, outside quotes."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        if ch == "%":
            # psycopg2 formats the whole statement, quoted parts included.
            out.append("%%")
            continue
        out.append(ch)
    return "".join(out)


_SQLITE_UNAVAILABLE_MARKERS = (
    "locked",
    "busy",
    "unable to open",
    "disk i/o",
    "database or disk is full",
    "readonly",
)


class Database:
    """An open database. Create with `await Database.open(url)`; close with `await close()`."""

    def __init__(self, url: str, dialect: Dialect, connect: Callable[[], Any]) -> None:
        self.url = url
        self.dialect: Dialect = dialect
        self._connect = connect
        self._conn: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guilds-db")
        self._lock = asyncio.Lock()
        self._closed = False
        self._driver_errors = _driver_errors(dialect)

    @classmethod
    async def open(cls, url: str, *, busy_timeout_ms: int | None = None) -> Database:
        """Connect to `sqlite:///PATH` or `postgresql://…`; raise StoreError when impossible.

        `busy_timeout_ms` (SQLite only): how long a statement waits for another process's lock
        before StoreUnavailable; None is SQLITE_BUSY_TIMEOUT_MS (guilds.yaml's
        `database_busy_timeout_s`).
        """
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            if not path:
                raise StoreError("sqlite URL names no file")
            connect = functools.partial(_connect_sqlite, path, busy_timeout_ms)
            db = cls(url, "sqlite", connect)
        elif url.startswith(("postgresql://", "postgres://")):
            db = cls(url, "postgres", functools.partial(_connect_postgres, url))
        else:
            raise StoreError("database URL must start with sqlite:/// or postgresql://")
        try:
            await db._run(db._connection)
        except BaseException:
            await db.close()
            raise
        return db

    # -- statements outside a transaction (each one commits by itself) -------------------------

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the number of rows it changed."""
        async with self._exclusive():
            return await self._run(self._statement, None, sql, args, "count")

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        async with self._exclusive():
            return await self._run(self._statement, None, sql, args, "one")

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        async with self._exclusive():
            return await self._run(self._statement, None, sql, args, "all")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Commit the statements run on the yielded `Transaction` together, or none of them."""
        async with self._exclusive():
            conn = await self._run(self._begin)
            tx = Transaction(self, conn)
            token = _in_transaction.set(self)
            try:
                try:
                    yield tx
                except BaseException:
                    # Shielded: a cancelled caller must still leave the connection out of the
                    # transaction, or the next BEGIN on it fails.
                    await asyncio.shield(self._run(self._rollback, conn))
                    raise
                try:
                    await asyncio.shield(self._run(self._commit, conn))
                except Exception:
                    # A failed COMMIT (SQLite busy, say) leaves SQLite's transaction open.
                    await asyncio.shield(self._run(self._rollback, conn))
                    raise
            finally:
                _in_transaction.reset(token)
                tx._done = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
            finally:
                self._executor.shutdown(wait=True)

    # -- plumbing ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        if self._closed:
            raise StoreError("database is closed")
        if _in_transaction.get() is self:
            raise RuntimeError("use the transaction's methods inside `async with db.transaction()`")
        async with self._lock:
            yield

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._guard, fn, *args))

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the database thread, turning driver errors into StoreErrors."""
        unavailable, integrity, base = self._driver_errors
        try:
            return fn(*args)
        except integrity as exc:
            raise IntegrityError(str(exc)) from exc
        except unavailable as exc:
            if self.dialect == "sqlite" and not _sqlite_unavailable(exc):
                raise StoreError(str(exc)) from exc
            self._drop_broken_connection()
            raise StoreUnavailable(f"database unavailable: {exc}".strip()) from exc
        except base as exc:
            raise StoreError(str(exc)) from exc

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _drop_broken_connection(self) -> None:
        # A PostgreSQL connection that lost its server is useless; the next call reconnects.
        if self.dialect == "postgres" and self._conn is not None and self._conn.closed:
            self._conn = None

    def _disconnect(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _statement(self, conn: Any, sql: str, args: Sequence[Any], want: str) -> Any:
        if conn is None:
            conn = self._connection()
        if self.dialect == "postgres":
            sql = _to_pyformat(sql)
        cur = conn.cursor()
        try:
            cur.execute(sql, tuple(args))
            if want == "count":
                return cur.rowcount
            if cur.description is None:
                return None if want == "one" else []
            names = [d[0] for d in cur.description]
            if want == "one":
                row = cur.fetchone()
                return None if row is None else dict(zip(names, row, strict=True))
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            cur.close()

    def _begin(self) -> Any:
        conn = self._connection()
        # IMMEDIATE takes SQLite's write lock now, instead of failing later when a read
        # transaction tries to become a write one while another process writes.
        begin = "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"
        self._statement(conn, begin, (), "count")
        return conn

    def _commit(self, conn: Any) -> None:
        self._statement(conn, "COMMIT", (), "count")

    def _rollback(self, conn: Any) -> None:
        try:
            self._statement(conn, "ROLLBACK", (), "count")
        except Exception as exc:  # the caller's original error is the one to report
            log.warning("rollback failed: %s", type(exc).__name__)


class Transaction:
    """Statements run inside one database transaction (see `Database.transaction`)."""

    def __init__(self, db: Database, conn: Any) -> None:
        self.db = db
        self.dialect: Dialect = db.dialect
        self._conn = conn
        self._done = False

    def _call(self, sql: str, args: Sequence[Any], want: str) -> Awaitable[Any]:
        if self._done:
            raise StoreError("transaction already finished")
        # Statements use the connection that began the transaction: if it broke, they fail
        # instead of silently running on a fresh connection outside the transaction.
        return self.db._run(self.db._statement, self._conn, sql, args, want)

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._call(sql, args, "count")

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._call(sql, args, "one")

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return await self._call(sql, args, "all")


def _create_private(path: str) -> None:
    """Create the database file 0600 if missing: it holds users' data (invites, the journal).

    SQLite gives its -wal and -shm files the database file's mode, so they follow.
    """
    if path == ":memory:" or path.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _connect_sqlite(path: str, busy_timeout_ms: int | None = None) -> sqlite3.Connection:
    _create_private(path)
    busy_ms = SQLITE_BUSY_TIMEOUT_MS if busy_timeout_ms is None else int(busy_timeout_ms)
    # isolation_level=None: the driver opens no transactions behind our back; we BEGIN ourselves.
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_ms / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        # WAL lets readers (guilds CLI, a second process) read while the bridge writes.
        # synchronous stays FULL: transactions are acknowledged to Synapse only once durable.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_postgres(url: str) -> Any:
    try:
        import psycopg2
    except ImportError as exc:  # an optional dependency: the `postgres` extra
        raise StoreError("PostgreSQL needs psycopg2: install matrix-guilds[postgres]") from exc
    conn = psycopg2.connect(url, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S)
    # Autocommit so that a lone statement commits itself and transactions are our explicit BEGIN.
    conn.autocommit = True
    return conn


class _NeverRaised(Exception):
    """Stands for the exceptions of a driver that is not installed."""


_DriverErrors = tuple[tuple[type[Exception], ...], type[Exception], type[Exception]]


def _driver_errors(dialect: Dialect) -> _DriverErrors:
    """(unavailable, integrity, any) exception classes of the dialect's driver."""
    if dialect == "sqlite":
        return (sqlite3.OperationalError,), sqlite3.IntegrityError, sqlite3.Error
    try:
        import psycopg2
    except ImportError:
        return (), _NeverRaised, _NeverRaised
    # OperationalError covers connection loss, server shutdown, lock timeouts, deadlocks and
    # serialization failures: all worth retrying. InterfaceError is "connection already closed".
    return (
        (psycopg2.OperationalError, psycopg2.InterfaceError),
        psycopg2.IntegrityError,
        psycopg2.Error,
    )


def _sqlite_unavailable(exc: BaseException) -> bool:
    message = str(exc).lower()
    return any(marker in message for marker in _SQLITE_UNAVAILABLE_MARKERS)


# -- migrations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """Schema change number `version`; `apply` runs inside the transaction that records it."""

    version: int
    description: str
    apply: Callable[[Transaction], Awaitable[None]]


async def _lock_schema(tx: Transaction) -> None:
    # Two processes starting on one PostgreSQL database must not both migrate it. SQLite needs
    # nothing: BEGIN IMMEDIATE already admits one writer.
    if tx.dialect == "postgres":
        await tx.execute("SELECT pg_advisory_xact_lock(?)", _MIGRATION_LOCK_KEY)


async def _current_version(tx: Transaction) -> int:
    row = await tx.fetchone("SELECT MAX(version) AS version FROM schema_version")
    return int(row["version"]) if row and row["version"] is not None else 0


async def schema_version(db: Database) -> int:
    """The version the database is at (0 when never migrated)."""
    async with db.transaction() as tx:
        await _lock_schema(tx)
        await _create_version_table(tx)
        return await _current_version(tx)


async def _create_version_table(tx: Transaction) -> None:
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY,"
        " description TEXT NOT NULL,"
        " applied_at BIGINT NOT NULL)"
    )


async def upgrade(db: Database, migrations: Sequence[Migration]) -> int:
    """Apply the migrations the database lacks, each in its own transaction; return the version.

    Raise SchemaTooNew, touching nothing, when the database is ahead of `migrations`.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3, … in order")
    latest = len(migrations)
    current = await schema_version(db)
    if current > latest:
        raise SchemaTooNew(
            f"the database is at schema version {current} but this Guilds knows only up to "
            f"{latest}: it was used by a newer Guilds; upgrade Guilds or restore a backup"
        )
    for migration in migrations[current:]:
        async with db.transaction() as tx:
            await _lock_schema(tx)
            # Another process may have applied it while we waited for the lock.
            if await _current_version(tx) >= migration.version:
                continue
            log.info(
                "Migrating the database to version %d: %s", migration.version, migration.description
            )
            await migration.apply(tx)
            await tx.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                migration.version,
                migration.description,
                int(time.time() * 1000),
            )
    return max(current, latest)
