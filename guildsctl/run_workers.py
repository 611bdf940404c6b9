"""`guilds run --profile workers`: the local stack with Synapse split into workers, on PostgreSQL.

Same ports and same single URL to open as the default profile; behind the homeserver port is
the router (guildsctl/router.py) in front of Synapse's main process and its two workers (see
guildsctl/workers.py for who does what). The state lives beside the default profile's, in
`<state-dir>/workers/`, with its own Synapse keys and its own PostgreSQL databases:

    workers/synapse/homeserver.yaml    Synapse's generated config (keys, secrets)
    workers/synapse/guilds-overlay.yaml  Guilds + workers settings shared by every process
    workers/synapse/guilds_client.yaml, guilds_writer.yaml  each worker's own settings
    workers/synapse/router.yaml        where the router sends what
    workers/registration.yaml          the appservice registration (tokens, mode 0600)
    workers/guilds.yaml                the bridge and web UI config
    workers/logs/                      one log per process (synapse-main.log, synapse-<worker>.log,
                                       router.log, guilds.log)

As in the default profile, everything in it is private (0600/0700) and each process that exits
is started again on its own (guildsctl/supervise.py).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2

from guildsctl.configgen import guilds_config, read_yaml, registration, write_yaml
from guildsctl.run import (
    BOT_LOCALPART,
    SERVER_NAME,
    PortInUse,
    Progress,
    free_loopback_port,
    make_private,
    resolve_ports,
    start_guilds,
)
from guildsctl.supervise import Supervisor
from guildsctl.synapse import (
    PRIVATE_UMASK,
    generate_base_config,
    overlay,
    postgres_database,
)
from guildsctl.workers import (
    CLIENT_WORKER,
    WRITER_WORKER,
    WorkerDeployment,
    WorkerPorts,
    claim_redis_db,
    release_redis_db,
)

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
SYNAPSE_DATABASE = "guilds_local_synapse"
BRIDGE_DATABASE = "guilds_local_bridge"
# Long enough for any local session; stopping flushes the database and its claim anyway.
REDIS_CLAIM_S = 30 * 24 * 3600


def _server(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise SystemExit(f"--postgres must look like {DEFAULT_POSTGRES}, not {url!r}")
    return {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password,
    }


def ensure_databases(server: dict[str, Any]) -> None:
    """Create the two databases on first use (Synapse needs the C collation)."""
    with closing(psycopg2.connect(dbname="postgres", **server)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in (SYNAPSE_DATABASE, BRIDGE_DATABASE):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(
                        f"CREATE DATABASE {name} ENCODING 'UTF8'"
                        " LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
                    )


def prepare(state: Path, ports: dict[str, int], postgres_url: str) -> tuple[WorkerDeployment, Path]:
    root = state / "workers"
    root.mkdir(parents=True, exist_ok=True)
    make_private(root)
    server = _server(postgres_url)
    ensure_databases(server)
    synapse_dir = root / "synapse"
    if not (synapse_dir / "homeserver.yaml").exists():
        print("==> Generating the homeserver configuration (first run)", flush=True)
    generate_base_config(synapse_dir, SERVER_NAME)

    registration_path = root / "registration.yaml"
    tokens = None
    if registration_path.exists():
        old = read_yaml(registration_path)
        tokens = {"as_token": old["as_token"], "hs_token": old["hs_token"]}
    write_yaml(
        registration_path,
        registration(
            f"http://127.0.0.1:{ports['appservice']}", BOT_LOCALPART, SERVER_NAME, tokens=tokens
        ),
        header="Guilds appservice registration for the local stack (secrets: mode 0600).",
        private=True,
    )
    database = postgres_database(SYNAPSE_DATABASE, server["host"], server["port"], server["user"])
    if server["password"]:
        database["args"]["password"] = server["password"]
    worker_ports = WorkerPorts.pick(public=ports["homeserver"])
    dbid = claim_redis_db(ttl_s=REDIS_CLAIM_S)
    deployment = WorkerDeployment(synapse_dir, root / "logs", worker_ports, dbid)
    try:
        guilds_path = _write_configs(root, deployment, registration_path, database, server, ports)
    except BaseException:
        release_redis_db(dbid)
        raise
    return deployment, guilds_path


def _write_configs(
    root: Path,
    deployment: WorkerDeployment,
    registration_path: Path,
    database: dict[str, Any],
    server: dict[str, Any],
    ports: dict[str, int],
) -> Path:
    base = overlay(
        server_name=SERVER_NAME,
        port=deployment.ports.main_client,
        registration_path=registration_path.resolve(),
        bot_localpart=BOT_LOCALPART,
        open_registration=True,
        database=database,
    )
    secret_path = root / "replication-secret"
    if not secret_path.exists():
        secret_path.write_text(secrets.token_hex(32), encoding="utf-8")
        secret_path.chmod(0o600)
    deployment.write_configs(base, secret_path.read_text(encoding="utf-8").strip())

    userinfo = server["user"] + (f":{server['password']}" if server["password"] else "")
    guilds_path = root / "guilds.yaml"
    write_yaml(
        guilds_path,
        guilds_config(
            SERVER_NAME,
            deployment.url,
            f"postgresql://{userinfo}@{server['host']}:{server['port']}/{BRIDGE_DATABASE}",
            appservice_port=ports["appservice"],
            web_port=ports["web"],
            bot_localpart=BOT_LOCALPART,
            metrics_port=free_loopback_port(),
        ),
        header="Written by `guilds run --profile workers` on every start. See config/.",
        private=True,
    )
    return guilds_path


def supervise_deployment(supervisor: Supervisor, deployment: WorkerDeployment) -> None:
    """Hand the started deployment's processes to `supervisor`, each restarted on its own.

    A worker or the router that dies is started again without touching the others; the
    workers reconnect to the main process over replication when it comes back.
    """
    main = deployment.main
    assert main.proc is not None and deployment.router is not None
    supervisor.add("Synapse's main process", main.proc, main.spawn, main.log_path)
    for name, proc in deployment.workers.items():
        supervisor.add(
            f"Synapse's {name} worker",
            proc,
            lambda name=name: deployment.spawn_worker(name),  # type: ignore[misc]
            deployment.log_path(name),
        )
    supervisor.add("The router", deployment.router, deployment.spawn_router, deployment.router_log)


def run_workers(state: Path, port_overrides: dict[str, int | None], postgres_url: str) -> int:
    # Whatever this command and its children write is private, as in the default profile.
    os.umask(PRIVATE_UMASK)
    state = state.resolve()
    try:
        ports = resolve_ports(port_overrides)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        deployment, guilds_path = prepare(state, ports, postgres_url)
    except (psycopg2.Error, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(
            "The workers profile needs PostgreSQL (--postgres) and Redis on 127.0.0.1:6379.",
            file=sys.stderr,
        )
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    supervisor = Supervisor()
    try:
        return _run_started(deployment, guilds_path, ports, stopping, supervisor)
    finally:
        if stopping.is_set():
            print("\n==> Stopping", flush=True)
        supervisor.stop()
        deployment.stop()


def _run_started(
    deployment: WorkerDeployment,
    guilds_path: Path,
    ports: dict[str, int],
    stopping: threading.Event,
    supervisor: Supervisor,
) -> int:
    logs = deployment.log_dir
    progress = Progress("Starting Synapse: main process, client worker, writer worker, router")
    try:
        deployment.start(tick=progress.tick)
    except RuntimeError as exc:
        progress.done("failed")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    progress.done()
    supervise_deployment(supervisor, deployment)

    web_url = f"http://127.0.0.1:{ports['web']}"
    progress = Progress("Starting the Guilds bridge and web UI (PostgreSQL)")
    guilds_log = logs / "guilds.log"

    failed = start_guilds(supervisor, guilds_path, guilds_log, web_url, stopping, progress)
    if failed is not None:
        return failed
    progress.done()
    p = deployment.ports
    print(
        f"    homeserver {deployment.url} (router) -> main :{p.main_client}, "
        f"{CLIENT_WORKER} :{p.client_worker}, {WRITER_WORKER} (events, appservice, "
        f"acting) :{p.writer_replication}; Redis db {deployment.redis_dbid}",
        flush=True,
    )
    print(f"Guilds is running: open {web_url}  (logs in {logs}; Ctrl-C stops it)", flush=True)
    supervisor.run(stopping)
    return 0
