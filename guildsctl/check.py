"""`guilds check-config`: validates guilds.yaml and, if given, the Synapse side of the install."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from guilds.config import (
    ConfigError,
    ConfigErrors,
    GuildsConfig,
    load_config,
    module_policies_block,
    parse_module_config,
)
from guildsctl.configgen import MODULE_PATH

MIN_ROOM_VERSION = 10
# Synapse secrets that examples ship as placeholders and that must be long random strings.
SECRET_KEYS = (
    "registration_shared_secret",
    "macaroon_secret_key",
    "form_secret",
    "worker_replication_secret",
    "turn_shared_secret",
)
MIN_SECRET_LENGTH = 16
HOW_TO_GENERATE = "python -c 'import secrets; print(secrets.token_hex(32))'"


def weak_secret_reason(value: object) -> str | None:
    """Why a configured secret is not fit for use, or None when it looks like a real one."""
    if not isinstance(value, str):
        return "must be a string"
    if "change" in value.lower() or len(set(value)) < 4:
        return f"is a placeholder; generate one with {HOW_TO_GENERATE}"
    if len(value) < MIN_SECRET_LENGTH:
        return (
            f"is shorter than {MIN_SECRET_LENGTH} characters; generate one with {HOW_TO_GENERATE}"
        )
    return None


def merged_homeserver_config(paths: list[Path]) -> dict[str, Any]:
    """Synapse merges several `-c` files key by key, later files winning; so do we."""
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigErrors(
                str(path), [ConfigError("(file)", f"cannot read: {exc.strerror}")]
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigErrors(
                str(path), [ConfigError("(file)", f"not valid YAML: {exc}")]
            ) from None
        if not isinstance(data, dict):
            raise ConfigErrors(str(path), [ConfigError("(top level)", "must be a mapping")])
        merged.update(data)
    return merged


def check_homeserver(config: GuildsConfig, homeserver: dict[str, Any]) -> list[ConfigError]:
    """Does this Synapse configuration load the module and the appservice Guilds expects?"""
    errors: list[ConfigError] = []
    modules = homeserver.get("modules") or []
    ours = [m for m in modules if isinstance(m, dict) and m.get("module") == MODULE_PATH]
    if not ours:
        errors.append(ConfigError("modules", f"does not load {MODULE_PATH}"))
    for i, module in enumerate(ours):
        try:
            module_config = parse_module_config(module.get("config"))
        except ConfigErrors as problems:
            errors += [ConfigError(f"modules[{i}].config.{e.key}", e.reason) for e in problems]
            continue
        if module_config.bot_user_id != config.bot_user_id:
            errors.append(
                ConfigError(
                    f"modules[{i}].config.bot_user_id",
                    f"is {module_config.bot_user_id} but guilds.yaml's bot is {config.bot_user_id}",
                )
            )
        if module_config.policies != config.module_policies:
            # The module would enforce other rules than the bridge: say what it should read.
            errors.append(
                ConfigError(
                    f"modules[{i}].config.policies",
                    "differs from guilds.yaml's policies; it should be "
                    f"{module_policies_block(config.module_policies)}",
                )
            )
    files = homeserver.get("app_service_config_files") or []
    wanted = config.appservice.registration_path.resolve()
    if not any(isinstance(f, str) and Path(f).resolve() == wanted for f in files):
        errors.append(ConfigError("app_service_config_files", f"does not list {wanted}"))
    version = homeserver.get("default_room_version")
    if version is not None and not (str(version).isdigit() and int(version) >= MIN_ROOM_VERSION):
        errors.append(
            ConfigError(
                "default_room_version",
                f"must be {MIN_ROOM_VERSION} or later for restricted channels",
            )
        )
    for key in SECRET_KEYS:
        if key in homeserver and (reason := weak_secret_reason(homeserver[key])):
            errors.append(ConfigError(key, reason))
    server_name = homeserver.get("server_name")
    if server_name is not None and server_name != config.homeserver.server_name:
        errors.append(
            ConfigError(
                "server_name",
                f"is {server_name!r} but guilds.yaml says homeserver.server_name: "
                f"{config.homeserver.server_name!r}",
            )
        )
    return errors


def check(config_path: Path, homeserver_paths: list[Path]) -> list[str]:
    """Every problem as a printable line; empty when all is well."""
    try:
        config = load_config(config_path)
    except ConfigErrors as problems:
        return [f"{problems.source}: {e}" for e in problems]
    if not homeserver_paths:
        return []
    source = ", ".join(str(p) for p in homeserver_paths)
    try:
        homeserver = merged_homeserver_config(homeserver_paths)
    except ConfigErrors as problems:
        return [f"{problems.source}: {e}" for e in problems]
    return [f"{source}: {e}" for e in check_homeserver(config, homeserver)]
