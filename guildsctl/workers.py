"""Synapse in worker mode for `guilds run --profile workers` and the tests: configs and processes.

The deployment is Synapse's own scaling engine, nothing home-made: a main process, two
`synapse.app.generic_worker` processes replicating over Redis, all on PostgreSQL, and a small
router in front, because Synapse does not route requests between its processes itself.

- `guilds_client` serves client traffic: `/sync` and the other client endpoints of
  `CLIENT_WORKER_ROUTES` (Synapse's documented generic-worker endpoints that Guilds and its
  clients use).
- `guilds_writer` is the event persister (every event of every room is written by it), sends
  the application service its transactions and runs Synapse's background tasks.
- The main process keeps what must stay on it: the admin API (registration through the shared
  secret), the account data, receipts, presence and typing streams, `/_synapse/client`, and
  every endpoint not routed to the client worker.

Each stack gets its own Redis database (`redis.dbid`, claimed with a key and flushed at stop)
and its server name, which names Synapse's pub/sub channels, must be unique among the stacks
sharing one Redis.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from guildsctl.configgen import write_yaml
from guildsctl.synapse import (
    Homeserver,
    http_ok,
    spawn,
    stdout_log_config,
    stop,
    tail,
    wait_until,
)

CLIENT_WORKER: Final = "guilds_client"
WRITER_WORKER: Final = "guilds_writer"
WORKERS: Final = (CLIENT_WORKER, WRITER_WORKER)

_CS = r"^/_matrix/client/(api/v1|r0|v3|unstable)"
# Synapse's worker documentation lists what a generic worker may serve; these are the ones
# Guilds' bridge, its web UI and ordinary Matrix clients use. Endpoints that only a stream
# writer may serve (account data, tags, receipts, read markers, presence, typing, to-device)
# stay on the main process, which writes those streams.
CLIENT_WORKER_ROUTES: Final[tuple[str, ...]] = (
    # sync
    r"^/_matrix/client/(r0|v3)/sync$",
    _CS + r"/events$",
    _CS + r"/initialSync$",
    _CS + r"/rooms/[^/]+/initialSync$",
    # reading rooms
    _CS + r"/createRoom$",
    _CS + r"/publicRooms$",
    _CS + r"/rooms/[^/]+/joined_members$",
    _CS + r"/rooms/[^/]+/context/.*$",
    _CS + r"/rooms/[^/]+/members$",
    _CS + r"/rooms/[^/]+/state$",
    _CS + r"/rooms/[^/]+/messages$",
    _CS + r"/rooms/[^/]+/event/",
    r"^/_matrix/client/v1/rooms/[^/]+/hierarchy$",
    r"^/_matrix/client/(v1|unstable)/rooms/[^/]+/relations/",
    _CS + r"/joined_rooms$",
    _CS + r"/directory/room/.*$",
    r"^/_matrix/client/(r0|v3|unstable)/capabilities$",
    r"^/_matrix/client/(r0|v3|unstable)/account/whoami$",
    r"^/_matrix/client/versions$",
    # sending events: created here, persisted by the event persister
    _CS + r"/rooms/[^/]+/redact",
    _CS + r"/rooms/[^/]+/send",
    _CS + r"/rooms/[^/]+/state/",
    _CS + r"/rooms/[^/]+/(join|invite|leave|ban|unban|kick)$",
    _CS + r"/join/",
    _CS + r"/knock/",
    _CS + r"/profile/",
    # logging in
    _CS + r"/login$",
    r"^/_matrix/client/(r0|v3|unstable)/register/available$",
    r"^/_matrix/client/(r0|v3|unstable)/password_policy$",
    # encryption keys (direct conversations)
    r"^/_matrix/client/(r0|v3|unstable)/keys/(query|changes|claim|upload)$",
    r"^/_matrix/client/(r0|v3|unstable)/user_directory/search$",
)
_ROUTES: Final = tuple(re.compile(pattern) for pattern in CLIENT_WORKER_ROUTES)


def routes_to_client_worker(path: str) -> bool:
    """Whether the router sends a (decoded) request path to the client worker."""
    return any(route.search(path) for route in _ROUTES)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class WorkerPorts:
    """Every port of the deployment: `public` is the router, the homeserver URL clients use."""

    public: int
    main_client: int
    main_replication: int
    client_worker: int
    writer_replication: int

    @classmethod
    def pick(cls, public: int | None = None) -> WorkerPorts:
        return cls(public or free_port(), free_port(), free_port(), free_port(), free_port())


def _listener(port: int, resource: str) -> dict[str, Any]:
    return {
        "port": port,
        "bind_addresses": ["127.0.0.1"],
        "type": "http",
        "tls": False,
        "x_forwarded": False,
        "resources": [{"names": [resource], "compress": False}],
    }


def shared_config(
    base_overlay: dict[str, Any],
    *,
    ports: WorkerPorts,
    redis_dbid: int,
    replication_secret: str,
    log_config_path: Path,
    redis_host: str = "127.0.0.1",
    redis_port: int = 6379,
) -> dict[str, Any]:
    """The main process's overlay turned into a worker deployment's; every process reads it."""
    config = dict(base_overlay)
    config["public_baseurl"] = f"http://127.0.0.1:{ports.public}/"
    config["listeners"] = [
        _listener(ports.main_client, "client"),
        _listener(ports.main_replication, "replication"),
    ]
    config["log_config"] = str(log_config_path)
    config["redis"] = {
        "enabled": True,
        "host": redis_host,
        "port": redis_port,
        "dbid": redis_dbid,
    }
    config["worker_replication_secret"] = replication_secret
    # Every process that writes a stream, and the main process, must be reachable over HTTP
    # replication.
    config["instance_map"] = {
        "main": {"host": "127.0.0.1", "port": ports.main_replication},
        WRITER_WORKER: {"host": "127.0.0.1", "port": ports.writer_replication},
    }
    config["stream_writers"] = {"events": [WRITER_WORKER]}
    config["notify_appservices_from_worker"] = WRITER_WORKER
    config["run_background_tasks_on"] = WRITER_WORKER
    return config


def worker_config(name: str, ports: WorkerPorts, log_config_path: Path) -> dict[str, Any]:
    """One worker's own file, passed after the shared ones with another `-c`."""
    if name == CLIENT_WORKER:
        listeners = [_listener(ports.client_worker, "client")]
    elif name == WRITER_WORKER:
        listeners = [_listener(ports.writer_replication, "replication")]
    else:
        raise ValueError(f"unknown worker {name!r}")
    return {
        "worker_app": "synapse.app.generic_worker",
        "worker_name": name,
        "worker_listeners": listeners,
        "worker_log_config": str(log_config_path),
    }


