"""The worker deployment for integration tests: Synapse main + two workers, Redis, PostgreSQL.

The `stack` fixture builds it as its `workers` backend, with `guilds serve` on PostgreSQL
beside it, for the test functions that opt in with `ALSO_ON_WORKERS` or `ON_SQLITE_AND_WORKERS`
(the same tests, no copies) or `ONLY_ON_WORKERS` (tests of the deployment itself, through
`workers_stack`). Like
every `stack` param it starts once per session, and only when such a test is selected.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
import pytest_asyncio

from guildsctl.configgen import guilds_config, registration, write_yaml
from guildsctl.synapse import overlay, postgres_database
from guildsctl.workers import (
    WorkerDeployment,
    WorkerPorts,
    claim_redis_db,
    release_redis_db,
)
from tests.harness.stack import (
    BOT_LOCALPART,
    PG_HOST,
    PG_PORT,
    PG_USER,
    ROOM_VERSION_11,
    Stack,
    create_pg_database,
    drop_pg_database,
    free_port,
    with_test_waits,
)
from tests.harness.synapse_base import base_config

# The backends of `stack` for a test that must also hold on the worker deployment.
ALSO_ON_WORKERS = pytest.mark.parametrize(
    "stack", ["sqlite", "postgres", "workers"], indirect=True, scope="session"
)
# For tests about the worker deployment itself (they use `workers_stack`).
ONLY_ON_WORKERS = pytest.mark.parametrize("stack", ["workers"], indirect=True, scope="session")
# For what the homeserver's and the bridge's databases do not change (who may do what, names,
# the HTTP surface, what an API call does to Matrix): SQLite alone, to keep `make test` short.
# The store, the queue, the journal, migrations, crash recovery and the appservice's
# transactions run on both backends.
ON_SQLITE = pytest.mark.parametrize("stack", ["sqlite"], indirect=True, scope="session")
# The same, for a rule that must also hold on the worker deployment: that deployment keeps
# Synapse and the bridge on PostgreSQL, so it is the rule's PostgreSQL run too.
ON_SQLITE_AND_WORKERS = pytest.mark.parametrize(
    "stack", ["sqlite", "workers"], indirect=True, scope="session"
)
# The same, and in room version 11 too (the version an admin picks for older clients).
ON_SQLITE_WORKERS_AND_ROOM_VERSION_11 = pytest.mark.parametrize(
    "stack", ["sqlite", "workers", ROOM_VERSION_11], indirect=True, scope="session"
)


@dataclass
class WorkersStack(Stack):
    """A `Stack` whose homeserver is the router in front of Synapse's processes."""

    STALE_STATE_READS: ClassVar[bool] = True

    deployment: WorkerDeployment | None = None
    name: str = field(default="localhost")

    @property
    def workers(self) -> WorkerDeployment:
        assert self.deployment is not None
        return self.deployment

    @property
    def server_name(self) -> str:
        return self.name

    @property
    def hs_url(self) -> str:
        return self.workers.url

    @property
    def bot_user_id(self) -> str:
        return f"@{BOT_LOCALPART}:{self.name}"

    def synapse_log_text(self) -> dict[str, str]:
        """Each Synapse process's log so far, by process name (main and the workers)."""
        return {
            name: path.read_text(encoding="utf-8", errors="replace")
            for name, path in self.workers.synapse_logs.items()
        }

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        self.stop_guilds()
        self.workers.stop()
        for name in self.pg_databases:
            drop_pg_database(name)


def build_workers_stack(root: Path) -> WorkersStack:
    """Write every config file of the worker deployment and start it; `start_guilds` after."""
    # Synapse's Redis pub/sub channels are named after the server: unique per stack, so test
    # runs sharing the machine's Redis never hear each other.
    server_name = f"w{secrets.token_hex(4)}.localhost"
    ports = WorkerPorts.pick()
    as_port, web_port = free_port(), free_port()
    synapse_name = create_pg_database("guilds_test_wsynapse")
    bridge_name = create_pg_database("guilds_test_wbridge")
    databases = [synapse_name, bridge_name]
    dbid: int | None = None
    try:
        dbid = claim_redis_db()
        base_config(root / "synapse", server_name)
        registration_path = root / "registration.yaml"
        write_yaml(
            registration_path,
            registration(f"http://127.0.0.1:{as_port}", BOT_LOCALPART, server_name),
            private=True,
        )
        deployment = WorkerDeployment(root / "synapse", root / "logs", ports, dbid)
        base = overlay(
            server_name=server_name,
            port=ports.main_client,
            registration_path=registration_path,
            bot_localpart=BOT_LOCALPART,
            open_registration=True,
            database=postgres_database(synapse_name, PG_HOST, PG_PORT, PG_USER),
            for_tests=True,
        )
        deployment.write_configs(base, secrets.token_hex(32))
        config_path = root / "guilds.yaml"
        write_yaml(
            config_path,
            with_test_waits(
                guilds_config(
                    server_name,
                    deployment.url,
                    f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{bridge_name}",
                    appservice_port=as_port,
                    web_port=web_port,
                    bot_localpart=BOT_LOCALPART,
                    log_level="DEBUG",
                )
            ),
            private=True,
        )
        deployment.start()
    except BaseException:
        if dbid is not None:
            release_redis_db(dbid)
        for name in databases:
            drop_pg_database(name)
        raise
    return WorkersStack(
        "workers",
        root,
        deployment.main,
        config_path,
        web_port,
        as_port,
        databases,
        deployment=deployment,
        name=server_name,
    )


@pytest_asyncio.fixture(scope="session")
async def workers_stack(stack: Stack) -> WorkersStack:
    """The session's worker deployment, for tests marked `ONLY_ON_WORKERS`."""
    if not isinstance(stack, WorkersStack):
        pytest.fail("a test using workers_stack must be marked ONLY_ON_WORKERS")
    return stack
