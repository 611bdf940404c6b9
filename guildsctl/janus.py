"""A local Janus WebRTC Server, the SFU of channel calls: its configuration folder, its process.

Janus runs with a configuration folder of its own (`-F`), never `/etc/janus`, written fresh on
every start and readable by its owner only (it holds the token and admin secrets):

- Only the VideoRoom plugin and the WebSocket transport load; every other plugin, transport,
  event handler and logger shipped by Debian is disabled by name. The AudioBridge (a mixer) loads
  only when asked (`LocalJanus(audiobridge=True)`: bench/voice_sfu.py compares it with the
  VideoRoom for voice; docs/CALLS.md), under the same rules: rooms made only with its
  `admin_key`, and the core's signed tokens name the plugin a session may attach to, so a token
  the bridge signs for the VideoRoom does not open the AudioBridge.
- The WebSocket API listens on `host:ws_port` (loopback by default). Its admin API is off: rooms
  are created and members kicked through the VideoRoom plugin's own requests, which need the
  plugin's `admin_key` (room creation) and each room's secret (kick), both known only to the
  bridge. No admin port exists for a client to reach.
- `token_auth` with `token_auth_secret`: every request to Janus needs a token signed by the
  bridge with that secret (HMAC-SHA1, Janus's "signed tokens"), which names the VideoRoom plugin
  and, for joining, the one room it opens, and expires. See bridge/services/sfu.py.
- TURN: when a local coturn runs, Janus gathers relay candidates from it with a credential made
  from coturn's shared secret (the same TURN REST scheme Synapse uses for clients).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from guildsctl.synapse import spawn

JANUS = "janus"
# Debian's layout of the shared objects Janus loads.
LIB_DIR = Path("/usr/lib/x86_64-linux-gnu/janus")
# Everything Debian ships that the SFU does not use; Janus refuses nothing it is not told to.
UNUSED_PLUGINS = (
    "libjanus_audiobridge.so",
    "libjanus_duktape.so",
    "libjanus_echotest.so",
    "libjanus_lua.so",
    "libjanus_nosip.so",
    "libjanus_recordplay.so",
    "libjanus_sip.so",
    "libjanus_streaming.so",
    "libjanus_textroom.so",
    "libjanus_videocall.so",
    "libjanus_voicemail.so",
)
UNUSED_TRANSPORTS = (
    "libjanus_http.so",
    "libjanus_mqtt.so",
    "libjanus_nanomsg.so",
    "libjanus_pfunix.so",
    "libjanus_rabbitmq.so",
)
UNUSED_EVENT_HANDLERS = (
    "libjanus_gelfevh.so",
    "libjanus_mqttevh.so",
    "libjanus_nanomsgevh.so",
    "libjanus_rabbitmqevh.so",
    "libjanus_sampleevh.so",
    "libjanus_wsevh.so",
)
# Janus's own TURN credential lasts this long; it is made again at each start.
TURN_CREDENTIAL_S = 7 * 86400
DEFAULT_RTP_PORTS = (20000, 40000)


class JanusMissing(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "Janus (`janus`) is not installed: run scripts/ensure-janus.sh "
            "(or `sudo apt-get install -y janus`)"
        )


def fresh_secret() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True)
class JanusTurn:
    """The coturn Janus gathers relay candidates from, and coturn's shared secret."""

    host: str
    port: int
    secret: str = field(repr=False)

    def credential(self, now: float | None = None) -> tuple[str, str]:
        """A TURN REST API credential: `<expiry>:janus`, base64(HMAC-SHA1(secret, username))."""
        expiry = int((time.time() if now is None else now) + TURN_CREDENTIAL_S)
        username = f"{expiry}:janus"
        digest = hmac.new(self.secret.encode(), username.encode(), hashlib.sha1).digest()
        return username, base64.b64encode(digest).decode()


@dataclass(frozen=True)
class LocalJanus:
    """One local Janus: where its WebSocket API listens, and the secrets it shares with the
    bridge (`token_secret` signs client tokens, `admin_key` lets the bridge create rooms)."""

    ws_port: int
    host: str = "127.0.0.1"
    token_secret: str = field(default_factory=fresh_secret, repr=False)
    admin_key: str = field(default_factory=fresh_secret, repr=False)
    rtp_ports: tuple[int, int] = DEFAULT_RTP_PORTS
    turn: JanusTurn | None = None
    audiobridge: bool = False
    # A session with no request Janus took for this long is ended (a `timeout` event on its
    # WebSocket): a tab that vanished is out of the room; clients send a keepalive every 15 s.
    session_timeout_s: int = 45

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    def guilds_sfu_section(self, public_url: str | None = None) -> dict[str, object]:
        """guilds.yaml's `sfu:` for this Janus (the bridge reaches it, browsers too)."""
        return {
            "janus": {
                "url": self.ws_url,
                "public_url": public_url or self.ws_url,
                "token_secret": self.token_secret,
                "admin_key": self.admin_key,
            }
        }


