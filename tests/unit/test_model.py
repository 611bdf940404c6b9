"""The model contract: parsing and rendering Guilds state, names and orders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guilds.ids import RoomID, UserID
from guilds.model import (
    ALL_PERMISSIONS,
    BIDI_CONTROLS,
    BUILTIN_ROLES,
    MAX_NAME_LENGTH,
    InvalidContent,
    Permission,
    Role,
    Server,
    ServerState,
    name_problem,
    order_key,
    parse_role,
    parse_server_state,
    sorted_roles,
    topic_problem,
)

OWNER = UserID("@owner:example.org")


@pytest.mark.parametrize(
    "name",
    [
        "general",
        "a",
        "x" * MAX_NAME_LENGTH,
        "café ☕",
        "日本語のチャンネル",
        "👩‍👩‍👧 family",
        "with  inner  spaces",
        "مرحبا",
    ],
)
def test_names_accepted(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "1 to 100"),
        ("x" * (MAX_NAME_LENGTH + 1), "1 to 100"),
        ("   ", "visible"),
        ("\u200b\u200b", "visible"),
        ("\u200b \u2060\ufeff", "visible"),
        ("\u3164\u3164", "visible"),
        ("\u2800", "visible"),
        ("\u00a0\u3000", "visible"),
        ("\ufe0f", "visible"),
        ("\U000e0041\U000e0042", "visible"),
        ("admin\u202e", "bidirectional"),
        ("\u202egnp.exe", "bidirectional"),
        ("a\u2066b\u2069", "bidirectional"),
        ("\u200fname", "bidirectional"),
        ("x\u200ey", "bidirectional"),
        ("\u061cname", "bidirectional"),
        ("\u202a\u202b\u202c\u202d", "bidirectional"),
        ("tab\there", "control"),
        ("new\nline", "control"),
        ("nul\x00", "control"),
        ("escape\x1b[31m", "control"),
        ("c1\x85", "control"),
        ("line\u2028separator", "control"),
        (None, "string"),
        (42, "string"),
    ],
)
def test_names_refused(name: object, why: str) -> None:
    problem = name_problem(name, "channel name")
    assert problem is not None
    assert why in problem
    assert problem.startswith("channel name")


@given(
    st.text(alphabet=st.characters(exclude_categories=("Cc", "Zl", "Zp", "Cs", "Cf"))),
    st.text(alphabet=st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=1),
)
def test_any_printable_name_of_valid_length_is_accepted(rest: str, letter: str) -> None:
    # One letter, digit, punctuation or symbol always draws something (the blank Hangul
    # fillers and Braille pattern are letters and symbols too: appended, never alone).
    name = rest + (letter if letter not in "\u115f\u1160\u3164\uffa0\u2800" else "a")
    expected_ok = len(name) <= MAX_NAME_LENGTH
    assert (name_problem(name) is None) is expected_ok


@given(st.text(min_size=1, max_size=20), st.sampled_from(sorted(BIDI_CONTROLS)))
def test_a_bidi_control_anywhere_is_refused(text: str, control: str) -> None:
    cut = len(text) // 2
    assert name_problem(text[:cut] + control + text[cut:]) is not None


@given(st.text(alphabet=st.characters(categories=("Zs", "Cf")), min_size=1, max_size=20))
def test_a_name_of_only_spaces_and_format_characters_is_refused(name: str) -> None:
    assert name_problem(name) is not None


@given(st.text(min_size=0, max_size=20), st.sampled_from(["\x00", "\n", "\r", "\x7f", "\x9f"]))
def test_a_control_character_anywhere_is_refused(prefix: str, control: str) -> None:
    assert name_problem(prefix + control + "x") is not None


def test_topics() -> None:
    assert topic_problem("") is None
    assert topic_problem("two\nlines\tand a tab") is None
    assert topic_problem("bell\x07") is not None
    assert topic_problem("x" * 1025) is not None
    assert topic_problem(3) is not None


def test_role_content_round_trips() -> None:
    for role in BUILTIN_ROLES:
        assert parse_role(role.role_id, role.content()) == role
    custom = Role(
        "dj",
        "DJ",
        "#00ff00",
        20,
        300,
        frozenset({Permission.CONNECT}),
        RoomID("!dj:example.org"),
    )
    assert parse_role("dj", custom.content()) == custom
    assert custom.content()["permissions"] == ["connect"]


def test_builtin_roles_match_the_api_table() -> None:
    by_id = {r.role_id: r for r in BUILTIN_ROLES}
    assert by_id["admin"].power == 100
    assert by_id["admin"].permissions == ALL_PERMISSIONS
    assert by_id["moderator"].power == 50
    assert {p.value for p in by_id["moderator"].permissions} == {
        "manage_channels",
        "kick_members",
        "ban_members",
        "create_invites",
        "manage_messages",
        "send_messages",
        "connect",
        "video",
    }
    assert by_id["member"].power == 0
    assert {p.value for p in by_id["member"].permissions} == {"send_messages", "connect", "video"}
    assert all(r.builtin for r in BUILTIN_ROLES)
    assert not Role("dj", "DJ", None, 1, 1, frozenset()).builtin
    assert by_id["admin"].position > by_id["moderator"].position > by_id["member"].position


@pytest.mark.parametrize(
    ("role_id", "content"),
    [
        ("Bad Id", {"name": "x", "power": 1, "position": 1}),
        ("ok", {"power": 1, "position": 1}),
        ("ok", {"name": "x", "power": "1", "position": 1}),
        ("ok", {"name": "x", "power": True, "position": 1}),
        ("ok", {"name": "x", "power": 1}),
        ("ok", {"name": "x", "power": 1, "position": 1, "permissions": "all"}),
    ],
)
def test_malformed_roles_are_refused(role_id: str, content: dict) -> None:
    with pytest.raises(InvalidContent):
        parse_role(role_id, content)


def test_role_parsing_is_lenient_where_it_can_be() -> None:
    role = parse_role(
        "dj",
        {
            "name": "DJ",
            "power": 5,
            "position": 7,
            "color": "red",
            # Unknown names (a newer Guilds) and junk that does not even hash are dropped.
            "permissions": ["connect", "teleport", {"x": 1}, ["video"]],
            "room_id": 12,
        },
    )
    assert role.color is None
    assert role.permissions == frozenset({Permission.CONNECT})
    assert role.room_id is None


def test_server_state() -> None:
    state = parse_server_state({"owner": OWNER, "default_channel": "!g:example.org"})
    assert state == ServerState(OWNER, RoomID("!g:example.org"))
    assert parse_server_state(state.content()) == state
    with pytest.raises(InvalidContent):
        parse_server_state({"owner": OWNER})
    with pytest.raises(InvalidContent):
        parse_server_state({"owner": 1, "default_channel": "!g:example.org"})


def test_roles_of_and_membership() -> None:
    alice = UserID("@alice:example.org")
    server = Server(
        RoomID("!s:example.org"),
        "S",
        "",
        None,
        ServerState(OWNER, RoomID("!g:example.org")),
        BUILTIN_ROLES,
        assignments={alice: frozenset({"moderator"})},
        members=frozenset({alice}),
    )
    assert [r.role_id for r in server.roles_of(alice)] == ["moderator", "member"]
    # The owner is an admin whatever the assignments say, and a member even if unlisted.
    assert [r.role_id for r in server.roles_of(OWNER)] == ["admin", "member"]
    assert server.is_member(OWNER)
    assert server.is_member(alice)
    assert not server.is_member(UserID("@stranger:example.org"))
    assert server.role("moderator") is not None
    assert server.role("nope") is None


@given(st.lists(st.integers(min_value=0, max_value=999_999), min_size=2, max_size=20))
def test_order_keys_sort_like_integers(indices: list[int]) -> None:
    assert sorted(indices, key=order_key) == sorted(indices)


def test_sorted_roles_most_senior_first() -> None:
    assert [r.role_id for r in sorted_roles(reversed(BUILTIN_ROLES))] == [
        "admin",
        "moderator",
        "member",
    ]
