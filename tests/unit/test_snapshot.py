"""Assembling a server's model from raw room state, and keeping that state current in order."""

from __future__ import annotations

from typing import Any

from bridge.plans.channels import next_index
from bridge.readback.directory import RoomStates
from guilds.ids import RoomID, UserID
from guilds.layout import role_link
from guilds.model import BUILTIN_ROLES, CATEGORY_EVENT, Permission, Role
from guilds.snapshot import assemble, banned, children, rooms_of
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT, ChannelKind

SPACE = RoomID("!space")
ADMIN_ROOM, MOD_ROOM, VIP_ROOM = RoomID("!admins"), RoomID("!mods"), RoomID("!vips")
GENERAL, VIP_CHAT, VOICE, CATEGORY, IN_CATEGORY = (
    RoomID("!general"),
    RoomID("!vip-chat"),
    RoomID("!voice"),
    RoomID("!category"),
    RoomID("!in-category"),
)
OWNER, MOD, VIP, PLAIN, GONE = (
    UserID("@owner:x"),
    UserID("@mod:x"),
    UserID("@vip:x"),
    UserID("@plain:x"),
    UserID("@gone:x"),
)

Key = tuple[str, str]


def member(user: str, membership: str = "join") -> tuple[Key, dict[str, Any]]:
    return ("m.room.member", user), {"membership": membership}


def child(order: str) -> dict[str, Any]:
    return {"via": ["x"], "order": order}


def channel_state(
    name: str, kind: str, allow: list[RoomID], default: bool = False
) -> dict[Key, Any]:
    return {
        ("m.room.name", ""): {"name": name},
        (CHANNEL_EVENT, ""): {"kind": kind, "server_id": SPACE, "default": default},
        ("m.room.join_rules", ""): {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": r} for r in allow],
        },
    }


def server_rooms() -> dict[RoomID, dict[Key, Any]]:
    admin, moderator, member_role = BUILTIN_ROLES
    vip = Role("vip", "VIP", "#ffcc00", 10, 100, frozenset({Permission.SEND_MESSAGES}), VIP_ROOM)
    roles = [
        Role(**{**admin.__dict__, "room_id": ADMIN_ROOM}),
        Role(**{**moderator.__dict__, "room_id": MOD_ROOM}),
        member_role,
        vip,
    ]
    space: dict[Key, Any] = {
        ("m.room.name", ""): {"name": "Friends"},
        ("m.room.topic", ""): {"topic": "hello"},
        ("m.room.avatar", ""): {"url": "mxc://x/icon"},
        (SERVER_EVENT, ""): {"owner": OWNER, "default_channel": GENERAL},
        ("m.space.child", GENERAL): child("000000"),
        ("m.space.child", VIP_CHAT): child("000002"),
        ("m.space.child", VOICE): child("000001"),
        ("m.space.child", CATEGORY): child("000003"),
        # Removed from the space: empty content.
        ("m.space.child", RoomID("!removed")): {},
        (ROLE_EVENT, "broken"): {"name": 3},
    }
    for role in roles:
        space[(ROLE_EVENT, role.role_id)] = role.content()
    for user in (OWNER, MOD, VIP, PLAIN):
        space[("m.room.member", user)] = {"membership": "join"}
    space[("m.room.member", GONE)] = {"membership": "ban"}
    return {
        SPACE: space,
        ADMIN_ROOM: dict([member(OWNER)]),
        MOD_ROOM: dict([member(MOD), member(PLAIN, "leave")]),
        VIP_ROOM: dict([member(VIP)]),
        GENERAL: channel_state("general", "text", [SPACE], default=True),
        VIP_CHAT: channel_state("vip chat", "text", [VIP_ROOM, ADMIN_ROOM]),
        VOICE: channel_state("Lounge", "voice", [SPACE]),
        CATEGORY: {
            ("m.room.name", ""): {"name": "Games"},
            (CATEGORY_EVENT, ""): {"server_id": SPACE},
            ("m.space.child", IN_CATEGORY): child("000000"),
        },
        IN_CATEGORY: channel_state("minecraft", "text", [SPACE]),
    }


def test_assemble_reads_every_part_of_the_server() -> None:
    server = assemble(SPACE, server_rooms())
    assert (server.name, server.topic, server.icon) == ("Friends", "hello", "mxc://x/icon")
    assert server.state.owner == OWNER and server.state.default_channel == GENERAL
    assert [r.role_id for r in server.roles] == ["admin", "moderator", "vip", "member"]
    assert server.members == {OWNER, MOD, VIP, PLAIN}
    assert server.assignments == {OWNER: {"admin"}, MOD: {"moderator"}, VIP: {"vip"}}
    by_id = {c.channel_id: c for c in server.channels}
    assert [c.channel_id for c in server.channels] == [GENERAL, IN_CATEGORY, VOICE, VIP_CHAT]
    assert by_id[GENERAL].default and by_id[GENERAL].allowed_roles is None
    # Admins may always enter; they are not listed as a gate.
    assert by_id[VIP_CHAT].allowed_roles == ("vip",)
    assert by_id[VOICE].kind is ChannelKind.VOICE
    assert by_id[IN_CATEGORY].category_id == CATEGORY
    assert [(c.category_id, c.name) for c in server.categories] == [(CATEGORY, "Games")]
    assert banned(server_rooms()[SPACE]) == {GONE}


