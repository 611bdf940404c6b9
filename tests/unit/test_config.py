"""Configuration: each wrong value is refused with its key; generated files are valid, private."""

from __future__ import annotations

import copy
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from guilds.config import (
    ConfigErrors,
    DirectorySettings,
    check_secret,
    load_config,
    parse_config,
    parse_module_config,
    parse_registration,
)
from guildsctl import configgen
from guildsctl.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def install(tmp_path: Path) -> Path:
    """A complete generated installation; returns its folder."""
    configgen.write_installation(
        tmp_path, "example.org", "http://127.0.0.1:8008", "sqlite:///guilds.db"
    )
    return tmp_path


def guilds_data(install: Path) -> dict[str, Any]:
    return yaml.safe_load((install / "guilds.yaml").read_text())


def errors_of(data: Any, base: Path) -> dict[str, str]:
    with pytest.raises(ConfigErrors) as raised:
        parse_config(data, base)
    return {e.key: e.reason for e in raised.value}


def test_generated_installation_is_valid_and_private(install: Path) -> None:
    config = load_config(install / "guilds.yaml")
    assert config.bot_user_id == "@guilds:example.org"
    assert config.database_url == f"sqlite:///{install.resolve() / 'guilds.db'}"
    for name in ("registration.yaml", "guilds.yaml"):
        mode = stat.S_IMODE((install / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    reg = config.appservice.registration
    assert reg.as_token != reg.hs_token
    assert check_secret(reg.as_token) is None and check_secret(reg.hs_token) is None
    assert re.match(reg.user_regexes[0], "@guilds:example.org")
    raw = yaml.safe_load((install / "registration.yaml").read_text())
    # The bridge reserves its own alias namespace (idempotent room creation).
    alias_regex = raw["namespaces"]["aliases"][0]["regex"]
    assert raw["namespaces"]["aliases"][0]["exclusive"] is True
    assert re.match(alias_regex, "#_guilds_op_1:example.org")
    assert not re.match(alias_regex, "#general:example.org")


def test_generated_tokens_are_fresh(tmp_path: Path) -> None:
    a = configgen.registration("http://x:1", "guilds", "example.org")
    b = configgen.registration("http://x:1", "guilds", "example.org")
    assert a["as_token"] != b["as_token"] and a["hs_token"] != b["hs_token"]
    assert len(a["as_token"]) >= 32


def test_generate_refuses_to_overwrite(install: Path) -> None:
    with pytest.raises(FileExistsError):
        configgen.write_installation(
            install, "example.org", "http://127.0.0.1:8008", "sqlite:///g.db"
        )


@pytest.mark.parametrize(
    ("path", "value", "key", "reason"),
    [
        (
            ("homeserver", "server_name"),
            "not a name!",
            "homeserver.server_name",
            "not a valid server name",
        ),
        (("homeserver", "server_name"), None, "homeserver.server_name", "is required"),
        (("homeserver", "url"), "ftp://x", "homeserver.url", "http:// or https://"),
        (("homeserver", "public_url"), 42, "homeserver.public_url", "must be a string"),
        (("appservice", "listen", "port"), 70000, "appservice.listen.port", "between 1 and 65535"),
        (("appservice", "listen", "port"), "8009", "appservice.listen.port", "whole number"),
        (("appservice", "listen", "port"), True, "appservice.listen.port", "whole number"),
        (
            ("appservice", "bot_localpart"),
            "Bad Bot",
            "appservice.bot_localpart",
            "not a valid user localpart",
        ),
        (("appservice", "registration"), "missing.yaml", "appservice.registration", "cannot read"),
        (("database",), "mysql://x/y", "database", "sqlite:/// or postgresql://"),
        (("database",), "postgresql://host", "database", "names no PostgreSQL database"),
        (("database",), None, "database", "is required"),
        (("web", "enabled"), "yes", "web.enabled", "true or false"),
        (("web", "brand_name"), "x" * 65, "web.brand_name", "at most 64"),
        (("web", "listen"), [], "web.listen", "must be a mapping"),
        (("log_level",), "LOUD", "log_level", "one of"),
        (("colour",), "red", "colour", "unknown option"),
        (("web", "colour"), "dark", "web.colour", "unknown option"),
        (("web", "theme"), "pink", "web.theme", "one of dark, light"),
        (("web", "logo"), "logo.png", "web.logo", "URL or a path"),
    ],
)
def test_each_bad_value_names_its_key(
    install: Path, path: tuple[str, ...], value: Any, key: str, reason: str
) -> None:
    data = guilds_data(install)
    target = data
    for part in path[:-1]:
        target = target[part]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    errors = errors_of(data, install)
    assert key in errors, errors
    assert reason in errors[key]


def test_every_error_is_reported_at_once(install: Path) -> None:
    data = guilds_data(install)
    data["homeserver"]["url"] = "nope"
    data["web"]["listen"]["port"] = 0
    data["log_level"] = 3
    assert {"homeserver.url", "web.listen.port", "log_level"} <= set(errors_of(data, install))


def test_same_port_for_appservice_and_web_is_refused(install: Path) -> None:
    data = guilds_data(install)
    data["web"]["listen"] = copy.deepcopy(data["appservice"]["listen"])
    assert "differ" in errors_of(data, install)["web.listen"]


def test_metrics_are_off_unless_enabled_and_checked_when_on(install: Path) -> None:
    data = guilds_data(install)
    config = parse_config(data, install)
    assert not config.metrics.enabled
    assert (config.metrics.listen.host, config.metrics.listen.port) == ("127.0.0.1", 9400)
    data["metrics"] = {"enabled": True, "listen": {"port": 9555}}
    assert parse_config(data, install).metrics.listen.port == 9555
    data["metrics"] = {"enabled": "yes", "listen": {"port": 0}, "path": "/m"}
    errors = errors_of(data, install)
    assert "true or false" in errors["metrics.enabled"]
    assert "between 1 and 65535" in errors["metrics.listen.port"]
    assert "unknown option" in errors["metrics.path"]
    data["metrics"] = {"enabled": True, "listen": copy.deepcopy(data["web"]["listen"])}
    assert "differ" in errors_of(data, install)["metrics.listen"]


def test_directory_limits_have_defaults_and_are_checked(install: Path) -> None:
    data = guilds_data(install)
    assert parse_config(data, install).directory == DirectorySettings(64, 300)
    data["directory"] = {"max_loaded_servers": 5, "idle_s": 30}
    assert parse_config(data, install).directory == DirectorySettings(5, 30)
    data["directory"] = {"max_loaded_servers": 0, "idle_s": "soon", "size": 1}
    errors = errors_of(data, install)
    assert "between 1 and 1000000" in errors["directory.max_loaded_servers"]
    assert "whole number" in errors["directory.idle_s"]
    assert "unknown option" in errors["directory.size"]


def test_the_waits_for_a_fault_have_production_defaults_and_are_checked(install: Path) -> None:
    data = guilds_data(install)
    config = parse_config(data, install)
    waits = (
        config.answer_within_s,
        config.max_retry_wait_s,
        config.homeserver.token_check_timeout_s,
        config.database_busy_timeout_s,
    )
    assert waits == (10, 30, 10, 5)
    data["operations"] = {"answer_within_s": 2, "max_retry_wait_s": 1}
    data["homeserver"]["token_check_timeout_s"] = 3
    data["database_busy_timeout_s"] = 1
    config = parse_config(data, install)
    assert config.max_retry_wait_s == 1
    assert config.homeserver.token_check_timeout_s == 3
    assert config.database_busy_timeout_s == 1
    data["operations"] = {"max_retry_wait_s": 0}
    data["homeserver"]["token_check_timeout_s"] = 0.5
    data["database_busy_timeout_s"] = 601
    errors = errors_of(data, install)
    assert "between 1 and 3600" in errors["operations.max_retry_wait_s"]
    assert "whole number" in errors["homeserver.token_check_timeout_s"]
    assert "between 1 and 600" in errors["database_busy_timeout_s"]


def test_the_eviction_budget_and_folder_have_defaults_and_are_checked(install: Path) -> None:
    data = guilds_data(install)
    default = parse_config(data, install).directory
    assert (default.compacted_budget_mib, default.evict_dir) == (32, None)
    (install / "evicted").mkdir()
    data["directory"] = {"compacted_budget_mib": 0, "evict_dir": "evicted"}
    settings = parse_config(data, install).directory
    assert settings.compacted_budget_mib == 0
    # Relative to the config file's folder, as the SQLite database is.
    assert settings.evict_dir == str((install / "evicted").resolve())
    data["directory"] = {"compacted_budget_mib": -1, "evict_dir": "nowhere"}
    errors = errors_of(data, install)
    assert "between 0 and 1000000" in errors["directory.compacted_budget_mib"]
    assert "existing directory" in errors["directory.evict_dir"]


def test_generated_local_config_enables_metrics_on_the_given_loopback_port() -> None:
    data = configgen.guilds_config("example.org", "http://127.0.0.1:8008", "sqlite:///g.db")
    assert "metrics" not in data
    data = configgen.guilds_config(
        "example.org", "http://127.0.0.1:8008", "sqlite:///g.db", metrics_port=9601
    )
    assert data["metrics"] == {"enabled": True, "listen": {"host": "127.0.0.1", "port": 9601}}


def test_top_level_must_be_a_mapping(install: Path) -> None:
    assert "must be a mapping" in errors_of(["a", "list"], install)["(top level)"]


def test_registration_bot_mismatch(install: Path) -> None:
    data = guilds_data(install)
    data["appservice"]["bot_localpart"] = "other"
    assert "sender_localpart" in errors_of(data, install)["appservice.bot_localpart"]


def valid_registration() -> dict[str, Any]:
    return configgen.registration("http://127.0.0.1:8009", "guilds", "example.org")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("as_token", "CHANGE_ME_generate_with_guilds_generate_config", "placeholder"),
        ("hs_token", "short", "too short"),
        ("url", "not a url", "http:// or https://"),
        ("sender_localpart", "Not OK", "not a valid user localpart"),
        ("id", None, "is required"),
        ("rate_limited", "no", "true or false"),
    ],
)
def test_registration_bad_values(field: str, value: Any, reason: str) -> None:
    data = valid_registration()
    if value is None:
        del data[field]
    else:
        data[field] = value
    with pytest.raises(ConfigErrors) as raised:
        parse_registration(data)
    errors = {e.key: e.reason for e in raised.value}
    assert reason in errors[field]


