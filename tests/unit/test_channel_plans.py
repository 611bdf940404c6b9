"""The pure part of the channel endpoints: orders among siblings, gates, and delete plans."""

from __future__ import annotations

from typing import Any

from bridge.engine.steps import EmptyRoom, Leave, SendState
from bridge.plans.channels import (
    delete_category_plan,
    delete_channel_plan,
    gate_rooms,
    next_index,
    no_longer_allowed,
    position_among_all,
    reordered,
    retype_steps,
)
from bridge.plans.levels import CREATORS_KEY
from bridge.plans.rooms import ServerRooms
from guilds.ids import RoomID, UserID
from guilds.model import BUILTIN_ROLES, Channel, Role, Server, ServerState
from guilds.rules import RoomKind
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, CHANNEL_KIND_KEY, ChannelKind

VOICE = ChannelKind.VOICE

SPACE = RoomID("!space:hs")
ADMIN_ROOM = RoomID("!admins:hs")
MOD_ROOM = RoomID("!mods:hs")
OWNER, MOD, PLAIN, BOT = (UserID(f"@{n}:hs") for n in ("owner", "mod", "plain", "bot"))


def server(channels: tuple[Channel, ...] = ()) -> Server:
    rooms = {"admin": ADMIN_ROOM, "moderator": MOD_ROOM}
    roles = tuple(
        Role(r.role_id, r.name, r.color, r.power, r.position, r.permissions, rooms.get(r.role_id))
        for r in BUILTIN_ROLES
    )
    return Server(
        server_id=SPACE,
        name="S",
        topic="",
        icon=None,
        state=ServerState(OWNER, RoomID("!general:hs")),
        roles=roles,
        channels=channels,
        assignments={MOD: frozenset({"moderator"})},
        members=frozenset({OWNER, MOD, PLAIN}),
    )


def channel(room: str, category: str | None = None, order: str = "000000") -> Channel:
    return Channel(
        RoomID(room),
        room,
        ChannelKind.TEXT,
        "",
        RoomID(category) if category else None,
        order,
        None,
    )


def test_next_index_follows_the_largest_order() -> None:
    assert next_index([]) == 0
    assert next_index(["000000", "000001"]) == 2
    # A gap left by a deletion does not make two children share a place.
    assert next_index(["000000", "000005"]) == 6
    # Orders another client wrote count as a place each.
    assert next_index(["a", "b"]) == 2


def test_reordered_is_dense_and_total() -> None:
    siblings = [(RoomID("!a"), "000000"), (RoomID("!b"), "000001"), (RoomID("!c"), "000002")]
    assert reordered(siblings, RoomID("!c"), 0) == {
        "!c": "000000",
        "!a": "000001",
        "!b": "000002",
    }
    # Past the end means last; unchanged siblings are left alone.
    assert reordered(siblings, RoomID("!a"), 99) == {
        "!b": "000000",
        "!c": "000001",
        "!a": "000002",
    }
    # Ties (from another client) are broken by room id, then written apart.
    tied = [(RoomID("!b"), "x"), (RoomID("!a"), "x")]
    assert reordered(tied, RoomID("!n"), 1) == {"!a": "000000", "!n": "000001", "!b": "000002"}


def test_a_position_counts_only_the_channels_the_caller_sees() -> None:
    # !h is private: a moderator who may not enter it sees !a !b !c, in that order.
    siblings = [
        (RoomID("!a"), "000000"),
        (RoomID("!h"), "000001"),
        (RoomID("!b"), "000002"),
        (RoomID("!c"), "000003"),
    ]
    seen = {RoomID("!a"), RoomID("!b"), RoomID("!c")}
    # !c to the second place he sees: before !b, so after the hidden !h.
    at = position_among_all(siblings, seen, RoomID("!c"), 1)
    assert at == 2
    assert reordered(siblings, RoomID("!c"), at) == {"!c": "000002", "!b": "000003"}
    # First and last as he sees them; nothing asked, nothing moved.
    assert position_among_all(siblings, seen, RoomID("!c"), 0) == 0
    assert position_among_all(siblings, seen, RoomID("!a"), 2) == 3
    assert position_among_all(siblings, seen, RoomID("!a"), 99) == 3
    assert position_among_all(siblings, seen, RoomID("!a"), None) is None
    # Seeing every sibling, the position is the one asked for.
    everyone = {room for room, _ in siblings}
    for position in range(4):
        assert position_among_all(siblings, everyone, RoomID("!b"), position) == position
    # Into a category whose channels he sees none of: last.
    assert position_among_all([(RoomID("!h"), "000000")], set(), RoomID("!n"), 0) == 1