def _quote(value: str) -> str:
    """A jcfg (libconfig) string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


AUDIOBRIDGE = "libjanus_audiobridge.so"


def disabled_plugins(settings: LocalJanus) -> tuple[str, ...]:
    if settings.audiobridge:
        return tuple(name for name in UNUSED_PLUGINS if name != AUDIOBRIDGE)
    return UNUSED_PLUGINS


def janus_config(settings: LocalJanus, config_dir: Path) -> str:
    """`janus.jcfg`: the core, with token authentication and no admin API."""
    lo, hi = settings.rtp_ports
    nat = ["\tnice_debug = false", "\tignore_mdns = true"]
    if settings.turn is not None:
        user, password = settings.turn.credential()
        nat += [
            f"\tturn_server = {_quote(settings.turn.host)}",
            f"\tturn_port = {settings.turn.port}",
            '\tturn_type = "udp"',
            f"\tturn_user = {_quote(user)}",
            f"\tturn_pwd = {_quote(password)}",
        ]
    return "\n".join(
        [
            "general: {",
            f"\tconfigs_folder = {_quote(str(config_dir))}",
            f"\tplugins_folder = {_quote(str(LIB_DIR / 'plugins'))}",
            f"\ttransports_folder = {_quote(str(LIB_DIR / 'transports'))}",
            f"\tevents_folder = {_quote(str(LIB_DIR / 'events'))}",
            f"\tloggers_folder = {_quote(str(LIB_DIR / 'loggers'))}",
            "\tdebug_level = 4",
            "\tdebug_timestamps = true",
            "\tdebug_colors = false",
            # Every request carries a token the bridge signed (see the module docstring).
            "\ttoken_auth = true",
            f"\ttoken_auth_secret = {_quote(settings.token_secret)}",
            # Required by Janus even with its admin API off; random, and used by nobody.
            f"\tadmin_secret = {_quote(fresh_secret())}",
            f"\tsession_timeout = {settings.session_timeout_s}",
            "\thide_dependencies = true",
            '\tserver_name = "guilds-sfu"',
            "}",
            "media: {",
            f'\trtp_port_range = "{lo}-{hi}"',
            "}",
            "nat: {",
            *nat,
            "}",
            "plugins: {",
            f"\tdisable = {_quote(','.join(disabled_plugins(settings)))}",
            "}",
            "transports: {",
            f"\tdisable = {_quote(','.join(UNUSED_TRANSPORTS))}",
            "}",
            "events: {",
            "\tbroadcast = false",
            f"\tdisable = {_quote(','.join(UNUSED_EVENT_HANDLERS))}",
            "}",
            "loggers: {",
            '\tdisable = "libjanus_jsonlog.so"',
            "}",
            "",
        ]
    )


def websockets_config(settings: LocalJanus) -> str:
    """`janus.transport.websockets.jcfg`: the client API on one address, no admin API."""
    return "\n".join(
        [
            "general: {",
            '\tjson = "plain"',
            "\tws = true",
            f"\tws_port = {settings.ws_port}",
            f"\tws_ip = {_quote(settings.host)}",
            "\twss = false",
            "}",
            "admin: {",
            "\tadmin_ws = false",
            "\tadmin_wss = false",
            "}",
            "",
        ]
    )


def videoroom_config(settings: LocalJanus) -> str:
    """`janus.plugin.videoroom.jcfg`: no static rooms; only the bridge (with `admin_key`)
    creates rooms; room and participant ids are strings the bridge chooses."""
    return "\n".join(
        [
            "general: {",
            f"\tadmin_key = {_quote(settings.admin_key)}",
            "\tlock_rtp_forward = true",
            "\tstring_ids = true",
            "}",
            "",
        ]
    )


def audiobridge_config(settings: LocalJanus) -> str:
    """`janus.plugin.audiobridge.jcfg`: as the VideoRoom's — no static rooms, rooms made only with
    `admin_key`, string ids, RTP forwarders and file playback locked behind the room secret."""
    return "\n".join(
        [
            "general: {",
            f"\tadmin_key = {_quote(settings.admin_key)}",
            "\tlock_rtp_forward = true",
            "\tlock_play_file = true",
            "\tstring_ids = true",
            "}",
            "",
        ]
    )


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, 0o600)


def write_config(settings: LocalJanus, config_dir: Path) -> Path:
    """Write the configuration folder (0700, files 0600); the path of `janus.jcfg`."""
    config_dir.mkdir(parents=True, exist_ok=True)
    config_dir.chmod(0o700)
    main = config_dir / "janus.jcfg"
    write_private(main, janus_config(settings, config_dir.resolve()))
    write_private(config_dir / "janus.transport.websockets.jcfg", websockets_config(settings))
    write_private(config_dir / "janus.plugin.videoroom.jcfg", videoroom_config(settings))
    audiobridge = config_dir / "janus.plugin.audiobridge.jcfg"
    if settings.audiobridge:
        write_private(audiobridge, audiobridge_config(settings))
    else:
        audiobridge.unlink(missing_ok=True)
    return main


def janus_args(config_dir: Path) -> list[str]:
    binary = shutil.which(JANUS)
    if binary is None:
        raise JanusMissing()
    main = config_dir / "janus.jcfg"
    return [binary, "-C", str(main), "-F", str(config_dir), "--disable-colors"]


def start_janus(settings: LocalJanus, config_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Write the configuration and spawn Janus (its own session, dies with its parent)."""
    write_config(settings, config_dir)
    return spawn(janus_args(config_dir), log_path=log_path, cwd=config_dir)


def janus_listening(settings: LocalJanus) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((settings.host, settings.ws_port)) == 0
