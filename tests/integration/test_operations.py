"""Operations against a real Synapse: a server-shaped plan runs, and survives a SIGKILL mid-way.

The plans are journaled in the bridge's own database with the bot's as_token, exactly as
`guilds serve` would; for the crash, the plan is submitted here and carried out by the real
`guilds serve` process (which resumes unfinished operations when it connects), killed with
SIGKILL in the middle, and started again.
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import Any

import pytest

from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import MatrixClient, MatrixRequestError, path_segment
from bridge.engine.steps import CreateRoom, Invite, Plan, Ref, SendMessage, SendState
from bridge.engine.store import Database
from guildsctl.synapse import spawn
from tests.harness.api import eventually
from tests.harness.stack import Stack, User

ROOMS = 20


def server_plan(marker: str, user: str) -> Plan:
    """A space and ROOMS channels linked both ways, each with state, an invite and a message."""
    space = CreateRoom(
        "space",
        {
            "name": f"{marker} space",
            "creation_content": {"type": "m.space"},
            "preset": "private_chat",
        },
    )
    rooms = [
        CreateRoom(
            f"room{i}",
            {
                "name": f"{marker} {i}",
                "preset": "private_chat",
                "initial_state": [
                    {
                        "type": "m.space.parent",
                        "state_key": Ref("space"),
                        "content": {"via": ["localhost"], "canonical": True},
                    }
                ],
            },
        )
        for i in range(ROOMS)
    ]
    children = [
        SendState(
            f"child{i}",
            Ref("space"),
            "m.space.child",
            Ref(f"room{i}"),
            {"via": ["localhost"], "order": f"{i:04d}"},
        )
        for i in range(ROOMS)
    ]
    per_room = [
        step
        for i in range(ROOMS)
        for step in (
            SendState(f"topic{i}", Ref(f"room{i}"), "m.room.topic", "", {"topic": f"{marker}"}),
            Invite(f"invite{i}", Ref(f"room{i}"), user),
            SendMessage(f"hello{i}", Ref(f"room{i}"), {"msgtype": "m.text", "body": marker}),
        )
    ]
    return Plan.of([space], rooms, children, per_room)


async def joined_rooms(bot: MatrixClient) -> set[str]:
    data = await bot.request("GET", "/_matrix/client/v3/joined_rooms")
    return set(data["joined_rooms"])


async def state(bot: MatrixClient, room_id: str, event_type: str, key: str = "") -> Any:
    return await bot.request(
        "GET",
        f"/_matrix/client/v3/rooms/{path_segment(room_id)}/state/"
        f"{path_segment(event_type)}/{path_segment(key)}",
    )


async def assert_server_built(
    stack: Stack, bot: MatrixClient, db: Database, op_id: str, before: set[str], marker: str
) -> None:
    """Exactly the plan's rooms exist, each changed once, and the operation's aliases are gone."""
    rows = await db.fetchall(
        "SELECT name, result_json, stage, idx FROM operation_steps WHERE op_id = ?", op_id
    )
    results = {r["name"]: r["result_json"] for r in rows}
    assert all(results.values()), "every step has its result recorded"
    new_rooms = await joined_rooms(bot) - before
    assert len(new_rooms) == ROOMS + 1
    spaces = [r for r in new_rooms if (await state(bot, r, "m.room.create")).get("type")]
    assert len(spaces) == 1
    space = spaces[0]
    children = new_rooms - {space}
    names = sorted([(await state(bot, r, "m.room.name"))["name"] for r in children])
    assert names == sorted(f"{marker} {i}" for i in range(ROOMS))
    for room_id in children:
        assert (await state(bot, space, "m.space.child", room_id))["via"] == ["localhost"]
        assert (await state(bot, room_id, "m.space.parent", space))["canonical"] is True
        assert (await state(bot, room_id, "m.room.topic"))["topic"] == marker
        assert (await state(bot, room_id, "m.room.canonical_alias")) == {}
        messages = await bot.request(
            "GET",
            f"/_matrix/client/v3/rooms/{path_segment(room_id)}/messages",
            query={"dir": "b", "limit": "100"},
        )
        sent = [e for e in messages["chunk"] if e["type"] == "m.room.message"]
        assert [e["content"]["body"] for e in sent] == [marker], "one message per room"
        invites = [
            e
            for e in messages["chunk"]
            if e["type"] == "m.room.member" and e["content"]["membership"] == "invite"
        ]
        assert len(invites) == 1, "one invite per room"
    # Every operation alias is gone from the directory.
    for row in rows:
        if row["name"] == "space" or row["name"].startswith("room"):
            alias = f"#_guilds_op_{op_id}_{row['stage']}_{row['idx']}:{stack.server_name}"
            with pytest.raises(MatrixRequestError) as missing:
                await bot.request("GET", f"/_matrix/client/v3/directory/room/{path_segment(alias)}")
            assert missing.value.status == 404


async def test_a_plan_builds_a_space_with_twenty_rooms(
    stack: Stack, db: Database, bot: MatrixClient, alice: User
) -> None:
    marker = f"ops-{secrets.token_hex(4)}"
    before = await joined_rooms(bot)
    journal = OperationJournal(db, bot, stack.bot_user_id)
    try:
        started = time.monotonic()
        op_id = await journal.submit("create_server", None, server_plan(marker, alice.user_id))
        results = await journal.run(op_id)
        elapsed = time.monotonic() - started
    finally:
        await journal.stop()
    print(f"{(await journal.get(op_id)).steps_total} steps in {elapsed:.2f} s")
    assert (await journal.get(op_id)).status == "done"
    assert results["space"]["room_id"] in await joined_rooms(bot)
    await assert_server_built(stack, bot, db, op_id, before, marker)
    # The invited user sees the invites.
    async with stack.nio_client(alice) as client:
        sync = await client.sync(timeout=0)
        invited = set(sync.rooms.invite)  # type: ignore[union-attr]
    assert {results[f"room{i}"]["room_id"] for i in range(ROOMS)} <= invited


async def test_guilds_serve_killed_mid_operation_finishes_it_on_restart(
    stack: Stack, db: Database, bot: MatrixClient, alice: User
) -> None:
    marker = f"crash-{secrets.token_hex(4)}"
    before = await joined_rooms(bot)
    stack.stop_guilds()
    try:
        # Journaled here, with nothing run: the real bridge picks it up as it connects.
        submitter = OperationJournal(db, bot, stack.bot_user_id)
        op_id = await submitter.submit("create_server", None, server_plan(marker, alice.user_id))
        stack.guilds_proc = spawn(
            [sys.executable, "-m", "guildsctl.cli", "serve", "-c", str(stack.config_path)],
            log_path=stack.guilds_log,
            cwd=stack.root,
        )

        async def some_rooms_created() -> bool:
            row = await db.fetchone(
                "SELECT COUNT(*) AS n FROM operation_steps"
                " WHERE op_id = ? AND kind = 'create_room' AND status = 'done'",
                op_id,
            )
            return row is not None and int(row["n"]) >= 4

        await stack.kill_guilds_when(some_rooms_created)
        at_kill = await journal_record(db, op_id)
        assert at_kill["status"] == "running", "killed before the operation ended"
        print(f"killed with {at_kill['done']} of {at_kill['total']} steps recorded")
        assert at_kill["done"] < at_kill["total"]

        stack.start_guilds()

        async def finished() -> bool:
            return (await journal_record(db, op_id))["status"] in ("done", "failed")

        await eventually(finished, 60, 0.02, what="the resumed operation to finish")
        record = await journal_record(db, op_id)
        assert record["status"] == "done", record
        await assert_server_built(stack, bot, db, op_id, before, marker)
        log = stack.guilds_log.read_text()
        assert f"Resuming operation {op_id}" in log
        # Rooms whose creation the kill interrupted were created again, or found by alias.
        retried = await db.fetchall(
            "SELECT name FROM operation_steps WHERE op_id = ? AND attempts > 1", op_id
        )
        print(
            f"re-run after the kill: {sorted(r['name'] for r in retried)};"
            f" found by alias: {log.count('GET /_matrix/client/v3/directory/room/')}"
        )
    finally:
        if stack.guilds_proc is None:
            stack.start_guilds()


async def journal_record(db: Database, op_id: str) -> dict[str, Any]:
    row = await db.fetchone(
        "SELECT o.status, o.error,"
        " (SELECT COUNT(*) FROM operation_steps s WHERE s.op_id = o.op_id"
        "  AND s.status = 'done') AS done,"
        " (SELECT COUNT(*) FROM operation_steps s WHERE s.op_id = o.op_id) AS total"
        " FROM operations o WHERE o.op_id = ?",
        op_id,
    )
    assert row is not None
    return {**row, "done": int(row["done"]), "total": int(row["total"])}
