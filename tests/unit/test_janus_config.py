"""The configuration folder `guilds run` writes for Janus (guildsctl/janus.py)."""

from __future__ import annotations

import stat
from pathlib import Path

from guildsctl.janus import UNUSED_PLUGINS, UNUSED_TRANSPORTS, JanusTurn, LocalJanus, write_config


def test_only_the_videoroom_on_loopback_with_signed_tokens_and_private_files(
    tmp_path: Path,
) -> None:
    janus = LocalJanus(18188, turn=JanusTurn("127.0.0.1", 3478, "s" * 64))
    write_config(janus, tmp_path / "janus")
    folder = tmp_path / "janus"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    core = (folder / "janus.jcfg").read_text()
    assert "token_auth = true" in core and f'token_auth_secret = "{janus.token_secret}"' in core
    # Every plugin and transport Debian ships but the VideoRoom and WebSockets is disabled.
    assert "libjanus_videoroom.so" not in core and "libjanus_websockets.so" not in core
    for name in (*UNUSED_PLUGINS, *UNUSED_TRANSPORTS):
        assert name in core
    # Janus's own TURN credential, from coturn's shared secret (never the secret itself).
    assert 'turn_server = "127.0.0.1"' in core and "s" * 64 not in core
    transport = (folder / "janus.transport.websockets.jcfg").read_text()
    assert 'ws_ip = "127.0.0.1"' in transport and "ws_port = 18188" in transport
    assert "admin_ws = false" in transport and "admin_wss = false" in transport
    videoroom = (folder / "janus.plugin.videoroom.jcfg").read_text()
    assert f'admin_key = "{janus.admin_key}"' in videoroom and "string_ids = true" in videoroom
    # No static rooms: only the bridge creates them.
    assert "room-" not in videoroom


def test_each_start_has_fresh_secrets() -> None:
    one, two = LocalJanus(1), LocalJanus(1)
    assert one.token_secret != two.token_secret and one.admin_key != two.admin_key
    assert one.token_secret not in repr(one)


def test_the_audiobridge_stays_off_unless_asked(tmp_path: Path) -> None:
    write_config(LocalJanus(18188), tmp_path / "off")
    assert "libjanus_audiobridge.so" in (tmp_path / "off" / "janus.jcfg").read_text()
    assert not (tmp_path / "off" / "janus.plugin.audiobridge.jcfg").exists()


def test_the_audiobridge_when_asked_is_locked_like_the_videoroom(tmp_path: Path) -> None:
    janus = LocalJanus(18188, audiobridge=True)
    folder = tmp_path / "janus"
    write_config(janus, folder)
    core = (folder / "janus.jcfg").read_text()
    assert "libjanus_audiobridge.so" not in core
    # Everything else stays off, and so do the admin API and unsigned access.
    for name in UNUSED_PLUGINS:
        if name != "libjanus_audiobridge.so":
            assert name in core
    assert "token_auth = true" in core
    assert "admin_ws = false" in (folder / "janus.transport.websockets.jcfg").read_text()
    bridge = folder / "janus.plugin.audiobridge.jcfg"
    assert stat.S_IMODE(bridge.stat().st_mode) == 0o600
    text = bridge.read_text()
    assert f'admin_key = "{janus.admin_key}"' in text and "string_ids = true" in text
    assert "lock_rtp_forward = true" in text and "lock_play_file = true" in text
    assert "room-" not in text
    # Written again without it, the plugin is off and its file gone.
    write_config(LocalJanus(18188), folder)
    assert not bridge.exists()
