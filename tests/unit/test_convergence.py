"""The convergence runner: what triggers a check, waiting out operations, repairing, counting.

Against a real SQLite store and the real journal; the directory is a small in-memory stand-in
holding the rooms of tests/harness/server_states.py, and the homeserver a fake that records the
bot's requests and answers them as Synapse does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import unquote

import pytest

from bridge.engine.inbox import InboxEvent
from bridge.engine.journal import OperationJournal
from bridge.engine.queue import ServerQueue
from bridge.engine.steps import Plan, SendState
from bridge.engine.store import Database
from bridge.plans.derived import Divergence
from bridge.readback.convergence import (
    REPAIR_KIND,
    Cause,
    Convergence,
    DoctorReport,
    ServerReport,
    doctor,
)
from bridge.readback.directory import ServerDirectory
from bridge.readback.rooms import RoomsReader
from guilds.ids import RoomID
from guilds.model import Server
from guilds.rules import RoomKind
from guilds.snapshot import assemble
from guilds.vocabulary import ChannelKind
from tests.harness.server_states import BOT, CHAT, MOD, SPACE, States, apply, build, kinds


class FakeDirectory:
    """What Convergence asks of the directory, over plain room states."""

    def __init__(self, states: States) -> None:
        self.held = states
        self.refreshed: list[set[RoomID]] = []

    def get(self, server_id: RoomID) -> Server | None:
        return assemble(server_id, self.held, bot=BOT) if server_id == SPACE else None

    def server_ids(self) -> list[RoomID]:
        return [SPACE]

    def server_of(self, room_id: RoomID) -> RoomID | None:
        return SPACE if room_id in self.held else None

    def server_left(self, room_id: RoomID) -> RoomID | None:
        return None

    def left_rooms(self, server_id: RoomID) -> frozenset[RoomID]:
        return frozenset()

    def rooms(self, server_id: RoomID) -> list[RoomID]:
        return list(self.held)

    def room_kinds(self, server_id: RoomID) -> list[tuple[RoomID, RoomKind, ChannelKind | None]]:
        return kinds(self.held)

    def states(self) -> Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]:
        return self.held

    async def refresh(self, server_id: RoomID, room_ids: Iterable[RoomID]) -> Server | None:
        self.refreshed.append(set(room_ids))
        return self.get(server_id)

    def record_plan(self, plan: Plan, results: Mapping[str, Mapping[str, Any]]) -> None:
        self.held = apply(self.held, plan)


class RecordingMatrix:
    """Answers the bot's writes as Synapse does, and keeps them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.ids = itertools.count(1)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        user_id: str | None = None,
    ) -> Any:
        self.calls.append((method, unquote(path), json))
        if method == "PUT":
            return {"event_id": f"$e{next(self.ids)}"}
        return {}


@pytest.fixture
def hs() -> RecordingMatrix:
    return RecordingMatrix()


def convergence(db: Database, journal: OperationJournal, directory: FakeDirectory) -> Convergence:
    return Convergence(
        db=db,
        journal=journal,
        rooms=RoomsReader(cast(ServerDirectory, directory), bot=BOT, via="hs"),
        sweep_interval_s=0,
    )


def drifted() -> States:
    """The server with the moderator's power lost in one channel."""
    states = build()
    levels = states[CHAT][("m.room.power_levels", "")]
    levels["users"] = {u: p for u, p in levels["users"].items() if u != MOD}
    return states


def event(event_type: str, room: str, state_key: str | None = "", sender: str = BOT) -> InboxEvent:
    body = {"type": event_type, "room_id": room, "state_key": state_key, "content": {"x": "secret"}}
    return InboxEvent(1, "$ev1", room, event_type, state_key, sender, 0, body)


