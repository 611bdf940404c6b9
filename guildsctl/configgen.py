"""Writes the three configuration files an installation needs, with fresh random secrets.

The same functions serve `guilds generate-config` (for an admin's existing Synapse),
`guilds run` (the local stack) and the test harness, so the files they write cannot drift.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from guilds.config import ModulePolicies, module_policies_block
from guilds.ids import user_id

APPSERVICE_ID = "guilds"
MODULE_PATH = "synapse_module.GuildsModule"
BRIDGE_ALIAS_PREFIX = "_guilds_"


def fresh_token() -> str:
    # Hex, so a generated token can never contain a placeholder marker by chance.
    return secrets.token_hex(32)


def registration(
    url: str, bot_localpart: str, server_name: str, *, tokens: dict[str, str] | None = None
) -> dict[str, Any]:
    """The application service registration Synapse and the bridge both read."""
    tokens = tokens or {"as_token": fresh_token(), "hs_token": fresh_token()}
    return {
        "id": APPSERVICE_ID,
        "url": url,
        "as_token": tokens["as_token"],
        "hs_token": tokens["hs_token"],
        "sender_localpart": bot_localpart,
        "namespaces": {
            "users": [{"exclusive": True, "regex": re.escape(f"@{bot_localpart}:{server_name}")}],
            # Room aliases the bridge reserves for itself, e.g. to make room creation idempotent.
            "aliases": [{"exclusive": True, "regex": "#" + re.escape(BRIDGE_ALIAS_PREFIX) + ".*"}],
            "rooms": [],
        },
        "rate_limited": False,
        "receive_ephemeral": False,
    }


def homeserver_snippet(
    server_name: str,
    registration_path: Path | str,
    bot_localpart: str,
    *,
    policies: ModulePolicies | None = None,
) -> dict[str, Any]:
    """What an admin adds to an existing Synapse configuration for Guilds.

    `policies` are the module's share of guilds.yaml's `policies:`; write the snippet again
    when they change and restart Synapse, which reads them at start-up.
    """
    module_config: dict[str, Any] = {
        "bot_user_id": user_id(bot_localpart, server_name),
    }
    if policies is not None and policies != ModulePolicies():
        module_config["policies"] = module_policies_block(policies)
    return {
        "modules": [{"module": MODULE_PATH, "config": module_config}],
        "app_service_config_files": [str(registration_path)],
        # Restricted join rules (channels) need room version 10 or later.
        "default_room_version": "12",
        # Channels are shared with a whole server and read by the bridge: not end-to-end encrypted.
        "encryption_enabled_by_default_for_room_type": "off",
        # Delayed events (MSC4140): a call member schedules its own leave, so a closed tab is
        # out of the voice channel within seconds (docs/CALLS.md). Up to a day, as Element Call
        # asks; each push-back of the leave is one management request.
        "max_event_delay_duration": "24h",
        "rc_delayed_event_mgmt": {"per_second": 1, "burst_count": 20},
    }


def guilds_config(
    server_name: str,
    homeserver_url: str,
    database_url: str,
    *,
    registration_file: str = "registration.yaml",
    public_homeserver_url: str | None = None,
    appservice_port: int = 8009,
    web_port: int = 8080,
    web_public_url: str | None = None,
    bot_localpart: str = "guilds",
    log_level: str = "INFO",
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """The bridge's and web UI's `guilds.yaml`; with `metrics_port`, metrics on loopback."""
    web: dict[str, Any] = {
        "enabled": True,
        "listen": {"host": "127.0.0.1", "port": web_port},
        "brand_name": "Guilds",
    }
    if web_public_url:
        web["public_url"] = web_public_url
    config: dict[str, Any] = {
        "homeserver": {
            "server_name": server_name,
            "url": homeserver_url,
            "public_url": public_homeserver_url or homeserver_url,
        },
        "appservice": {
            "listen": {"host": "127.0.0.1", "port": appservice_port},
            "bot_localpart": bot_localpart,
            "bot_displayname": "Guilds",
            "registration": registration_file,
        },
        "database": database_url,
        "web": web,
        "log_level": log_level,
    }
    if metrics_port is not None:
        config["metrics"] = {"enabled": True, "listen": {"host": "127.0.0.1", "port": metrics_port}}
    return config


def write_yaml(
    path: Path, data: dict[str, Any], *, header: str = "", private: bool = False
) -> None:
    """Write YAML atomically; private files (holding secrets) are created with mode 0600.

    Other files get 0644 less the umask, so under `guilds run` (umask 077) they are private too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by an interrupted write, with whatever mode it had
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if header:
            f.write("".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()))
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=False)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def write_installation(
    out_dir: Path,
    server_name: str,
    homeserver_url: str,
    database_url: str,
    *,
    public_homeserver_url: str | None = None,
    appservice_url: str = "http://127.0.0.1:8009",
    web_public_url: str | None = None,
    bot_localpart: str = "guilds",
    force: bool = False,
) -> list[Path]:
    """`guilds generate-config`: the snippet, the registration and guilds.yaml for one server."""
    paths = {
        "snippet": out_dir / "homeserver-guilds.yaml",
        "registration": out_dir / "registration.yaml",
        "guilds": out_dir / "guilds.yaml",
    }
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(", ".join(str(p) for p in existing))
    port = _port_of(appservice_url)
    write_yaml(
        paths["registration"],
        registration(appservice_url, bot_localpart, server_name),
        header="Guilds application service registration. Holds secrets: keep it private.\n"
        "List this file in Synapse's app_service_config_files; guilds.yaml points to it too.",
        private=True,
    )
    write_yaml(
        paths["snippet"],
        homeserver_snippet(server_name, paths["registration"].resolve(), bot_localpart),
        header="Add these settings to your Synapse homeserver.yaml (or pass this file as a\n"
        "second -c config file). See config/homeserver-guilds.yaml for what each does.",
    )
    write_yaml(
        paths["guilds"],
        guilds_config(
            server_name,
            homeserver_url,
            database_url,
            registration_file=paths["registration"].name,
            public_homeserver_url=public_homeserver_url,
            appservice_port=port,
            web_public_url=web_public_url,
            bot_localpart=bot_localpart,
        ),
        header="Guilds bridge and web UI configuration.\n"
        "See config/guilds.yaml.example for every option.",
        private=True,
    )
    return list(paths.values())


def _port_of(url: str) -> int:
    parts = urlsplit(url)
    if parts.port:
        return parts.port
    return 443 if parts.scheme == "https" else 80
