"""Synapse's base config for a test homeserver, without a Synapse process per stack.

`guildsctl.synapse.generate_base_config` runs `synapse.app.homeserver --generate-config`: a
Python process that imports Synapse to write three files (about 2 s of CPU here, 14 s of wall
time on the loaded machine). A session starts a dozen or more test homeservers, so the harness
lets Synapse generate its config once per process and gives every other homeserver a copy of
it with its own folder's paths, server name, secrets and signing key (what differs between two
generated configs). `guilds run` and tests/integration/test_startup_config.py still use
Synapse's generator itself.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import signedjson.key

from guildsctl.configgen import read_yaml, write_yaml
from guildsctl.synapse import generate_base_config

_TEMPLATE_NAME = "template.localhost"
_template: Path | None = None


def _generated() -> Path:
    """The folder of the config Synapse generated for this process (once)."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="guilds-synapse-base-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        generate_base_config(folder, _TEMPLATE_NAME)
        _template = folder
    return _template


def base_config(config_dir: Path, server_name: str) -> Path:
    """Like `generate_base_config(config_dir, server_name)`: homeserver.yaml (0600), the log
    config it names and a fresh signing key in `config_dir`; kept as is when already there."""
    config_dir = config_dir.resolve()
    config_path = config_dir / "homeserver.yaml"
    if config_path.exists():
        return config_path
    template = _generated()
    config_dir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = read_yaml(template / "homeserver.yaml")
    log_config = config_dir / f"{server_name}.log.config"
    # Its file handler writes into the folder (the overlay names a log config of its own).
    text = (template / f"{_TEMPLATE_NAME}.log.config").read_text(encoding="utf-8")
    log_config.write_text(text.replace(str(template), str(config_dir)), encoding="utf-8")
    signing_key = config_dir / f"{server_name}.signing.key"
    key = signedjson.key.generate_signing_key(f"a_{secrets.token_hex(2)}")
    fd = os.open(signing_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        signedjson.key.write_signing_keys(out, [key])
    settings |= {
        "server_name": server_name,
        "pid_file": str(config_dir / "homeserver.pid"),
        "database": {"name": "sqlite3", "args": {"database": str(config_dir / "homeserver.db")}},
        "log_config": str(log_config),
        "media_store_path": str(config_dir / "media_store"),
        "signing_key_path": str(signing_key),
        # The secrets Synapse generates: each homeserver its own, as the generator would do.
        "registration_shared_secret": secrets.token_urlsafe(36),
        "macaroon_secret_key": secrets.token_urlsafe(36),
        "form_secret": secrets.token_urlsafe(36),
    }
    write_yaml(config_path, settings, private=True)
    return config_path
