"""Wrong configuration stops the real processes at start-up, naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from guildsctl.configgen import guilds_config, registration, write_yaml
from guildsctl.synapse import Homeserver, generate_base_config, overlay
from tests.harness.stack import BOT_LOCALPART, SERVER_NAME, free_port


def test_synapse_refuses_a_bad_module_config(tmp_path: Path) -> None:
    generate_base_config(tmp_path / "synapse", SERVER_NAME)
    registration_path = tmp_path / "registration.yaml"
    write_yaml(
        registration_path,
        registration("http://127.0.0.1:9", BOT_LOCALPART, SERVER_NAME),
        private=True,
    )
    homeserver = Homeserver(tmp_path / "synapse", free_port(), tmp_path / "synapse.log")
    config = overlay(
        server_name=SERVER_NAME,
        port=homeserver.port,
        registration_path=registration_path,
        bot_localpart=BOT_LOCALPART,
        open_registration=False,
    )
    config["modules"][0]["config"] = {"bot_user_id": "not-a-user-id"}
    homeserver.write_overlay(config)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "synapse.app.homeserver",
            "-c",
            str(homeserver.base_config),
            "-c",
            str(homeserver.overlay_config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "bot_user_id" in output and "not a Matrix user id" in output


def test_serve_refuses_placeholder_tokens_and_bad_values(tmp_path: Path) -> None:
    reg = registration("http://127.0.0.1:9", BOT_LOCALPART, SERVER_NAME)
    reg["hs_token"] = "CHANGE_ME_generate_with_guilds_generate_config_too"
    write_yaml(tmp_path / "registration.yaml", reg, private=True)
    config = guilds_config(SERVER_NAME, "http://127.0.0.1:9", "sqlite:///guilds.db")
    config["web"]["listen"]["port"] = 123456
    (tmp_path / "guilds.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "guildsctl.cli", "serve", "-c", str(tmp_path / "guilds.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "appservice.registration" in result.stderr and "placeholder" in result.stderr
    assert "web.listen.port" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was created before the configuration was known to be good.
    assert not (tmp_path / "guilds.db").exists()
