"""Parsing and validation of every Guilds configuration file, each error naming its key.

Three files are read here: `guilds.yaml` (the bridge and the web UI), the application service
registration it points to (shared with Synapse, which holds the tokens), and the `config:` block
of the Synapse module. Parsing collects every problem before failing, so `guilds check-config`
can explain them all at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from guilds.ids import LOCALPART_RE, SERVER_NAME_RE, UserID, split_user_id, user_id
from guilds.model import (
    ALL_PERMISSIONS,
    COLOR_RE,
    MAX_CUSTOM_POWER,
    ROLE_ID_RE,
    name_problem,
    topic_problem,
)

# A token shorter than this, or one of these words, is a placeholder someone forgot to replace.
MIN_TOKEN_LENGTH = 32
PLACEHOLDER_MARKERS = ("change", "replace", "secret", "token", "generate", "xxx", "<", ">")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
THEMES = ("dark", "light")
CHANNEL_KINDS = ("text", "voice", "video")
CREATE_SERVERS_WORDS = ("everyone", "admins")
# `policies.join_channels`: every channel a member may enter, or the default channel only.
JOIN_CHANNELS_WORDS = ("all", "default")
# How long an API request that changes a server waits for its result before answering 202
# with an operation to poll (bridge/engine/queue.py); docs/API.md, "Operations".
DEFAULT_ANSWER_WITHIN_S = 10
MAX_ANSWER_WITHIN_S = 600
# The longest wait between two attempts of a change that waits out a homeserver (or database)
# that is down, stuck or busy: the wait doubles from half a second up to this
# (bridge/engine/patience.py).
DEFAULT_MAX_RETRY_WAIT_S = 30
# How long the bridge waits for the homeserver to check a caller's access token before the API
# answers 503 M_UNAVAILABLE (bridge/api/app.py): a stuck homeserver is a 503, not a hang.
DEFAULT_TOKEN_CHECK_TIMEOUT_S = 10
# How long the bridge waits for another process's write lock on its SQLite database before the
# API answers 503 M_UNAVAILABLE (bridge/engine/store.py).
DEFAULT_DATABASE_BUSY_TIMEOUT_S = 5
# The invite limits the API accepts (bridge/services/invites.py), so a default is always a valid
# one.
INVITE_MAX_USES, INVITE_MIN_EXPIRES_S, INVITE_MAX_EXPIRES_S = 1_000_000, 60, 365 * 24 * 3600


class ConfigError(Exception):
    """One wrong value, with the dotted key that holds it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class ConfigErrors(Exception):
    """Every problem found in one file."""

    def __init__(self, source: str, errors: list[ConfigError]) -> None:
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"{source} has {len(errors)} error(s):\n{lines}")
        self.source = source
        self.errors = errors

    def __iter__(self) -> Iterator[ConfigError]:
        return iter(self.errors)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


@dataclass(frozen=True)
class HomeserverSettings:
    server_name: str
    # Where the bridge reaches the Client-Server API.
    url: str
    # The base URL browsers and other clients use, named in /.well-known/matrix/client.
    public_url: str
    # `homeserver.token_check_timeout_s`: the bound on checking a caller's token (whoami).
    token_check_timeout_s: int = DEFAULT_TOKEN_CHECK_TIMEOUT_S


@dataclass(frozen=True)
class Registration:
    """The application service registration, as Synapse reads it too."""

    id: str
    url: str
    as_token: str = field(repr=False)
    hs_token: str = field(repr=False)
    sender_localpart: str
    user_regexes: tuple[str, ...]
    rate_limited: bool


@dataclass(frozen=True)
class AppserviceSettings:
    listen: Listen
    bot_localpart: str
    bot_displayname: str
    registration_path: Path
    registration: Registration


@dataclass(frozen=True)
class WebSettings:
    enabled: bool
    listen: Listen
    public_url: str
    brand_name: str
    # The web UI's colour scheme and the logo in its header (an https:// URL or a path on the
    # web UI's origin); None shows the built-in mark.
    theme: str = "dark"
    logo: str | None = None


@dataclass(frozen=True)
class MetricsSettings:
    """`metrics`: Prometheus metrics on a listener of their own, off unless enabled."""

    enabled: bool = False
    listen: Listen = Listen("127.0.0.1", 9400)


@dataclass(frozen=True)
class JanusSettings:
    """`sfu.janus`: the Janus WebRTC Server that carries channel calls (docs/CALLS.md).

    `url` is where the bridge reaches its WebSocket API, `public_url` where browsers do;
    `token_secret` is Janus's `token_auth_secret` (the bridge signs client tokens with it) and
    `admin_key` the VideoRoom plugin's (the bridge creates rooms with it).
    """

    url: str
    public_url: str
    token_secret: str = field(repr=False)
    admin_key: str = field(repr=False)


@dataclass(frozen=True)
class Limits:
    """`policies.limits`: None means unlimited."""

    servers_per_user: int | None = None
    channels_per_server: int | None = None
    roles_per_server: int | None = None
    members_per_voice_channel: int | None = None


@dataclass(frozen=True)
class InviteDefaults:
    """`policies.invites`: what an invite gets when its creator does not say."""

    expires_in_s: int | None = None
    max_uses: int | None = None


