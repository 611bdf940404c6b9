"""Runs a local Synapse for `guilds run` and the tests: generated config, overlay, process.

Synapse's own `--generate-config` writes the base file once (signing key, macaroon and
registration secrets, SQLite path); everything Guilds needs goes into a second config file,
the overlay, rewritten on every start and passed after the base with another `-c`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guilds.config import ModulePolicies
from guildsctl.configgen import homeserver_snippet, read_yaml, write_yaml

# Rate limits lifted for tests only; the local and production configs keep Synapse's defaults.
TEST_RATE_LIMITS: dict[str, Any] = {
    name: {"per_second": 10000, "burst_count": 10000}
    for name in (
        "rc_message",
        "rc_registration",
        "rc_joins_per_room",
        "rc_room_creation",
        "rc_admin_redaction",
        "rc_media_create",
        "rc_profile",
        "rc_3pid_validation",
        "rc_third_party_invite",
        "rc_delayed_event_mgmt",
        "rc_reports",
        "rc_user_directory",
        "rc_key_requests",
    )
}
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}
TEST_RATE_LIMITS |= {
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_presence": {"per_user": _UNLIMITED},
}


def generate_base_config(config_dir: Path, server_name: str) -> Path:
    """Let Synapse write its own base config (keys and secrets) once; return its path."""
    config_dir = config_dir.resolve()
    config_path = config_dir / "homeserver.yaml"
    if config_path.exists():
        return config_path
    config_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "synapse.app.homeserver",
            "--server-name",
            server_name,
            "--config-path",
            str(config_path),
            "--data-directory",
            str(config_dir),
            "--generate-config",
            "--report-stats=no",
        ],
        check=True,
        cwd=config_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.chmod(config_path, 0o600)
    return config_path


def postgres_database(
    name: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres"
) -> dict[str, Any]:
    return {
        "name": "psycopg2",
        "args": {
            "user": user,
            "host": host,
            "port": port,
            "database": name,
            "cp_min": 1,
            "cp_max": 5,
        },
    }


def overlay(
    *,
    server_name: str,
    port: int,
    registration_path: Path,
    bot_localpart: str,
    open_registration: bool,
    database: dict[str, Any] | None = None,
    for_tests: bool = False,
    policies: ModulePolicies | None = None,
) -> dict[str, Any]:
    """The Guilds part of a local Synapse's configuration."""
    config: dict[str, Any] = {
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "enable_registration": open_registration,
        "enable_registration_without_verification": open_registration,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "report_stats": False,
        "url_preview_enabled": False,
        "presence": {"enabled": True},
    }
    config |= homeserver_snippet(server_name, registration_path, bot_localpart, policies=policies)
    if database is not None:
        config["database"] = database
    if for_tests:
        config |= TEST_RATE_LIMITS
        config["bcrypt_rounds"] = 4
    return config


# What the children write — Synapse's database and media store, the bridge's database, their
# logs — holds tokens and users' messages: readable by their owner only (files 0600, dirs 0700).
PRIVATE_UMASK = 0o077


def _child_setup() -> None:
    os.umask(PRIVATE_UMASK)
    # Linux: the child gets SIGTERM if the process that started it dies, even by SIGKILL,
    # so a crashed launcher or test run never leaves an orphaned homeserver behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def open_private_log(log_path: Path) -> int:
    """Open (create) a log for appending, readable by its owner only; return the descriptor."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.chmod(0o700)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # a log an earlier version created 0644
    return fd


def stdout_log_config() -> dict[str, Any]:
    """Synapse logs to its standard output, which its launcher writes to the log it names."""
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                " - %(request)s - %(message)s"
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "precise",
                "stream": "ext://sys.stdout",
            }
        },
        # DEBUG on this logger would log access tokens.
        "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "disable_existing_loggers": False,
    }


def spawn(
    args: list[str], *, log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own session (Ctrl-C goes to us, and we stop it in order).

    Its output goes to `log_path` (mode 0600), and it runs with umask 077.
    """
    log = open_private_log(log_path)
    try:
        return subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_child_setup,  # noqa: PLW1509 - only umask and prctl
            env=env,
        )
    finally:
        os.close(log)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; always reaps the child."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own http URL
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    deadline_s: float,
    alive: Callable[[], bool] = lambda: True,
    tick: Callable[[], None] | None = None,
) -> bool:
    """Poll `check` until it holds, the deadline passes or `alive` says the process died."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return True
        if not alive():
            return False
        if tick is not None:
            tick()
        time.sleep(0.1)
    return check()


@dataclass
class Homeserver:
    """A Synapse process started from a base config plus the Guilds overlay."""

    config_dir: Path
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_config(self) -> Path:
        return self.config_dir / "homeserver.yaml"

    @property
    def overlay_config(self) -> Path:
        return self.config_dir / "guilds-overlay.yaml"

    @property
    def log_config(self) -> Path:
        return self.config_dir / "log.yaml"

    def write_overlay(self, data: dict[str, Any]) -> None:
        """Write the overlay; unless it names a log_config, Synapse logs to `log_path`."""
        if "log_config" not in data:
            write_yaml(
                self.log_config,
                stdout_log_config(),
                header="Written by Guilds: Synapse logs to its output, which goes to one file.",
            )
            data = data | {"log_config": str(self.log_config)}
        write_yaml(
            self.overlay_config,
            data,
            header="Written by Guilds on every start: change homeserver.yaml instead.",
            private=True,
        )

    def registration_shared_secret(self) -> str:
        secret = read_yaml(self.base_config).get("registration_shared_secret")
        if not isinstance(secret, str):
            raise RuntimeError(f"{self.base_config} has no registration_shared_secret")
        return secret

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (`start` waits; a restart does not)."""
        args = [
            sys.executable,
            "-m",
            "synapse.app.homeserver",
            "-c",
            str(self.base_config),
            "-c",
            str(self.overlay_config),
        ]
        self.proc = spawn(args, log_path=self.log_path, cwd=self.config_dir)
        return self.proc

    def start(self, *, deadline_s: float = 60.0, tick: Callable[[], None] | None = None) -> None:
        self.spawn()
        ready = wait_until(
            lambda: http_ok(f"{self.url}/_matrix/client/versions"),
            deadline_s=deadline_s,
            alive=lambda: self.proc is not None and self.proc.poll() is None,
            tick=tick,
        )
        if not ready:
            self.stop()
            raise RuntimeError(
                f"Synapse did not start; the end of {self.log_path}:\n{tail(self.log_path)}"
            )

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