def test_registration_tokens_must_differ() -> None:
    data = valid_registration()
    data["hs_token"] = data["as_token"]
    with pytest.raises(ConfigErrors, match="must differ"):
        parse_registration(data)


def test_registration_bad_regex() -> None:
    data = valid_registration()
    data["namespaces"]["users"][0]["regex"] = "@guilds:("
    with pytest.raises(ConfigErrors, match=r"namespaces\.users\[0\]\.regex"):
        parse_registration(data)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "bot_user_id"),
        ({"bot_user_id": "guilds"}, "bot_user_id"),
        ({"bot_user_id": 7}, "bot_user_id"),
        ({"bot_user_id": "@guilds:example.org", "acting_worker": ""}, "acting_worker"),
        ({"bot_user_id": "@guilds:example.org", "extra": 1}, "extra"),
        ("not a mapping", "(top level)"),
    ],
)
def test_module_config_errors(data: Any, key: str) -> None:
    with pytest.raises(ConfigErrors) as raised:
        parse_module_config(data)
    assert key in {e.key for e in raised.value}


def test_module_config_valid() -> None:
    config = parse_module_config({"bot_user_id": "@guilds:example.org", "acting_worker": "worker1"})
    assert config.bot_user_id == "@guilds:example.org"
    assert config.acting_worker == "worker1"