@dataclass(frozen=True)
class Policies:
    """`policies`: the homeserver admin's rules, enforced by the bridge and the module."""

    # everyone | admins (the homeserver's server admins) | listed (users and/or regex below)
    create_servers: str = "everyone"
    create_servers_users: tuple[str, ...] = ()
    create_servers_regex: str | None = None
    limits: Limits = Limits()
    channel_kinds: tuple[str, ...] = ("text", "voice", "video")
    invites: InviteDefaults = InviteDefaults()
    public_servers: bool = True
    # all: members are joined to every channel they may enter (as in Discord); default: only
    # to the default channel, the others joined by each member (for very large servers).
    join_channels: str = "all"


@dataclass(frozen=True)
class TemplateRole:
    role_id: str
    name: str
    color: str | None
    power: int
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class TemplateChannel:
    name: str
    kind: str
    topic: str = ""
    # The name of one of the template's categories; None for the top level.
    category: str | None = None
    # Role ids that may enter; None for every member.
    allowed_roles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ServerTemplate:
    """A named server layout `POST /servers` offers with `template: <name>`."""

    name: str
    description: str = ""
    # The server's topic when its creator gives none.
    topic: str = ""
    # Posted by the bot in the default channel once the server exists.
    welcome_message: str | None = None
    default_channel: str = "general"
    categories: tuple[str, ...] = ()
    channels: tuple[TemplateChannel, ...] = ()
    # Custom roles, most senior first; all rank below moderator, as new roles do.
    roles: tuple[TemplateRole, ...] = ()


@dataclass(frozen=True)
class DeclaredMembers:
    """Who a declared server holds, by user id or by a regex over whole user ids, and with
    which roles (besides `member`, which everyone holds)."""

    users: tuple[str, ...] = ()
    regex: str | None = None
    roles: tuple[str, ...] = ()

    def matches(self, user: str) -> bool:
        if user in self.users:
            return True
        return self.regex is not None and re.fullmatch(self.regex, user) is not None


@dataclass(frozen=True)
class DeclaredServer:
    """A server the config describes: created at start-up, reconciled on every start and on
    `guilds apply`, found again by `key` (kept in the space)."""

    key: str
    name: str
    owner: str
    layout: ServerTemplate
    # None: whatever the server's topic is (the layout's when created).
    topic: str | None = None
    members: tuple[DeclaredMembers, ...] = ()


# The built-in template: today's server, a `general` text channel and the built-in roles.
DEFAULT_TEMPLATE = ServerTemplate(
    "default", description="A text channel named general, and the built-in roles."
)


@dataclass(frozen=True)
class ModulePolicies:
    """The part of the policies the Synapse module enforces against every client."""

    channels_per_server: int | None = None
    members_per_voice_channel: int | None = None
    channel_kinds: tuple[str, ...] = ("text", "voice", "video")
    public_servers: bool = True


# The bridge's directory of servers (bridge/readback/directory.py): how many servers it holds in
# full at most, after how long unused one is compacted, and how much memory compacted servers
# may hold before the least recently used are evicted to disk (docs/DEPLOYMENT.md).
DEFAULT_MAX_LOADED_SERVERS = 64
DEFAULT_IDLE_S = 300
# About 120 idle servers of 1,000 members and 200 channels (0.26 MiB each), thousands of small.
DEFAULT_COMPACTED_BUDGET_MIB = 32


@dataclass(frozen=True)
class DirectorySettings:
    """`directory`: servers beyond `max_loaded_servers`, or unused for `idle_s`, are held
    compacted (their state compressed) until next needed; compacted servers beyond
    `compacted_budget_mib` are evicted, least recently used first, to a private file in
    `evict_dir` (None: the system's temporary directory) until next needed."""

    max_loaded_servers: int = DEFAULT_MAX_LOADED_SERVERS
    idle_s: int = DEFAULT_IDLE_S
    compacted_budget_mib: float = DEFAULT_COMPACTED_BUDGET_MIB
    evict_dir: str | None = None


# The slow sweep comparing every room with what its server's model derives
# (bridge/readback/convergence.py).
DEFAULT_SWEEP_INTERVAL_S = 600


@dataclass(frozen=True)
class GuildsConfig:
    homeserver: HomeserverSettings
    appservice: AppserviceSettings
    database_url: str
    web: WebSettings
    log_level: str
    source: Path | None = None
    policies: Policies = Policies()
    metrics: MetricsSettings = MetricsSettings()
    servers: tuple[DeclaredServer, ...] = ()
    # Every template by name, the built-in `default` included (an admin may redefine it).
    templates: Mapping[str, ServerTemplate] = field(
        default_factory=lambda: {DEFAULT_TEMPLATE.name: DEFAULT_TEMPLATE}
    )
    # `operations.answer_within_s`: the bound on an API answer before it becomes a 202.
    answer_within_s: int = DEFAULT_ANSWER_WITHIN_S
    # `operations.max_retry_wait_s`: the longest wait between two attempts of a change.
    max_retry_wait_s: int = DEFAULT_MAX_RETRY_WAIT_S
    # `database_busy_timeout_s`: how long a write waits for another process's SQLite lock.
    database_busy_timeout_s: int = DEFAULT_DATABASE_BUSY_TIMEOUT_S
    # Seconds between two sweeps of every server's rooms; 0 turns the sweep off (the checks
    # after operations, on events and at start-up still run).
    sweep_interval_s: int = DEFAULT_SWEEP_INTERVAL_S
    directory: DirectorySettings = DirectorySettings()
    # `sfu.janus`; None: channel calls run on the mesh only.
    janus: JanusSettings | None = None

    @property
    def module_policies(self) -> ModulePolicies:
        return module_policies_of(self.policies)

    @property
    def bot_user_id(self) -> UserID:
        return user_id(self.appservice.bot_localpart, self.homeserver.server_name)


