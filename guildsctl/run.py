"""`guilds run`: the whole stack on localhost, from a state folder it creates on first use.

Layout of the state folder (git-ignored `local/` by default):

    synapse/homeserver.yaml      Synapse's own generated config (keys, secrets, SQLite path)
    synapse/guilds-overlay.yaml  the Guilds settings, rewritten on every start (with TURN's
                                 turn_uris + a fresh turn_shared_secret when a local coturn runs)
    synapse/log.yaml             Synapse logs to its output, which goes to logs/synapse.log
    synapse/homeserver.db, media_store/  Synapse's data (every access token, uploads)
    coturn/                      the local coturn's pid file and database (GUILDS_TURN_PORT only)
    janus/                       the local Janus's configuration, written on every start (its
                                 token secret and admin key; guilds.yaml's `sfu:` holds them too)
    registration.yaml            the application service registration (tokens, mode 0600)
    guilds.yaml                  the bridge and web UI config, rewritten on every start
    guilds.db                    the bridge's database
    logs/                        synapse.log, guilds.log, janus.log (and coturn.log): each
                                 process's output

Everything in it is readable by its owner only (files 0600, directories 0700): the processes
run with umask 077, and a file an earlier version left open is made private at start.
While the stack runs, a process that exits is started again (guildsctl/supervise.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from guildsctl.configgen import guilds_config, read_yaml, registration, write_yaml
from guildsctl.janus import JanusMissing, JanusTurn, LocalJanus, janus_listening, start_janus
from guildsctl.supervise import Supervisor
from guildsctl.synapse import (
    PRIVATE_UMASK,
    Homeserver,
    generate_base_config,
    http_ok,
    overlay,
    spawn,
    stop,
    tail,
    wait_until,
)
from guildsctl.turn import (
    CoturnMissing,
    fresh_turn_secret,
    port_listening_udp_tcp,
    start_coturn,
    synapse_turn_settings,
    turn_uris,
)

SERVER_NAME = "localhost"
BOT_LOCALPART = "guilds"


@dataclass(frozen=True)
class PortSetting:
    """One port of the stack, the option and variable that change it, and what uses it."""

    what: str
    option: str
    env: str
    default: int


PORTS = {
    "homeserver": PortSetting(
        "the homeserver (Synapse)", "--homeserver-port", "GUILDS_HOMESERVER_PORT", 8008
    ),
    "appservice": PortSetting(
        "the bridge's appservice listener", "--appservice-port", "GUILDS_APPSERVICE_PORT", 8009
    ),
    "web": PortSetting("the web UI", "--web-port", "GUILDS_WEB_PORT", 8080),
}


class PortInUse(Exception):
    def __init__(self, port: int, setting: PortSetting) -> None:
        super().__init__(
            f"Port {port} is already in use, and {setting.what} needs it.\n"
            f"Stop what is using it, or choose another port: "
            f"`make run {setting.env}=<port>` or `guilds run {setting.option} <port>`."
        )


TURN_PORT_ENV = "GUILDS_TURN_PORT"
JANUS_PORT_ENV = "GUILDS_JANUS_PORT"
DEFAULT_JANUS_PORT = 8188
TURN_HOST_ENV = "GUILDS_TURN_HOST"


@dataclass(frozen=True)
class LocalTurn:
    """A coturn `guilds run` starts beside Synapse, sharing a secret made fresh at each start."""

    port: int
    host: str = "127.0.0.1"
    secret: str = field(default_factory=fresh_turn_secret, repr=False)

    def synapse_settings(self) -> dict[str, object]:
        return synapse_turn_settings(turn_uris(self.host, self.port), self.secret)


def resolve_turn(port_option: int | None, host_option: str | None = None) -> LocalTurn | None:
    """The local coturn asked for by --turn-port or GUILDS_TURN_PORT, if any (port checked free)."""
    port = port_option
    if port is None and os.environ.get(TURN_PORT_ENV):
        try:
            port = int(os.environ[TURN_PORT_ENV])
        except ValueError:
            raise SystemExit(
                f"{TURN_PORT_ENV} must be a port number, not {os.environ[TURN_PORT_ENV]!r}"
            ) from None
    if port is None:
        return None
    if not 1 <= port <= 65535:
        raise SystemExit(f"The TURN port must be between 1 and 65535, not {port}")
    host = host_option or os.environ.get(TURN_HOST_ENV) or "127.0.0.1"
    if not port_free(port, host) or not udp_port_free(port, host):
        raise SystemExit(
            f"Port {port} is already in use, and the local TURN server (coturn) needs it "
            f"(TCP and UDP). Choose another: `make run {TURN_PORT_ENV}=<port>`."
        )
    return LocalTurn(port, host)


def resolve_janus(port_option: int | None, turn: LocalTurn | None) -> LocalJanus | None:
    """The local Janus (the SFU of channel calls), when it is installed; None leaves calls on
    the mesh. Its WebSocket API on --janus-port, GUILDS_JANUS_PORT or 8188, on loopback."""
    if shutil.which("janus") is None:
        print(
            "note: Janus is not installed, so channel calls run peer to peer (up to 8 people); "
            "scripts/ensure-janus.sh installs it.",
            flush=True,
        )
        return None
    port = port_option
    if port is None and os.environ.get(JANUS_PORT_ENV):
        try:
            port = int(os.environ[JANUS_PORT_ENV])
        except ValueError:
            raise SystemExit(
                f"{JANUS_PORT_ENV} must be a port number, not {os.environ[JANUS_PORT_ENV]!r}"
            ) from None
    port = DEFAULT_JANUS_PORT if port is None else port
    if not 1 <= port <= 65535:
        raise SystemExit(f"The Janus port must be between 1 and 65535, not {port}")
    if not port_free(port):
        raise SystemExit(
            f"Port {port} is already in use, and the SFU (Janus) needs it. "
            f"Choose another: `make run {JANUS_PORT_ENV}=<port>`."
        )
    janus_turn = JanusTurn(turn.host, turn.port, turn.secret) if turn is not None else None
    return LocalJanus(port, turn=janus_turn)


def udp_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves bind: connections of a previous run in TIME_WAIT are no
        # conflict, a listening socket is.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def resolve_ports(overrides: dict[str, int | None]) -> dict[str, int]:
    """Ports from the command line, else the environment, else the defaults; all checked free."""
    ports: dict[str, int] = {}
    for name, setting in PORTS.items():
        value = overrides.get(name)
        if value is None and os.environ.get(setting.env):
            try:
                value = int(os.environ[setting.env])
            except ValueError:
                raise SystemExit(
                    f"{setting.env} must be a port number, not {os.environ[setting.env]!r}"
                ) from None
        ports[name] = value if value is not None else setting.default
    if len(set(ports.values())) != len(ports):
        raise SystemExit(f"The homeserver, appservice and web ports must differ: {ports}")
    for name, port in ports.items():
        if not port_free(port):
            raise PortInUse(port, PORTS[name])
    return ports


class Progress:
    """Dots on one line while we wait, so a slow first start does not look hung."""

    def __init__(self, label: str) -> None:
        self._ticks = 0
        print(f"==> {label}", end="", flush=True)

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % 5 == 0:
            print(".", end="", flush=True)

    def done(self, note: str = "ok") -> None:
        print(f" {note}", flush=True)


def make_private(state: Path) -> None:
    """Take group and other permissions off everything in the state folder.

    It holds the signing key, every user's access token (Synapse's database), messages and
    logs. New files are private by umask; this covers those an earlier version created 0644.
    """
    for path in (state, *state.rglob("*")):
        with contextlib.suppress(FileNotFoundError):
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            if mode & 0o077:
                path.chmod(mode & 0o700)


def prepare(
    state: Path,
    ports: dict[str, int],
    turn: LocalTurn | None = None,
    janus: LocalJanus | None = None,
) -> tuple[Homeserver, Path]:
    """Create what is missing in the state folder and rewrite the per-start files."""
    state.mkdir(parents=True, exist_ok=True)
    make_private(state)
    synapse_dir = state / "synapse"
    if not (synapse_dir / "homeserver.yaml").exists():
        print("==> Generating the homeserver configuration (first run)", flush=True)
    generate_base_config(synapse_dir, SERVER_NAME)

    registration_path = state / "registration.yaml"
    appservice_url = f"http://127.0.0.1:{ports['appservice']}"
    tokens = None
    if registration_path.exists():
        old = read_yaml(registration_path)
        tokens = {"as_token": old["as_token"], "hs_token": old["hs_token"]}
    write_yaml(
        registration_path,
        registration(appservice_url, BOT_LOCALPART, SERVER_NAME, tokens=tokens),
        header="Guilds appservice registration for the local stack (secrets: mode 0600).",
        private=True,
    )

    homeserver = Homeserver(synapse_dir, ports["homeserver"], state / "logs" / "synapse.log")
    homeserver.write_overlay(
        overlay(
            server_name=SERVER_NAME,
            port=ports["homeserver"],
            registration_path=registration_path.resolve(),
            bot_localpart=BOT_LOCALPART,
            # The local default lets a newcomer sign up at once; config/ for production does not.
            open_registration=True,
        )
        # Calls get TURN credentials from /voip/turnServer, for the coturn started beside it.
        | (turn.synapse_settings() if turn is not None else {})
    )
    guilds_path = state / "guilds.yaml"
    write_yaml(
        guilds_path,
        guilds_config(
            SERVER_NAME,
            homeserver.url,
            "sqlite:///guilds.db",
            appservice_port=ports["appservice"],
            web_port=ports["web"],
            bot_localpart=BOT_LOCALPART,
            # Metrics for whoever wants to look (`local/guilds.yaml` names the port); a fresh
            # free port each start, so they never stand in the way of the ports people choose.
            metrics_port=free_loopback_port(),
        )
        # The SFU's secrets are made fresh at each start, like Janus's configuration.
        | ({"sfu": janus.guilds_sfu_section()} if janus is not None else {}),
        header="Written by `guilds run` on every start. For your own installation, see config/.",
        private=True,
    )
    return homeserver, guilds_path


def coturn_log(state: Path) -> Path:
    return state / "logs" / "coturn.log"


def spawn_local_turn(state: Path, turn: LocalTurn) -> subprocess.Popen[bytes]:
    """Start coturn without waiting for it (a restart)."""
    return start_coturn(
        port=turn.port,
        secret=turn.secret,
        state_dir=state / "coturn",
        log_path=coturn_log(state),
        realm=SERVER_NAME,
        listen_ip=turn.host,
    )


def start_local_turn(state: Path, turn: LocalTurn) -> subprocess.Popen[bytes]:
    """Start coturn and wait until it listens; RuntimeError (with its log) when it does not."""
    log_path = coturn_log(state)
    proc = spawn_local_turn(state, turn)
    if not wait_until(
        lambda: port_listening_udp_tcp(turn.port, turn.host),
        deadline_s=15,
        alive=lambda: proc.poll() is None,
    ):
        stop(proc)
        raise RuntimeError(f"coturn did not start; the end of {log_path}:\n{tail(log_path)}")
    return proc


def janus_log(state: Path) -> Path:
    return state / "logs" / "janus.log"


def spawn_local_janus(state: Path, janus: LocalJanus) -> subprocess.Popen[bytes]:
    """Start Janus without waiting for it (a restart)."""
    return start_janus(janus, state / "janus", janus_log(state))


def start_local_janus(state: Path, janus: LocalJanus) -> subprocess.Popen[bytes]:
    """Start Janus and wait until its WebSocket API listens; RuntimeError when it does not."""
    proc = spawn_local_janus(state, janus)
    if not wait_until(
        lambda: janus_listening(janus), deadline_s=20, alive=lambda: proc.poll() is None
    ):
        stop(proc)
        raise RuntimeError(
            f"Janus did not start; the end of {janus_log(state)}:\n{tail(janus_log(state))}"
        )
    return proc


def run(
    state: Path,
    port_overrides: dict[str, int | None],
    turn_port: int | None = None,
    turn_host: str | None = None,
    janus_port: int | None = None,
) -> int:
    # Whatever this command and its children write is private (see the module docstring).
    os.umask(PRIVATE_UMASK)
    state = state.resolve()
    try:
        ports = resolve_ports(port_overrides)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    turn = resolve_turn(turn_port, turn_host)
    janus = resolve_janus(janus_port, turn)
    homeserver, guilds_path = prepare(state, ports, turn, janus)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    supervisor = Supervisor()
    try:
        if turn is not None:
            progress = Progress(f"Starting the TURN server (coturn on {turn.host}:{turn.port})")
            try:
                coturn = start_local_turn(state, turn)
            except (CoturnMissing, RuntimeError) as exc:
                progress.done("failed")
                print(f"error: {exc}", file=sys.stderr)
                return 1
            progress.done()
            supervisor.add(
                "coturn", coturn, lambda: spawn_local_turn(state, turn), coturn_log(state)
            )
        if janus is not None:
            progress = Progress(f"Starting the SFU (Janus on {janus.host}:{janus.ws_port})")
            try:
                janus_proc = start_local_janus(state, janus)
            except (JanusMissing, RuntimeError) as exc:
                progress.done("failed")
                print(f"error: {exc}", file=sys.stderr)
                return 1
            progress.done()
            supervisor.add(
                "Janus (the SFU)",
                janus_proc,
                lambda: spawn_local_janus(state, janus),
                janus_log(state),
            )
        return _run_started(state, ports, homeserver, guilds_path, stopping, supervisor)
    finally:
        if stopping.is_set():
            print("\n==> Stopping", flush=True)
        supervisor.stop()
        homeserver.stop()


def start_guilds(
    supervisor: Supervisor,
    guilds_path: Path,
    guilds_log: Path,
    web_url: str,
    stopping: threading.Event,
    progress: Progress,
) -> int | None:
    """Start `guilds serve` under the supervisor and wait until its API answers; None once it
    does, else the exit status of `guilds run` (0 when Ctrl-C came first)."""

    def spawn_guilds() -> subprocess.Popen[bytes]:
        return spawn(
            [sys.executable, "-m", "guildsctl.cli", "serve", "-c", str(guilds_path)],
            log_path=guilds_log,
            cwd=guilds_path.parent,
        )

    guilds = spawn_guilds()
    supervisor.add("The Guilds bridge and web UI", guilds, spawn_guilds, guilds_log)
    ready = wait_until(
        lambda: http_ok(f"{web_url}/_guilds/v1/version") or stopping.is_set(),
        deadline_s=60,
        alive=lambda: guilds.poll() is None,
        tick=progress.tick,
    )
    if ready and not stopping.is_set():
        return None
    progress.done("failed" if not stopping.is_set() else "stopped")
    if stopping.is_set():
        return 0
    print(
        f"error: Guilds did not start; the end of {guilds_log}:\n{tail(guilds_log)}",
        file=sys.stderr,
    )
    return 1


def _run_started(
    state: Path,
    ports: dict[str, int],
    homeserver: Homeserver,
    guilds_path: Path,
    stopping: threading.Event,
    supervisor: Supervisor,
) -> int:
    progress = Progress("Starting Synapse")
    try:
        homeserver.start(tick=progress.tick)
    except RuntimeError as exc:
        progress.done("failed")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    progress.done()
    assert homeserver.proc is not None
    supervisor.add("Synapse", homeserver.proc, homeserver.spawn, homeserver.log_path)

    web_url = f"http://127.0.0.1:{ports['web']}"
    progress = Progress("Starting the Guilds bridge and web UI")
    guilds_log = state / "logs" / "guilds.log"

    failed = start_guilds(supervisor, guilds_path, guilds_log, web_url, stopping, progress)
    if failed is not None:
        return failed
    progress.done()
    print(
        f"Guilds is running: open {web_url}  (logs in {state / 'logs'}; Ctrl-C stops it)",
        flush=True,
    )
    supervisor.run(stopping)
    return 0
