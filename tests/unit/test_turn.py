"""TURN for calls: the coturn command line, Synapse's settings, and `guilds run`'s local coturn."""

from __future__ import annotations

import re
import socket
import stat
from pathlib import Path

import pytest
import yaml

from guildsctl import run as run_module
from guildsctl.cli import main
from guildsctl.run import LocalTurn, prepare, resolve_turn
from guildsctl.turn import (
    CoturnMissing,
    coturn_args,
    synapse_turn_settings,
    turn_uris,
    write_secret_file,
)


def test_synapse_settings_name_the_uris_and_the_shared_secret() -> None:
    settings = synapse_turn_settings(turn_uris("turn.example.org", 3478), "s" * 64)
    assert settings["turn_uris"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
    ]
    assert settings["turn_shared_secret"] == "s" * 64
    assert settings["turn_allow_guests"] is False
    assert settings["turn_user_lifetime"] > 0


def test_coturn_checks_synapse_credentials_with_the_same_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    secret_file = write_secret_file(tmp_path, "abc123")
    args = coturn_args(port=3478, secret_file=secret_file, state_dir=tmp_path, realm="localhost")
    assert args[0] == "/usr/bin/turnserver"
    assert "--use-auth-secret" in args
    assert args[args.index("-c") + 1] == str(secret_file)
    # The secret is in the owner-only file, never on the command line (`ps` shows that).
    assert not any("abc123" in arg for arg in args)
    assert secret_file.read_text() == "static-auth-secret=abc123\n"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "--listening-port=3478" in args
    assert "--listening-ip=127.0.0.1" in args and "--relay-ip=127.0.0.1" in args
    assert "--allow-loopback-peers" in args
    assert f"--pidfile={tmp_path / 'turnserver.pid'}" in args


def test_missing_coturn_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(CoturnMissing, match="ensure-coturn.sh"):
        coturn_args(
            port=3478, secret_file=tmp_path / "t.conf", state_dir=tmp_path, realm="localhost"
        )


def test_no_turn_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUILDS_TURN_PORT", raising=False)
    assert resolve_turn(None) is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_turn_port_from_the_environment_gets_a_fresh_secret_each_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("GUILDS_TURN_PORT", str(port))
    first, second = resolve_turn(None), resolve_turn(None)
    assert first is not None and second is not None
    assert first.port == port and first.host == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{64}", first.secret)
    assert first.secret != second.secret
    assert first.secret not in repr(first)


def test_bad_or_busy_turn_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUILDS_TURN_PORT", "turn")
    with pytest.raises(SystemExit, match="GUILDS_TURN_PORT must be a port number"):
        resolve_turn(None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit, match="already in use"):
            resolve_turn(port)


def test_guilds_run_gives_synapse_the_local_coturn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Synapse's own base config is not this test's business (it is slow to generate).
    monkeypatch.setattr(
        run_module, "generate_base_config", lambda d, name: d.mkdir(parents=True, exist_ok=True)
    )
    ports = {"homeserver": 18008, "appservice": 18009, "web": 18080}
    turn = LocalTurn(3479)
    homeserver, _ = prepare(tmp_path / "with", ports, turn)
    overlay = yaml.safe_load(homeserver.overlay_config.read_text())
    assert overlay["turn_uris"] == turn_uris("127.0.0.1", 3479)
    assert overlay["turn_shared_secret"] == turn.secret

    homeserver, _ = prepare(tmp_path / "without", ports)
    overlay = yaml.safe_load(homeserver.overlay_config.read_text())
    assert "turn_uris" not in overlay and "turn_shared_secret" not in overlay


def test_the_workers_profile_refuses_a_local_turn_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "--profile", "workers", "--turn-port", "3478", "--state-dir", str(tmp_path)]
    )
    assert code == 2
    assert "turn_uris + turn_shared_secret" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was started or written
