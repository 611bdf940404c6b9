"""The bridge's database schema, as an ordered list of numbered migrations.

Append new migrations; never edit one that has shipped. Timestamps are integer milliseconds
since the epoch and JSON is stored as text, so one schema suits SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from bridge.engine.store import Database, Migration, Transaction, upgrade


async def _v1_transaction_inbox(tx: Transaction) -> None:
    # Transactions already stored, so a redelivery (Synapse retries until it sees a 200) is
    # acknowledged without storing its events again. `events_digest` tells a true retry from a
    # homeserver that reuses ids after its own database was reset.
    await tx.execute(
        "CREATE TABLE appservice_txn ("
        " txn_id TEXT PRIMARY KEY,"
        " events_digest TEXT NOT NULL,"
        " event_count INTEGER NOT NULL,"
        " received_at BIGINT NOT NULL)"
    )
    # `seq` is the arrival order in which the worker hands events to the handlers.
    seq = (
        "seq INTEGER PRIMARY KEY AUTOINCREMENT"
        if tx.dialect == "sqlite"
        else "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    )
    await tx.execute(
        "CREATE TABLE inbox ("
        f" {seq},"
        " event_id TEXT NOT NULL UNIQUE,"
        " txn_id TEXT NOT NULL,"
        " room_id TEXT NOT NULL,"
        " type TEXT NOT NULL,"
        " state_key TEXT,"
        " sender TEXT NOT NULL,"
        " event_json TEXT NOT NULL,"
        " received_at BIGINT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at BIGINT,"
        " last_error TEXT,"
        " handled_at BIGINT,"
        " failed_at BIGINT)"
    )
    # The worker only ever scans what is still pending; keep that cheap as the table grows.
    await tx.execute(
        "CREATE INDEX inbox_pending ON inbox (seq) WHERE handled_at IS NULL AND failed_at IS NULL"
    )
    await tx.execute(
        "CREATE INDEX inbox_pending_room ON inbox (room_id, next_attempt_at)"
        " WHERE handled_at IS NULL AND failed_at IS NULL"
    )


async def _v2_operation_journal(tx: Transaction) -> None:
    # One row per multi-room operation; its plan (bridge/engine/steps.py) is written whole, with its
    # steps, before anything runs, so a crash at any point leaves something to resume.
    await tx.execute(
        "CREATE TABLE operations ("
        " op_id TEXT PRIMARY KEY,"
        " kind TEXT NOT NULL,"
        " server_id TEXT,"
        " plan_json TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),"
        " created_at BIGINT NOT NULL,"
        " updated_at BIGINT NOT NULL,"
        " error TEXT)"
    )
    # Start-up looks only for unfinished operations.
    await tx.execute(
        "CREATE INDEX operations_unfinished ON operations (created_at)"
        " WHERE status IN ('pending', 'running')"
    )
    await tx.execute("CREATE INDEX operations_server ON operations (server_id, created_at)")
    # A step's result is recorded the moment it succeeds; `attempts` counts the tries begun,
    # so a step with attempts > 0 and no result may have taken effect.
    await tx.execute(
        "CREATE TABLE operation_steps ("
        " op_id TEXT NOT NULL REFERENCES operations (op_id) ON DELETE CASCADE,"
        " stage INTEGER NOT NULL,"
        " idx INTEGER NOT NULL,"
        " name TEXT NOT NULL,"
        " kind TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),"
        " result_json TEXT,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " error TEXT,"
        " updated_at BIGINT NOT NULL,"
        " PRIMARY KEY (op_id, stage, idx),"
        " UNIQUE (op_id, name))"
    )


async def _v3_servers(tx: Transaction) -> None:
    # The servers the bridge administers, so it knows which spaces to load at start-up
    # without asking the homeserver about every room the bot is in.
    await tx.execute(
        "CREATE TABLE servers ("
        " server_id TEXT PRIMARY KEY,"
        " created_at BIGINT NOT NULL,"
        " deleted_at BIGINT)"
    )


async def _v4_invites(tx: Transaction) -> None:
    # Invite codes (bridge/services/invites.py). Times in ms; NULL expires_at / max_uses mean
    # unlimited.
    # The CHECKs keep the use count honest even if a bug ever skipped the conditional UPDATE.
    await tx.execute(
        "CREATE TABLE invites ("
        " code TEXT PRIMARY KEY,"
        " server_id TEXT NOT NULL,"
        " creator TEXT NOT NULL,"
        " created_at BIGINT NOT NULL,"
        " expires_at BIGINT,"
        " max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 1),"
        " uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),"
        " revoked_at BIGINT,"
        " CHECK (max_uses IS NULL OR uses <= max_uses))"
    )
    await tx.execute("CREATE INDEX invites_server ON invites (server_id, created_at)")
    # Who has redeemed which code, so the same user redeeming twice counts one use.
    await tx.execute(
        "CREATE TABLE invite_redemptions ("
        " code TEXT NOT NULL REFERENCES invites (code) ON DELETE CASCADE,"
        " user_id TEXT NOT NULL,"
        " redeemed_at BIGINT NOT NULL,"
        " PRIMARY KEY (code, user_id))"
    )


async def _v5_leases(tx: Transaction) -> None:
    # A named lease one process holds at a time (`guilds apply` and `guilds serve` reconciling
    # declared servers); it lapses at `expires_at` if its holder died without releasing it.
    await tx.execute(
        "CREATE TABLE leases ("
        " name TEXT PRIMARY KEY,"
        " holder TEXT NOT NULL,"
        " expires_at BIGINT NOT NULL)"
    )


async def _v6_server_queue(tx: Transaction) -> None:
    # Requests waiting for, or holding, their server's turn (bridge/engine/queue.py), stored before
    # they wait so a restart runs them; kept after they end, with their answer, for
    # `GET /operations/{id}`. Bodies are JSON text; tokens are never stored here.
    await tx.execute(
        "CREATE TABLE queued_jobs ("
        " job_id TEXT PRIMARY KEY,"
        " kind TEXT NOT NULL,"
        " server_id TEXT NOT NULL,"
        " actor TEXT,"
        " params_json TEXT NOT NULL,"
        " body_json TEXT NOT NULL,"
        " state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),"
        " created_at BIGINT NOT NULL,"
        " updated_at BIGINT NOT NULL,"
        " result_status INTEGER,"
        " result_json TEXT,"
        " error_status INTEGER,"
        " error_json TEXT)"
    )
    # Start-up looks only for jobs that have not ended, in arrival order.
    await tx.execute(
        "CREATE INDEX queued_jobs_unfinished ON queued_jobs (created_at)"
        " WHERE state IN ('queued', 'running')"
    )
    # The journal operations a job submitted, so a job a crash interrupted is finished by
    # resuming them rather than by running it again.
    await tx.execute("ALTER TABLE operations ADD COLUMN job_id TEXT")
    await tx.execute("CREATE INDEX operations_job ON operations (job_id)")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "appservice transactions and the event inbox", _v1_transaction_inbox),
    Migration(2, "the journal of multi-room operations", _v2_operation_journal),
    Migration(3, "the servers the bridge administers", _v3_servers),
    Migration(4, "invite codes and who redeemed them", _v4_invites),
    Migration(5, "leases held by one process at a time", _v5_leases),
    Migration(6, "the per-server queue of requests", _v6_server_queue),
)

LATEST_VERSION = len(MIGRATIONS)


async def migrate(db: Database) -> int:
    """Bring the bridge's database to LATEST_VERSION; raise SchemaTooNew if it is ahead."""
    return await upgrade(db, MIGRATIONS)
