"""The operation journal's logic: plans as data, references, stages, retries and crash recovery.

Against a real SQLite store; the homeserver is a small in-memory fake that answers the way
Synapse 1.163 was measured to answer (see bridge/engine/steps.py), including its "already done"
refusals.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from bridge.engine.journal import OperationFailed, OperationJournal
from bridge.engine.matrix import HomeserverUnavailable, MatrixRequestError
from bridge.engine.steps import (
    AutoJoinInvite,
    Ban,
    CreateRoom,
    Invite,
    Join,
    Kick,
    Leave,
    Plan,
    PlanError,
    Ref,
    SendMessage,
    SendState,
    Step,
    StepContext,
    Unban,
)
from bridge.engine.store import Database
from bridge.metrics import BridgeMetrics
from tests.harness.fake_matrix import (
    ALICE,
    BOB,
    BOT,
    FakeMatrix,
    Room,
    SimulatedCrash,
)


def server_plan(n: int) -> Plan:
    """A space, `n` channels linked both ways, a topic each, an invite and a welcome message."""
    space = CreateRoom("space", {"name": "Space", "creation_content": {"type": "m.space"}})
    rooms = [
        CreateRoom(
            f"room{i}",
            {
                "name": f"channel {i}",
                "initial_state": [
                    {"type": "m.space.parent", "state_key": Ref("space"), "content": {}}
                ],
            },
        )
        for i in range(n)
    ]
    children = [
        SendState(f"child{i}", Ref("space"), "m.space.child", Ref(f"room{i}"), {"via": ["x"]})
        for i in range(n)
    ]
    per_room = [
        step
        for i in range(n)
        for step in (
            SendState(f"topic{i}", Ref(f"room{i}"), "m.room.topic", "", {"topic": f"t{i}"}),
            Invite(f"invite{i}", Ref(f"room{i}", "room_id"), ALICE),
            SendMessage(f"hello{i}", Ref(f"room{i}"), {"msgtype": "m.text", "body": "hi"}),
        )
    ]
    return Plan.of([space], rooms, children, per_room)


# -- plans as data ---------------------------------------------------------------------------------


def test_a_plan_survives_a_json_round_trip() -> None:
    plan = Plan.of(
        [CreateRoom("space", {"name": "S", "initial_state": [{"type": "a", "content": {}}]})],
        [
            SendState("s", Ref("space"), "m.room.topic", "", {"nested": [{"r": Ref("space")}]}),
            AutoJoinInvite("aj", Ref("space", "room_id"), ALICE),
            Invite("i", Ref("space"), ALICE, "welcome"),
            Kick("k", Ref("space"), BOB),
            Ban("b", Ref("space"), BOB, None),
            Unban("u", Ref("space"), BOB),
            Join("j", Ref("space")),
            Leave("l", Ref("space")),
            SendMessage("m", Ref("space"), {"body": "x"}, "m.notice"),
        ],
    )
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.to_json() == plan.to_json()
    assert isinstance(again.stages[1][0], SendState)
    assert again.stages[1][0].content == {"nested": [{"r": Ref("space")}]}


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (Plan.of([Join("a", "!r"), Join("a", "!s")]), "two steps are named 'a'"),
        (Plan.of([Join("a", "!r"), Join("b", Ref("a"))]), "not a step of an earlier stage"),
        (Plan.of([Join("a", Ref("nobody"))]), "not a step of an earlier stage"),
        (Plan.of([Join("", "!r")]), "has no name"),
        (Plan.of([Join("a", "!r")], []), "stage 1 is empty"),
        (Plan.of([CreateRoom("a", {"room_alias_name": "x"})]), "room_alias_name"),
    ],
)
def test_malformed_plans_are_refused(plan: Plan, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan.validate()


def test_content_cannot_smuggle_a_reference() -> None:
    plan = Plan.of([SendState("s", "!r", "t", "", {"__ref__": "space"})])
    with pytest.raises(PlanError, match="reserved"):
        plan.to_json()


def test_references_resolve_to_the_main_value_or_a_key() -> None:
    plan = Plan.of(
        [CreateRoom("space"), SendMessage("msg", "!r", {})],
        [SendState("s", Ref("space"), "t", Ref("msg"), {"list": [Ref("msg", "room_id")]})],
    )
    results = {"space": {"room_id": "!space"}, "msg": {"event_id": "$e", "room_id": "!r"}}
    step = plan.stages[1][0].resolved(results, plan)
    assert step == SendState("s", "!space", "t", "$e", {"list": ["!r"]})
    with pytest.raises(PlanError, match="no result 'nope'"):
        SendState("x", Ref("space", "nope"), "t", "", {}).resolved(results, plan)


# -- running ---------------------------------------------------------------------------------------


async def test_a_plan_runs_to_completion_and_cleans_its_aliases(
    journal: OperationJournal, hs: FakeMatrix, db: Database
) -> None:
    op_id = await journal.submit("create_server", "srv1", server_plan(5))
    record = await journal.get(op_id)
    assert (record.status, record.steps_done, record.steps_total) == ("pending", 0, 26)

    results = await journal.run(op_id)

    space = results["space"]["room_id"]
    assert len(hs.rooms) == 6
    for i in range(5):
        room_id = results[f"room{i}"]["room_id"]
        room = hs.rooms[room_id]
        assert room.state[("m.space.parent", space)] == {}
        assert room.state[("m.room.topic", "")] == {"topic": f"t{i}"}
        assert room.membership(ALICE) == "invite"
        assert room.messages == [{"msgtype": "m.text", "body": "hi"}]
        # The operation's alias never became the room's canonical alias.
        assert room.state[("m.room.canonical_alias", "")] == {}
        assert hs.rooms[space].state[("m.space.child", room_id)] == {"via": ["x"]}
    assert hs.aliases == {}
    record = await journal.get(op_id)
    assert (record.status, record.steps_done, record.error) == ("done", 26, None)
    # Done is done: running it again touches nothing and answers the same results.
    calls = len(hs.calls)
    assert await journal.run(op_id) == results
    assert len(hs.calls) == calls


async def test_stages_run_in_order_and_their_steps_concurrently(
    db: Database, hs: FakeMatrix
) -> None:
    journal = OperationJournal(db, hs, BOT, concurrency=4)
    hs.delay_s = 0.02
    try:
        await journal.execute("create_server", None, server_plan(12))
    finally:
        await journal.stop()
    assert hs.max_in_flight == 4
    # No request of a stage starts before every request of the previous stage has ended.
    last_create_end = max(i for i, (what, p) in enumerate(hs.timeline) if "createRoom" in p)
    first_state_start = min(
        i for i, (what, p) in enumerate(hs.timeline) if what == "start" and "/state/" in p
    )
    assert last_create_end < first_state_start


async def test_two_runs_of_one_operation_share_one_execution(
    journal: OperationJournal, hs: FakeMatrix
) -> None:
    hs.delay_s = 0.01
    op_id = await journal.submit("create_server", None, server_plan(2))
    first, second = await asyncio.gather(journal.run(op_id), journal.run(op_id))
    assert first == second
    assert hs.creates == 3


async def test_a_crash_mid_plan_is_resumed_without_repeating_anything(
    db: Database, hs: FakeMatrix
) -> None:
    hs.crash_after_create = 4  # the 4th room is created, then the bridge "dies" before recording
    first = OperationJournal(db, hs, BOT, concurrency=2)
    op_id = await first.submit("create_server", "srv", server_plan(6))
    with pytest.raises(SimulatedCrash):
        await first.run(op_id)
    await first.stop()
    record = await first.get(op_id)
    assert record.status == "running"
    assert 0 < record.steps_done < record.steps_total
    assert len(hs.rooms) >= 4

    # A new process over the same database and homeserver.
    second = OperationJournal(db, hs, BOT)
    try:
        assert await second.resume() == [op_id]
    finally:
        await second.stop()
    assert (await second.get(op_id)).status == "done"
    # 7 rooms, each created once; one invite and one message per channel; no alias left.
    assert len(hs.rooms) == 7
    assert hs.creates == 7
    assert sum(len(r.messages) for r in hs.rooms.values()) == 6
    assert sum(1 for _, path in hs.calls if path.endswith("/invite")) == 6
    assert hs.aliases == {}
    # The lost answer was recovered through the alias.
    assert any(method == "GET" and "/directory/room/" in path for method, path in hs.calls)


async def test_operations_stored_in_one_millisecond_resume_in_the_order_submitted(
    db: Database, hs: FakeMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Planned in a burst, operations share a millisecond of the clock; resumed, they must not
    # run in the order of their random ids.
    monkeypatch.setattr("time.time", lambda: 1_700_000_000.0)
    first = OperationJournal(db, hs, BOT)
    ids = [await first.submit("edit", "srv", server_plan(1)) for _ in range(8)]
    await first.stop()
    second = OperationJournal(db, hs, BOT)
    try:
        assert await second.resume() == ids
    finally:
        await second.stop()


async def test_a_cancelled_run_is_resumed_by_the_next_journal(db: Database, hs: FakeMatrix) -> None:
    hs.delay_s = 0.01
    first = OperationJournal(db, hs, BOT)
    op_id = await first.submit("create_server", None, server_plan(8))
    running = asyncio.ensure_future(first.run(op_id))
    for _ in range(1000):  # until a few steps are done, then stop in the middle
        if (await first.get(op_id)).steps_done >= 3:
            break
        await asyncio.sleep(0.005)
    await first.stop()  # a shutdown in the middle
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert (await first.get(op_id)).status == "running"

    second = OperationJournal(db, hs, BOT)
    second.start_resume()
    await second.wait_resumed()
    await second.stop()
    assert (await second.get(op_id)).status == "done"
    assert len(hs.rooms) == 9 and hs.aliases == {}


async def test_a_permanent_error_fails_the_operation_with_the_error_recorded(
    journal: OperationJournal, hs: FakeMatrix, db: Database
) -> None:
    hs.fail("POST", r"/invite$", MatrixRequestError(403, "M_FORBIDDEN", "You may not invite"))
    plan = Plan.of(
        [CreateRoom("room")],
        [Invite("invite", Ref("room"), ALICE)],
        [SendMessage("after", Ref("room"), {"body": "never"})],
    )
    op_id = await journal.submit("invite", "srv", plan)
    with pytest.raises(OperationFailed) as failed:
        await journal.run(op_id)
    assert "invite (invite): 403 M_FORBIDDEN: You may not invite" in failed.value.error
    record = await journal.get(op_id)
    assert record.status == "failed" and record.error == failed.value.error
    step = await db.fetchone("SELECT status, error FROM operation_steps WHERE name = 'invite'")
    assert step == {"status": "failed", "error": "403 M_FORBIDDEN: You may not invite"}
    assert not any(r.messages for r in hs.rooms.values())  # later stages did not run
    assert hs.aliases == {}
    # Resuming does not retry a failed operation.
    assert await journal.resume() == []
    with pytest.raises(OperationFailed):
        await journal.run(op_id)


async def test_transient_errors_are_retried_with_backoff(
    journal: OperationJournal, hs: FakeMatrix, db: Database
) -> None:
    hs.fail(
        "POST",
        "createRoom",
        MatrixRequestError(429, "M_LIMIT_EXCEEDED", "slow down", retry_after_ms=5),
        HomeserverUnavailable("gone", status=502),
        MatrixRequestError(500, "M_UNKNOWN", "oops"),
    )
    results = await journal.execute("x", None, Plan.of([CreateRoom("room")]))
    assert results["room"]["room_id"] in hs.rooms
    row = await db.fetchone("SELECT attempts, status FROM operation_steps WHERE name = 'room'")
    assert row == {"attempts": 4, "status": "done"}


async def test_transient_errors_are_retried_until_the_homeserver_answers(
    db: Database, hs: FakeMatrix
) -> None:
    # Issue 15: no fixed attempt limit for a homeserver that is down; the step waits, says
    # why in its row, and completes once the homeserver answers.
    journal = OperationJournal(db, hs, BOT, base_backoff_s=0.001, max_backoff_s=0.005)
    hs.fail("PUT", "/state/", *[HomeserverUnavailable("down")] * 12)
    hs.rooms["!r"] = Room()
    hs.rooms["!r"].state[("m.room.member", BOT)] = {"membership": "join"}
    try:
        results = await journal.execute("x", None, Plan.of([SendState("s", "!r", "t", "", {})]))
    finally:
        await journal.stop()
    assert results["s"]["event_id"]
    row = await db.fetchone("SELECT attempts, status FROM operation_steps WHERE name = 's'")
    assert row == {"attempts": 13, "status": "done"}


async def test_membership_steps_treat_already_done_as_done(
    journal: OperationJournal, hs: FakeMatrix
) -> None:
    results = await journal.execute("setup", None, Plan.of([CreateRoom("room")]))
    room = hs.rooms[results["room"]["room_id"]]
    room_id = results["room"]["room_id"]
    room.state[("m.room.member", ALICE)] = {"membership": "join"}
    # Each pair: the change, then the same change again, as after a crash.
    plan = Plan.of(
        [Invite("invite-joined", room_id, ALICE)],
        [Kick("kick", room_id, ALICE)],
        [Kick("kick-again", room_id, ALICE), Kick("kick-stranger", room_id, BOB)],
        [Ban("ban", room_id, BOB)],
        [Ban("ban-again", room_id, BOB), Kick("kick-banned", room_id, BOB)],
        [Unban("unban", room_id, BOB)],
        [Unban("unban-again", room_id, BOB)],
        [Invite("invite", room_id, ALICE)],
        [Invite("invite-again", room_id, ALICE)],
        [Leave("leave", room_id)],
        [Leave("leave-again", room_id), Leave("leave-unknown", "!nowhere")],
        [Join("join", room_id)],
        [Join("join-again", room_id)],
    )
    await journal.execute("memberships", None, plan)
    assert room.membership(ALICE) == "invite"
    assert room.membership(BOB) == "leave"
    assert room.membership(BOT) == "join"


async def test_inviting_a_banned_user_still_fails(
    journal: OperationJournal, hs: FakeMatrix
) -> None:
    results = await journal.execute(
        "setup", None, Plan.of([CreateRoom("room")], [Ban("b", Ref("room"), BOB)])
    )
    with pytest.raises(OperationFailed, match="M_BAD_STATE"):
        await journal.execute("x", None, Plan.of([Invite("i", results["room"]["room_id"], BOB)]))


@dataclass(frozen=True)
class Explode(Step):
    kind: ClassVar[str] = "test_explode"

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        raise ValueError("a bug")


async def test_a_bug_in_a_step_fails_the_operation_instead_of_looping(
    journal: OperationJournal,
) -> None:
    with pytest.raises(OperationFailed, match="internal error: ValueError: a bug"):
        await journal.execute("x", None, Plan.of([Explode("boom")]))
    assert await journal.resume() == []


async def test_a_state_write_answered_with_a_replaced_event_is_made_again(
    journal: OperationJournal, hs: FakeMatrix, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Synapse worker behind on the room takes an older event for current; asked to write that
    # older event's content again, it answers with the older event's id and writes nothing.
    room = "!r"
    hs.rooms[room] = Room()
    hs.rooms[room].state[("m.room.member", BOT)] = {"membership": "join"}
    stale = "$older"
    answer, stale_answers = hs._answer, [stale]

    def behind(method: str, path: str, body: dict[str, Any]) -> Any:
        if method == "PUT" and "/state/" in path and stale_answers:
            return {"event_id": stale_answers.pop()}  # and nothing written
        return answer(method, path, body)

    monkeypatch.setattr(hs, "_answer", behind)
    checked: list[tuple[str, str, str, str]] = []

    def superseded(room_id: str, event_type: str, state_key: str, event_id: str) -> bool:
        checked.append((room_id, event_type, state_key, event_id))
        return event_id == stale

    journal.superseded = superseded
    step = SendState("pl", room, "m.room.power_levels", "", {"users": {BOT: 100}})
    results = await journal.execute("x", None, Plan.of([step]))
    assert results["pl"]["event_id"] != stale
    assert hs.rooms[room].state[("m.room.power_levels", "")] == {"users": {BOT: 100}}
    assert checked[0] == (room, "m.room.power_levels", "", stale)
    row = await db.fetchone("SELECT attempts, status FROM operation_steps WHERE name = 'pl'")
    assert row == {"attempts": 2, "status": "done"}


async def test_a_homeserver_answering_replaced_events_is_waited_for(
    db: Database, hs: FakeMatrix
) -> None:
    # A worker behind on a room answers stale ids for a while; the step waits for it to catch
    # up instead of giving up after a fixed number of attempts.
    journal = OperationJournal(db, hs, BOT, base_backoff_s=0.001, max_backoff_s=0.005)
    stale_answers = [True] * 10
    journal.superseded = lambda *_: bool(stale_answers) and stale_answers.pop()
    hs.rooms["!r"] = Room()
    hs.rooms["!r"].state[("m.room.member", BOT)] = {"membership": "join"}
    try:
        await journal.execute("x", None, Plan.of([SendState("s", "!r", "t", "", {"a": 1})]))
    finally:
        await journal.stop()
    row = await db.fetchone("SELECT attempts, status, error FROM operation_steps WHERE name = 's'")
    assert row == {"attempts": 11, "status": "done", "error": None}


async def test_outcomes_and_durations_reach_the_metrics(db: Database, hs: FakeMatrix) -> None:
    metrics = BridgeMetrics()
    journal = OperationJournal(db, hs, BOT, metrics=metrics, base_backoff_s=0.001)
    try:
        done = await journal.submit("create_server", "srv1", server_plan(2))
        await journal.run(done)
        # Running a finished operation again reports nothing new: it was not carried out again.
        await journal.run(done)
        hs.fail("POST", r"/invite$", MatrixRequestError(403, "M_FORBIDDEN", "You may not invite"))
        failed = await journal.submit(
            "invite", "srv", Plan.of([CreateRoom("room")], [Invite("invite", Ref("room"), ALICE)])
        )
        with pytest.raises(OperationFailed):
            await journal.run(failed)
    finally:
        await journal.stop()
    r = metrics.registry
    assert (
        r.get_sample_value("guilds_operations_total", {"kind": "create_server", "outcome": "done"})
        == 1
    )
    assert (
        r.get_sample_value("guilds_operations_total", {"kind": "invite", "outcome": "failed"}) == 1
    )
    count = r.get_sample_value(
        "guilds_operation_duration_seconds_count", {"kind": "invite", "outcome": "failed"}
    )
    assert count == 1
