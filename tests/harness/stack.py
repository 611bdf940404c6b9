"""The real stack for integration tests: Synapse with the module, and `guilds serve` beside it.

Each stack lives in its own temporary folder with its own ports and, for PostgreSQL, its own
freshly created databases (dropped afterwards), so runs never see each other's state.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import nio
import psycopg2

from bridge.metrics import metrics_url
from guilds.config import GuildsConfig, load_config
from guildsctl.configgen import guilds_config, registration, write_yaml
from guildsctl.synapse import (
    Homeserver,
    http_ok,
    overlay,
    postgres_database,
    spawn,
    stop,
    tail,
    wait_until,
)
from tests.harness.synapse_base import base_config
from tests.harness.templates import TEMPLATES

SERVER_NAME = "localhost"
BOT_LOCALPART = "guilds"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
# The homeserver databases every integration test runs on (the `stack` fixture's params).
BACKENDS = ["sqlite", "postgres"]
# A `stack` param for the tests that must also hold in room version 11 (docs/CLIENTS.md: the
# version an admin picks for older clients): SQLite, Synapse's `default_room_version` at "11".
ROOM_VERSION_11 = "v11"
# Synapse settings of each `stack` param beyond the database (the default version is 12).
BACKEND_SETTINGS: dict[str, dict[str, Any]] = {ROOM_VERSION_11: {"default_room_version": "11"}}
# `stack` params for the modules that test an admin's settings: a SQLite stack whose guilds.yaml
# has these sections. Like every `stack` param it starts once per session, and the modules that
# name it share it (tests/harness/scheduling.py keeps them on one xdist worker).
TEMPLATED, JOIN_DEFAULT = "sqlite_templates", "sqlite_join_default"
CONFIGURED: dict[str, dict[str, Any]] = {
    TEMPLATED: TEMPLATES,
    JOIN_DEFAULT: {"policies": {"join_channels": "default"}},
}
# The `stack` param of a SQLite stack with a Janus SFU beside it (tests/harness/sfu.py), shared
# like the `CONFIGURED` ones by the modules that name it.
SFU = "sqlite_sfu"


# The bridge's waits for a homeserver or database at fault, shorter in test stacks than the
# production defaults (guilds.yaml, docs/DEPLOYMENT.md "Waiting out faults"), so that a test of a
# fault waits seconds rather than the bounds a real deployment wants: a request still running
# after `answer_within_s` answers 202 (followed by `Api.call`), a token the homeserver has not
# checked within `token_check_timeout_s` or a SQLite lock held `database_busy_timeout_s` is a
# 503, and a change waiting out the homeserver tries again at least every `max_retry_wait_s`.
# The token check is the one a loaded machine could exceed by accident: it keeps room for that.
TEST_WAITS: dict[str, Any] = {
    "operations": {"answer_within_s": 5, "max_retry_wait_s": 2},
    "homeserver": {"token_check_timeout_s": 5},
    "database_busy_timeout_s": 1,
}


def with_test_waits(config: dict[str, Any]) -> dict[str, Any]:
    """guilds.yaml's `config` with the waits of TEST_WAITS (its own sections keep their keys)."""
    merged = dict(config)
    for key, value in TEST_WAITS.items():
        if isinstance(value, dict):
            merged[key] = {**value, **merged.get(key, {})}
        else:
            merged.setdefault(key, value)
    return merged


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_pg_database(prefix: str) -> str:
    name = f"{prefix}_{secrets.token_hex(6)}"
    with closing(
        psycopg2.connect(dbname="postgres", host=PG_HOST, port=PG_PORT, user=PG_USER)
    ) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE {name} ENCODING 'UTF8'"
                " LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
            # A commit answers before its WAL reaches the disk (a test database is dropped
            # anyway, and only PostgreSQL's own crash could lose it): every write of Synapse
            # and the bridge waited for an fsync of a disk the whole machine shares.
            cur.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
    return name


def drop_pg_database(name: str) -> None:
    with closing(
        psycopg2.connect(dbname="postgres", host=PG_HOST, port=PG_PORT, user=PG_USER)
    ) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass(frozen=True)
class User:
    user_id: str
    password: str
    access_token: str = field(repr=False)
    device_id: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


_user_counter = itertools.count(1)


