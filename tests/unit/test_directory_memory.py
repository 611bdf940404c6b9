"""bench/directory_memory.py: copies of a captured server load as distinct servers in the bridge."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bench.directory_memory import (
    CapturedHomeserver,
    capture,
    copy_id,
    filesystem_of,
    measure,
    original_id,
    state_fingerprint,
    steps_for,
    unsettled,
)
from bridge.engine.matrix import MatrixRequestError
from bridge.readback.directory import RoomStates, ServerDirectory
from guilds.config import DirectorySettings
from guilds.ids import RoomID, UserID
from guilds.model import BUILTIN_ROLES, CATEGORY_EVENT, Role
from guilds.snapshot import assemble
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT

BOT = UserID("@guilds:x")
OWNER, ANN, BOB = UserID("@owner:x"), UserID("@ann:x"), UserID("@bob:x")
# Room version 12 ids (a hash, no server name) and older ones (with it) alike.
SPACE, ADMINS, GENERAL, CATEGORY, FILED = (
    RoomID("!Sp4ce-hash_v12"),
    RoomID("!admins:x"),
    RoomID("!general:x"),
    RoomID("!Cat3gory-hash"),
    RoomID("!filed:x"),
)
# Linked from the space, but the bot was never in it: not captured.
ELSEWHERE = RoomID("!elsewhere:x")


class Events:
    """Raw state events as `/state` answers them, each with an event id of its own."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> dict[str, Any]:
        self.count += 1
        event: dict[str, Any] = {
            "type": event_type,
            "state_key": state_key,
            "content": content,
            "room_id": room_id,
            "sender": BOT,
            "event_id": f"$event{self.count}",
            "origin_server_ts": 1_700_000_000_000 + self.count,
        }
        if self.count > 1:
            event["unsigned"] = {"replaces_state": f"$event{self.count - 1}"}
        return event


def joined(event: Events, room_id: str, *users: str) -> list[dict[str, Any]]:
    return [event(room_id, "m.room.member", {"membership": "join"}, user) for user in users]