async def test_a_repair_is_journaled_counted_by_cause_and_logged_without_content(
    db: Database,
    journal: OperationJournal,
    hs: RecordingMatrix,
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = FakeDirectory(drifted())
    conv = convergence(db, journal, directory)
    observed: list[tuple[str, str]] = []
    conv.on_repair = lambda kind, what: observed.append((kind, what))
    cause = Cause("event", "$ev1", CHAT, "m.room.power_levels")
    with caplog.at_level(logging.INFO, logger="bridge.readback.convergence"):
        found = await conv.converge(SPACE, cause)
    assert found == [Divergence(CHAT, f"power_levels.users.{MOD}", 50, 0)]
    puts = [c for c in hs.calls if c[0] == "PUT"]
    assert len(puts) == 1 and "m.room.power_levels" in puts[0][1] and CHAT in puts[0][1]
    assert puts[0][2]["users"][MOD] == 50
    row = await db.fetchone("SELECT kind, status FROM operations")
    assert row is not None and (row["kind"], row["status"]) == (REPAIR_KIND, "done")
    assert conv.repairs == {("event", "power_levels"): 1}
    assert observed == [("event", "power_levels")]
    # What was re-read before acting: the divergent room, the space, the role rooms.
    assert CHAT in directory.refreshed[0] and SPACE in directory.refreshed[0]
    logged = caplog.text
    assert "$ev1" in logged and CHAT in logged and "secret" not in logged
    # Repaired: the next check finds nothing and does nothing.
    assert await conv.converge(SPACE, Cause("sweep")) == []
    assert len([c for c in hs.calls if c[0] == "PUT"]) == 1


async def test_a_check_without_repair_reports_and_changes_nothing(
    db: Database, journal: OperationJournal, hs: RecordingMatrix
) -> None:
    conv = convergence(db, journal, FakeDirectory(drifted()))
    found = await conv.converge(SPACE, Cause("doctor"), repair=False)
    assert [d.what for d in found] == [f"power_levels.users.{MOD}"]
    assert hs.calls == [] and not conv.repairs


async def test_a_check_waits_for_the_server_s_unfinished_operation(
    db: Database, journal: OperationJournal, hs: RecordingMatrix
) -> None:
    conv = convergence(db, journal, FakeDirectory(drifted()))
    step = SendState(name="s", room=CHAT, type="m.room.topic", state_key="", content={})
    op_id = await journal.submit("update_channel", SPACE, Plan.of([step]))
    check = asyncio.create_task(conv.converge(SPACE, Cause("sweep")))
    await asyncio.sleep(0.2)
    assert not check.done() and hs.calls == []
    await journal.run(op_id)
    found = await asyncio.wait_for(check, timeout=10)
    assert found and any("power_levels" in c[1] for c in hs.calls)


async def test_state_events_touching_derived_state_schedule_a_check(
    db: Database, journal: OperationJournal, hs: RecordingMatrix
) -> None:
    conv = convergence(db, journal, FakeDirectory(drifted()))
    # A message, or a room of no server, schedules nothing.
    await conv.handle(event("m.room.message", CHAT, None))
    await conv.handle(event("m.room.power_levels", "!elsewhere:hs"))
    await conv.handle(event("m.room.topic", CHAT))
    assert not conv._pending
    # The bot's own power-levels write is checked too: it may have lost a race.
    await conv.handle(event("m.room.power_levels", CHAT))
    assert SPACE in conv._pending

    for _ in range(200):  # the debounced check runs on its own, within 10 s
        if conv.repairs:
            break
        await asyncio.sleep(0.05)
    assert conv.repairs == {("event", "power_levels"): 1}
    await conv.stop()


async def test_the_end_of_an_operation_schedules_a_check_but_not_of_a_repair(
    db: Database, journal: OperationJournal
) -> None:
    conv = convergence(db, journal, FakeDirectory(build()))
    await conv.after_operation(REPAIR_KIND, SPACE)
    await conv.after_operation("create_server", None)
    assert not conv._pending
    await conv.after_operation("grant_role", SPACE)
    assert SPACE in conv._pending
    await conv.stop()


async def test_doctor_reports_and_repairs(
    db: Database, journal: OperationJournal, hs: RecordingMatrix
) -> None:
    directory = FakeDirectory(drifted())
    conv = convergence(db, journal, directory)
    looked = await doctor(conv, None, repair=False, wait=False)
    assert not looked.healthy and looked.servers[0].found and not looked.servers[0].repaired
    assert any(f"power_levels.users.{MOD}: expected 50, actual 0" in x for x in looked.lines())
    fixed = await doctor(conv, SPACE, repair=True, wait=False)
    assert fixed.healthy and fixed.servers[0].found and not fixed.servers[0].remaining
    assert "  repaired: every room matches the model now" in fixed.lines()
    assert (await doctor(conv, None, repair=False, wait=False)).lines() == [
        f"server {SPACE}: every room matches the model"
    ]
    unknown = await doctor(conv, "!nope:hs", repair=False, wait=False)
    assert not unknown.healthy and unknown.lines() == ["server !nope:hs: no such server"]


def test_a_doctor_report_survives_json() -> None:
    report = DoctorReport(
        (
            ServerReport(
                SPACE,
                (Divergence(CHAT, "join_rules", {"join_rule": "restricted"}, None),),
                (),
                repaired=True,
            ),
        )
    )
    assert DoctorReport.from_json(report.to_json()) == report


async def test_a_check_scheduled_inside_a_turn_waits_for_that_turn_to_end(
    db: Database, journal: OperationJournal, hs: RecordingMatrix
) -> None:
    """An operation ends (and schedules a check) while its job holds the server's turn: the
    check must not inherit the turn and run in the middle of the job."""
    queue = ServerQueue(db, journal)
    conv = convergence(db, journal, FakeDirectory(drifted()))
    conv.turn = queue.turn
    async with queue.turn(SPACE):
        await conv.after_operation("grant_role", SPACE)
        await asyncio.sleep(1.0)
        assert hs.calls == [], "the check ran inside another holder's turn"
    for _ in range(200):
        if conv.repairs:
            break
        await asyncio.sleep(0.05)
    assert conv.repairs == {("operation", "power_levels"): 1}
    await conv.stop()


async def test_start_up_checks_every_server_and_the_sweep_rereads_them(
    db: Database, journal: OperationJournal, hs: RecordingMatrix
) -> None:
    directory = FakeDirectory(drifted())
    conv = convergence(db, journal, directory)
    conv.sweep_interval_s = 0.2
    conv.start()
    for _ in range(200):
        if directory.refreshed and set(directory.held) in directory.refreshed:
            break
        await asyncio.sleep(0.05)
    await conv.stop()
    # Start-up found and repaired the drift; a sweep then read every room again.
    assert conv.repairs[("startup", "power_levels")] == 1
    assert set(directory.held) in directory.refreshed


async def test_events_during_a_waiting_check_make_one_more_check_not_one_each(
    db: Database, journal: OperationJournal, hs: RecordingMatrix
) -> None:
    conv = convergence(db, journal, FakeDirectory(drifted()))
    checks: list[str] = []
    real = conv.converge

    async def counted(server_id: RoomID, cause: Cause, **kw: Any) -> list[Divergence]:
        checks.append(cause.kind)
        return await real(server_id, cause, **kw)

    conv.converge = counted  # type: ignore[method-assign]
    step = SendState(name="s", room=CHAT, type="m.room.topic", state_key="", content={})
    op_id = await journal.submit("update_channel", SPACE, Plan.of([step]))
    for _ in range(4):  # each past the debounce: the first check waits, the rest pile up
        await conv.handle(event("m.room.power_levels", CHAT))
        await asyncio.sleep(0.4)
    assert checks == ["event"]
    await journal.run(op_id)
    for _ in range(200):
        if len(checks) == 2 and not conv._checking and not conv._pending:
            break
        await asyncio.sleep(0.05)
    assert checks == ["event", "event"] and conv.repairs == {("event", "power_levels"): 1}
    await conv.stop()