# --- Redis: one database per stack ---------------------------------------------------------

CLAIM_KEY: Final = "guilds:claimed-by"


class RedisError(Exception):
    pass


def _redis(host: str, port: int, *commands: list[str]) -> list[Any]:
    """Run a few commands on one connection (RESP, enough for SELECT, SET, FLUSHDB)."""
    with socket.create_connection((host, port), timeout=5) as sock, sock.makefile("rb") as reply:
        payload = b"".join(
            b"*%d\r\n" % len(command)
            + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in command)
            for command in commands
        )
        sock.sendall(payload)
        return [_read_reply(reply) for _ in commands]


def _read_reply(reply: Any) -> Any:
    line: bytes = reply.readline()
    if not line:
        raise RedisError("Redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data: bytes = reply.read(size + 2)[:-2]
        return data.decode()
    raise RedisError(f"unexpected Redis reply {line!r}")


def claim_redis_db(
    host: str = "127.0.0.1", port: int = 6379, *, ttl_s: int = 6 * 3600, first: int = 1
) -> int:
    """Claim a Redis database no other stack uses (SET NX of a key in it); return its number.

    Database 0 is left alone. A claim left behind by a killed run expires after `ttl_s`.
    """
    token = secrets.token_hex(8)
    for dbid in range(first, 16):
        try:
            _, claimed = _redis(
                host,
                port,
                ["SELECT", str(dbid)],
                ["SET", CLAIM_KEY, token, "NX", "EX", str(ttl_s)],
            )
        except RedisError:
            break  # fewer databases configured
        if claimed == "OK":
            return dbid
    raise RuntimeError(f"no free Redis database on {host}:{port} (each stack claims one)")


def release_redis_db(dbid: int, host: str = "127.0.0.1", port: int = 6379) -> None:
    """Flush the stack's database, its claim with it."""
    with contextlib.suppress(OSError, RedisError):
        _redis(host, port, ["SELECT", str(dbid)], ["FLUSHDB"])


# --- the processes --------------------------------------------------------------------------


@dataclass
class WorkerDeployment:
    """Synapse's main process, its workers and the router, started and stopped in order."""

    config_dir: Path  # holds homeserver.yaml (generated) and the overlay (`main.overlay`)
    log_dir: Path
    ports: WorkerPorts
    redis_dbid: int
    main: Homeserver = field(init=False)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    router: subprocess.Popen[bytes] | None = field(default=None, init=False)
    redis_released: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.main = Homeserver(self.config_dir, self.ports.main_client, self.log_path("main"))

    @property
    def url(self) -> str:
        """The homeserver URL for clients and the bridge: the router."""
        return f"http://127.0.0.1:{self.ports.public}"

    @property
    def client_worker_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.client_worker}"

    @property
    def log_config_path(self) -> Path:
        return self.config_dir / "workers-log.yaml"

    def worker_config_path(self, name: str) -> Path:
        return self.config_dir / f"{name}.yaml"

    def log_path(self, process: str) -> Path:
        return self.log_dir / f"synapse-{process}.log"

    @property
    def synapse_logs(self) -> dict[str, Path]:
        return {name: self.log_path(name) for name in ("main", *WORKERS)}

    def write_configs(self, base_overlay: dict[str, Any], replication_secret: str) -> None:
        write_yaml(self.log_config_path, stdout_log_config())
        self.main.write_overlay(
            shared_config(
                base_overlay,
                ports=self.ports,
                redis_dbid=self.redis_dbid,
                replication_secret=replication_secret,
                log_config_path=self.log_config_path,
            )
        )
        for name in WORKERS:
            write_yaml(
                self.worker_config_path(name),
                worker_config(name, self.ports, self.log_config_path),
                header="Written on every start of the worker deployment.",
            )
        write_yaml(
            self.config_dir / "router.yaml",
            {
                "listen": {"host": "127.0.0.1", "port": self.ports.public},
                "main": f"http://127.0.0.1:{self.ports.main_client}",
                "client_worker": self.client_worker_url,
            },
            header="The router in front of Synapse's processes (guildsctl/router.py).",
        )

    def start(self, *, deadline_s: float = 90.0, tick: Callable[[], None] | None = None) -> None:
        """Main first (the workers connect to it), then both workers at once, then the router."""
        try:
            self.main.start(deadline_s=deadline_s, tick=tick)
            for name in WORKERS:
                self.spawn_worker(name)
            self.spawn_router()
            checks = {
                CLIENT_WORKER: f"{self.client_worker_url}/_matrix/client/versions",
                WRITER_WORKER: f"http://127.0.0.1:{self.ports.writer_replication}/health",
                "router": f"{self.url}/_matrix/client/versions",
            }
            for name, url in checks.items():
                proc = self.router if name == "router" else self.workers[name]
                assert proc is not None
                ready = wait_until(
                    lambda url=url: http_ok(url),  # type: ignore[misc]
                    deadline_s=deadline_s,
                    alive=lambda proc=proc: proc.poll() is None,  # type: ignore[misc]
                    tick=tick,
                )
                if not ready:
                    log = self.router_log if name == "router" else self.log_path(name)
                    raise RuntimeError(f"{name} did not start; the end of {log}:\n{tail(log)}")
        except BaseException:
            self.stop()
            raise

    def spawn_worker(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or start again) one worker, without waiting for it."""
        self.workers[name] = spawn(
            [
                sys.executable,
                "-m",
                "synapse.app.generic_worker",
                "-c",
                str(self.main.base_config),
                "-c",
                str(self.main.overlay_config),
                "-c",
                str(self.worker_config_path(name)),
            ],
            log_path=self.log_path(name),
            cwd=self.config_dir,
        )
        return self.workers[name]

    @property
    def router_log(self) -> Path:
        return self.log_dir / "router.log"

    def spawn_router(self) -> subprocess.Popen[bytes]:
        """Start (or start again) the router, without waiting for it."""
        self.router = spawn(
            [sys.executable, "-m", "guildsctl.router", "-c", str(self.config_dir / "router.yaml")],
            log_path=self.router_log,
            cwd=self.config_dir,
        )
        return self.router

    def stop(self) -> None:
        if self.router is not None:
            stop(self.router)
            self.router = None
        for proc in self.workers.values():
            stop(proc)
        self.workers.clear()
        self.main.stop()
        # Synapse's external cache lives in this database: nothing in it outlives the stack.
        # Once only: by then another stack may have claimed the number.
        if not self.redis_released:
            release_redis_db(self.redis_dbid)
            self.redis_released = True