def tiny_server() -> dict[str, Any]:
    event = Events()
    admin, _, member_role = BUILTIN_ROLES
    via = {"via": ["x"]}
    space = [
        event(SPACE, "m.room.create", {"type": "m.space"}),
        event(SPACE, "m.room.name", {"name": "Friends"}),
        # Looks like a room id, but is no room of this server: left as it is.
        event(SPACE, "m.room.topic", {"topic": "formerly !oldspace:x"}),
        event(SPACE, SERVER_EVENT, {"owner": OWNER, "default_channel": GENERAL}),
        event(SPACE, ROLE_EVENT, Role(**{**admin.__dict__, "room_id": ADMINS}).content(), "admin"),
        event(SPACE, ROLE_EVENT, member_role.content(), "member"),
        event(SPACE, "m.space.child", {**via, "order": "000000"}, GENERAL),
        event(SPACE, "m.space.child", {**via, "order": "000001"}, CATEGORY),
        event(SPACE, "m.space.child", {**via, "order": "000002"}, ELSEWHERE),
        *joined(event, SPACE, BOT, OWNER, ANN, BOB),
    ]
    general = [
        event(GENERAL, "m.room.name", {"name": "general"}),
        event(GENERAL, CHANNEL_EVENT, {"kind": "text", "server_id": SPACE, "default": True}),
        event(
            GENERAL,
            "m.room.join_rules",
            {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": SPACE}]},
        ),
        *joined(event, GENERAL, BOT, OWNER, ANN),
    ]
    category = [
        event(CATEGORY, "m.room.name", {"name": "Projects"}),
        event(CATEGORY, CATEGORY_EVENT, {"server_id": SPACE}),
        event(CATEGORY, "m.space.child", {**via, "order": "000000"}, FILED),
    ]
    filed = [
        event(FILED, "m.room.name", {"name": "plans"}),
        event(FILED, CHANNEL_EVENT, {"kind": "text", "server_id": SPACE}),
        *joined(event, FILED, BOT, OWNER),
    ]
    admins = joined(event, ADMINS, BOT, OWNER)
    rooms = {SPACE: space, GENERAL: general, CATEGORY: category, FILED: filed, ADMINS: admins}
    return {"server_id": SPACE, "bot": BOT, "rooms": rooms}


def as_captured(server: dict[str, Any]) -> dict[str, Any]:
    """The server as `capture` writes it: each room's `/state` answer as JSON text."""
    rooms = {room_id: json.dumps(events) for room_id, events in server["rooms"].items()}
    return {**server, "rooms": rooms}


def test_an_id_maps_to_its_copy_and_back() -> None:
    assert copy_id(SPACE, 7) == "!c7-Sp4ce-hash_v12"
    assert copy_id(GENERAL, 7) == "!c7-general:x"
    assert copy_id("$event3", 12) == "$c12-event3"
    assert original_id(copy_id(SPACE, 7)) == (SPACE, 7)
    assert original_id(copy_id("$event3", 12)) == ("$event3", 12)
    assert original_id(SPACE) is None and original_id(GENERAL) is None


async def test_two_copies_load_as_two_distinct_servers() -> None:
    server = tiny_server()
    states = RoomStates()
    for room_id, events in server["rooms"].items():
        states.replace(room_id, events)
    original = assemble(SPACE, states.view(), bot=BOT)
    assert len(original.channels) == 2 and original.members == {OWNER, ANN, BOB}

    directory = ServerDirectory(CapturedHomeserver(as_captured(server)), BOT)
    first, second = RoomID(copy_id(SPACE, 1)), RoomID(copy_id(SPACE, 2))
    for server_id in (first, second):
        assert await directory.load(server_id) is not None

    assert sorted(directory.server_ids()) == sorted([first, second])
    rooms_1, rooms_2 = set(directory.rooms(first)), set(directory.rooms(second))
    assert len(rooms_1) == len(rooms_2) == len(server["rooms"])
    assert not rooms_1 & rooms_2
    assert rooms_1 == {RoomID(copy_id(room, 1)) for room in server["rooms"]}
    for server_id, copy in ((first, 1), (second, 2)):
        model = directory.get(server_id)
        assert model is not None
        assert len(model.channels) == len(original.channels)
        assert model.members == original.members
        assert model.state.default_channel == copy_id(GENERAL, copy)
        assert {c.channel_id for c in model.channels} == {
            copy_id(c.channel_id, copy) for c in original.channels
        }
        assert model.roles == tuple(
            Role(**{**r.__dict__, "room_id": r.room_id and RoomID(copy_id(r.room_id, copy))})
            for r in original.roles
        )


def test_each_answer_is_decoded_afresh_with_its_copys_event_ids() -> None:
    homeserver = CapturedHomeserver(as_captured(tiny_server()))
    once, again, other = (
        homeserver.state(SPACE, 1),
        homeserver.state(SPACE, 1),
        homeserver.state(SPACE, 2),
    )
    assert once == again and once is not again
    assert once[0]["content"] is not again[0]["content"]
    assert once[0]["event_id"] == "$c1-event1" and other[0]["event_id"] == "$c2-event1"
    assert once[1]["unsigned"] == {"replaces_state": "$c1-event1"}
    assert once[2]["content"] == {"topic": "formerly !oldspace:x"}
    assert all(e["room_id"] == copy_id(SPACE, 2) for e in other)


async def test_capture_takes_every_room_the_directory_tracks() -> None:
    homeserver = CapturedHomeserver(as_captured(tiny_server()))
    captured = await capture(homeserver, RoomID(copy_id(SPACE, 1)), BOT)
    assert captured["server_id"] == copy_id(SPACE, 1) and captured["bot"] == BOT
    assert set(captured["rooms"]) == {copy_id(room, 1) for room in tiny_server()["rooms"]}
    assert json.loads(captured["rooms"][copy_id(FILED, 1)]) == homeserver.state(FILED, 1)


@pytest.mark.parametrize("room_id", [ELSEWHERE, copy_id(ELSEWHERE, 1), "!c1-nowhere:x"])
async def test_a_room_that_was_not_captured_is_not_found(room_id: str) -> None:
    homeserver = CapturedHomeserver(as_captured(tiny_server()))
    with pytest.raises(MatrixRequestError) as caught:
        await homeserver.get_state(room_id)
    assert caught.value.status == 404


async def test_measure_loads_and_reads_every_copy() -> None:
    homeserver = CapturedHomeserver(as_captured(tiny_server()))
    report = await measure(homeserver, 3)
    assert report["copies"] == report["servers_loaded"] == 3
    assert report["rooms_per_copy"] == 5
    assert report["rooms_tracked"] == 3 * 5
    assert report["state_events_per_copy"] == sum(
        len(events) for events in tiny_server()["rooms"].values()
    )
    assert report["channels_per_copy"] == 2 and report["members_per_copy"] == 3
    assert list(report["rss_mb"]) == ["before", "1", "3"]
    assert list(report["per_copy_mb_between"]) == ["1-3"]


async def test_measure_idle_leaves_every_copy_compacted() -> None:
    homeserver = CapturedHomeserver(as_captured(tiny_server()))
    report = await measure(homeserver, 3, idle=True)
    assert report["idle"] is True
    assert report["servers_compacted"] == 3 and report["servers_held_in_full"] == 0
    assert report["compacted_mb_per_copy"] > 0
    # Read after compaction (the report reads the first copy back), the model is the same.
    assert report["channels_per_copy"] == 2 and report["members_per_copy"] == 3


async def test_measure_idle_beyond_the_budget_leaves_every_copy_evicted() -> None:
    homeserver = CapturedHomeserver(as_captured(tiny_server()))
    report = await measure(homeserver, 3, idle=True, budget_mib=0)
    assert report["compacted_budget_mib"] == 0 and report["first_copy_was_evicted"] is True
    assert report["servers_evicted"] == 3 and report["servers_compacted"] == 0
    assert report["servers_held_in_full"] == 0
    assert report["compacted_mb_per_copy"] > 0 and report["evicted_file_mb"] > 0
    # Taken back for the report's own read (the first copy), the model is the same.
    assert report["channels_per_copy"] == 2 and report["members_per_copy"] == 3


async def test_measure_evicts_where_the_bridge_does_unless_told(tmp_path: Path) -> None:
    homeserver = CapturedHomeserver(as_captured(tiny_server()))
    # The bridge's own default for `directory.evict_dir`, not a folder of the bench's choosing.
    default = await measure(homeserver, 2, idle=True, budget_mib=0)
    assert DirectorySettings().evict_dir is None
    assert default["evict_dir"] == tempfile.gettempdir()
    assert default["evict_dir_filesystem"] == filesystem_of(tempfile.gettempdir())
    chosen = await measure(homeserver, 2, idle=True, budget_mib=0, evict_dir=str(tmp_path))
    assert chosen["evict_dir"] == str(tmp_path) and chosen["servers_evicted"] == 2


def test_the_file_system_of_a_path_is_its_nearest_mount() -> None:
    assert filesystem_of("/proc/self") == "proc"
    assert filesystem_of("/") not in ("proc", "unknown")


def settled_server() -> dict[str, Any]:
    """tiny_server with Bob joined to the default channel, as Guilds leaves him."""
    server = tiny_server()
    event = Events()
    event.count = 1000
    server["rooms"][GENERAL] += joined(event, GENERAL, BOB)
    return server


def test_a_member_missing_from_the_default_channel_is_unsettled_under_either_policy() -> None:
    for join_all in (False, True):
        pending = unsettled(as_captured(tiny_server()), join_all=join_all)
        assert pending == [f"{GENERAL}: 1 members of the space not joined"]


def test_a_server_with_everyone_where_the_policy_puts_them_is_settled() -> None:
    # FILED is not open to the space's members (no restricted join rule): no policy joins them.
    assert unsettled(as_captured(settled_server()), join_all=False) == []
    assert unsettled(as_captured(settled_server()), join_all=True) == []


def test_under_join_all_every_channel_open_to_the_space_must_hold_every_member() -> None:
    server = settled_server()
    rule = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": SPACE}]}
    server["rooms"][FILED] += [Events()(FILED, "m.room.join_rules", rule)]
    assert unsettled(as_captured(server), join_all=False) == []
    assert unsettled(as_captured(server), join_all=True) == [
        f"{FILED}: 2 members of the space not joined"
    ]


def test_a_pending_invitation_is_unsettled() -> None:
    server = settled_server()
    event = Events()
    event.count = 2000
    server["rooms"][FILED] += [event(FILED, "m.room.member", {"membership": "invite"}, ANN)]
    for join_all in (False, True):
        assert unsettled(as_captured(server), join_all=join_all) == [
            f"{FILED}: 1 invitations pending"
        ]


def test_the_fingerprint_changes_with_any_state_event() -> None:
    before = as_captured(settled_server())
    assert state_fingerprint(before) == state_fingerprint(as_captured(settled_server()))
    server = settled_server()
    event = Events()
    event.count = 3000
    # Ann leaves the default channel: one event replaced by another.
    server["rooms"][GENERAL] = [
        e for e in server["rooms"][GENERAL] if e.get("state_key") != ANN
    ] + [event(GENERAL, "m.room.member", {"membership": "leave"}, ANN)]
    after = as_captured(server)
    assert state_fingerprint(after) != state_fingerprint(before)
    assert state_fingerprint(after)[SPACE] == state_fingerprint(before)[SPACE]


def test_the_steps_reach_past_the_budget_at_evenly_growing_sizes() -> None:
    assert steps_for(1000) == [1, 10, 100, 250, 500, 1000]
    assert steps_for(5) == [1, 5]