def test_the_bot_is_not_a_member() -> None:
    rooms = server_rooms()
    bot = UserID("@bot:x")
    for room in (SPACE, ADMIN_ROOM):
        rooms[room][("m.room.member", bot)] = {"membership": "join"}
    assert bot in assemble(SPACE, rooms).members
    server = assemble(SPACE, rooms, bot=bot)
    assert bot not in server.members and bot not in server.assignments


def test_rooms_missing_from_the_state_are_left_out() -> None:
    rooms = server_rooms()
    del rooms[VOICE], rooms[VIP_ROOM]
    server = assemble(SPACE, rooms)
    assert VOICE not in {c.channel_id for c in server.channels}
    assert VIP not in server.assignments


def test_rooms_of_lists_space_channels_categories_and_role_rooms() -> None:
    rooms = server_rooms()
    assert rooms_of(SPACE, rooms) == {
        SPACE,
        ADMIN_ROOM,
        MOD_ROOM,
        VIP_ROOM,
        GENERAL,
        VIP_CHAT,
        VOICE,
        CATEGORY,
        IN_CATEGORY,
    }


def state_event(
    event_id: str, content: dict[str, Any], replaces: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "room_id": GENERAL,
        "type": "m.room.name",
        "state_key": "",
        "event_id": event_id,
        "content": content,
    }
    if replaces:
        event["unsigned"] = {"replaces_state": replaces}
    return event


def test_room_states_keep_the_newest_state_whatever_the_arrival_order() -> None:
    states = RoomStates()
    states.replace(GENERAL, [state_event("$1", {"name": "one"})])
    # The bridge renames the channel; its own transaction comes back later.
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "three"}, "$3")
    # An older rename by someone else, still on its way when we sent ours: ignored.
    assert not states.apply_received(state_event("$2", {"name": "two"}, replaces="$1"))
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "three"}
    # Our own event confirms what we hold.
    assert not states.apply_received(state_event("$3", {"name": "three"}, replaces="$2"))
    # From then on, transactions arrive in order and each one applies.
    assert states.apply_received(state_event("$4", {"name": "four"}, replaces="$3"))
    assert states.apply_received(state_event("$5", {"name": "five"}, replaces="$9"))
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "five"}


def test_room_states_know_which_events_a_state_has_replaced() -> None:
    states = RoomStates()
    states.replace(GENERAL, [state_event("$1", {"name": "one"})])
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "two"}, "$2")
    # Our own event comes back by transaction before the plan records it: not a replacement.
    assert not states.apply_received(state_event("$2", {"name": "two"}, replaces="$1"))
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "two"}, "$2")
    assert not states.superseded(GENERAL, "m.room.name", "", "$2")
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "three"}, "$3")
    assert states.apply_received(state_event("$4", {"name": "four"}, replaces="$3"))
    # Writing "one" or "two" again answered with $1 or $2: a homeserver behind on the room.
    assert states.superseded(GENERAL, "m.room.name", "", "$1")
    assert states.superseded(GENERAL, "m.room.name", "", "$2")
    assert states.superseded(GENERAL, "m.room.name", "", "$3")
    # The current event (a write of the same content) and a new one are not.
    assert not states.superseded(GENERAL, "m.room.name", "", "$4")
    assert not states.superseded(GENERAL, "m.room.name", "", "$5")
    assert not states.superseded(GENERAL, "m.room.topic", "", "$1")


def test_an_older_event_handled_after_a_reload_does_not_mark_the_current_one_replaced() -> None:
    # The bridge restarts: the room is loaded anew ($5 is current), then events stored before
    # the restart are handled. A write of $5's content is answered with $5: not a stale answer.
    states = RoomStates()
    states.replace(GENERAL, [state_event("$5", {"name": "five"})])
    states.apply_received(state_event("$4", {"name": "four"}, replaces="$3"))
    assert not states.superseded(GENERAL, "m.room.name", "", "$5")
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "five"}, "$5")
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "five"}


def test_room_states_ignore_untracked_rooms() -> None:
    states = RoomStates()
    assert not states.apply_received(state_event("$1", {"name": "x"}))
    assert GENERAL not in states