@dataclass(frozen=True)
class ModuleConfig:
    """The `config:` block of the Synapse module."""

    bot_user_id: UserID
    # No longer used (every process serves the bridge's requests to act): accepted, and
    # warned about, so that configurations written for earlier versions still load.
    acting_worker: str | None
    policies: ModulePolicies = ModulePolicies()


class _Reader:
    """Reads typed values out of nested mappings, collecting an error per wrong key."""

    def __init__(self, data: Any, prefix: str = "", errors: list[ConfigError] | None = None):
        self.errors: list[ConfigError] = [] if errors is None else errors
        self.prefix = prefix
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.error("", f"must be a mapping, not {_type_name(data)}")
            data = {}
        self.data: Mapping[str, Any] = data

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}" if name else self.prefix.rstrip(".") or "(top level)"

    def error(self, name: str, reason: str) -> None:
        self.errors.append(ConfigError(self.key(name), reason))

    def section(self, name: str) -> _Reader:
        return _Reader(self.data.get(name), f"{self.prefix}{name}.", self.errors)

    def unknown_keys(self, known: set[str]) -> None:
        for name in self.data:
            if name not in known:
                self.error(str(name), f"unknown option (known: {', '.join(sorted(known))})")

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.data.get(name, default)
        if value is None:
            if required:
                self.error(name, "is required")
            return ""
        if not isinstance(value, str):
            self.error(name, f"must be a string, not {_type_name(value)}")
            return default or ""
        if required and not value.strip():
            self.error(name, "must not be empty")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            self.error(name, f"must be true or false, not {value!r}")
            return default
        return value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(name, f"must be a whole number, not {_type_name(value)}")
            return default
        if not lo <= value <= hi:
            self.error(name, f"must be between {lo} and {hi}, not {value}")
            return default
        return value

    def http_url(self, name: str, default: str | None = None) -> str:
        value = self.string(name, default, required=True)
        if value and not _is_http_url(value):
            self.error(name, f"must be an http:// or https:// URL, not {value!r}")
        return value.rstrip("/")

    def listen(self, name: str, default_port: int) -> Listen:
        sub = self.section(name)
        sub.unknown_keys({"host", "port"})
        host = sub.string("host", "127.0.0.1", required=True)
        port = sub.integer("port", default_port, 1, 65535)
        return Listen(host, port)


def _logo(w: _Reader, web_url: str, homeserver_url: str) -> str | None:
    """`web.logo`: a path on the web UI's origin, or a URL there or on the homeserver's, which
    are the only origins the page's Content-Security-Policy loads images from."""
    logo = w.data.get("logo")
    if logo is None:
        return None
    if isinstance(logo, str) and logo.startswith("/") and not logo.startswith("//"):
        return logo
    if isinstance(logo, str) and _is_http_url(logo):
        origins = {_origin(web_url), _origin(homeserver_url)}
        if _origin(logo) in origins:
            return logo
        w.error(
            "logo",
            f"must be on the web UI's or the homeserver's origin ({', '.join(sorted(origins))})",
        )
        return None
    w.error("logo", "must be an http(s):// URL or a path starting with /, or null")
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def validate_database_url(url: str) -> str | None:
    """Return why a database URL is unusable, or None."""
    if url.startswith("sqlite:///"):
        return None if len(url) > len("sqlite:///") else "names no SQLite file"
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            return "names no PostgreSQL database (postgresql://user@host:port/database)"
        return None
    return "must start with sqlite:/// or postgresql://"


def check_secret(value: str) -> str | None:
    """Return why a token is not a real secret, or None."""
    if len(value) < MIN_TOKEN_LENGTH:
        return f"is too short to be a secret (at least {MIN_TOKEN_LENGTH} characters)"
    lowered = value.lower()
    for marker in PLACEHOLDER_MARKERS:
        if marker in lowered:
            return f"looks like a placeholder (contains {marker!r})"
    return None


def parse_registration(data: Any, source: str = "registration") -> Registration:
    """Validate an application service registration; raise ConfigErrors listing every problem."""
    r = _Reader(data)
    reg_id = r.string("id", required=True)
    url = r.http_url("url")
    tokens = {}
    for name in ("as_token", "hs_token"):
        tokens[name] = r.string(name, required=True)
        if tokens[name]:
            problem = check_secret(tokens[name])
            if problem:
                r.error(name, f"{problem}; run `guilds generate-config` for fresh tokens")
    if tokens["as_token"] and tokens["as_token"] == tokens["hs_token"]:
        r.error("hs_token", "must differ from as_token")
    sender = r.string("sender_localpart", required=True)
    if sender and not LOCALPART_RE.match(sender):
        r.error("sender_localpart", f"{sender!r} is not a valid user localpart")
    regexes: list[str] = []
    namespaces = r.section("namespaces")
    users = namespaces.data.get("users", [])
    if not isinstance(users, list):
        namespaces.error("users", "must be a list")
        users = []
    for i, entry in enumerate(users):
        entry_reader = _Reader(entry, f"namespaces.users[{i}].", r.errors)
        regex = entry_reader.string("regex", required=True)
        try:
            re.compile(regex)
        except re.error as exc:
            entry_reader.error("regex", f"is not a valid regular expression: {exc}")
        regexes.append(regex)
    rate_limited = r.boolean("rate_limited", True)
    if r.errors:
        raise ConfigErrors(source, r.errors)
    return Registration(
        id=reg_id,
        url=url,
        as_token=tokens["as_token"],
        hs_token=tokens["hs_token"],
        sender_localpart=sender,
        user_regexes=tuple(regexes),
        rate_limited=rate_limited,
    )


