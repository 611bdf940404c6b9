"""The bot's view of a homeserver, in memory, for unit tests of the operation journal.

It answers the way Synapse 1.163 was measured to answer (see bridge/engine/steps.py), including its
"already done" refusals, with failures and crashes to order; `db`, `hs` and `journal` are
fixtures over it and a real SQLite store.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import MatrixRequestError
from bridge.engine.migrations import migrate
from bridge.engine.store import Database

BOT = "@guilds:localhost"
ALICE = "@alice:localhost"
BOB = "@bob:localhost"


class SimulatedCrash(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing records it as a step failure."""


@dataclass
class Room:
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def membership(self, user: str) -> str | None:
        content = self.state.get(("m.room.member", user))
        return None if content is None else content["membership"]


def _err(status: int, errcode: str, message: str = "", **kw: Any) -> MatrixRequestError:
    return MatrixRequestError(status, errcode, message or errcode, **kw)


class FakeMatrix:
    """The bot's view of a homeserver, in memory, with failures and crashes to order."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.aliases: dict[str, str] = {}
        self.txns: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.ids = itertools.count(1)
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        # (method, path regex) -> exceptions to raise, one per matching call, before answering.
        self.failures: list[tuple[str, str, BaseException]] = []
        # Raise this after createRoom number N took effect: the answer is lost, as in a crash.
        self.crash_after_create: int | None = None
        self.creates = 0
        self.timeline: list[tuple[str, str]] = []

    def fail(self, method: str, pattern: str, *excs: BaseException) -> None:
        self.failures += [(method, pattern, e) for e in excs]

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        user_id: str | None = None,
    ) -> Any:
        self.calls.append((method, path))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.timeline.append(("start", path))
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            for i, (m, pattern, exc) in enumerate(self.failures):
                if m == method and re.search(pattern, path):
                    del self.failures[i]
                    raise exc
            return self._answer(method, path, json or {})
        finally:
            self.in_flight -= 1
            self.timeline.append(("end", path))

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None or room.membership(BOT) != "join":
            raise _err(403, "M_FORBIDDEN", f"User {BOT} not in room {room_id}")
        return room

    def _answer(self, method: str, path: str, body: dict[str, Any]) -> Any:
        parts = [unquote(p) for p in path.split("/")[4:]]
        if method == "POST" and parts == ["createRoom"]:
            alias = f"#{body['room_alias_name']}:localhost"
            if alias in self.aliases:
                raise _err(400, "M_ROOM_IN_USE", "Room alias already taken")
            room_id = f"!room{next(self.ids)}"
            room = self.rooms[room_id] = Room()
            room.state[("m.room.create", "")] = {"type": body.get("creation_content", {})}
            room.state[("m.room.member", BOT)] = {"membership": "join"}
            room.state[("m.room.power_levels", "")] = {"users": {}, "events": {}}
            room.state[("m.room.canonical_alias", "")] = {"alias": alias}
            for event in body.get("initial_state", []):
                room.state[(event["type"], event.get("state_key", ""))] = event["content"]
            self.aliases[alias] = room_id
            self.creates += 1
            if self.creates == self.crash_after_create:
                raise SimulatedCrash()
            return {"room_id": room_id}
        if parts[:2] == ["directory", "room"]:
            alias = parts[2]
            if method == "DELETE":
                self.aliases.pop(alias, None)
                return {}
            if alias not in self.aliases:
                raise _err(404, "M_NOT_FOUND")
            return {"room_id": self.aliases[alias]}
        if method == "POST" and parts[0] == "join":
            room = self.rooms[parts[1]]
            room.state[("m.room.member", BOT)] = {"membership": "join"}
            return {"room_id": parts[1]}
        room_id, action = parts[1], parts[2]
        if action == "leave":
            left = self.rooms.get(room_id)
            if left is None or left.membership(BOT) is None:
                raise _err(404, "M_UNKNOWN", "Not a known room")
            left.state[("m.room.member", BOT)] = {"membership": "leave"}
            return {}
        room = self._room(room_id)
        if action == "state":
            key = (parts[3], parts[4] if len(parts) > 4 else "")
            if method == "GET":
                if key not in room.state:
                    raise _err(404, "M_NOT_FOUND")
                return room.state[key]
            room.state[key] = body
            return {"event_id": f"$state{next(self.ids)}"}
        if action == "send":
            txn = parts[4]
            if txn not in self.txns:
                self.txns[txn] = f"$msg{next(self.ids)}"
                room.messages.append(body)
            return {"event_id": self.txns[txn]}
        return self._membership(room, action, body["user_id"])

    @staticmethod
    def _membership(room: Room, action: str, user: str) -> Any:
        # Synapse 1.163's answers, as measured.
        current = room.membership(user)
        key = ("m.room.member", user)
        if action == "invite":
            if current == "ban":
                raise _err(403, "M_BAD_STATE", "Cannot invite user who was banned")
            if current == "join":
                raise _err(403, "M_FORBIDDEN", f"{user} is already in the room.")
            room.state[key] = {"membership": "invite"}
        elif action == "kick":
            if current == "ban":
                raise _err(403, "M_BAD_STATE", "Cannot kick user who was banned")
            if current not in ("join", "invite"):
                raise _err(403, "M_FORBIDDEN", "The target user is not in the room")
            room.state[key] = {"membership": "leave"}
        elif action == "ban":
            room.state[key] = {"membership": "ban"}
        elif action == "unban":
            if current not in (None, "ban"):
                raise _err(403, "M_BAD_STATE", "Cannot unban user who was not banned")
            room.state[key] = {"membership": "leave"}
        return {}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(f"sqlite:///{tmp_path / 'guilds.db'}")
    await migrate(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def hs() -> FakeMatrix:
    return FakeMatrix()


@pytest.fixture
async def journal(db: Database, hs: FakeMatrix) -> AsyncIterator[OperationJournal]:
    j = OperationJournal(db, hs, BOT, base_backoff_s=0.001, max_backoff_s=0.01)
    try:
        yield j
    finally:
        await j.stop()
