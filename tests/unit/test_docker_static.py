"""docker/ checked statically: every file, port, variable and config key it names exists and agrees.

No Docker engine runs here, so these files cannot be built in the suite; instead each reference they
make is resolved the way compose, the Dockerfiles and nginx would resolve it, and checked against
the repository, `config/`, the `guilds` command and the project's own configuration parsers.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bridge.api.app import create_provisioning_app
from bridge.metrics import METRICS_PATH, BridgeMetrics, create_metrics_app
from guilds.config import (
    ConfigErrors,
    GuildsConfig,
    load_config,
    parse_config,
    parse_module_config,
    parse_registration,
)
from guildsctl.check import check, check_homeserver
from guildsctl.cli import build_parser, cmd_serve
from guildsctl.configgen import MODULE_PATH, fresh_token
from guildsctl.janus import UNUSED_EVENT_HANDLERS, UNUSED_PLUGINS, UNUSED_TRANSPORTS
from guildsctl.workers import CLIENT_WORKER_ROUTES, WORKERS
from web.app import PROVISIONING_PREFIX

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / "env.example"
DEPLOYMENT = REPO / "docs" / "DEPLOYMENT.md"

SYNAPSE_SERVICES = ("synapse", "synapse-client", "synapse-writer")
CONFIG_WORKERS = REPO / "config" / "workers"
REQUIRED_SERVICES = {
    *SYNAPSE_SERVICES,
    "postgres",
    "redis",
    "guilds",
    "coturn",
    "proxy",
    "prometheus",
    "janus",
}


# --- compose: interpolation and the container's view of the repository ------------------------

VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"env.example: {line!r} is not NAME=value"
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$`, resolved against `env`."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name, "")
        if op in (":-", "-") and not value:
            return arg or ""
        if op in (":?", "?") and not value:
            return f"<required:{name}>"
        return value

    return VAR_RE.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def compose_text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    data = yaml.safe_load(interpolate(compose_text(), env if env is not None else env_example()))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


@dataclass
class Container:
    """One service's filesystem as far as bind mounts show it: container path -> repo path."""

    name: str
    spec: dict[str, Any]
    binds: dict[PurePosixPath, Path] = field(default_factory=dict)

    def host_path(self, container_path: str) -> Path:
        path = PurePosixPath(container_path)
        for target in sorted(self.binds, key=lambda p: len(p.parts), reverse=True):
            if path == target or target in path.parents:
                return self.binds[target].joinpath(*path.parts[len(target.parts) :])
        raise AssertionError(f"{self.name}: nothing is mounted at {container_path}")

    def port_strings(self, key: str) -> list[str]:
        return [str(p) for p in self.spec.get(key, [])]

    @property
    def exposed(self) -> set[int]:
        return {int(p) for p in self.port_strings("expose")}

    @property
    def published(self) -> set[int]:
        """Container ports published on the host, ranges expanded."""
        ports: set[int] = set()
        for spec in self.port_strings("ports"):
            target = spec.split("/")[0].split(":")[-1]
            lo, _, hi = target.partition("-")
            ports.update(range(int(lo), int(hi or lo) + 1))
        return ports

    def environment(self) -> dict[str, str]:
        env = self.spec.get("environment") or {}
        assert isinstance(env, dict), f"{self.name}: environment must be a mapping"
        return {str(k): str(v) for k, v in env.items()}


def container(name: str) -> Container:
    spec = services()[name]
    c = Container(name, spec)
    for volume in spec.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith((".", "/")):
            c.binds[PurePosixPath(target)] = (DOCKER / source).resolve()
    return c


def service_port(url_or_hostport: str) -> tuple[str, int]:
    parts = urlsplit(url_or_hostport if "//" in url_or_hostport else f"//{url_or_hostport}")
    assert parts.hostname and parts.port, f"{url_or_hostport!r} names no host:port"
    return parts.hostname, parts.port


def config_paths(command: list[str]) -> list[str]:
    """The `--config-path` / `-c` arguments of a Synapse command, in order."""
    paths, args = [], iter(command)
    for arg in args:
        if arg.startswith("--config-path="):
            paths.append(arg.split("=", 1)[1])
        elif arg in ("--config-path", "-c"):
            paths.append(next(args))
    return paths


def synapse_config(name: str) -> tuple[dict[str, Any], list[Path]]:
    """The merged Synapse config of one service (later files win, as Synapse merges `-c`)."""
    c = container(name)
    files = [c.host_path(p) for p in config_paths([str(a) for a in c.spec["command"]])]
    merged: dict[str, Any] = {}
    for path in files:
        assert path.is_file(), f"{name}: {path.relative_to(REPO)} does not exist"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict), f"{path} must be a mapping"
        merged.update(data)
    return merged, files


