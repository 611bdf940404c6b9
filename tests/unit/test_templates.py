"""Server templates: parsed with the key named in every error, checked against the policies, and
built in one create_server plan whose `default` is exactly today's plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.engine.journal import OperationJournal
from bridge.engine.steps import CreateRoom, SendMessage
from bridge.plans.servers import create_server_plan, is_plain, template_roles
from guilds.config import DEFAULT_TEMPLATE, ConfigErrors, ServerTemplate, parse_config
from guilds.ids import UserID
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT
from guildsctl import configgen
from tests.harness.fake_matrix import BOT, FakeMatrix

OWNER = UserID("@owner:localhost")

COMMUNITY: dict[str, Any] = {
    "description": "A community with rules and voice rooms",
    "topic": "Be kind",
    "welcome_message": "Welcome! Read #rules first.",
    "categories": ["Info", "Voice"],
    "roles": [
        {
            "id": "staff",
            "name": "Staff",
            "color": "#aa0000",
            "power": 40,
            "permissions": ["manage_messages", "kick_members"],
        },
        {"id": "vip", "name": "VIP"},
    ],
    "channels": [
        {"name": "rules", "kind": "text", "category": "Info", "topic": "The rules"},
        {"name": "staff-room", "kind": "text", "allowed_roles": ["staff"]},
        {"name": "Lounge", "kind": "voice", "category": "Voice"},
        {
            "name": "VIP lounge",
            "kind": "voice",
            "category": "Voice",
            "allowed_roles": ["vip", "staff"],
        },
    ],
}


@pytest.fixture
def install(tmp_path: Path) -> Path:
    configgen.write_installation(
        tmp_path, "example.org", "http://127.0.0.1:8008", "sqlite:///guilds.db"
    )
    return tmp_path


def parsed(install: Path, templates: Any, policies: Any = None) -> dict[str, ServerTemplate]:
    data = yaml.safe_load((install / "guilds.yaml").read_text())
    data["templates"] = templates
    if policies is not None:
        data["policies"] = policies
    return dict(parse_config(data, install).templates)


def errors_of(install: Path, templates: Any, policies: Any = None) -> dict[str, str]:
    with pytest.raises(ConfigErrors) as raised:
        parsed(install, templates, policies)
    return {e.key: e.reason for e in raised.value}


# --- parsing ------------------------------------------------------------------------------------


def test_the_default_template_is_built_in(install: Path) -> None:
    data = yaml.safe_load((install / "guilds.yaml").read_text())
    templates = parse_config(data, install).templates
    assert dict(templates) == {"default": DEFAULT_TEMPLATE}
    assert is_plain(DEFAULT_TEMPLATE)


def test_a_template_parses(install: Path) -> None:
    template = parsed(install, {"community": COMMUNITY})["community"]
    assert template.categories == ("Info", "Voice")
    assert [r.role_id for r in template.roles] == ["staff", "vip"]
    assert template.roles[0].permissions == ("kick_members", "manage_messages")
    gated = {c.name: c.allowed_roles for c in template.channels}
    assert gated == {
        "rules": None,
        "staff-room": ("staff",),
        "Lounge": None,
        "VIP lounge": ("staff", "vip"),
    }
    assert not is_plain(template)


@pytest.mark.parametrize(
    ("template", "key", "reason"),
    [
        ({"colour": 1}, "templates.t.colour", "unknown option"),
        ({"channels": [{"name": "x", "kind": "stage"}]}, "templates.t.channels[0].kind", "one of"),
        ({"channels": [{"kind": "text"}]}, "templates.t.channels[0].name", "name"),
        (
            {"channels": [{"name": "x", "category": "Nope"}]},
            "templates.t.channels[0].category",
            "not one of the template's categories",
        ),
        (
            {"channels": [{"name": "x", "allowed_roles": ["ghost"]}]},
            "templates.t.channels[0].allowed_roles",
            "neither built in nor in roles",
        ),
        ({"channels": [{"name": "general"}]}, "templates.t.channels[0].name", "used twice"),
        ({"roles": [{"id": "admin", "name": "A"}]}, "templates.t.roles[0].id", "built-in"),
        ({"roles": [{"id": "Bad Id", "name": "A"}]}, "templates.t.roles[0].id", "lower-case"),
        ({"roles": [{"id": "a", "name": "A", "power": 100}]}, "templates.t.roles[0].power", "99"),
        ({"roles": [{"id": "a", "name": "A", "color": "red"}]}, "templates.t.roles[0].color", "#"),
        (
            {"roles": [{"id": "a", "name": "A", "permissions": ["fly"]}]},
            "templates.t.roles[0].permissions",
            "unknown permission",
        ),
        ({"categories": ["A", "A"]}, "templates.t.categories[1]", "twice"),
        ({"welcome_message": ""}, "templates.t.welcome_message", "1 to"),
        ({"channels": "x"}, "templates.t.channels", "must be a list"),
    ],
)
def test_each_bad_template_value_names_its_key(
    install: Path, template: Any, key: str, reason: str
) -> None:
    errors = errors_of(install, {"t": template})
    assert key in errors, errors
    assert reason in errors[key]


def test_template_names_are_slugs(install: Path) -> None:
    assert "templates.Big Team" in errors_of(install, {"Big Team": {}})


def test_templates_must_fit_the_policies(install: Path) -> None:
    policies = {
        "channel_kinds": ["text"],
        "limits": {"channels_per_server": 3, "roles_per_server": 1},
    }
    errors = errors_of(install, {"community": COMMUNITY}, policies)
    assert "policies.channel_kinds" in errors["templates.community.channels[2].kind"]
    assert "channels_per_server allows 3" in errors["templates.community.channels"]
    assert "roles_per_server allows 1" in errors["templates.community.roles"]


# --- the plan -----------------------------------------------------------------------------------


def plan_of(template: ServerTemplate | None) -> Any:
    return create_server_plan(
        owner=OWNER,
        name="Club",
        topic="",
        icon=None,
        bot=UserID(BOT),
        room_version="12",
        via="localhost",
        template=template,
    )


def test_the_default_template_is_todays_plan() -> None:
    assert plan_of(None).to_json() == plan_of(DEFAULT_TEMPLATE).to_json()


def test_a_template_plan_is_one_valid_plan(install: Path) -> None:
    template = parsed(install, {"community": COMMUNITY})["community"]
    plan = plan_of(template)
    plan.validate()
    created = [step.name for _, _, step in plan.steps() if isinstance(step, CreateRoom)]
    # space, 2 built-in and 2 custom role rooms, general, 2 categories, 4 channels.
    assert len(created) == 1 + 2 + 2 + 1 + 2 + 4
    assert [s.name for _, _, s in plan.steps() if isinstance(s, SendMessage)] == ["welcome"]
    # Custom roles rank just above member, most senior first.
    assert [(r.role_id, r.position) for r in template_roles(template)] == [("staff", 2), ("vip", 1)]


async def test_a_template_plan_builds_its_rooms(
    install: Path,
    journal: OperationJournal,  # noqa: F811
    hs: FakeMatrix,  # noqa: F811
) -> None:
    template = parsed(install, {"community": COMMUNITY})["community"]
    results = await journal.execute("create_server", None, plan_of(template))
    space = hs.rooms[results["space"]["room_id"]]
    roles = {key: content for (t, key), content in space.state.items() if t == ROLE_EVENT}
    assert set(roles) == {"admin", "moderator", "member", "staff", "vip"}
    staff_room = results["custom_role_0"]["room_id"]
    assert roles["staff"]["room_id"] == staff_room
    # The space's children: general, the top-level staff-room, then both categories; and the
    # role rooms, linked without an order so that other clients nest them (issue 17).
    role_rooms = {content["room_id"] for content in roles.values() if content.get("room_id")}
    assert len(role_rooms) == 4  # admin, moderator, staff, vip: member is everyone
    children = {
        key: content["order"]
        for (t, key), content in space.state.items()
        if t == "m.space.child" and content and key not in role_rooms
    }
    assert all(space.state[("m.space.child", room)]["via"] for room in role_rooms)
    by_name = {
        results[step]["room_id"]: name
        for step, name in [
            ("general", "general"),
            ("channel_1", "staff-room"),
            ("category_0", "Info"),
            ("category_1", "Voice"),
        ]
    }
    # The staff room is private (gated on staff): its place, 000001, is in the links of its
    # roles' rooms alone, none in the space that every member reads (issue 17, observation 6).
    assert sorted((order, by_name[room]) for room, order in children.items()) == [
        ("000000", "general"),
        ("000002", "Info"),
        ("000003", "Voice"),
    ]
    staff_channel = results["channel_1"]["room_id"]
    for role_room in (results["role_admin"]["room_id"], staff_room):
        assert hs.rooms[role_room].state[("m.space.child", staff_channel)]["order"] == "000001"
    # The VIP lounge sits in Voice, gated by admin, staff and vip.
    lounge = hs.rooms[results["channel_3"]["room_id"]]
    voice = results["category_1"]["room_id"]
    assert ("m.space.parent", voice) in lounge.state
    assert lounge.state[(CHANNEL_EVENT, "")]["kind"] == "voice"
    allowed = {a["room_id"] for a in lounge.state[("m.room.join_rules", "")]["allow"]}
    assert allowed == {
        results["role_admin"]["room_id"],
        results["custom_role_0"]["room_id"],
        results["custom_role_1"]["room_id"],
    }
    assert ("m.space.child", results["channel_3"]["room_id"]) not in hs.rooms[voice].state
    for role_room in allowed:
        assert hs.rooms[role_room].state[("m.space.child", results["channel_3"]["room_id"])]
    general = hs.rooms[results["general"]["room_id"]]
    assert [m["body"] for m in general.messages] == ["Welcome! Read #rules first."]
