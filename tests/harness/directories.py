"""For the unit tests of the bridge's directory (compaction, eviction): a clock the test moves,
a homeserver whose reads are counted and can be held, events as the inbox hands them over, and
every read the directory answers about a server."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import MatrixClient
from bridge.readback.directory import ServerDirectory
from guilds.ids import RoomID


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HeldReads(MatrixClient):
    """Mixed in before a stand-in homeserver: counts its requests, and holds each one while
    `hold` is set and not yet released (to test what happens while a server is being read)."""

    reads = 0
    hold: asyncio.Event | None = None

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.reads += 1
        if self.hold is not None:
            await self.hold.wait()
        return await super().request(method, path, **kwargs)


def everything(directory: ServerDirectory, server_id: RoomID) -> dict[str, Any]:
    """What the directory answers about a server, through every public read."""
    model = directory.get(server_id)
    assert model is not None
    states = directory.states()
    rooms = sorted(directory.rooms(server_id))
    return {
        "model": model,
        "rooms": rooms,
        "kinds": sorted(directory.room_kinds(server_id), key=str),
        "kind": [directory.room_kind(r) for r in rooms],
        "states": {r: dict(states[r]) for r in rooms},
        "owner": directory.owner_of(server_id),
        "servers_of": [s.server_id for s in directory.servers_of(model.state.owner)],
    }


def inbox(
    room: str, event_type: str, key: str, content: dict[str, Any], event_id: str, **unsigned: Any
) -> InboxEvent:
    event = {
        "type": event_type,
        "state_key": key,
        "content": content,
        "room_id": room,
        "sender": "@someone:localhost",
        "event_id": event_id,
        "unsigned": unsigned,
    }
    return InboxEvent(0, event_id, room, event_type, key, "@someone:localhost", 0, event)