GUILDS_KEYS = {
    "homeserver",
    "appservice",
    "database",
    "database_busy_timeout_s",
    "web",
    "log_level",
    "metrics",
    "directory",
    "policies",
    "templates",
    "servers",
    "operations",
    "convergence",
    "sfu",
}


def parse_config(data: Any, base_dir: Path, source: str = "guilds.yaml") -> GuildsConfig:
    """Validate the Guilds configuration; raise ConfigErrors listing every problem.

    Relative paths (the registration file, SQLite databases) are taken from `base_dir`,
    the folder of the configuration file.
    """
    r = _Reader(data)
    r.unknown_keys(GUILDS_KEYS)

    hs = r.section("homeserver")
    hs.unknown_keys({"server_name", "url", "public_url", "token_check_timeout_s"})
    server_name = hs.string("server_name", required=True)
    if server_name and not SERVER_NAME_RE.match(server_name):
        hs.error("server_name", f"{server_name!r} is not a valid server name")
    hs_url = hs.http_url("url")
    public_url = hs.http_url("public_url", hs_url or None)
    token_check_timeout_s = hs.integer(
        "token_check_timeout_s", DEFAULT_TOKEN_CHECK_TIMEOUT_S, 1, 300
    )
    homeserver = HomeserverSettings(server_name, hs_url, public_url, token_check_timeout_s)

    asr = r.section("appservice")
    asr.unknown_keys({"listen", "bot_localpart", "bot_displayname", "registration"})
    as_listen = asr.listen("listen", 8009)
    bot_localpart = asr.string("bot_localpart", "guilds", required=True)
    if bot_localpart and not LOCALPART_RE.match(bot_localpart):
        asr.error("bot_localpart", f"{bot_localpart!r} is not a valid user localpart")
        bot_localpart = ""
    bot_displayname = asr.string("bot_displayname", "Guilds")
    reg_name = asr.string("registration", required=True)
    reg_path = (base_dir / reg_name) if reg_name else base_dir
    registration: Registration | None = None
    if reg_name:
        registration = _load_registration_for(asr, reg_path, bot_localpart, server_name)

    database_url = r.string("database", required=True)
    if database_url:
        problem = validate_database_url(database_url)
        if problem:
            r.error("database", problem)
        else:
            database_url = resolve_sqlite_path(database_url, base_dir)
    database_busy_timeout_s = r.integer(
        "database_busy_timeout_s", DEFAULT_DATABASE_BUSY_TIMEOUT_S, 1, 600
    )

    w = r.section("web")
    w.unknown_keys({"enabled", "listen", "public_url", "brand_name", "theme", "logo"})
    web_enabled = w.boolean("enabled", True)
    web_listen = w.listen("listen", 8080)
    default_public = f"http://{_url_host(web_listen.host)}:{web_listen.port}"
    web_public = w.http_url("public_url", default_public)
    brand = w.string("brand_name", "Guilds", required=True)
    if len(brand) > 64:
        w.error("brand_name", "must be at most 64 characters")
    theme = w.string("theme", "dark")
    if theme not in THEMES:
        w.error("theme", f"must be one of {', '.join(THEMES)}, not {theme!r}")
    logo = _logo(w, web_public, public_url)
    web = WebSettings(web_enabled, web_listen, web_public, brand, theme, logo)
    policies = parse_policies(r.section("policies"))
    templates = parse_templates(r.section("templates"), policies)
    servers = parse_servers(r.section("servers"), policies, templates, server_name)

    ops = r.section("operations")
    ops.unknown_keys({"answer_within_s", "max_retry_wait_s"})
    answer_within_s = ops.integer(
        "answer_within_s", DEFAULT_ANSWER_WITHIN_S, 1, MAX_ANSWER_WITHIN_S
    )
    max_retry_wait_s = ops.integer("max_retry_wait_s", DEFAULT_MAX_RETRY_WAIT_S, 1, 3600)
    conv = r.section("convergence")
    conv.unknown_keys({"sweep_interval_s"})
    sweep_interval_s = conv.integer("sweep_interval_s", DEFAULT_SWEEP_INTERVAL_S, 0, 7 * 86400)
    d = r.section("directory")
    d.unknown_keys({"max_loaded_servers", "idle_s", "compacted_budget_mib", "evict_dir"})
    evict_dir = d.string("evict_dir", None) or None
    if evict_dir is not None:
        evict_dir = str((base_dir / evict_dir).resolve())
        if not Path(evict_dir).is_dir():
            d.error("evict_dir", f"must be an existing directory, not {evict_dir!r}")
    directory = DirectorySettings(
        d.integer("max_loaded_servers", DEFAULT_MAX_LOADED_SERVERS, 1, 1_000_000),
        d.integer("idle_s", DEFAULT_IDLE_S, 1, 7 * 86400),
        d.integer("compacted_budget_mib", DEFAULT_COMPACTED_BUDGET_MIB, 0, 1_000_000),
        evict_dir,
    )
    m = r.section("metrics")
    m.unknown_keys({"enabled", "listen"})
    metrics = MetricsSettings(m.boolean("enabled", False), m.listen("listen", 9400))

    janus = parse_sfu(r.section("sfu"))

    log_level = r.string("log_level", "INFO").upper()
    if log_level not in LOG_LEVELS:
        r.error("log_level", f"must be one of {', '.join(LOG_LEVELS)}")

    if web_enabled and as_listen == web_listen:
        w.error("listen", "must differ from appservice.listen")
    if metrics.enabled and metrics.listen in (as_listen, web_listen if web_enabled else None):
        m.error("listen", "must differ from appservice.listen and web.listen")

    if r.errors or registration is None:
        raise ConfigErrors(source, r.errors)
    appservice = AppserviceSettings(
        as_listen, bot_localpart, bot_displayname, reg_path, registration
    )
    return GuildsConfig(
        homeserver,
        appservice,
        database_url,
        web,
        log_level,
        policies=policies,
        metrics=metrics,
        templates=templates,
        servers=servers,
        answer_within_s=answer_within_s,
        max_retry_wait_s=max_retry_wait_s,
        database_busy_timeout_s=database_busy_timeout_s,
        sweep_interval_s=sweep_interval_s,
        directory=directory,
        janus=janus,
    )