@dataclass
class Stack:
    # Whether the homeserver may answer a room's state endpoint from a stale cache: Synapse
    # split into workers can (docs/DEPLOYMENT.md 8); tests then read the room's own events.
    STALE_STATE_READS: ClassVar[bool] = False

    backend: str
    root: Path
    homeserver: Homeserver
    config_path: Path
    web_port: int
    appservice_port: int
    pg_databases: list[str] = field(default_factory=list)
    guilds_proc: subprocess.Popen[bytes] | None = None
    http: aiohttp.ClientSession | None = None
    # Every access token handed out, so a test can check that none of them reached a log.
    issued_tokens: list[str] = field(default_factory=list)

    # -- addresses -------------------------------------------------------------------------
    @property
    def server_name(self) -> str:
        return SERVER_NAME

    @property
    def hs_url(self) -> str:
        return self.homeserver.url

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def appservice_url(self) -> str:
        return f"http://127.0.0.1:{self.appservice_port}"

    @property
    def metrics_url(self) -> str:
        return metrics_url(self.config.metrics.listen)

    @property
    def config(self) -> GuildsConfig:
        return load_config(self.config_path)

    @property
    def bot_user_id(self) -> str:
        return f"@{BOT_LOCALPART}:{SERVER_NAME}"

    @property
    def guilds_log(self) -> Path:
        return self.root / "logs" / "guilds.log"

    # -- the guilds process ---------------------------------------------------------------------
    def start_guilds(self) -> None:
        self.guilds_proc = spawn(
            [sys.executable, "-m", "guildsctl.cli", "serve", "-c", str(self.config_path)],
            log_path=self.guilds_log,
            cwd=self.root,
        )
        proc = self.guilds_proc
        ready = wait_until(
            lambda: (
                http_ok(f"{self.web_url}/_guilds/v1/version")
                and http_ok(f"{self.hs_url}/_matrix/client/v3/profile/{self.bot_user_id}")
            ),
            deadline_s=60,
            alive=lambda: proc.poll() is None,
        )
        if not ready:
            stop(proc)
            raise RuntimeError(
                f"guilds serve did not start; end of its log:\n{tail(self.guilds_log)}"
            )

    def stop_guilds(self) -> None:
        if self.guilds_proc is not None:
            stop(self.guilds_proc)
            self.guilds_proc = None

    def kill_guilds(self) -> None:
        """SIGKILL, as a crash would."""
        if self.guilds_proc is not None:
            self.guilds_proc.kill()
            self.guilds_proc.wait()
            self.guilds_proc = None

    async def kill_guilds_when(
        self, ready: Callable[[], Awaitable[bool]], *, deadline_s: float = 60
    ) -> None:
        """SIGKILL `guilds serve` as soon as `ready()` holds, asked while the process is frozen.

        Polling a running bridge let a stage of concurrent steps end between the poll that saw
        the point wanted and the kill. Here the bridge is stopped (SIGSTOP) while `ready()`
        reads, so what a read of its own database sees is what the kill leaves (a request it
        had already sent may still land in Synapse); between two reads it runs for 5 ms.
        """
        proc = self.guilds_proc
        assert proc is not None
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            proc.send_signal(signal.SIGSTOP)
            try:
                wait_stopped(proc.pid, self.guilds_log)
                now = await ready()
            except BaseException:
                proc.send_signal(signal.SIGCONT)  # a failed check leaves no frozen bridge behind
                raise
            if now:
                self.kill_guilds()
                return
            proc.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.005)
        self.kill_guilds()
        raise AssertionError(f"the point to kill guilds serve at never came in {deadline_s} s")

    # -- users -------------------------------------------------------------------------------
    async def register_user(
        self, localpart: str | None = None, password: str | None = None
    ) -> User:
        """Register through the shared-secret admin API (not rate limited), then log in."""
        assert self.http is not None
        localpart = localpart or f"user{next(_user_counter)}_{secrets.token_hex(3)}"
        password = password or secrets.token_urlsafe(12)
        url = f"{self.hs_url}/_synapse/admin/v1/register"
        async with self.http.get(url) as response:
            nonce = (await response.json())["nonce"]
        mac = hmac.new(
            self.homeserver.registration_shared_secret().encode(),
            b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]),
            hashlib.sha1,
        ).hexdigest()
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": False,
            "mac": mac,
        }
        async with self.http.post(url, json=body) as response:
            answer = await response.json()
            if response.status != 200:
                raise RuntimeError(f"registering {localpart} failed: {answer}")
        self.issued_tokens.append(answer["access_token"])
        return User(answer["user_id"], password, answer["access_token"], answer["device_id"])

    async def new_device(self, user: User, display_name: str = "tests") -> User:
        """Log `user` in again with their password: the same user on a new device and token."""
        assert self.http is not None
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user.localpart},
            "password": user.password,
            "initial_device_display_name": display_name,
        }
        url = f"{self.hs_url}/_matrix/client/v3/login"
        async with self.http.post(url, json=body) as response:
            answer = await response.json()
            if response.status != 200:
                raise RuntimeError(f"login of {user.user_id} failed: {answer}")
        self.issued_tokens.append(answer["access_token"])
        return replace(user, access_token=answer["access_token"], device_id=answer["device_id"])

    @asynccontextmanager
    async def nio_client(self, user: User) -> AsyncIterator[nio.AsyncClient]:
        """A plain matrix-nio client, logged in as `user`: a Matrix client that is not ours."""
        client = nio.AsyncClient(self.hs_url, user.user_id, device_id=user.device_id)
        client.restore_login(user.user_id, user.device_id, user.access_token)
        try:
            yield client
        finally:
            await client.close()

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        self.stop_guilds()
        self.homeserver.stop()
        for name in self.pg_databases:
            drop_pg_database(name)