def test_gates_always_let_admins_in() -> None:
    s = server()
    assert gate_rooms(s, None) is None
    assert gate_rooms(s, ()) == [ADMIN_ROOM]
    assert gate_rooms(s, ("moderator",)) == [ADMIN_ROOM, MOD_ROOM]


def test_who_is_removed_when_a_channel_is_gated() -> None:
    s = server()
    ops = channel("!ops:hs")
    inside = [OWNER, MOD, PLAIN, BOT]
    assert no_longer_allowed(s, ops, ("moderator",), inside, BOT) == [PLAIN]
    assert no_longer_allowed(s, ops, (), inside, BOT) == [MOD, PLAIN]
    assert no_longer_allowed(s, ops, None, inside, BOT) == []


def test_delete_channel_plan_unlinks_empties_then_leaves() -> None:
    plan = delete_channel_plan(RoomID("!ops:hs"), SPACE)
    plan.validate()
    first, empty, leave = plan.stages
    assert {(s.room, s.type, s.content == {}) for s in first if isinstance(s, SendState)} == {
        ("!ops:hs", "m.room.join_rules", False),
        (SPACE, "m.space.child", True),
        ("!ops:hs", "m.space.parent", True),
    }
    # Who is inside is read when the step runs, after the room was closed.
    assert [(e.room, type(e)) for e in empty if isinstance(e, EmptyRoom)] == [
        ("!ops:hs", EmptyRoom)
    ]
    assert len(empty) == 1
    assert [type(s) for s in leave] == [Leave]


def test_delete_category_moves_its_channels_after_the_top_level() -> None:
    cat = RoomID("!cat:hs")
    s = server((channel("!x:hs", cat, "000000"), channel("!y:hs", cat, "000001")))
    states = {
        SPACE: {
            ("m.space.child", "!general:hs"): {"via": ["hs"], "order": "000000"},
            ("m.space.child", cat): {"via": ["hs"], "order": "000001"},
        }
    }
    plan = delete_category_plan(ServerRooms(s, [], states, UserID("@bot:hs"), "hs"), cat)
    plan.validate()
    relink = {
        (step.state_key, step.content.get("order"))
        for step in plan.stages[0]
        if isinstance(step, SendState) and step.room == SPACE
    }
    assert relink == {("!x:hs", "000001"), ("!y:hs", "000002")}
    # The category is emptied as it is then, and the bot leaves it last.
    assert [type(step) for step in plan.stages[-2]] == [EmptyRoom]
    assert [type(step) for step in plan.stages[-1]] == [Leave]


def test_retyping_an_adopted_room_keeps_its_creators_out_of_users() -> None:
    """A retype writes the power levels through the creators-aware derivation (issue 15:
    `channels._retype` once skipped it): under v12 an adopted room's creator stays out of
    `users`, the bot holds 100 there explicitly, and the link shows the new kind."""
    # The owner's own room, adopted: under v12 the owner created it and keeps unlimited power.
    room, creator = RoomID("!adopted:hs"), OWNER
    adopted = channel(str(room))
    states: dict[RoomID, dict[tuple[str, str], dict[str, Any]]] = {
        SPACE: {
            ("m.space.child", room): {"via": ["hs"], "order": "000001", CHANNEL_KIND_KEY: "text"}
        },
        room: {
            ("m.room.create", ""): {"room_version": "12"},
            (CHANNEL_EVENT, ""): {"kind": "text", "server_id": SPACE, CREATORS_KEY: [creator]},
            ("m.room.power_levels", ""): {"users": {BOT: 100, MOD: 50}},
        },
    }
    kinds = [(room, RoomKind.CHANNEL, ChannelKind.TEXT)]
    steps = retype_steps(ServerRooms(server((adopted,)), kinds, states, BOT, "hs"), room, VOICE)
    by_type = {(s.room, s.type): s for s in steps if isinstance(s, SendState)}
    assert by_type[(room, CHANNEL_EVENT)].content["kind"] == "voice"
    assert by_type[(room, CHANNEL_EVENT)].content[CREATORS_KEY] == [creator]
    levels = by_type[(room, "m.room.power_levels")].content
    assert levels["users"] == {BOT: 100, MOD: 50}
    # Members of a voice channel write their own call membership.
    assert levels["events"][CALL_MEMBER_EVENT] == 0
    assert by_type[(SPACE, "m.space.child")].content[CHANNEL_KIND_KEY] == "voice"