def _is_ws_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("ws", "wss") and bool(parts.hostname)


def parse_sfu(r: _Reader) -> JanusSettings | None:
    """`sfu:` holds at most a `janus:` section; absent, calls stay on the mesh."""
    r.unknown_keys({"janus"})
    if r.data.get("janus") is None:
        return None
    j = r.section("janus")
    j.unknown_keys(
        {"url", "public_url", "token_secret", "admin_key", "token_secret_file", "admin_key_file"}
    )
    url = j.string("url", required=True)
    if url and not _is_ws_url(url):
        j.error("url", f"must be a ws:// or wss:// URL, not {url!r}")
    public_url = j.string("public_url", url or None, required=True)
    if public_url and not _is_ws_url(public_url):
        j.error("public_url", f"must be a ws:// or wss:// URL, not {public_url!r}")
    secrets_ = {}
    for name in ("token_secret", "admin_key"):
        # Either the secret itself or `<name>_file`: a file holding it (a container's secret).
        source = f"{name}_file"
        if j.data.get(source) is not None:
            if j.data.get(name) is not None:
                j.error(source, f"give {name} or {source}, not both")
            path = j.string(source, required=True)
            try:
                value = Path(path).read_text(encoding="utf-8").strip() if path else ""
            except OSError as exc:
                j.error(source, f"cannot read {path}: {exc.strerror}")
                value = ""
            name_of_error = source
        else:
            value = j.string(name, required=True)
            name_of_error = name
        problem = check_secret(value) if value else None
        if problem:
            j.error(name_of_error, problem)
        secrets_[name] = value
    return JanusSettings(url, public_url, secrets_["token_secret"], secrets_["admin_key"])


def _load_registration_for(
    asr: _Reader, path: Path, bot_localpart: str, server_name: str
) -> Registration | None:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        asr.error("registration", f"cannot read {path}: {exc.strerror}")
        return None
    except yaml.YAMLError as exc:
        asr.error("registration", f"{path} is not valid YAML: {exc}")
        return None
    try:
        registration = parse_registration(raw, str(path))
    except ConfigErrors as errors:
        for e in errors:
            asr.error("registration", f"{path}: {e}")
        return None
    if bot_localpart and registration.sender_localpart != bot_localpart:
        asr.error(
            "bot_localpart",
            f"is {bot_localpart!r} but the registration's sender_localpart is "
            f"{registration.sender_localpart!r}",
        )
    return registration


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def resolve_sqlite_path(url: str, base_dir: Path) -> str:
    """Make a relative `sqlite:///file` URL absolute against the config file's folder."""
    if not url.startswith("sqlite:///"):
        return url
    path = Path(url[len("sqlite:///") :])
    if not path.is_absolute():
        path = (base_dir / path).resolve()
    return f"sqlite:///{path}"


def load_config(path: str | os.PathLike[str]) -> GuildsConfig:
    """Read and validate a `guilds.yaml`; raise ConfigErrors listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigErrors(
            str(path), [ConfigError("(file)", f"cannot read: {exc.strerror}")]
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigErrors(str(path), [ConfigError("(file)", f"not valid YAML: {exc}")]) from None
    config = parse_config(data, path.parent.resolve(), str(path))
    return replace(config, source=path)


MODULE_KEYS = {"bot_user_id", "acting_worker", "policies"}


def parse_module_config(data: Any) -> ModuleConfig:
    """Validate the Synapse module's `config:` block; raise ConfigErrors listing every problem."""
    r = _Reader(data)
    r.unknown_keys(MODULE_KEYS)
    bot = r.string("bot_user_id", required=True)
    if bot:
        try:
            split_user_id(bot)
        except ValueError:
            r.error("bot_user_id", f"{bot!r} is not a Matrix user id like @guilds:example.org")
    worker = r.data.get("acting_worker")
    if worker is not None and (not isinstance(worker, str) or not worker):
        r.error("acting_worker", "must be the name of a worker, or null for the main process")
        worker = None
    policies = _parse_module_policies(r.section("policies"))
    if r.errors:
        raise ConfigErrors("synapse_module config", r.errors)
    return ModuleConfig(UserID(bot), worker, policies)


