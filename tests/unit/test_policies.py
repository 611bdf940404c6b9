"""Policies: parsed with the key named in every error, pure refusals naming the policy, the
module's share vetoed on the event types it rules only, the server-admin question asked right."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest
import yaml
from synapse.module_api import ModuleApi

from bridge.engine.matrix import MatrixRequestError
from guilds.config import (
    ConfigErrors,
    ModulePolicies,
    Policies,
    load_config,
    module_policies_block,
    parse_config,
    parse_module_config,
)
from guilds.model import CATEGORY_EVENT
from guilds.policies import (
    call_members_refusal,
    channel_count_refusal,
    channel_kind_refusal,
    role_count_refusal,
    server_creation_refusal,
)
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, SERVER_EVENT
from guildsctl import configgen
from guildsctl.check import check_homeserver
from synapse_module.policies import PolicyVetoes, call_user


@pytest.fixture
def install(tmp_path: Path) -> Path:
    configgen.write_installation(
        tmp_path, "example.org", "http://127.0.0.1:8008", "sqlite:///guilds.db"
    )
    return tmp_path


def with_policies(install: Path, policies: Any) -> dict[str, Any]:
    data = yaml.safe_load((install / "guilds.yaml").read_text())
    data["policies"] = policies
    return data


def errors_of(install: Path, policies: Any) -> dict[str, str]:
    with pytest.raises(ConfigErrors) as raised:
        parse_config(with_policies(install, policies), install)
    return {e.key: e.reason for e in raised.value}


# --- parsing ------------------------------------------------------------------------------------


def test_no_policies_is_todays_behaviour(install: Path) -> None:
    config = load_config(install / "guilds.yaml")
    assert config.policies == Policies()
    assert config.module_policies == ModulePolicies()
    # And the generated snippet carries no policies block at all.
    snippet = configgen.homeserver_snippet("example.org", "r.yaml", "guilds")
    assert "policies" not in snippet["modules"][0]["config"]


def test_every_policy_parses(install: Path) -> None:
    data = with_policies(
        install,
        {
            "create_servers": {"users": ["@a:example.org"], "regex": "@staff-.*:example\\.org"},
            "limits": {
                "servers_per_user": 2,
                "channels_per_server": 50,
                "roles_per_server": 10,
                "members_per_voice_channel": 8,
            },
            "channel_kinds": ["voice", "text"],
            "invites": {"expires_in_s": 86400, "max_uses": 10},
            "public_servers": False,
            "join_channels": "default",
        },
    )
    policies = parse_config(data, install).policies
    assert policies.create_servers == "listed"
    assert policies.create_servers_users == ("@a:example.org",)
    assert policies.limits.channels_per_server == 50
    assert policies.channel_kinds == ("text", "voice")
    assert policies.invites.max_uses == 10
    assert policies.public_servers is False
    assert policies.join_channels == "default"
    # Unset, members are joined to every channel they may enter.
    assert Policies().join_channels == "all"


@pytest.mark.parametrize(
    ("policies", "key", "reason"),
    [
        ({"limits": {"channels_per_server": 0}}, "policies.limits.channels_per_server", "≥ 1"),
        ({"limits": {"channels_per_server": "50"}}, "policies.limits.channels_per_server", "≥ 1"),
        ({"limits": {"servers_per_user": True}}, "policies.limits.servers_per_user", "≥ 1"),
        ({"limits": {"rooms": 3}}, "policies.limits.rooms", "unknown option"),
        ({"create_servers": "nobody"}, "policies.create_servers", "everyone, admins"),
        ({"create_servers": 3}, "policies.create_servers", "everyone, admins"),
        ({"create_servers": {"users": ["alice"]}}, "policies.create_servers.users[0]", "user id"),
        ({"create_servers": {"regex": "@("}}, "policies.create_servers.regex", "regular expr"),
        ({"create_servers": {}}, "policies.create_servers", "names nobody"),
        ({"channel_kinds": ["text", "stage"]}, "policies.channel_kinds", "unknown channel kind"),
        ({"channel_kinds": ["voice"]}, "policies.channel_kinds", "must include text"),
        ({"channel_kinds": "text"}, "policies.channel_kinds", "must be a list"),
        ({"invites": {"expires_in_s": 10}}, "policies.invites.expires_in_s", "from 60"),
        ({"invites": {"max_uses": 0}}, "policies.invites.max_uses", "from 1"),
        ({"public_servers": "no"}, "policies.public_servers", "true or false"),
        ({"join_channels": "some"}, "policies.join_channels", "all or default"),
        ({"colour": "red"}, "policies.colour", "unknown option"),
        ([], "policies", "must be a mapping"),
    ],
)
def test_each_bad_policy_names_its_key(install: Path, policies: Any, key: str, reason: str) -> None:
    errors = errors_of(install, policies)
    assert key in errors, errors
    assert reason in errors[key]


def test_module_policies_round_trip_through_the_snippet() -> None:
    policies = ModulePolicies(
        channels_per_server=5, members_per_voice_channel=2, channel_kinds=("text",)
    )
    snippet = configgen.homeserver_snippet("example.org", "r.yaml", "guilds", policies=policies)
    parsed = parse_module_config(snippet["modules"][0]["config"])
    assert parsed.policies == policies


def test_module_policy_errors_name_the_key() -> None:
    with pytest.raises(ConfigErrors) as raised:
        parse_module_config(
            {"bot_user_id": "@g:example.org", "policies": {"channels_per_server": -1}}
        )
    assert "policies.channels_per_server" in {e.key for e in raised.value}


def test_check_config_sees_module_policies_differ(install: Path) -> None:
    data = with_policies(install, {"limits": {"channels_per_server": 5}})
    config = parse_config(data, install)
    stale = configgen.homeserver_snippet(
        "example.org", str(config.appservice.registration_path), "guilds"
    )
    problems = {e.key: e.reason for e in check_homeserver(config, stale)}
    assert "channels_per_server" in problems["modules[0].config.policies"]
    fresh = configgen.homeserver_snippet(
        "example.org",
        str(config.appservice.registration_path),
        "guilds",
        policies=config.module_policies,
    )
    assert check_homeserver(config, fresh) == []
    assert module_policies_block(config.module_policies)["channels_per_server"] == 5


# --- the rules ----------------------------------------------------------------------------------


def test_server_creation() -> None:
    everyone = Policies()
    assert server_creation_refusal(everyone, "@a:x", is_admin=False, servers_owned=99) is None
    admins = Policies(create_servers="admins")
    refusal = server_creation_refusal(admins, "@a:x", is_admin=False, servers_owned=0)
    assert refusal is not None and "policies.create_servers" in refusal
    assert server_creation_refusal(admins, "@a:x", is_admin=True, servers_owned=0) is None
    listed = Policies(
        create_servers="listed", create_servers_users=("@a:x",), create_servers_regex="@ops-.*:x"
    )
    assert server_creation_refusal(listed, "@a:x", is_admin=False, servers_owned=0) is None
    assert server_creation_refusal(listed, "@ops-1:x", is_admin=False, servers_owned=0) is None
    # The regex matches whole user ids only.
    assert server_creation_refusal(listed, "@ops-1:x.evil", is_admin=False, servers_owned=0)
    assert server_creation_refusal(listed, "@b:x", is_admin=True, servers_owned=0)


def test_limits_name_the_policy_and_the_number() -> None:
    limits = Policies().limits.__class__(servers_per_user=1, roles_per_server=2)
    policies = Policies(limits=limits)
    refusal = server_creation_refusal(policies, "@a:x", is_admin=False, servers_owned=1)
    assert refusal is not None and "policies.limits.servers_per_user allows 1 server" in refusal
    assert role_count_refusal(policies, 1) is None
    assert "policies.limits.roles_per_server allows 2 roles" in (
        role_count_refusal(policies, 2) or ""
    )
    assert channel_count_refusal(None, 10_000) is None
    assert channel_count_refusal(50, 49) is None
    assert (
        channel_count_refusal(50, 50)
        == "The policy policies.limits.channels_per_server allows 50 channels per server"
    )
    assert call_members_refusal(2, 1) is None
    assert "members_per_voice_channel" in (call_members_refusal(2, 2) or "")
    assert channel_kind_refusal(("text", "voice"), "voice") is None
    assert "policies.channel_kinds" in (channel_kind_refusal(("text",), "video") or "")


@pytest.mark.parametrize(
    ("key", "user"),
    [
        ("_@alice:example.org_DEVICE", "@alice:example.org"),
        # The shape matrix-js-sdk 43 (Element Call) writes for a room call.
        ("_@alice:example.org_DEVICE_m.call", "@alice:example.org"),
        ("_@a_b:example.org:8448_DEV_1_m.call", "@a_b:example.org:8448"),
        ("@alice:example.org_DEVICE", "@alice:example.org"),
        ("@alice:example.org", "@alice:example.org"),
        ("_@a_b:example.org:8448_DEV_1", "@a_b:example.org:8448"),
    ],
)
def test_call_membership_keys_name_their_user(key: str, user: str) -> None:
    assert call_user(key) == user


# --- the module ---------------------------------------------------------------------------------

SPACE, VOICE, CATEGORY, LOOSE = "!space:here", "!voice:here", "!cat:here", "!loose:here"
OWNER, BOT = "@owner:here", "@guilds:here"


def ev(content: dict[str, Any]) -> Any:
    return SimpleNamespace(content=content)


def module_api(state: dict[str, dict[tuple[str, str], Any]]) -> Mock:
    api = Mock(spec=ModuleApi)
    api.is_mine.side_effect = lambda user: user.endswith(":here")

    async def get_room_state(room_id: str, keys: Iterable[tuple[str, str | None]]) -> Any:
        wanted = list(keys)
        return {
            (t, k): e
            for (t, k), e in state.get(room_id, {}).items()
            if any(t == wt and (wk is None or wk == k) for wt, wk in wanted)
        }

    api.get_room_state = AsyncMock(side_effect=get_room_state)
    return api


def a_server() -> dict[str, dict[tuple[str, str], Any]]:
    return {
        SPACE: {
            (SERVER_EVENT, ""): ev({"owner": OWNER, "default_channel": "!general:here"}),
            ("m.space.child", "!general:here"): ev({"via": ["here"]}),
            ("m.space.child", CATEGORY): ev({"via": ["here"]}),
            ("m.space.child", "!gone:here"): ev({}),
        },
        CATEGORY: {
            (CATEGORY_EVENT, ""): ev({"server_id": SPACE}),
            ("m.space.child", VOICE): ev({"via": ["here"]}),
        },
        VOICE: {
            (CHANNEL_EVENT, ""): ev({"kind": "voice", "server_id": SPACE}),
            (CALL_MEMBER_EVENT, "_@a:here_D1"): ev({"device_id": "D1"}),
            (CALL_MEMBER_EVENT, "_@a:here_D2"): ev({"device_id": "D2"}),
            (CALL_MEMBER_EVENT, "_@b:here_D1"): ev({}),
        },
    }


def state_event(
    event_type: str, content: dict[str, Any], room: str, key: str = "", sender: str = OWNER
) -> Any:
    return SimpleNamespace(
        type=event_type,
        content=content,
        room_id=room,
        state_key=key,
        sender=sender,
        is_state=lambda: True,
    )


async def test_without_policies_the_module_reads_nothing() -> None:
    api = module_api(a_server())
    vetoes = PolicyVetoes(api, BOT, ModulePolicies())
    assert vetoes.types == frozenset()
    event = state_event("m.space.child", {"via": ["here"]}, SPACE, LOOSE)
    assert await vetoes.refusal(event) is None
    api.get_room_state.assert_not_called()


async def test_messages_pass_without_a_lookup() -> None:
    api = module_api(a_server())
    strict = ModulePolicies(channels_per_server=1, members_per_voice_channel=1)
    vetoes = PolicyVetoes(api, BOT, strict)
    message: Any = SimpleNamespace(type="m.room.message", is_state=lambda: False, sender=OWNER)
    assert await vetoes.refusal(message) is None
    api.get_room_state.assert_not_called()


async def test_links_count_channels_through_categories() -> None:
    # general and voice (in the category) are channels; the category is not; "gone" unlinked.
    for limit, refused in ((2, True), (3, False)):
        vetoes = PolicyVetoes(
            module_api(a_server()), BOT, ModulePolicies(channels_per_server=limit)
        )
        refusal = await vetoes.refusal(
            state_event("m.space.child", {"via": ["here"]}, SPACE, LOOSE)
        )
        assert (refusal is not None) is refused, (limit, refusal)
    # The bot carries out what the bridge decided; unlinking is always allowed.
    vetoes = PolicyVetoes(module_api(a_server()), BOT, ModulePolicies(channels_per_server=1))
    assert (
        await vetoes.refusal(state_event("m.space.child", {"via": ["here"]}, SPACE, LOOSE, BOT))
        is None
    )
    assert await vetoes.refusal(state_event("m.space.child", {}, SPACE, LOOSE)) is None


async def test_calls_count_people_not_devices() -> None:
    join = {"device_id": "D9"}
    two = PolicyVetoes(module_api(a_server()), BOT, ModulePolicies(members_per_voice_channel=2))
    assert (
        await two.refusal(state_event(CALL_MEMBER_EVENT, join, VOICE, "_@c:here_D9", "@c:here"))
        is None
    )
    one = PolicyVetoes(module_api(a_server()), BOT, ModulePolicies(members_per_voice_channel=1))
    refusal = await one.refusal(
        state_event(CALL_MEMBER_EVENT, join, VOICE, "_@c:here_D9", "@c:here")
    )
    assert refusal is not None and "members_per_voice_channel" in refusal
    # Someone already in the call joins from another device; leaving is always allowed.
    assert (
        await one.refusal(state_event(CALL_MEMBER_EVENT, join, VOICE, "_@a:here_D3", "@a:here"))
        is None
    )
    assert (
        await one.refusal(state_event(CALL_MEMBER_EVENT, {}, VOICE, "_@c:here_D9", "@c:here"))
        is None
    )


async def test_kinds_and_public_join_rules() -> None:
    vetoes = PolicyVetoes(
        module_api(a_server()), BOT, ModulePolicies(channel_kinds=("text",), public_servers=False)
    )
    refusal = await vetoes.refusal(state_event(CHANNEL_EVENT, {"kind": "voice"}, VOICE))
    assert refusal is not None and "policies.channel_kinds" in refusal
    refusal = await vetoes.refusal(state_event("m.room.join_rules", {"join_rule": "public"}, SPACE))
    assert refusal is not None and "policies.public_servers" in refusal
    assert (
        await vetoes.refusal(state_event("m.room.join_rules", {"join_rule": "invite"}, SPACE))
        is None
    )
    # A room that is no Guilds server may be public.
    assert (
        await vetoes.refusal(state_event("m.room.join_rules", {"join_rule": "public"}, LOOSE))
        is None
    )


# --- the bridge asks the homeserver who is a server admin ------------------------------------


async def test_server_admin_is_asked_with_the_callers_token() -> None:
    from bridge.services.servers import Servers

    matrix = Mock()
    matrix.request = AsyncMock(return_value={"admin": True})
    servers = Servers.__new__(Servers)
    servers.matrix = matrix
    assert await servers.is_server_admin("@a:x", "caller-token") is True  # type: ignore[arg-type]
    method, path = matrix.request.call_args.args
    assert (method, path) == ("GET", "/_synapse/admin/v1/users/%40a%3Ax/admin")
    assert matrix.request.call_args.kwargs["token"] == "caller-token"
    # Synapse answers its admin API only to admins: anyone else gets 403.
    matrix.request = AsyncMock(side_effect=MatrixRequestError(403, "M_FORBIDDEN", "not admin"))
    assert await servers.is_server_admin("@a:x", "caller-token") is False  # type: ignore[arg-type]


# --- the web UI's default look --------------------------------------------------------------


async def test_web_ui_shows_the_configured_theme_and_logo(tmp_path: Path) -> None:
    from dataclasses import replace

    from aiohttp.test_utils import TestClient, TestServer

    from tests.harness.web_app import make_config
    from web.app import create_app

    config = make_config(tmp_path)
    config = replace(config, web=replace(config.web, theme="light", logo='/brand/"logo".svg'))
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    try:
        page = await (await client.get("/")).text()
    finally:
        await client.close()
    assert '<html lang="en" data-theme="light">' in page
    assert '<meta name="guilds-default-theme" content="light">' in page
    # Escaped like every value written into the page.
    assert 'src="/brand/&#34;logo&#34;.svg"' in page


def test_logo_must_load_under_the_pages_policy(install: Path) -> None:
    data = yaml.safe_load((install / "guilds.yaml").read_text())
    data["web"]["logo"] = "https://cdn.elsewhere.net/logo.png"
    with pytest.raises(ConfigErrors) as raised:
        parse_config(data, install)
    assert "origin" in {e.key: e.reason for e in raised.value}["web.logo"]
    data["web"]["logo"] = "http://127.0.0.1:8008/_matrix/media/v3/download/x/y"
    assert parse_config(data, install).web.logo == data["web"]["logo"]


async def test_private_channels_linked_from_role_rooms_count_too() -> None:
    # A private channel is linked from its roles' rooms alone (issue 17, observation 6).
    state = a_server()
    role_room, private = "!crew:here", "!private:here"
    state[SPACE][("m.space.child", role_room)] = ev(
        {"via": ["here"], "chat.guilds.role_room": True}
    )
    state[role_room] = {
        ("m.room.create", ""): ev({"type": "m.space", "chat.guilds.role_room": True}),
        ("m.space.child", private): ev({"via": ["here"]}),
    }
    state[private] = {(CHANNEL_EVENT, ""): ev({"kind": "text", "server_id": SPACE})}
    for limit, refused in ((3, True), (4, False)):
        vetoes = PolicyVetoes(module_api(state), BOT, ModulePolicies(channels_per_server=limit))
        refusal = await vetoes.refusal(
            state_event("m.space.child", {"via": ["here"]}, SPACE, LOOSE)
        )
        assert (refusal is not None) is refused, (limit, refusal)