def wait_stopped(pid: int, log: Path) -> None:
    """Wait until the process is in the stopped state (a signal is delivered asynchronously)."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        # The state follows the command name, which is in parentheses and may hold spaces.
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        assert state not in ("Z", "X"), f"the process exited; end of its log:\n{tail(log)}"
        time.sleep(0.0002)
    raise AssertionError(f"process {pid} did not stop on SIGSTOP")


def build_stack(
    backend: str,
    root: Path,
    admin_config: dict[str, Any] | None = None,
    homeserver_extra: dict[str, Any] | None = None,
    default_rate_limits: Collection[str] = (),
) -> Stack:
    """Write every config file of a test stack and start Synapse; `start_guilds` comes after.

    `admin_config` adds top-level sections to guilds.yaml (`policies`, `templates`, `servers`);
    the module's share of the policies goes into Synapse's configuration too.
    `homeserver_extra` adds settings to Synapse's (e.g. `turn_uris` and `turn_shared_secret`).
    `default_rate_limits` names the rate limits (e.g. `rc_message`) left at Synapse's own
    defaults instead of raised, for a test that exercises the real limits (TESTING.md).
    `backend` is a database (`BACKENDS`) or `ROOM_VERSION_11`, SQLite in room version 11.
    """
    homeserver_extra = BACKEND_SETTINGS.get(backend, {}) | (homeserver_extra or {})
    hs_port, as_port, web_port = free_port(), free_port(), free_port()
    pg_databases: list[str] = []
    synapse_db = None
    bridge_db = f"sqlite:///{root / 'guilds.db'}"
    if backend == "postgres":
        synapse_name = create_pg_database("guilds_test_synapse")
        bridge_name = create_pg_database("guilds_test_bridge")
        pg_databases += [synapse_name, bridge_name]
        synapse_db = postgres_database(synapse_name, PG_HOST, PG_PORT, PG_USER)
        bridge_db = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{bridge_name}"

    base_config(root / "synapse", SERVER_NAME)
    registration_path = root / "registration.yaml"
    write_yaml(
        registration_path,
        registration(f"http://127.0.0.1:{as_port}", BOT_LOCALPART, SERVER_NAME),
        private=True,
    )
    homeserver = Homeserver(root / "synapse", hs_port, root / "logs" / "synapse.log")
    config_path = root / "guilds.yaml"
    write_yaml(
        config_path,
        with_test_waits(
            guilds_config(
                SERVER_NAME,
                homeserver.url,
                bridge_db,
                appservice_port=as_port,
                web_port=web_port,
                bot_localpart=BOT_LOCALPART,
                log_level="DEBUG",
                metrics_port=free_port(),
            )
            | (admin_config or {})
        ),
        private=True,
    )
    # The module enforces its share of the policies: Synapse reads them from its own config.
    policies = load_config(config_path).module_policies if admin_config else None
    settings = overlay(
        server_name=SERVER_NAME,
        port=hs_port,
        registration_path=registration_path,
        bot_localpart=BOT_LOCALPART,
        open_registration=True,
        database=synapse_db,
        for_tests=True,
        policies=policies,
    ) | (homeserver_extra or {})
    for name in default_rate_limits:
        # Absent from the overlay, the limit is whatever Synapse ships with.
        if name not in settings:
            raise ValueError(f"{name} is not a rate limit the test overlay raises")
        del settings[name]
    homeserver.write_overlay(settings)
    stack = Stack(backend, root, homeserver, config_path, web_port, as_port, pg_databases)
    try:
        homeserver.start()
    except BaseException:
        for name in pg_databases:
            drop_pg_database(name)
        raise
    return stack