# -- policies ------------------------------------------------------------------------------------

POLICY_KEYS = {
    "create_servers",
    "limits",
    "channel_kinds",
    "invites",
    "public_servers",
    "join_channels",
}
LIMIT_KEYS = (
    "servers_per_user",
    "channels_per_server",
    "roles_per_server",
    "members_per_voice_channel",
)


def _limit(r: _Reader, name: str, hi: int = 1_000_000) -> int | None:
    """A positive whole number, or null (the default) for no limit."""
    value = r.data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        r.error(name, f"must be a whole number ≥ 1 (at most {hi}), or null for no limit")
        return None
    return value


def _kinds(r: _Reader, name: str) -> tuple[str, ...]:
    value = r.data.get(name, list(CHANNEL_KINDS))
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        r.error(name, f"must be a list of channel kinds ({', '.join(CHANNEL_KINDS)})")
        return CHANNEL_KINDS
    unknown = [k for k in value if k not in CHANNEL_KINDS]
    if unknown:
        r.error(name, f"unknown channel kind {unknown[0]!r} (known: {', '.join(CHANNEL_KINDS)})")
        return CHANNEL_KINDS
    if "text" not in value:
        r.error(name, "must include text: every server's default channel is a text channel")
        return CHANNEL_KINDS
    return tuple(k for k in CHANNEL_KINDS if k in value)


def _user_list(r: _Reader, name: str) -> tuple[str, ...]:
    value = r.data.get(name, [])
    if not isinstance(value, list):
        r.error(name, "must be a list of Matrix user ids")
        return ()
    users: list[str] = []
    for i, entry in enumerate(value):
        try:
            if not isinstance(entry, str):
                raise ValueError
            split_user_id(entry)
        except ValueError:
            r.error(f"{name}[{i}]", f"{entry!r} is not a Matrix user id like @alice:example.org")
            continue
        users.append(entry)
    return tuple(users)


def _regex(r: _Reader, name: str) -> str | None:
    value = r.data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        r.error(name, "must be a regular expression matching whole user ids, or null")
        return None
    try:
        re.compile(value)
    except re.error as exc:
        r.error(name, f"is not a valid regular expression: {exc}")
        return None
    return value


def parse_policies(r: _Reader) -> Policies:
    """`policies:` of guilds.yaml; every key optional, defaults are today's behaviour."""
    r.unknown_keys(POLICY_KEYS)
    create = r.data.get("create_servers", "everyone")
    users: tuple[str, ...] = ()
    regex: str | None = None
    if isinstance(create, str):
        if create not in CREATE_SERVERS_WORDS:
            r.error(
                "create_servers",
                f"must be everyone, admins, or a mapping with users and/or regex, not {create!r}",
            )
            create = "everyone"
    elif isinstance(create, Mapping):
        sub = r.section("create_servers")
        sub.unknown_keys({"users", "regex"})
        users = _user_list(sub, "users")
        regex = _regex(sub, "regex")
        if not users and regex is None and "users" not in sub.data:
            sub.error("", "names nobody: give users, a regex, or both")
        create = "listed"
    else:
        r.error(
            "create_servers", f"must be everyone, admins, or a mapping, not {_type_name(create)}"
        )
        create = "everyone"

    lr = r.section("limits")
    lr.unknown_keys(set(LIMIT_KEYS))
    limits = Limits(**{name: _limit(lr, name) for name in LIMIT_KEYS})

    ir = r.section("invites")
    ir.unknown_keys({"expires_in_s", "max_uses"})
    invites = InviteDefaults(
        expires_in_s=_bounded(ir, "expires_in_s", INVITE_MIN_EXPIRES_S, INVITE_MAX_EXPIRES_S),
        max_uses=_bounded(ir, "max_uses", 1, INVITE_MAX_USES),
    )
    join_channels = r.string("join_channels", "all")
    if join_channels not in JOIN_CHANNELS_WORDS:
        r.error("join_channels", f"must be all or default, not {join_channels!r}")
        join_channels = "all"
    return Policies(
        join_channels=join_channels,
        create_servers=create,
        create_servers_users=users,
        create_servers_regex=regex,
        limits=limits,
        channel_kinds=_kinds(r, "channel_kinds"),
        invites=invites,
        public_servers=r.boolean("public_servers", True),
    )


def _bounded(r: _Reader, name: str, lo: int, hi: int) -> int | None:
    value = r.data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        r.error(name, f"must be a whole number from {lo} to {hi}, or null for none")
        return None
    return value


def module_policies_of(policies: Policies) -> ModulePolicies:
    return ModulePolicies(
        channels_per_server=policies.limits.channels_per_server,
        members_per_voice_channel=policies.limits.members_per_voice_channel,
        channel_kinds=policies.channel_kinds,
        public_servers=policies.public_servers,
    )


def module_policies_block(policies: ModulePolicies) -> dict[str, Any]:
    """The module's `policies:` block as configgen writes it into the homeserver snippet."""
    return {
        "channels_per_server": policies.channels_per_server,
        "members_per_voice_channel": policies.members_per_voice_channel,
        "channel_kinds": list(policies.channel_kinds),
        "public_servers": policies.public_servers,
    }


