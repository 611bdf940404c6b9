"""`guilds doctor` on a server made to diverge: Synapse SIGKILLed mid-operation, bridge stopped.

With `guilds serve` stopped, a role power edit is journaled and run by the test (the bridge's own
plan builders and journal, one step at a time), and Synapse is SIGKILLed after the third power
levels write: the role says 42, three rooms hold 42, the rest still hold 50. `guilds doctor`
(no bridge running: it reads Matrix as the bot with the bridge's config) lists each divergent
room and exits 1; `--repair` converges; `guilds doctor` then exits 0. With `guilds serve` back,
the invariant checker finds every room equal to the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import MatrixClient
from bridge.engine.store import Database
from bridge.plans.roles import edit_role_plan, with_role
from bridge.readback.directory import ServerDirectory
from bridge.readback.rooms import RoomsReader
from guilds.ids import RoomID, UserID
from tests.harness.api import Api, create_server, eventually, grant, join_server
from tests.harness.invariants import assert_converged
from tests.harness.stack import Stack

KILL_AFTER_LEVELS = 3


class KillsSynapse:
    """The bot's requests, with Synapse SIGKILLed once `after` power-levels writes went through."""

    def __init__(self, matrix: MatrixClient, stack: Stack, after: int) -> None:
        self.matrix = matrix
        self.stack = stack
        self.left = after
        self.killed = asyncio.Event()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        user_id: str | None = None,
    ) -> Any:
        levels = method == "PUT" and "/state/m.room.power_levels/" in path
        if levels and self.left == 0 and not self.killed.is_set():
            proc = self.stack.homeserver.proc
            assert proc is not None
            proc.kill()
            proc.wait()
            self.killed.set()
        answer = await self.matrix.request(method, path, json=json, query=query, user_id=user_id)
        if levels:
            self.left -= 1
        return answer


def doctor(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guildsctl.cli", "doctor", "-c", str(stack.config_path), *args],
        cwd=stack.root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_doctor_lists_a_crash_s_divergences_and_repairs_them(
    stack: Stack, db: Database, bot: MatrixClient
) -> None:
    owner, moderator = await stack.register_user(), await stack.register_user()
    server = await create_server(stack, owner, "Doctor")
    sid, api = server["server_id"], Api(stack, owner)
    for i in range(6):
        status, answer = await api.call(
            "POST", f"/servers/{sid}/channels", {"name": f"room{i}", "kind": "text"}
        )
        assert status == 201, answer
    await join_server(stack, sid, moderator)
    await grant(stack, sid, owner, moderator, "moderator")
    # Every auto-join and grant landed: the only divergence below is the one the kill leaves.
    await assert_converged(stack, sid, owner, [moderator])

    stack.stop_guilds()
    try:
        # What the bridge would plan for PATCH roles/moderator {power: 42}.
        directory = ServerDirectory(bot, UserID(stack.bot_user_id))
        model = await directory.load(RoomID(sid))
        assert model is not None
        role = model.role("moderator")
        assert role is not None
        edited = replace(role, power=42)
        plan = edit_role_plan(
            with_role(model, edited),
            edited,
            renamed=False,
            rooms=RoomsReader(directory, bot=UserID(stack.bot_user_id), via=stack.server_name).of(
                model
            ),
        )
        assert plan is not None
        killer = KillsSynapse(bot, stack, KILL_AFTER_LEVELS)
        journal = OperationJournal(db, killer, stack.bot_user_id, concurrency=1)
        op_id = await journal.submit("edit_role", sid, plan)
        running = asyncio.create_task(journal.run(op_id))
        await asyncio.wait_for(killer.killed.wait(), timeout=60)
        # The journal waits for the homeserver; the bridge that ran it is gone.
        await journal.stop()
        with contextlib.suppress(BaseException):
            await running
        await asyncio.to_thread(stack.homeserver.start)

        found = await asyncio.to_thread(doctor, stack, "--server", sid)
        assert found.returncode == 1, found.stdout + found.stderr
        assert "no bridge running" in found.stdout
        # One line per room still holding the old level (a room id may itself contain "42").
        divergent = [
            line
            for line in found.stdout.splitlines()
            if f"power_levels.users.{moderator.user_id}:" in line
        ]
        levels_rooms = len(plan.stages[0]) - 1
        assert len(divergent) == levels_rooms - KILL_AFTER_LEVELS, found.stdout
        assert all("expected 42, actual 50" in line for line in divergent), found.stdout

        repaired = await asyncio.to_thread(doctor, stack, "--server", sid, "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "repaired: every room matches the model now" in repaired.stdout

        again = await asyncio.to_thread(doctor, stack, "--server", sid)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"server {sid}: every room matches the model" in again.stdout
    finally:
        if stack.homeserver.proc is None or stack.homeserver.proc.poll() is not None:
            await asyncio.to_thread(stack.homeserver.start)
        stack.start_guilds()

    # The interrupted operation resumes with the bridge; every room ends equal to the model.
    async def resumed() -> bool:
        row = await db.fetchone("SELECT status FROM operations WHERE op_id = ?", op_id)
        return row is not None and row["status"] in ("done", "failed")

    assert await eventually(resumed, deadline_s=120), "the interrupted operation never ended"
    await assert_converged(stack, sid, owner, [moderator])
    status, shown = await api.call("GET", f"/servers/{sid}")
    assert status == 200
    assert {r["role_id"]: r["power"] for r in shown["roles"]}["moderator"] == 42

    # With guilds serve running, doctor asks it; the server is healthy.
    asked = await asyncio.to_thread(doctor, stack, "--server", sid)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert "by the running bridge" in asked.stdout
    assert f"server {sid}: every room matches the model" in asked.stdout
