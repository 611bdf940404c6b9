"""Rooms of a server the bot has left, which a container still links: the directory names them.

Interleavings seeds 3064343009 and 4232041617: a client rewrote the space's link to a channel
while the channel was being deleted, after the deletion's unlink; the bot then left the room.
The directory stops tracking such a room, so no derivation saw the link, and the space linked a
closed room for good. The directory now keeps the left rooms its servers link
(`ServerDirectory.left_rooms`, `ServerRooms.left`), and derivation removes the link
(tests/unit/test_derived.py).
"""

from __future__ import annotations

from typing import Any, cast

from bridge.engine.matrix import MatrixClient, MatrixRequestError
from bridge.plans.derived import Divergence, divergences
from bridge.readback.directory import ServerDirectory
from bridge.readback.rooms import RoomsReader
from guilds.ids import RoomID
from tests.harness.directories import inbox
from tests.harness.server_states import BOT, CHAT, SPACE, States, build, create_content

DELETED = RoomID("!deleted:hs")


def event_id(room: str, event_type: str, key: str) -> str:
    return f"${room}/{event_type}/{key}"


class Homeserver:
    """Answers `/state` for the rooms the bot is or was in (a room it left: as of the leave)."""

    def __init__(self, states: States) -> None:
        self.states = states

    async def get_state(self, room_id: str, *, user_id: str | None = None) -> list[dict[str, Any]]:
        room = RoomID(room_id)
        if room not in self.states:
            raise MatrixRequestError(403, "M_FORBIDDEN", "not in the room")
        return [
            {
                "type": t,
                "state_key": k,
                "content": c,
                "room_id": room_id,
                "event_id": event_id(room_id, t, k),
            }
            for (t, k), c in self.states[room].items()
        ]


def with_deleted_channel_linked() -> States:
    """The server, its space linking a channel the bot deleted and left."""
    states = build()
    states[DELETED] = {
        ("m.room.create", ""): create_content("12"),
        ("chat.guilds.channel", ""): {"kind": "text", "server_id": SPACE, "default": False},
        ("m.room.join_rules", ""): {"join_rule": "invite"},
        ("m.room.member", BOT): {"membership": "leave"},
    }
    states[SPACE][("m.space.child", DELETED)] = {"via": ["hs"], "order": "000004"}
    return states


async def loaded(states: States) -> ServerDirectory:
    directory = ServerDirectory(cast(MatrixClient, Homeserver(states)), BOT)
    assert await directory.load(SPACE) is not None
    return directory


async def test_a_linked_room_the_bot_has_left_is_named_and_its_link_found() -> None:
    directory = await loaded(with_deleted_channel_linked())
    assert directory.server_of(DELETED) is None  # not tracked: nothing there can change
    assert directory.left_rooms(SPACE) == {DELETED}
    assert directory.server_left(DELETED) == SPACE
    rooms = RoomsReader(directory, bot=BOT, via="hs").get(SPACE)
    assert rooms is not None and rooms.left == {DELETED}
    assert DELETED not in {c.channel_id for c in rooms.server.channels}
    assert divergences(rooms) == [Divergence(SPACE, f"space.child.{DELETED}", "unlinked", "linked")]

    # Once the link is gone, the room is nothing of the server's any more.
    key = ("m.space.child", DELETED)
    await directory.handle(
        inbox(SPACE, *key, {}, "$unlinked", replaces_state=event_id(SPACE, *key))
    )
    assert directory.left_rooms(SPACE) == frozenset()
    assert directory.server_left(DELETED) is None


async def test_the_bot_leaving_a_room_still_linked_names_it() -> None:
    """The order of the race: the link was written again before the bot left the channel."""
    states = build()
    directory = await loaded(states)
    assert directory.server_of(CHAT) == SPACE
    key = ("m.room.member", BOT)
    await directory.handle(
        inbox(CHAT, *key, {"membership": "leave"}, "$left", replaces_state=event_id(CHAT, *key))
    )
    assert directory.server_of(CHAT) is None
    assert directory.left_rooms(SPACE) == {CHAT}
    rooms = RoomsReader(directory, bot=BOT, via="hs").get(SPACE)
    assert rooms is not None
    assert Divergence(SPACE, f"space.child.{CHAT}", "unlinked", "linked") in divergences(rooms)


async def test_a_linked_room_the_bot_was_never_in_is_not_named() -> None:
    # A room an admin linked for the bot to adopt once invited: /state answers 403.
    states = build()
    states[SPACE][("m.space.child", DELETED)] = {"via": ["hs"]}
    directory = await loaded(states)
    assert directory.left_rooms(SPACE) == frozenset()
    rooms = RoomsReader(directory, bot=BOT, via="hs").get(SPACE)
    assert rooms is not None and divergences(rooms) == []


async def test_forgetting_the_server_forgets_its_left_rooms() -> None:
    directory = await loaded(with_deleted_channel_linked())
    directory.forget_server(SPACE)
    assert directory.left_rooms(SPACE) == frozenset()
    assert directory.server_left(DELETED) is None