# -- the command line ---------------------------------------------------------------------------


def test_check_config_accepts_a_generated_install(
    install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check-config",
            "-c",
            str(install / "guilds.yaml"),
            "--homeserver-config",
            str(install / "homeserver-guilds.yaml"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "ok" in capsys.readouterr().out


def test_check_config_explains_every_error(
    install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = guilds_data(install)
    data["homeserver"]["url"] = "nope"
    data["web"]["listen"]["port"] = "eighty"
    (install / "guilds.yaml").write_text(yaml.safe_dump(data))
    assert main(["check-config", "-c", str(install / "guilds.yaml")]) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "homeserver.url" in err and "web.listen.port" in err


def check_homeserver_snippet(install: Path, snippet: dict[str, Any]) -> int:
    """`guilds check-config` on the install's guilds.yaml and this homeserver configuration."""
    (install / "hs.yaml").write_text(yaml.safe_dump(snippet))
    return main(
        [
            "check-config",
            "-c",
            str(install / "guilds.yaml"),
            "--homeserver-config",
            str(install / "hs.yaml"),
        ]
    )


def test_check_config_checks_the_homeserver_side(
    install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snippet = yaml.safe_load((install / "homeserver-guilds.yaml").read_text())
    snippet["modules"][0]["config"]["bot_user_id"] = "@someone:example.org"
    snippet["app_service_config_files"] = ["/elsewhere/registration.yaml"]
    snippet["default_room_version"] = "9"
    code = check_homeserver_snippet(install, snippet)
    assert code == 1
    err = capsys.readouterr().err
    assert "modules[0].config.bot_user_id" in err
    assert "app_service_config_files" in err
    assert "default_room_version" in err


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("worker_replication_secret", "CHANGE-ME"),
        ("registration_shared_secret", "secret"),
        ("macaroon_secret_key", "aaaaaaaaaaaaaaaaaaaaaaaa"),
        ("turn_shared_secret", 12345),
    ],
)
def test_check_config_flags_placeholder_secrets(
    install: Path, capsys: pytest.CaptureFixture[str], key: str, value: object
) -> None:
    snippet = yaml.safe_load((install / "homeserver-guilds.yaml").read_text())
    snippet[key] = value
    code = check_homeserver_snippet(install, snippet)
    assert code == 1
    err = capsys.readouterr().err
    assert f"{key}:" in err
    assert "secrets.token_hex" in err or "must be a string" in err


def test_check_config_accepts_generated_secrets(install: Path) -> None:
    snippet = yaml.safe_load((install / "homeserver-guilds.yaml").read_text())
    snippet["worker_replication_secret"] = secrets.token_hex(32)
    code = check_homeserver_snippet(install, snippet)
    assert code == 0


def test_check_config_without_the_module(install: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (install / "hs.yaml").write_text(yaml.safe_dump({"server_name": "example.org"}))
    code = main(
        [
            "check-config",
            "-c",
            str(install / "guilds.yaml"),
            "--homeserver-config",
            str(install / "hs.yaml"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "does not load synapse_module.GuildsModule" in err


def test_check_config_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(tmp_path / "absent.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("homeserver: [unclosed")
    assert main(["check-config", "-c", str(tmp_path / "bad.yaml")]) == 1
    assert "not valid YAML" in capsys.readouterr().err


def test_generate_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = [
        "generate-config",
        "--server-name",
        "example.org",
        "--database-url",
        "postgresql://g@db/guilds",
    ]
    assert main([*args, "--out", str(out)]) == 0
    assert load_config(out / "guilds.yaml").database_url == "postgresql://g@db/guilds"
    public = tmp_path / "public"
    assert main([*args, "--out", str(public), "--web-public-url", "https://chat.example.org"]) == 0
    assert load_config(public / "guilds.yaml").web.public_url == "https://chat.example.org"
    assert main([*args, "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (
        main(
            [
                "generate-config",
                "--server-name",
                "e.org",
                "--database-url",
                "mysql://x",
                "--out",
                str(out),
            ]
        )
        == 2
    )


# -- the documented examples in config/ ------------------------------------------------------------


def _keys(data: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(data, dict):
        for k, v in data.items():
            keys.add(prefix + k)
            keys |= _keys(v, f"{prefix}{k}.")
    return keys


def test_guilds_example_documents_every_option(install: Path) -> None:
    example = yaml.safe_load((REPO / "config" / "guilds.yaml.example").read_text())
    generated = guilds_data(install)
    assert _keys(generated) <= _keys(example)
    # The example is itself valid, given a real registration beside it.
    (install / "example.yaml").write_text((REPO / "config" / "guilds.yaml.example").read_text())
    config = load_config(install / "example.yaml")
    assert config.homeserver.server_name == "example.org"
    text = (REPO / "config" / "guilds.yaml.example").read_text()

    def documented(key: str) -> bool:
        # A comment in the lines right above the option, or above the section holding it.
        leaf = key.rsplit(".", 1)[-1]
        if re.search(rf"#[^\n]*\n(?:\s*#[^\n]*\n)*\s*{leaf}:", text):
            return True
        return "." in key and documented(key.rsplit(".", 1)[0])

    for key in _keys(example):
        assert documented(key), f"{key} is not documented"


def test_registration_example_placeholders_are_refused() -> None:
    example = yaml.safe_load((REPO / "config" / "registration.yaml.example").read_text())
    with pytest.raises(ConfigErrors) as raised:
        parse_registration(example)
    assert {e.key for e in raised.value} == {"as_token", "hs_token"}


def test_homeserver_snippet_example_matches_the_generator(install: Path) -> None:
    example = yaml.safe_load((REPO / "config" / "homeserver-guilds.yaml").read_text())
    generated = configgen.homeserver_snippet(
        "example.org", "/etc/guilds/registration.yaml", "guilds"
    )
    for key, value in generated.items():
        assert example[key] == value, key
    assert example["enable_registration"] is False
    parse_module_config(example["modules"][0]["config"])


def test_sfu_is_off_unless_configured_and_its_secrets_are_checked(install: Path) -> None:
    data = guilds_data(install)
    assert parse_config(data, install).janus is None
    secret, key = secrets.token_hex(32), secrets.token_hex(32)
    data["sfu"] = {
        "janus": {"url": "ws://127.0.0.1:8188", "token_secret": secret, "admin_key": key}
    }
    janus = parse_config(data, install).janus
    assert janus is not None
    assert (janus.url, janus.public_url) == ("ws://127.0.0.1:8188", "ws://127.0.0.1:8188")
    assert secret not in repr(janus) and key not in repr(janus)
    data["sfu"] = {
        "janus": {
            "url": "http://127.0.0.1:8088",
            "public_url": "wss:///nohost",
            "token_secret": "change-me",
            "admin_key": "short",
            "admin_api": True,
        }
    }
    errors = errors_of(data, install)
    assert "ws:// or wss://" in errors["sfu.janus.url"]
    assert "ws:// or wss://" in errors["sfu.janus.public_url"]
    assert "too short" in errors["sfu.janus.token_secret"]
    assert "too short" in errors["sfu.janus.admin_key"]
    assert "unknown option" in errors["sfu.janus.admin_api"]


def test_sfu_secrets_may_come_from_files(install: Path, tmp_path: Path) -> None:
    data = guilds_data(install)
    secret, key = secrets.token_hex(32), secrets.token_hex(32)
    (tmp_path / "token").write_text(secret + "\n")
    (tmp_path / "key").write_text(key)
    data["sfu"] = {
        "janus": {
            "url": "ws://janus:8188",
            "token_secret_file": str(tmp_path / "token"),
            "admin_key_file": str(tmp_path / "key"),
        }
    }
    janus = parse_config(data, install).janus
    assert janus is not None and (janus.token_secret, janus.admin_key) == (secret, key)
    (tmp_path / "key").write_text("change-me")
    data["sfu"]["janus"]["token_secret"] = secret
    errors = errors_of(data, install)
    assert "not both" in errors["sfu.janus.token_secret_file"]
    assert "too short" in errors["sfu.janus.admin_key_file"]
    del data["sfu"]["janus"]["token_secret"]
    data["sfu"]["janus"]["token_secret_file"] = str(tmp_path / "missing")
    assert "cannot read" in errors_of(data, install)["sfu.janus.token_secret_file"]