def test_an_event_that_does_not_follow_the_held_state_is_out_of_order() -> None:
    """After a reload, an older event handled late would set the state back (the queue's
    restart test saw a role's power go back from 44 to 43): the directory must ask the
    homeserver instead. Events that follow what is held, and our own, are in order."""
    states = RoomStates()
    states.replace(GENERAL, [state_event("$5", {"name": "five"})])
    assert states.out_of_order(state_event("$4", {"name": "four"}, replaces="$3"))
    assert not states.out_of_order(state_event("$6", {"name": "six"}, replaces="$5"))
    assert not states.out_of_order(state_event("$5", {"name": "five"}, replaces="$4"))
    # What the bridge sent itself is not confirmed yet: its own rules apply (see above).
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "seven"}, "$7")
    assert not states.out_of_order(state_event("$6", {"name": "six"}, replaces="$5"))
    # Untracked rooms and new keys have nothing to be out of order with.
    assert not states.out_of_order({**state_event("$1", {"name": "x"}), "room_id": "!other"})
    topic = {**state_event("$8", {"topic": "t"}), "type": "m.room.topic"}
    assert not states.out_of_order(topic)


def test_role_room_links_take_no_place_among_the_channels() -> None:
    # Issue 17: the space links its role rooms (spaces) so clients nest them; the next channel
    # still comes right after the last channel or category, and the role room is no child.
    space = {
        ("m.space.child", "!general:hs"): {"via": ["hs"], "order": "000000"},
        ("m.space.child", "!mods:hs"): role_link("hs"),
        ("m.space.child", "!admins:hs"): role_link("hs"),
        ("m.space.child", "!gone:hs"): {},
    }
    assert children(space) == {RoomID("!general:hs"): "000000"}
    assert next_index(list(children(space).values())) == 1


def test_a_state_answer_asked_for_before_a_change_does_not_set_the_room_back() -> None:
    """A channel created while the space was renamed reads the space back; the homeserver took
    that snapshot before the rename (the queue's stuck-homeserver test saw the server's name go
    back to "Stuck" and stay there)."""
    states = RoomStates()
    states.replace(GENERAL, [state_event("$1", {"name": "Stuck"})])
    asked_at = states.clock
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "Renamed"}, "$2")
    link = {**state_event("$3", {"via": ["x"]}), "type": "m.space.child", "state_key": "!new"}
    assert states.apply_received(link)
    # The answer, taken before both: neither the rename nor the new link is lost.
    states.replace(GENERAL, [state_event("$1", {"name": "Stuck"})], asked_at)
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "Renamed"}
    assert states.view()[GENERAL][("m.space.child", "!new")] == {"via": ["x"]}
    # The rename's transaction still confirms it, and what follows it applies.
    assert not states.apply_received(state_event("$2", {"name": "Renamed"}, replaces="$1"))
    assert states.apply_received(state_event("$4", {"name": "Later"}, replaces="$2"))
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "Later"}


def test_a_state_answer_newer_than_what_was_learned_meanwhile_wins() -> None:
    states = RoomStates()
    states.replace(GENERAL, [state_event("$1", {"name": "one"})])
    asked_at = states.clock
    states.apply_sent(GENERAL, "m.room.name", "", {"name": "two"}, "$2")
    states.apply_received({**state_event("$5", {"topic": "t"}), "type": "m.room.topic"})
    # The answer holds the event that replaced ours, and our topic itself.
    states.replace(
        GENERAL,
        [
            state_event("$3", {"name": "three"}, replaces="$2"),
            {**state_event("$5", {"topic": "t"}), "type": "m.room.topic"},
        ],
        asked_at,
    )
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "three"}
    assert states.view()[GENERAL][("m.room.topic", "")] == {"topic": "t"}
    # It confirmed both: an event following either applies.
    assert states.apply_received(state_event("$6", {"name": "six"}, replaces="$3"))
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "six"}


def test_a_state_answer_drops_what_was_held_before_it_was_asked_for() -> None:
    states = RoomStates()
    link = {**state_event("$2", {"via": ["x"]}), "type": "m.space.child", "state_key": "!gone"}
    states.replace(GENERAL, [state_event("$1", {"name": "one"}), link])
    states.apply_received(state_event("$3", {"name": "three"}, replaces="$1"))
    asked_at = states.clock
    # Unlinked and renamed back by the time of the answer: the homeserver is right.
    states.replace(GENERAL, [state_event("$4", {"name": "four"}, replaces="$3")], asked_at)
    assert states.view()[GENERAL] == {("m.room.name", ""): {"name": "four"}}


def test_an_event_out_of_order_gives_way_to_any_state_answer() -> None:
    """An older event handled late (after a restart) is applied but doubted: a read already
    under way, whose answer holds the newer event, sets it right."""
    states = RoomStates()
    states.replace(GENERAL, [state_event("$5", {"name": "five"})])
    asked_at = states.clock
    late = state_event("$4", {"name": "four"}, replaces="$3")
    assert states.out_of_order(late)
    states.apply_received(late)
    states.doubt(GENERAL, "m.room.name", "")
    states.replace(GENERAL, [state_event("$5", {"name": "five"})], asked_at)
    assert states.view()[GENERAL][("m.room.name", "")] == {"name": "five"}