def http_ports(config: dict[str, Any], resource: str) -> set[int]:
    ports = set()
    for listener in config.get("worker_listeners") or config.get("listeners") or []:
        names = {n for r in listener.get("resources", []) for n in r.get("names", [])}
        if listener.get("type") == "http" and resource in names:
            ports.add(int(listener["port"]))
    return ports


def guilds_container_config() -> tuple[Container, Path]:
    c = container("guilds")
    args = build_parser().parse_args([str(a) for a in c.spec["command"]])
    return c, c.host_path(args.config)


def guilds_config_with_tokens(tmp_path: Path) -> GuildsConfig:
    """The deployment's guilds.yaml parsed as if the admin had filled in the registration tokens."""
    _, path = guilds_container_config()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    registration = yaml.safe_load((path.parent / data["appservice"]["registration"]).read_text())
    registration["as_token"], registration["hs_token"] = fresh_token(), fresh_token()
    (tmp_path / data["appservice"]["registration"]).write_text(yaml.safe_dump(registration))
    # The compose secrets the SFU's keys are read from, as mounted in the container.
    for key in ("token_secret_file", "admin_key_file"):
        secret = tmp_path / PurePosixPath(data["sfu"]["janus"][key]).name
        secret.write_text(fresh_token())
        data["sfu"]["janus"][key] = str(secret)
    return parse_config(data, tmp_path, str(path))


def janus_conf(name: str) -> dict[str, str]:
    """A Janus configuration file of docker/janus/ as `key: value` (its groups flattened, which
    is enough: no key but `disable` appears in two groups, and it is left out), through the
    janus service's mount."""
    path = container("janus").host_path(f"/etc/guilds-janus/{name}")
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and not key.startswith("#") and key != "disable":
            assert key not in values, f"{name}: {key} twice"
            values[key] = value.strip().strip('"')
    return values


# --- nginx: a small parser and nginx's own location selection -----------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]


def nginx_tokens(text: str) -> Iterator[str]:
    pattern = re.compile(
        r"\s+|#[^\n]*|\"((?:\\.|[^\"])*)\"|'((?:\\.|[^'])*)'|([{};])|([^\s{};\"'#]+)"
    )
    pos = 0
    while pos < len(text):
        m = pattern.match(text, pos)
        assert m, f"nginx: cannot read at {text[pos : pos + 30]!r}"
        pos = m.end()
        if m.group(1) is not None or m.group(2) is not None:
            yield m.group(1) if m.group(1) is not None else m.group(2)
        elif m.group(3) or m.group(4):
            yield m.group(3) or m.group(4)


def parse_nginx(text: str) -> Directive:
    root = Directive("(main)", [], [])
    stack = [root]
    words: list[str] = []
    for token in nginx_tokens(text):
        if token == ";":
            assert words, "nginx: empty statement"
            assert stack[-1].block is not None
            stack[-1].block.append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            assert words, "nginx: block without a name"
            block = Directive(words[0], words[1:], [])
            assert stack[-1].block is not None
            stack[-1].block.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            assert not words and len(stack) > 1, "nginx: unbalanced }"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "nginx: unclosed block or statement"
    return root


def select_location(server: Directive, uri: str) -> Directive:
    """nginx's choice: `=` exact, longest prefix if `^~`, first regex, else that prefix."""
    prefix: Directive | None = None
    for loc in server.all("location"):
        modifier, pattern = (loc.args[0], loc.args[1]) if len(loc.args) == 2 else ("", loc.args[0])
        if modifier == "=" and uri == pattern:
            return loc
        if modifier in ("", "^~") and uri.startswith(pattern):
            if prefix is None or len(pattern) > len(prefix.args[-1]):
                prefix = loc
    if prefix is not None and prefix.args[0] == "^~":
        return prefix
    for loc in server.all("location"):
        if loc.args[0] in ("~", "~*"):
            flags = re.IGNORECASE if loc.args[0] == "~*" else 0
            if re.search(loc.args[1], uri, flags):
                return loc
    assert prefix is not None, f"nginx: no location matches {uri}"
    return prefix


def nginx_config() -> tuple[Directive, Container]:
    proxy = container("proxy")
    conf = proxy.host_path("/etc/nginx/conf.d/default.conf")
    return parse_nginx(conf.read_text(encoding="utf-8")), proxy


