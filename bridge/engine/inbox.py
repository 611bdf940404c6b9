"""The durable inbox of appservice transactions, and the worker that hands its events to handlers.

Synapse retries a transaction until it gets a 200, so a transaction is acknowledged only once its
events are committed to the database, and recorded by txn id so a retry stores nothing twice.
Handlers run later, from the database, in arrival order: a crash between acknowledging and
handling loses nothing, and a failing handler is retried with backoff, then given up on.

Only the events some handler wants are stored: the bot sits in every Guilds room, so Synapse
sends the bridge every message too, and none of the bridge's handlers reads messages — storing
them would put a copy of every conversation in the bridge's database and a few writes on every
message's path. Handled events are deleted after a day (`RETENTION_MS`); until then a
redelivered event is recognised and stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.engine.store import Database, Row, StoreUnavailable

log = logging.getLogger(__name__)

# How many times a handler may fail on one event before it is marked failed and skipped.
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BASE_BACKOFF_S = 1.0
DEFAULT_MAX_BACKOFF_S = 60.0
# Events fetched per worker pass; small enough that a pass is quick, large enough for a batch
# of 100 events from Synapse.
BATCH_SIZE = 200
# The worker re-checks this often even without a wake-up, e.g. after losing the database.
IDLE_POLL_S = 30.0
# Handled events and recorded transactions are kept this long, then deleted (events a handler
# gave up on are kept for the admin to look at). Synapse resends a transaction only until it is
# acknowledged, so a day covers every retry with a wide margin.
RETENTION_MS = 24 * 3600 * 1000
PRUNE_EVERY_MS = 3600 * 1000

# Events due now, with one `?` for the current time. An event whose room has an earlier event
# waiting for its retry is not due: a room's events are handled in order; other rooms go on.
_DUE = (
    "handled_at IS NULL AND failed_at IS NULL"
    " AND room_id NOT IN (SELECT room_id FROM inbox WHERE handled_at IS NULL"
    " AND failed_at IS NULL AND next_attempt_at > ?)"
)


@dataclass(frozen=True)
class InboxEvent:
    """One stored event, as handlers receive it."""

    seq: int
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    attempts: int
    # The event exactly as the homeserver sent it.
    event: dict[str, Any]

    @property
    def content(self) -> dict[str, Any]:
        content = self.event.get("content")
        return content if isinstance(content, dict) else {}

    @property
    def prev_content(self) -> dict[str, Any] | None:
        """The content this state event replaced (Synapse sends it in `unsigned`), if any."""
        unsigned = self.event.get("unsigned")
        prev = unsigned.get("prev_content") if isinstance(unsigned, dict) else None
        return prev if isinstance(prev, dict) else None


Handler = Callable[[InboxEvent], Awaitable[None]]


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    event_type: str | None
    state_only: bool

    def wants(self, event_type: str, state_key: str | None) -> bool:
        if self.event_type is not None and self.event_type != event_type:
            return False
        return state_key is not None or not self.state_only


def _now_ms() -> int:
    return int(time.time() * 1000)


def _column_text(value: Any) -> str | None:
    """A string column value the databases accept (no NUL, no lone surrogate), or None."""
    if not isinstance(value, str):
        return None
    # PostgreSQL refuses NUL in text; lone surrogates (from "\\ud800" escapes) cannot be UTF-8.
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _events_digest(events: Sequence[Any]) -> str:
    ids = [e.get("event_id") if isinstance(e, dict) else None for e in events]
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()


class TransactionInbox:
    """Records appservice transactions and runs handlers over their events."""

    def __init__(
        self,
        db: Database,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_backoff_s: float = DEFAULT_BASE_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    ) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self._handlers: list[_Registration] = []
        self._pruned_at = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Replaced by a fresh event, and set, at the end of each worker pass (see wait_idle).
        self._pass_done = asyncio.Event()

    def add_handler(
        self, handler: Handler, event_type: str | None = None, *, state_only: bool = False
    ) -> None:
        """Call `handler` for every event (of `event_type`, if given; state events only, if
        `state_only`). Events that no handler wants are not stored.

        Handlers must be idempotent: when one of them fails the event is retried, and the
        handlers that already succeeded on it run again.
        """
        self._handlers.append(_Registration(handler, event_type, state_only))

    def wants(self, event_type: str, state_key: str | None) -> bool:
        return any(r.wants(event_type, state_key) for r in self._handlers)

    # -- receiving ---------------------------------------------------------------------------

    async def record(self, txn_id: str, events: Sequence[Any]) -> int:
        """Store one transaction's wanted events unless the txn id was stored; return how many
        new events were stored.

        Returns once committed: the caller may then acknowledge the transaction. Raises
        StoreUnavailable when the database cannot take it (the homeserver will retry). A
        transaction holding nothing wanted (messages, typically) touches no database at all:
        with nothing stored there is nothing a retry could store twice.
        """
        rows = self._wanted_rows(txn_id, events)
        if not rows:
            return 0
        digest = _events_digest(events)
        received_at = _now_ms()
        async with self.db.transaction() as tx:
            # ON CONFLICT rather than a SELECT first: two deliveries of one txn id racing on
            # PostgreSQL serialise on the key, and the second finds it done.
            inserted = await tx.execute(
                "INSERT INTO appservice_txn (txn_id, events_digest, event_count, received_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (txn_id) DO NOTHING",
                txn_id,
                digest,
                len(events),
                received_at,
            )
            if not inserted:
                row = await tx.fetchone(
                    "SELECT events_digest FROM appservice_txn WHERE txn_id = ?", txn_id
                )
                if row is not None and row["events_digest"] == digest:
                    log.debug("Transaction %s was already stored", txn_id)
                    return 0
                # Synapse numbers transactions from its own database: a reset homeserver
                # starts again at 1. Keep its events (each is still stored at most once).
                log.warning(
                    "Transaction id %s was reused with different events; was the homeserver's "
                    "database reset? Storing the new events.",
                    txn_id,
                )
            new = 0
            for columns in rows:
                # An event redelivered in another transaction is stored once.
                new += await tx.execute(
                    "INSERT INTO inbox (event_id, txn_id, room_id, type, state_key, sender,"
                    " event_json, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    *columns,
                    received_at,
                )
        log.debug("Transaction %s stored: %d new of %d events", txn_id, new, len(events))
        if new:
            self._wake.set()
        return new

    def _wanted_rows(self, txn_id: str, events: Sequence[Any]) -> list[tuple[str | None, ...]]:
        """The inbox columns (but `received_at`) of the events some handler wants."""
        rows: list[tuple[str | None, ...]] = []
        for event in events:
            if not isinstance(event, dict):
                log.warning("Transaction %s holds a non-object event; skipped", txn_id)
                continue
            event_id = _column_text(event.get("event_id"))
            room_id = _column_text(event.get("room_id"))
            event_type = _column_text(event.get("type"))
            if not event_id or not room_id or event_type is None:
                log.warning("Transaction %s holds an event without id, room or type", txn_id)
                continue
            state_key = _column_text(event.get("state_key"))
            if not self.wants(event_type, state_key):
                continue
            rows.append(
                (
                    event_id,
                    txn_id,
                    room_id,
                    event_type,
                    state_key,
                    _column_text(event.get("sender")) or "",
                    # ensure_ascii: escapes make any string storable, lone surrogates included.
                    json.dumps(event, ensure_ascii=True, separators=(",", ":")),
                )
            )
        return rows

    # -- handling ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker; it first resumes events a previous run left unhandled."""
        if self._task is None:
            self._wake.set()
            self._task = asyncio.create_task(self._run(), name="guilds-inbox-worker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait_s = await self.process_pending()
            except StoreUnavailable as exc:
                log.warning("Inbox worker cannot reach the database (%s); retrying", exc)
                wait_s = self.base_backoff_s
            except Exception:
                # The worker must outlive any bug, or no event is handled again until restart.
                log.exception("Inbox worker pass failed")
                wait_s = self.base_backoff_s
            done, self._pass_done = self._pass_done, asyncio.Event()
            done.set()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
            except TimeoutError:
                pass

    async def process_pending(self) -> float:
        """Handle every event that is due; return how long until the next retry is due."""
        if _now_ms() - self._pruned_at >= PRUNE_EVERY_MS:
            await self.prune(_now_ms() - RETENTION_MS)
            self._pruned_at = _now_ms()
        while True:
            rows = await self.db.fetchall(
                "SELECT seq, event_id, room_id, type, state_key, sender, event_json, attempts"  # noqa: S608 - constant SQL
                f" FROM inbox WHERE {_DUE} ORDER BY seq LIMIT ?",
                _now_ms(),
                BATCH_SIZE,
            )
            if not rows:
                break
            # The query ran before this batch's failures: hold back the rest of a room whose
            # event now waits for a retry.
            waiting_rooms: set[str] = set()
            for row in rows:
                if row["room_id"] in waiting_rooms:
                    continue
                if not await self._handle(row):
                    waiting_rooms.add(row["room_id"])
        due = await self.db.fetchone(
            "SELECT MIN(next_attempt_at) AS due FROM inbox"
            " WHERE handled_at IS NULL AND failed_at IS NULL AND next_attempt_at IS NOT NULL"
        )
        if due is None or due["due"] is None:
            return IDLE_POLL_S
        return max(0.0, min(IDLE_POLL_S, (int(due["due"]) - _now_ms()) / 1000))

    async def prune(self, before_ms: int) -> int:
        """Delete the events handled and the transactions received before `before_ms`."""
        async with self.db.transaction() as tx:
            events = await tx.execute(
                "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?", before_ms
            )
            txns = await tx.execute("DELETE FROM appservice_txn WHERE received_at < ?", before_ms)
        if events or txns:
            log.info("Pruned %d handled events and %d old transactions", events, txns)
        return events

    async def _handle(self, row: Row) -> bool:
        """Run the handlers on one event; False if it failed and waits for a retry."""
        event = InboxEvent(
            seq=int(row["seq"]),
            event_id=row["event_id"],
            room_id=row["room_id"],
            type=row["type"],
            state_key=row["state_key"],
            sender=row["sender"],
            attempts=int(row["attempts"]),
            event=json.loads(row["event_json"]),
        )
        try:
            for registration in self._handlers:
                if registration.wants(event.type, event.state_key):
                    await registration.handler(event)
        except Exception as exc:
            return await self._failed(event, exc)
        await self.db.execute(
            "UPDATE inbox SET handled_at = ?, attempts = ? WHERE seq = ?",
            _now_ms(),
            event.attempts + 1,
            event.seq,
        )
        return True

    async def _failed(self, event: InboxEvent, exc: Exception) -> bool:
        attempts = event.attempts + 1
        # The event's content is never logged (user text); only the exception's type is stored,
        # as its message may quote a homeserver answer.
        error = type(exc).__name__
        if attempts >= self.max_attempts:
            log.error(
                "Giving up on event %s (%s) after %d attempts",
                event.event_id,
                event.type,
                attempts,
                exc_info=exc,
            )
            await self.db.execute(
                "UPDATE inbox SET attempts = ?, last_error = ?, failed_at = ?,"
                " next_attempt_at = NULL WHERE seq = ?",
                attempts,
                error,
                _now_ms(),
                event.seq,
            )
            return True
        delay_s = min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempts - 1))
        log.warning(
            "Handling event %s (%s) failed (attempt %d of %d); retrying in %.1f s",
            event.event_id,
            event.type,
            attempts,
            self.max_attempts,
            delay_s,
            exc_info=exc,
        )
        await self.db.execute(
            "UPDATE inbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE seq = ?",
            attempts,
            error,
            _now_ms() + int(delay_s * 1000),
            event.seq,
        )
        return False

    async def wait_idle(self, within_s: float) -> None:
        """Wait until every stored event is handled or given up (tests, orderly shutdown)."""
        async with asyncio.timeout(within_s):
            while True:
                # Taken before counting, so a pass that ends in between still wakes us.
                next_pass = self._pass_done
                row = await self.db.fetchone(
                    "SELECT COUNT(*) AS n FROM inbox WHERE handled_at IS NULL AND failed_at IS NULL"
                )
                if row is not None and int(row["n"]) == 0:
                    return
                await next_pass.wait()
