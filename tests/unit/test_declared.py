"""Declared servers: parsed with the key named in every error; the lease one process holds; the
report; `guilds apply` without declarations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.engine.lease import Lease, LeaseBusy
from bridge.engine.migrations import migrate
from bridge.engine.store import Database
from bridge.services.declared import Report
from guilds.config import DEFAULT_TEMPLATE, ConfigErrors, parse_config
from guildsctl import configgen
from guildsctl.cli import main


@pytest.fixture
def install(tmp_path: Path) -> Path:
    configgen.write_installation(
        tmp_path, "example.org", "http://127.0.0.1:8008", "sqlite:///guilds.db"
    )
    return tmp_path


def config_with(install: Path, servers: Any, templates: Any = None) -> dict[str, Any]:
    data = yaml.safe_load((install / "guilds.yaml").read_text())
    data["servers"] = servers
    if templates is not None:
        data["templates"] = templates
    return data


def errors_of(install: Path, servers: Any, templates: Any = None) -> dict[str, str]:
    with pytest.raises(ConfigErrors) as raised:
        parse_config(config_with(install, servers, templates), install)
    return {e.key: e.reason for e in raised.value}


COMPANY: dict[str, Any] = {
    "name": "Company",
    "owner": "@boss:example.org",
    "roles": [{"id": "staff", "name": "Staff"}],
    "channels": [{"name": "staff-room", "allowed_roles": ["staff"]}],
    "members": [
        {"users": ["@alice:example.org"], "roles": ["staff"]},
        {"regex": "@.*:example\\.org"},
    ],
}


def test_a_declared_server_parses(install: Path) -> None:
    config = parse_config(config_with(install, {"company": COMPANY}), install)
    (company,) = config.servers
    assert (company.key, company.name, company.owner) == ("company", "Company", "@boss:example.org")
    assert [c.name for c in company.layout.channels] == ["staff-room"]
    assert company.members[0].matches("@alice:example.org")
    assert company.members[1].matches("@anyone:example.org")
    assert not company.members[1].matches("@anyone:example.org.evil")


def test_a_declared_server_may_use_a_template(install: Path) -> None:
    templates = {"team": {"channels": [{"name": "standup", "kind": "voice"}]}}
    servers = {"team": {"name": "Team", "owner": "@boss:example.org", "template": "team"}}
    config = parse_config(config_with(install, servers, templates), install)
    assert config.servers[0].layout == config.templates["team"]
    plain = {"p": {"name": "P", "owner": "@boss:example.org", "template": "default"}}
    assert parse_config(config_with(install, plain), install).servers[0].layout == DEFAULT_TEMPLATE


@pytest.mark.parametrize(
    ("server", "key", "reason"),
    [
        ({**COMPANY, "owner": "boss"}, "servers.company.owner", "not a Matrix user id"),
        ({**COMPANY, "owner": "@boss:elsewhere.net"}, "servers.company.owner", "local user"),
        ({k: v for k, v in COMPANY.items() if k != "owner"}, "servers.company.owner", "required"),
        ({**COMPANY, "name": ""}, "servers.company.name", "name"),
        ({**COMPANY, "template": "nope"}, "servers.company.template", "not a template"),
        ({**COMPANY, "template": "default"}, "servers.company.channels", "not both"),
        ({**COMPANY, "members": [{"roles": ["staff"]}]}, "servers.company.members[0]", "nobody"),
        (
            {**COMPANY, "members": [{"users": ["@a:example.org"], "roles": ["ghost"]}]},
            "servers.company.members[0].roles",
            "not a role of this server",
        ),
        (
            {**COMPANY, "members": [{"regex": "@("}]},
            "servers.company.members[0].regex",
            "regular expression",
        ),
        ({**COMPANY, "colour": 1}, "servers.company.colour", "unknown option"),
        (
            {**COMPANY, "channels": [{"name": "x", "kind": "stage"}]},
            "servers.company.channels[0].kind",
            "one of",
        ),
    ],
)
def test_each_bad_declaration_names_its_key(
    install: Path, server: Any, key: str, reason: str
) -> None:
    errors = errors_of(install, {"company": server})
    assert key in errors, errors
    assert reason in errors[key]


def test_declaration_keys_are_slugs(install: Path) -> None:
    assert "servers.Big Co" in errors_of(install, {"Big Co": COMPANY})


def test_check_config_explains_a_bad_declaration(
    install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = config_with(install, {"company": {**COMPANY, "owner": "boss"}})
    (install / "guilds.yaml").write_text(yaml.safe_dump(data))
    assert main(["check-config", "-c", str(install / "guilds.yaml")]) != 0
    captured = capsys.readouterr()
    assert "servers.company.owner: 'boss' is not a Matrix user id" in captured.out + captured.err


def test_apply_without_declarations_does_nothing(
    install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "-c", str(install / "guilds.yaml"), "--dry-run"]) == 0
    assert "declares no servers" in capsys.readouterr().out


def test_the_report_reads_as_a_plan_or_an_outcome() -> None:
    report = Report(dry_run=True, created=["server x: channel #a"], unchanged=["server x: role b"])
    assert report.lines() == [
        "would be created: 1",
        "  server x: channel #a",
        "would be changed: 0",
        "left alone: 1",
        "  server x: role b",
        "failed: 0",
    ]
    assert Report.from_json(report.to_json()) == report


# --- the lease --------------------------------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(f"sqlite:///{tmp_path / 'guilds.db'}")
    await migrate(database)
    try:
        yield database
    finally:
        await database.close()


async def test_one_holder_at_a_time_until_released_or_lapsed(db: Database) -> None:
    now = [1000.0]
    a = Lease(db, "declared", holder="a", lease_s=60, clock=lambda: now[0])
    b = Lease(db, "declared", holder="b", lease_s=60, clock=lambda: now[0])
    assert await a.try_acquire() is None
    assert await a.try_acquire() is None  # renewing is taking it again
    assert await b.try_acquire() == "a"
    await a.release()
    assert await b.try_acquire() is None
    # b dies without releasing: once its lease lapses, a takes over.
    now[0] += 61
    assert await a.try_acquire() is None
    assert await b.try_acquire() == "a"


async def test_held_refuses_while_another_holds(db: Database) -> None:
    a = Lease(db, "declared", holder="a")
    b = Lease(db, "declared", holder="b")
    async with a.held():
        with pytest.raises(LeaseBusy, match="a holds"):
            async with b.held(wait_s=0.05, poll_s=0.01):
                pass
    async with b.held():
        assert await a.try_acquire() == "b"
    assert await a.try_acquire() is None


def test_the_example_declares_policies_templates_and_a_server(install: Path) -> None:
    from guilds.config import Policies, load_config

    example = Path(__file__).resolve().parents[2] / "config" / "guilds.yaml.example"
    (install / "example.yaml").write_text(example.read_text())
    config = load_config(install / "example.yaml")
    # The example's policies are the defaults, documented as such.
    assert config.policies == Policies()
    assert set(config.templates) == {"default", "community"}
    (company,) = config.servers
    assert company.layout == config.templates["community"]
    assert company.members[1].matches("@bob:example.org")