def tls_server(root: Directive) -> Directive:
    servers = [s for s in root.all("server") if any("ssl" in d.args for d in s.all("listen"))]
    assert len(servers) == 1, "expected one TLS server block"
    return servers[0]


def upstream_of(location: Directive) -> str:
    (proxy_pass,) = location.all("proxy_pass")
    url = urlsplit(proxy_pass.args[0])
    # A URI part would make nginx rewrite the path; Synapse needs it passed unaltered.
    assert url.scheme == "http" and url.path == "", f"proxy_pass {proxy_pass.args[0]} has a URI"
    assert url.hostname
    return url.hostname


# --- Dockerfiles --------------------------------------------------------------------------------


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (DOCKER / name).read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        lines.append(pending)
        pending = ""
    assert not pending, f"{name}: dangling line continuation"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in lines]


def exec_form(args: str) -> list[str]:
    value = yaml.safe_load(args)
    assert isinstance(value, list), f"{args!r} must be in exec form (a JSON list)"
    return [str(v) for v in value]


def dockerignore_allows(name: str, path: str) -> bool:
    """The allow-list shape used here: `*` first, then `!entry` per top-level file or folder."""
    patterns = [
        line.strip()
        for line in (DOCKER / f"{name}.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", f"{name}.dockerignore must start by excluding everything"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    return PurePosixPath(path).parts[0] in allowed


# --- the tests ----------------------------------------------------------------------------------


def test_compose_has_the_production_shape() -> None:
    assert REQUIRED_SERVICES <= set(services())
    # Only the proxy and coturn face the internet; databases, Redis and Synapse stay internal,
    # and Prometheus (its answers are not authenticated) is published on the host's loopback only.
    for name, spec in services().items():
        if name == "prometheus":
            assert all(str(p).startswith("127.0.0.1:") for p in spec["ports"]), spec["ports"]
        elif name == "janus":
            # Its media only: the WebSocket API stays on the compose network.
            assert all(str(p).endswith("/udp") for p in spec["ports"]), spec["ports"]
        elif name not in ("proxy", "coturn"):
            assert "ports" not in spec, f"{name} must not publish ports"


def test_every_compose_variable_is_documented_in_env_example() -> None:
    text = compose_text()
    assert not re.search(r"(?<!\$)\$(?![{$])", text.replace("$$", "")), "bare $VAR in compose"
    used = {m.group(1) for m in VAR_RE.finditer(text.replace("$$", ""))}
    documented = env_example()
    assert used, "compose.yaml uses no variables?"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name in sorted(used):
        assert name in documented, f"${{{name}}} is used in compose.yaml but not in env.example"
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
        assert index and lines[index - 1].startswith("#"), f"{name} has no comment in env.example"
    for m in VAR_RE.finditer(text):
        if m.group(2) == ":?":
            # Secrets stay empty in the example, so compose refuses to start until they are set.
            assert documented[m.group(1)] == "", f"{m.group(1)} must be empty in env.example"
    assert set(documented) <= used, "env.example documents variables compose does not use"


def test_required_variables_stop_compose_when_unset() -> None:
    required = {m.group(1) for m in VAR_RE.finditer(compose_text()) if m.group(2) == ":?"}
    assert {"POSTGRES_PASSWORD", "GUILDS_DB_PASSWORD", "TURN_EXTERNAL_IP"} <= required
    rendered = yaml.safe_dump(compose())
    for name in required:
        assert f"<required:{name}>" in rendered


@pytest.mark.parametrize("service", ["guilds", "synapse"])
def test_dockerfile_copy_sources_exist_in_the_build_context(service: str) -> None:
    build = services()[service]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == REPO, f"{service}: the build context must be the repository root"
    dockerfile_path = context / build["dockerfile"]
    assert dockerfile_path.is_file()
    copies = [args for op, args in dockerfile(dockerfile_path.name) if op == "COPY"]
    assert copies
    for args in copies:
        if args.startswith("--from="):
            continue
        *sources, _dest = shlex.split(args)
        for source in sources:
            assert (context / source).exists(), f"{dockerfile_path.name}: COPY {source} is missing"
            assert dockerignore_allows(dockerfile_path.name, source), f"{source} is dockerignored"
            # Configuration and secrets are mounted at run time, never baked into an image.
            assert PurePosixPath(source).parts[0] not in ("config", "docker", "local", "tests")


def test_every_package_in_setup_cfg_is_copied_into_both_images() -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    packages = {p.strip() for p in setup["options.packages.find"]["include"].split()}
    top_level = {p for p in packages if "." not in p}
    for name in ("Dockerfile.guilds", "Dockerfile.synapse"):
        copied = {
            shlex.split(args)[0]
            for op, args in dockerfile(name)
            if op == "COPY" and not args.startswith("--from=")
        }
        assert top_level <= copied, f"{name} misses {top_level - copied}"


def test_guilds_image_runs_the_console_script_as_a_non_root_user() -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    scripts = {
        name.strip(): target.strip()
        for name, _, target in (
            line.partition("=")
            for line in setup["options.entry_points"]["console_scripts"].strip().splitlines()
        )
    }
    instructions = dockerfile("Dockerfile.guilds")
    final_stage = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    entrypoint = [exec_form(a) for op, a in final_stage if op == "ENTRYPOINT"][-1]
    assert entrypoint == ["guilds"] and scripts["guilds"] == "guildsctl.cli:main"
    users = [a for op, a in final_stage if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    for op, args in instructions:
        if op in ("ENV", "ARG"):
            assert not re.search(r"TOKEN|PASSWORD|SECRET", args, re.I), (
                f"{op} {args} bakes a secret"
            )
    # Both the image's CMD and compose's command are a `guilds serve` the CLI accepts.
    cmd = [exec_form(a) for op, a in final_stage if op == "CMD"][-1]
    for argv in (cmd, [str(a) for a in services()["guilds"]["command"]]):
        assert build_parser().parse_args(argv).func is cmd_serve


def test_guilds_healthcheck_calls_the_version_endpoint_on_the_web_port() -> None:
    (healthcheck,) = [a for op, a in dockerfile("Dockerfile.guilds") if op == "HEALTHCHECK"]
    url = re.search(r"https?://[^'\"\s]+", healthcheck)
    assert url, "the healthcheck calls no URL"
    host, port = service_port(url.group(0))
    _, config_path = guilds_container_config()
    web_port = yaml.safe_load(config_path.read_text())["web"]["listen"]["port"]
    assert (host, port) == ("127.0.0.1", web_port)
    prefix = PROVISIONING_PREFIX
    path = urlsplit(url.group(0)).path
    assert path.startswith(prefix + "/")
    app = create_provisioning_app(None)  # type: ignore[arg-type]  # routes only, never served
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert path[len(prefix) :] in routes


def test_every_bind_mount_source_exists_or_is_a_git_ignored_deploy_file() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    for name, spec in services().items():
        for volume in spec.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose()["volumes"], f"{name}: volume {source} is not declared"
                continue
            path = (DOCKER / source).resolve()
            if not path.exists():
                rel = "/" + str(path.relative_to(REPO)) + "/"
                assert rel in ignored, f"{name}: {source} is missing and not git-ignored"
    for secret in compose()["secrets"].values():
        path = (DOCKER / secret["file"]).resolve()
        assert "/" + str(path.parent.relative_to(REPO)) + "/" in ignored


def test_the_deployment_guilds_yaml_parses_but_refuses_its_placeholder_tokens(
    tmp_path: Path,
) -> None:
    _, path = guilds_container_config()
    assert path.is_file() and path.is_relative_to(DOCKER)
    # As shipped, the only problems are the registration's placeholder tokens (nobody can deploy
    # them) and, outside the container, the SFU's compose secrets (mounted in /run/secrets).
    with pytest.raises(ConfigErrors) as refused:
        load_config(path)
    assert {e.key for e in refused.value} == {
        "appservice.registration",
        "sfu.janus.token_secret_file",
        "sfu.janus.admin_key_file",
    }
    reasons = " ".join(e.reason for e in refused.value)
    assert "as_token" in reasons and "hs_token" in reasons and "placeholder" in reasons
    assert any("as_token" in line for line in check(path, []))
    registration_data = yaml.safe_load((path.parent / "registration.yaml").read_text())
    with pytest.raises(ConfigErrors) as tokens:
        parse_registration(registration_data)
    assert {e.key for e in tokens.value} == {"as_token", "hs_token"}
    # With real tokens, everything else in it is valid.
    config = guilds_config_with_tokens(tmp_path)
    assert config.database_url.startswith("postgresql://")


def test_guilds_ports_and_addresses_match_the_compose_services(tmp_path: Path) -> None:
    config = guilds_config_with_tokens(tmp_path)
    guilds = container("guilds")
    assert config.metrics.enabled
    listens = (config.appservice.listen, config.web.listen, config.metrics.listen)
    assert guilds.exposed == {listen.port for listen in listens}
    # Inside a container the listeners must accept other containers' connections.
    assert {listen.host for listen in listens} == {"0.0.0.0"}  # noqa: S104
    host, port = service_port(config.homeserver.url)
    assert host == "synapse" and port in http_ports(synapse_config(host)[0], "client")
    host, port = service_port(config.appservice.registration.url)
    assert host == "guilds" and port == config.appservice.listen.port
    db = urlsplit(config.database_url)
    assert db.hostname == "postgres" and db.port in container("postgres").exposed
    assert db.password is None, "the database password belongs in PGPASSWORD, not guilds.yaml"
    assert "PGPASSWORD" in guilds.environment()
    init = (DOCKER / "postgres" / "init-guilds.sh").read_text()
    assert f"CREATE ROLE {db.username} LOGIN" in init
    assert f"CREATE DATABASE {db.path.strip('/')} OWNER {db.username}" in init
    assert container("postgres").host_path("/docker-entrypoint-initdb.d/init-guilds.sh").is_file()


def test_prometheus_scrapes_the_bridges_metrics_listener(tmp_path: Path) -> None:
    config = guilds_config_with_tokens(tmp_path)
    prometheus = container("prometheus")
    path = prometheus.host_path("/etc/prometheus/prometheus.yml")
    assert path.is_file() and path.is_relative_to(DOCKER)
    scrape = yaml.safe_load(path.read_text(encoding="utf-8"))["scrape_configs"]
    jobs = {job["job_name"]: job for job in scrape}
    guilds = jobs["guilds"]
    assert guilds.get("metrics_path", "/metrics") == METRICS_PATH
    targets = [t for group in guilds["static_configs"] for t in group["targets"]]
    assert targets == [f"guilds:{config.metrics.listen.port}"]
    assert config.metrics.listen.port in container("guilds").exposed
    assert prometheus.spec["depends_on"].keys() == {"guilds"}
    # Its time series outlive the container.
    data = [str(v).split(":")[0] for v in prometheus.spec["volumes"]]
    assert any(d in compose()["volumes"] for d in data)
    # The path is the metrics app's only route.
    app = create_metrics_app(BridgeMetrics())
    assert {r.resource.canonical for r in app.router.routes() if r.resource} == {METRICS_PATH}


@pytest.mark.parametrize("service", SYNAPSE_SERVICES)
def test_synapse_config_loads_guilds_and_matches_the_bridge(service: str, tmp_path: Path) -> None:
    merged, files = synapse_config(service)
    assert all(f.is_relative_to(DOCKER) for f in files)
    config = guilds_config_with_tokens(tmp_path)
    # The registration path as the guilds container sees it; Synapse must list the same path...
    in_container = PurePosixPath("/etc/guilds") / config.appservice.registration_path.name
    as_seen = dataclasses.replace(
        config,
        appservice=dataclasses.replace(config.appservice, registration_path=Path(in_container)),
    )
    assert check_homeserver(as_seen, merged) == []
    # ...and both containers must mount the same file there.
    guilds, synapse = container("guilds"), container(service)
    for listed in merged["app_service_config_files"]:
        assert synapse.host_path(listed) == guilds.host_path(str(in_container))
    (module,) = [m for m in merged["modules"] if m["module"] == MODULE_PATH]
    assert parse_module_config(module["config"]).acting_worker is None  # no longer used


def test_synapse_processes_agree_on_workers_replication_and_ports() -> None:
    names = []
    for service in SYNAPSE_SERVICES:
        merged, _ = synapse_config(service)
        c = container(service)
        app = merged.get("worker_app")
        if app is None:
            main = merged
            assert "SYNAPSE_WORKER" not in c.environment()
        else:
            assert c.environment()["SYNAPSE_WORKER"] == app == "synapse.app.generic_worker"
            names.append(merged["worker_name"])
        ports = {int(listener["port"]) for listener in merged.get("worker_listeners") or []}
        ports |= set() if app else {int(li["port"]) for li in merged["listeners"]}
        assert c.exposed == ports, f"{service}: expose {c.exposed} != listeners {ports}"
        health = re.search(r"localhost:(\d+)/health", " ".join(c.spec["healthcheck"]["test"]))
        assert health and int(health.group(1)) in http_ports(merged, "health") | (
            http_ports(merged, "client") if not app else set()
        )
        for key, value in merged.items():
            if key.endswith("_path") and str(value).startswith("/run/secrets/"):
                assert PurePosixPath(value).name in c.spec["secrets"], f"{service}: {key}"
    assert len(names) == len(set(names)) == len(SYNAPSE_SERVICES) - 1
    for key in ("run_background_tasks_on", "notify_appservices_from_worker"):
        assert main[key] in names, f"{key} names no worker"
    # Each instance_map entry is the compose service running that process, on its replication port.
    by_worker = {synapse_config(s)[0].get("worker_name", "main"): s for s in SYNAPSE_SERVICES}
    for instance, address in main["instance_map"].items():
        service = by_worker[instance]
        assert address["host"] == service, f"instance_map.{instance}"
        assert address["port"] in http_ports(synapse_config(service)[0], "replication")
    for writers in main.get("stream_writers", {}).values():
        assert set(writers) <= set(main["instance_map"]), "a stream writer is not in instance_map"
    assert main["redis"]["enabled"] is True and main["redis"]["host"] == "redis"
    redis_command = [str(a) for a in services()["redis"]["command"]]
    assert redis_command[redis_command.index("--port") + 1] == str(main["redis"]["port"])
    assert main["redis"]["port"] in container("redis").exposed
    db = main["database"]
    postgres = container("postgres").environment()
    assert db["name"] == "psycopg2" and db["args"]["host"] == "postgres"
    assert db["args"]["port"] in container("postgres").exposed
    assert (db["args"]["user"], db["args"]["dbname"]) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_DB"],
    )
    assert "password" not in db["args"], "the password belongs in PGPASSWORD"


ROUTES = {
    # request path -> the nginx upstream that must receive it
    "/_matrix/client/v3/sync": "synapse_client",
    "/_matrix/client/v3/rooms/!r/send/m.room.message/t1": "synapse_client",
    "/_matrix/client/v3/login": "synapse_client",
    "/_matrix/client/versions": "synapse_client",
    "/_matrix/client/v3/account/password": "synapse_main",
    "/_matrix/client/v3/register": "synapse_main",
    "/_matrix/client/v3/rooms/!r/receipt/m.read/$e": "synapse_main",
    "/_matrix/client/v3/user/@a:example.org/account_data/m.direct": "synapse_main",
    "/_matrix/client/v3/pushrules/": "synapse_main",
    "/_matrix/federation/v1/send/1": "synapse_main",
    "/_matrix/key/v2/server": "synapse_main",
    "/_matrix/media/v3/upload": "synapse_main",
    "/_synapse/client/pick_idp": "synapse_main",
    "/_guilds/v1/version": "guilds_web",
    "/.well-known/matrix/client": "guilds_web",
    "/": "guilds_web",
    "/_janus": "janus_ws",
    "/static/js/matrix.js": "guilds_web",
}


def test_proxy_routes_each_path_to_the_right_upstream() -> None:
    root, _ = nginx_config()
    server = tls_server(root)
    for uri, expected in ROUTES.items():
        assert upstream_of(select_location(server, uri)) == expected, uri
    # Every location proxies to a declared upstream.
    declared = {u.args[0] for u in root.all("upstream")}
    for loc in server.all("location"):
        assert upstream_of(loc) in declared


def test_proxy_routes_to_the_client_worker_exactly_the_routes_of_config_workers() -> None:
    root, _ = nginx_config()
    to_client = {
        loc.args[1]
        for loc in tls_server(root).all("location")
        if loc.args[0] == "~" and upstream_of(loc) == "synapse_client"
    }
    routes = yaml.safe_load((CONFIG_WORKERS / "routes.yaml").read_text())
    assert to_client == set(CLIENT_WORKER_ROUTES) == set(routes["client_worker_routes"])
    # The upstream behind them is the worker routes.yaml names.
    (server,) = {u.args[0]: u for u in root.all("upstream")}["synapse_client"].all("server")
    host, _ = service_port(server.args[0])
    assert synapse_config(host)[0]["worker_name"] == routes["worker"]


def test_workers_split_the_work_as_config_workers_does() -> None:
    shared = yaml.safe_load((CONFIG_WORKERS / "homeserver-workers.yaml").read_text())
    main, _ = synapse_config("synapse")
    for key in ("stream_writers", "notify_appservices_from_worker", "run_background_tasks_on"):
        assert main.get(key) == shared[key], key
    assert set(main["instance_map"]) == set(shared["instance_map"])
    (module,) = [m for m in main["modules"] if m["module"] == MODULE_PATH]
    (documented,) = [m for m in shared["modules"] if m["module"] == MODULE_PATH]
    assert module["config"] == documented["config"]
    names = []
    for service in SYNAPSE_SERVICES[1:]:
        merged, _ = synapse_config(service)
        name = merged["worker_name"]
        names.append(name)
        example = yaml.safe_load((CONFIG_WORKERS / f"{name}.yaml").read_text())
        assert merged["worker_app"] == example["worker_app"]
        ours = {n for li in merged["worker_listeners"] for r in li["resources"] for n in r["names"]}
        theirs = {
            n for li in example["worker_listeners"] for r in li["resources"] for n in r["names"]
        }
        assert theirs <= ours, f"{name} lacks {theirs - ours}"
    assert tuple(names) == WORKERS


def test_proxy_upstreams_are_compose_services_on_their_configured_ports(tmp_path: Path) -> None:
    root, _ = nginx_config()
    config = guilds_config_with_tokens(tmp_path)
    wanted = {
        "synapse_main": ("synapse", http_ports(synapse_config("synapse")[0], "client")),
        "synapse_client": (
            "synapse-client",
            http_ports(synapse_config("synapse-client")[0], "client"),
        ),
        "guilds_web": ("guilds", {config.web.listen.port}),
        "janus_ws": ("janus", {int(janus_conf("janus.transport.websockets.jcfg")["ws_port"])}),
    }
    upstreams = {u.args[0]: u for u in root.all("upstream")}
    assert set(upstreams) == set(wanted)
    for name, (service, ports) in wanted.items():
        (server,) = upstreams[name].all("server")
        host, port = service_port(server.args[0])
        assert (host, port in ports) == (service, True), f"upstream {name}: {server.args[0]}"
        assert port in container(service).exposed


def test_proxy_listens_on_the_published_ports_with_mounted_certificates() -> None:
    root, proxy = nginx_config()
    listening = {
        int(d.args[0].rsplit(":", 1)[-1].strip("[]"))
        for s in root.all("server")
        for d in s.all("listen")
    }
    assert listening == proxy.published == {80, 443, 8448}
    server = tls_server(root)
    for key in ("ssl_certificate", "ssl_certificate_key"):
        (d,) = server.all(key)
        proxy.host_path(d.args[0])  # raises unless a mount holds it
    (upload,) = server.all("client_max_body_size")
    assert upload.args[0] == synapse_config("synapse")[0]["max_upload_size"]


def test_turn_ports_and_secret_agree_between_synapse_coturn_and_compose() -> None:
    main, _ = synapse_config("synapse")
    coturn = container("coturn")
    conf_path = coturn.host_path("/etc/coturn/turnserver.conf")
    conf: dict[str, str] = {}
    for line in conf_path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            conf.setdefault(key.strip(), value.strip())
    assert "use-auth-secret" in conf and "static-auth-secret" not in conf
    listening = int(conf["listening-port"])
    for uri in main["turn_uris"]:
        m = re.match(r"turns?:([^:?]+):(\d+)", uri)
        assert m and int(m.group(2)) == listening, uri
        assert m.group(1) == conf["realm"]
    relay = set(range(int(conf["min-port"]), int(conf["max-port"]) + 1))
    assert coturn.published == relay | {listening}
    secret = PurePosixPath(main["turn_shared_secret_path"])
    assert secret.name in coturn.spec["secrets"]
    assert str(secret) in " ".join(coturn.spec["entrypoint"])


def test_deployment_guide_names_every_variable_secret_and_service() -> None:
    guide = DEPLOYMENT.read_text(encoding="utf-8")
    for name in [*env_example(), *compose()["secrets"], *services()]:
        assert name in guide, f"docs/DEPLOYMENT.md does not mention {name}"
    assert "docs/DEPLOYMENT.md" in (REPO / "README.md").read_text()


def test_nginx_parser_and_location_selection_follow_nginx() -> None:
    root = parse_nginx(
        """
        # comment { ignored }
        server {
            location / { proxy_pass http://a; }
            location /_matrix { proxy_pass http://b; }
            location ^~ /_matrix/media { proxy_pass http://c; }
            location = /exact { proxy_pass http://d; }
            location ~ ^/_matrix/client/v3/sync$ { proxy_pass http://e; }
            location ~* \\.PNG$ { proxy_pass "http://f"; }
        }
        """
    )
    (server,) = root.all("server")
    picks = {
        "/x": "a",
        "/_matrix/client/v3/login": "b",
        "/_matrix/client/v3/sync": "e",
        "/_matrix/media/v3/x.png": "c",
        "/exact": "d",
        "/exact/more.png": "f",
    }
    for uri, upstream in picks.items():
        assert upstream_of(select_location(server, uri)) == upstream, uri
    with pytest.raises(AssertionError):
        parse_nginx("server { location / { proxy_pass http://a; }")


def test_janus_is_the_sfu_of_the_bridge_with_its_api_internal_and_its_media_published(
    tmp_path: Path,
) -> None:
    janus = container("janus")
    core = janus_conf("janus.jcfg")
    ws = janus_conf("janus.transport.websockets.jcfg")
    videoroom = janus_conf("janus.plugin.videoroom.jcfg")
    # The WebSocket API on the compose network only; no admin API at all.
    port = int(ws["ws_port"])
    assert janus.exposed == {port} and port not in janus.published
    assert ws["ws"] == "true" and ws["ws_ip"] == "0.0.0.0"  # noqa: S104 - inside the container
    assert ws["admin_ws"] == ws["admin_wss"] == ws["wss"] == "false"
    # The same lock-down as `guilds run` (guildsctl/janus.py): signed tokens, only the VideoRoom
    # and the WebSocket transport, rooms only with the admin key.
    assert core["token_auth"] == "true" and core["token_auth_secret"] == "@TOKEN_SECRET@"
    assert core["admin_secret"] == "@ADMIN_SECRET@"
    text = janus.host_path("/etc/guilds-janus/janus.jcfg").read_text()
    for names in (UNUSED_PLUGINS, UNUSED_TRANSPORTS, UNUSED_EVENT_HANDLERS):
        assert f'disable = "{",".join(names)}"' in text, names
    assert "libjanus_videoroom.so" not in text and "libjanus_websockets.so" not in text
    assert videoroom == {
        "admin_key": "@ADMIN_KEY@",
        "lock_rtp_forward": "true",
        "string_ids": "true",
    }
    # Media: the RTP range Janus uses is exactly the range compose publishes (UDP), and Janus
    # advertises the host's public address, the one coturn advertises too.
    lo, _, hi = core["rtp_port_range"].partition("-")
    assert janus.published == set(range(int(lo), int(hi) + 1))
    assert core["nat_1_1_mapping"] == "@EXTERNAL_IP@"
    env = compose({**env_example(), "TURN_EXTERNAL_IP": "203.0.113.7"})["services"]
    assert env["janus"]["environment"]["JANUS_EXTERNAL_IP"] == "203.0.113.7"
    assert env["coturn"]["environment"]["TURN_EXTERNAL_IP"] == "203.0.113.7"
    # Every placeholder is filled in at start, the secrets from the compose secrets it holds.
    start = " ".join(janus.spec["entrypoint"])
    placeholders = set(re.findall(r"@[A-Z_]+@", text + str(ws) + str(videoroom)))
    assert placeholders == {"@TOKEN_SECRET@", "@ADMIN_SECRET@", "@ADMIN_KEY@", "@EXTERNAL_IP@"}
    for placeholder in placeholders:
        assert f"s|{placeholder}|" in start, placeholder
    for secret in ("janus_token_secret", "janus_admin_key"):
        assert secret in janus.spec["secrets"] and f"/run/secrets/{secret}" in start
    assert "-F /tmp/janus" in start and "umask 077" in start

    # The bridge: guilds.yaml names this Janus, reads the same two secrets, and sends browsers
    # to the proxy's /_janus, which passes the WebSocket to Janus.
    config = guilds_config_with_tokens(tmp_path)
    assert config.janus is not None
    host, ws_port = service_port(config.janus.url.replace("ws://", "http://"))
    assert (host, ws_port) == ("janus", port)
    raw = yaml.safe_load(guilds_container_config()[1].read_text())["sfu"]["janus"]
    guilds = container("guilds")
    for key, secret in (
        ("token_secret_file", "janus_token_secret"),
        ("admin_key_file", "janus_admin_key"),
    ):
        assert raw[key] == f"/run/secrets/{secret}" and secret in guilds.spec["secrets"]
    public = urlsplit(config.janus.public_url)
    web = urlsplit(config.web.public_url)
    assert public.scheme == "wss" and public.netloc == web.netloc
    root, _ = nginx_config()
    location = select_location(tls_server(root), public.path)
    assert upstream_of(location) == "janus_ws"
    headers = {tuple(d.args) for d in location.all("proxy_set_header")}
    assert ("Upgrade", "$http_upgrade") in headers and ("Connection", "upgrade") in headers


def test_janus_image_installs_debians_janus_and_runs_as_a_user() -> None:
    build = services()["janus"]["build"]
    assert (DOCKER / build["context"]).resolve() == DOCKER
    instructions = dockerfile(build["dockerfile"])
    assert not [a for op, a in instructions if op in ("COPY", "ADD")], "nothing is baked in"
    assert any("apt-get install" in a and " janus" in a for op, a in instructions if op == "RUN")
    users = [a for op, a in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
