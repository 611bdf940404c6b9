"""`guilds run`: the whole stack on localhost, from a state folder it creates on first use.

Layout of the state folder (git-ignored `local/` by default):

    synapse/homeserver.yaml      Synapse's own generated config (keys, secrets, SQLite path)
    synapse/guilds-overlay.yaml  the Guilds settings, rewritten on every start
    registration.yaml            the application service registration (tokens, mode 0600)
    guilds.yaml                  the bridge and web UI config, rewritten on every start
    guilds.db                    the bridge's database
    logs/                        synapse.log and guilds.log
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from guildsctl.configgen import guilds_config, read_yaml, registration, write_yaml
from guildsctl.synapse import (
    Homeserver,
    generate_base_config,
    http_ok,
    overlay,
    spawn,
    stop,
    tail,
    wait_until,
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


def prepare(state: Path, ports: dict[str, int]) -> tuple[Homeserver, Path]:
    """Create what is missing in the state folder and rewrite the per-start files."""
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
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
        ),
        header="Written by `guilds run` on every start. For your own installation, see config/.",
        private=True,
    )
    return homeserver, guilds_path


def run(state: Path, port_overrides: dict[str, int | None]) -> int:
    state = state.resolve()
    try:
        ports = resolve_ports(port_overrides)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    homeserver, guilds_path = prepare(state, ports)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    progress = Progress("Starting Synapse")
    try:
        homeserver.start(tick=progress.tick)
    except RuntimeError as exc:
        progress.done("failed")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    progress.done()

    web_url = f"http://127.0.0.1:{ports['web']}"
    progress = Progress("Starting the Guilds bridge and web UI")
    guilds = spawn(
        [sys.executable, "-m", "guildsctl.cli", "serve", "-c", str(guilds_path)],
        log_path=state / "logs" / "guilds.log",
        cwd=state,
    )
    try:
        ready = wait_until(
            lambda: http_ok(f"{web_url}/_guilds/v1/version") or stopping.is_set(),
            deadline_s=60,
            alive=lambda: guilds.poll() is None,
            tick=progress.tick,
        )
        if not ready or stopping.is_set():
            progress.done("failed" if not stopping.is_set() else "stopped")
            if not stopping.is_set():
                log = tail(state / "logs" / "guilds.log")
                print(f"error: Guilds did not start; the end of its log:\n{log}", file=sys.stderr)
                return 1
            return 0
        progress.done()
        print(
            f"Guilds is running: open {web_url}  (logs in {state / 'logs'}; Ctrl-C stops it)",
            flush=True,
        )
        while not stopping.wait(0.5):
            if guilds.poll() is not None:
                print(
                    f"error: the Guilds process exited; see {state / 'logs' / 'guilds.log'}",
                    file=sys.stderr,
                )
                return 1
            if homeserver.proc is not None and homeserver.proc.poll() is not None:
                print(f"error: Synapse exited; see {homeserver.log_path}", file=sys.stderr)
                return 1
        print("\n==> Stopping", flush=True)
        return 0
    finally:
        stop(guilds)
        homeserver.stop()
