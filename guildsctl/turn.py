"""A local TURN server (coturn) for calls, and the Synapse settings that hand it to clients.

Clients ask the homeserver for ICE servers (`GET /_matrix/client/v3/voip/turnServer`); Synapse
answers with short-lived credentials derived from `turn_shared_secret` (coturn's "TURN REST API"
scheme: username `<expiry>:<user>`, password `base64(HMAC-SHA1(secret, username))`), which coturn
checks with the same secret (`--use-auth-secret --static-auth-secret`). `guilds run` starts one
on localhost when `GUILDS_TURN_PORT` (or `--turn-port`) asks for it; the test harness starts one
for the relay-only call test. Beyond localhost, see the README's "Calls beyond localhost: TURN".
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from guildsctl.synapse import spawn

TURNSERVER = "turnserver"
# Credentials Synapse hands out stay valid this long (Synapse's own default is one hour).
TURN_USER_LIFETIME_MS = 86_400_000


class CoturnMissing(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "coturn's `turnserver` is not installed: run scripts/ensure-coturn.sh "
            "(or `sudo apt-get install -y coturn`)"
        )


def fresh_turn_secret() -> str:
    return secrets.token_hex(32)


def turn_uris(host: str, port: int) -> list[str]:
    """The TURN URIs for one coturn listener, UDP first (what browsers try first)."""
    return [f"turn:{host}:{port}?transport=udp", f"turn:{host}:{port}?transport=tcp"]


def synapse_turn_settings(uris: list[str], secret: str) -> dict[str, Any]:
    """What Synapse's configuration needs so that /voip/turnServer answers with credentials."""
    return {
        "turn_uris": uris,
        "turn_shared_secret": secret,
        "turn_user_lifetime": TURN_USER_LIFETIME_MS,
        # Guests get no TURN credentials: relaying costs bandwidth.
        "turn_allow_guests": False,
    }


def write_secret_file(state_dir: Path, secret: str) -> Path:
    """coturn's configuration file holding the shared secret, readable by its owner only.

    The secret stays off the command line, where any local user could read it in `ps`.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "turnserver.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(f"static-auth-secret={secret}\n")
    os.chmod(path, 0o600)
    return path


def coturn_args(
    *, port: int, secret_file: Path, state_dir: Path, realm: str, listen_ip: str = "127.0.0.1"
) -> list[str]:
    """The command line of a coturn that relays on `listen_ip` only, with Synapse's secret.

    The secret comes from `secret_file` (see `write_secret_file`). `--allow-loopback-peers`
    lets it relay between peers on 127.0.0.1 (both ends of a local call); a public deployment
    leaves it out.
    """
    binary = shutil.which(TURNSERVER)
    if binary is None:
        raise CoturnMissing()
    return [
        binary,
        "-c",
        str(secret_file),
        f"--listening-ip={listen_ip}",
        f"--relay-ip={listen_ip}",
        f"--listening-port={port}",
        "--use-auth-secret",
        f"--realm={realm}",
        "--allow-loopback-peers",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--fingerprint",
        f"--pidfile={state_dir / 'turnserver.pid'}",
        f"--userdb={state_dir / 'turndb'}",
        "--log-file=stdout",
        "--simple-log",
    ]


def port_listening_udp_tcp(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on the port (coturn listens on both)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start_coturn(
    *,
    port: int,
    secret: str,
    state_dir: Path,
    log_path: Path,
    realm: str,
    listen_ip: str = "127.0.0.1",
) -> subprocess.Popen[bytes]:
    """Spawn coturn (supervised like Synapse: own session, dies with its parent)."""
    secret_file = write_secret_file(state_dir, secret)
    args = coturn_args(
        port=port, secret_file=secret_file, state_dir=state_dir, realm=realm, listen_ip=listen_ip
    )
    return spawn(args, log_path=log_path, cwd=state_dir)