def _parse_module_policies(r: _Reader) -> ModulePolicies:
    r.unknown_keys(
        {"channels_per_server", "members_per_voice_channel", "channel_kinds", "public_servers"}
    )
    return ModulePolicies(
        channels_per_server=_limit(r, "channels_per_server"),
        members_per_voice_channel=_limit(r, "members_per_voice_channel"),
        channel_kinds=_kinds(r, "channel_kinds"),
        public_servers=r.boolean("public_servers", True),
    )


# -- templates -----------------------------------------------------------------------------------

TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
TEMPLATE_KEYS = {
    "description",
    "topic",
    "welcome_message",
    "default_channel",
    "categories",
    "channels",
    "roles",
}
BUILTIN_ROLE_IDS = ("admin", "moderator", "member")
MAX_TEMPLATE_ROLES = 100
MAX_WELCOME_LENGTH = 4000


def _name(r: _Reader, name: str, default: str | None = None) -> str:
    value = r.data.get(name, default)
    problem = name_problem(value)
    if problem is not None:
        r.error(name, problem)
        return ""
    return str(value)


def parse_templates(r: _Reader, policies: Policies) -> dict[str, ServerTemplate]:
    """`templates:` of guilds.yaml, each checked against the policies it will be built under."""
    templates = {DEFAULT_TEMPLATE.name: DEFAULT_TEMPLATE}
    for name in r.data:
        if not isinstance(name, str) or not TEMPLATE_NAME_RE.match(name):
            r.error(str(name), "a template name is 1–32 lower-case letters, digits, - or _")
            continue
        template = parse_template(r.section(name), name, policies)
        if template is not None:
            templates[name] = template
    return templates


def parse_template(
    r: _Reader, name: str, policies: Policies, *, other_keys: frozenset[str] = frozenset()
) -> ServerTemplate | None:
    before = len(r.errors)
    r.unknown_keys(TEMPLATE_KEYS | other_keys)
    description = r.string("description", "")
    topic = r.string("topic", "")
    if topic_problem(topic) is not None:
        r.error("topic", str(topic_problem(topic)))
    welcome = r.data.get("welcome_message")
    if welcome is not None and (
        not isinstance(welcome, str) or not welcome.strip() or len(welcome) > MAX_WELCOME_LENGTH
    ):
        r.error("welcome_message", f"must be text of 1 to {MAX_WELCOME_LENGTH} characters, or null")
        welcome = None
    default_channel = _name(r, "default_channel", "general")

    categories = _template_categories(r)
    roles = _template_roles(r)
    role_ids = {role.role_id for role in roles} | set(BUILTIN_ROLE_IDS)
    channels = _template_channels(r, set(categories), role_ids, policies, default_channel)
    limit = policies.limits.roles_per_server
    if limit is not None and len(roles) > limit:
        r.error("roles", f"has {len(roles)} roles; policies.limits.roles_per_server allows {limit}")
    limit = policies.limits.channels_per_server
    if limit is not None and len(channels) + 1 > limit:
        r.error(
            "channels",
            f"makes {len(channels) + 1} channels with the default one; "
            f"policies.limits.channels_per_server allows {limit}",
        )
    if len(r.errors) > before:
        return None
    return ServerTemplate(
        name=name,
        description=description,
        topic=topic,
        welcome_message=welcome,
        default_channel=default_channel,
        categories=categories,
        channels=channels,
        roles=roles,
    )


def _list(r: _Reader, name: str) -> list[Any]:
    value = r.data.get(name, [])
    if not isinstance(value, list):
        r.error(name, f"must be a list, not {_type_name(value)}")
        return []
    return value


def _template_categories(r: _Reader) -> tuple[str, ...]:
    names: list[str] = []
    for i, value in enumerate(_list(r, "categories")):
        problem = name_problem(value)
        if problem is not None:
            r.error(f"categories[{i}]", problem)
        elif value in names:
            r.error(f"categories[{i}]", f"{value!r} is listed twice")
        else:
            names.append(value)
    return tuple(names)


def _template_roles(r: _Reader) -> tuple[TemplateRole, ...]:
    roles: list[TemplateRole] = []
    entries = _list(r, "roles")
    if len(entries) > MAX_TEMPLATE_ROLES:
        r.error("roles", f"at most {MAX_TEMPLATE_ROLES} roles")
        return ()
    for i, _entry in enumerate(entries):
        sub = _Reader(_entry, f"{r.prefix}roles[{i}].", r.errors)
        sub.unknown_keys({"id", "name", "color", "power", "permissions"})
        role_id = sub.string("id", required=True)
        if role_id and not ROLE_ID_RE.match(role_id):
            sub.error("id", "must be 1–32 lower-case letters, digits, - or _, starting with one")
        elif role_id in BUILTIN_ROLE_IDS:
            sub.error("id", f"{role_id!r} is a built-in role")
        elif any(role.role_id == role_id for role in roles):
            sub.error("id", f"{role_id!r} is used twice")
        name = _name(sub, "name")
        color = sub.data.get("color")
        if color is not None and (not isinstance(color, str) or not COLOR_RE.match(color)):
            sub.error("color", "must be written #rrggbb, or be null")
            color = None
        power = sub.integer("power", 0, 0, MAX_CUSTOM_POWER)
        permissions = _list(sub, "permissions")
        unknown = [p for p in permissions if p not in ALL_PERMISSIONS]
        if unknown:
            sub.error(
                "permissions",
                f"unknown permission {unknown[0]!r} (known: {', '.join(sorted(ALL_PERMISSIONS))})",
            )
        roles.append(TemplateRole(role_id, name, color, power, tuple(sorted(set(permissions)))))
    return tuple(roles)


def _template_channels(
    r: _Reader,
    categories: set[str],
    role_ids: set[str],
    policies: Policies,
    default_channel: str,
) -> tuple[TemplateChannel, ...]:
    channels: list[TemplateChannel] = []
    for i, entry in enumerate(_list(r, "channels")):
        sub = _Reader(entry, f"{r.prefix}channels[{i}].", r.errors)
        sub.unknown_keys({"name", "kind", "topic", "category", "allowed_roles"})
        name = _name(sub, "name")
        if name and (name == default_channel or any(c.name == name for c in channels)):
            sub.error(
                "name", f"{name!r} is used twice (the default channel is {default_channel!r})"
            )
        kind = sub.string("kind", "text")
        if kind not in CHANNEL_KINDS:
            sub.error("kind", f"must be one of {', '.join(CHANNEL_KINDS)}, not {kind!r}")
        elif kind not in policies.channel_kinds:
            sub.error("kind", f"{kind} channels are not allowed by policies.channel_kinds")
        topic = sub.string("topic", "")
        if topic_problem(topic) is not None:
            sub.error("topic", str(topic_problem(topic)))
        category = sub.data.get("category")
        if category is not None and category not in categories:
            sub.error("category", f"{category!r} is not one of the template's categories")
            category = None
        allowed: tuple[str, ...] | None = None
        if sub.data.get("allowed_roles") is not None:
            listed = _list(sub, "allowed_roles")
            unknown = [role for role in listed if role not in role_ids]
            if unknown:
                sub.error("allowed_roles", f"{unknown[0]!r} is neither built in nor in roles")
            elif "member" not in listed:
                allowed = tuple(sorted(set(listed) - {"admin"}))
        channels.append(TemplateChannel(name, kind, topic, category, allowed))
    return tuple(channels)


# -- declared servers ----------------------------------------------------------------------------

SERVER_KEYS = frozenset({"name", "owner", "template", "members", "topic"})
LAYOUT_KEYS = TEMPLATE_KEYS - {"description", "topic"}


def parse_servers(
    r: _Reader, policies: Policies, templates: Mapping[str, ServerTemplate], server_name: str
) -> tuple[DeclaredServer, ...]:
    """`servers:` of guilds.yaml: each a name, an owner, a layout (a template or its own) and
    its members."""
    declared: list[DeclaredServer] = []
    for key in r.data:
        if not isinstance(key, str) or not TEMPLATE_NAME_RE.match(key):
            r.error(str(key), "a declared server's key is 1–32 lower-case letters, digits, - or _")
            continue
        server = _parse_server(r.section(key), key, policies, templates, server_name)
        if server is not None:
            declared.append(server)
    return tuple(declared)


def _parse_server(
    r: _Reader,
    key: str,
    policies: Policies,
    templates: Mapping[str, ServerTemplate],
    server_name: str,
) -> DeclaredServer | None:
    before = len(r.errors)
    name = _name(r, "name")
    owner = r.string("owner", required=True)
    if owner:
        try:
            _, domain = split_user_id(owner)
        except ValueError:
            r.error("owner", f"{owner!r} is not a Matrix user id like @alice:{server_name}")
        else:
            if server_name and domain != server_name:
                r.error("owner", f"must be a local user (of {server_name})")
    topic = r.data.get("topic")
    if topic is not None and (not isinstance(topic, str) or topic_problem(topic) is not None):
        r.error("topic", "must be a topic of at most 1024 characters, or null")
    layout: ServerTemplate | None
    if "template" in r.data:
        inline = sorted(k for k in r.data if k in LAYOUT_KEYS)
        if inline:
            r.error(inline[0], "a declared server names a template or lists its layout, not both")
        chosen = r.data["template"]
        layout = templates.get(chosen) if isinstance(chosen, str) else None
        if layout is None:
            r.error(
                "template", f"{chosen!r} is not a template (known: {', '.join(sorted(templates))})"
            )
    else:
        layout = parse_template(r, key, policies, other_keys=SERVER_KEYS)
    role_ids = set(BUILTIN_ROLE_IDS) - {"member"}
    if layout is not None:
        role_ids |= {role.role_id for role in layout.roles}
    members: list[DeclaredMembers] = []
    for i, entry in enumerate(_list(r, "members")):
        sub = _Reader(entry, f"{r.prefix}members[{i}].", r.errors)
        sub.unknown_keys({"users", "regex", "roles"})
        users = _user_list(sub, "users")
        regex = _regex(sub, "regex")
        if not users and regex is None:
            sub.error("", "names nobody: give users, a regex, or both")
        roles = _list(sub, "roles")
        unknown = [role for role in roles if role not in role_ids]
        if unknown:
            sub.error(
                "roles",
                f"{unknown[0]!r} is not a role of this server ({', '.join(sorted(role_ids))})",
            )
        members.append(DeclaredMembers(users, regex, tuple(dict.fromkeys(roles))))
    if len(r.errors) > before or layout is None:
        return None
    return DeclaredServer(
        key=key, name=name, owner=owner, layout=layout, topic=topic, members=tuple(members)
    )
