"""Randomized interleavings: API operations, raw Matrix clients and crashes, then convergence.

A seeded random sequence of rounds; in each, a few actions run at once: role power edits,
grants and removals, channel creations, deletions and moves, ownership transfers, kicks, bans
and unbans (through the API and from a plain Matrix client), power levels and space links
edited by hand, and SIGKILLs of the bridge or of Synapse (each restarted). Once quiet, the
invariant checker (tests/harness/invariants.py) must find every room of the server equal to
what its model derives, the API agreeing with Matrix.

Parameters (environment): GUILDS_INTERLEAVE_SEED (default: a fresh random seed),
GUILDS_INTERLEAVE_ROUNDS (default 6; `make soak` runs 60), GUILDS_INTERLEAVE_CRASHES (default
1: how many bridge and how many Synapse SIGKILLs are injected). A failure names its seed:
set GUILDS_INTERLEAVE_SEED to it to replay the same sequence.

The same run, shorter (GUILDS_INTERLEAVE_ROUNDS_V11, default 3), also runs in rooms of version
11, where the bot and the owner share power 100 in `users` rather than the bot being the
rooms' creator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import nio
import pytest

from bridge.engine.store import Database
from guilds.vocabulary import SERVER_EVENT
from tests.harness.api import (
    Api,
    as_bot,
    create_server,
    eventually,
    grant,
    join_server,
    settled,
)
from tests.harness.invariants import assert_converged, room_state
from tests.harness.stack import BACKENDS, ROOM_VERSION_11, Stack, User

SEED = int(os.environ.get("GUILDS_INTERLEAVE_SEED", secrets.randbelow(2**32)))
ROUNDS = int(os.environ.get("GUILDS_INTERLEAVE_ROUNDS", "6"))
CRASHES = int(os.environ.get("GUILDS_INTERLEAVE_CRASHES", "1"))
ROUNDS_V11 = int(os.environ.get("GUILDS_INTERLEAVE_ROUNDS_V11", "3"))
MEMBERS = 5
CREW_POWER = 20

Action = Callable[[], Awaitable[Any]]


@dataclass
class World:
    """The server under test and the people in it; the random choices read it."""

    stack: Stack
    rng: random.Random
    server_id: str
    general: str
    category: str
    users: list[User]
    crew: str
    log: list[str] = field(default_factory=list)

    def by_id(self, user_id: str) -> User:
        return next(u for u in self.users if u.user_id == user_id)

    async def owner(self) -> User:
        state = await room_state(self.stack, self.server_id)
        assert state is not None
        return self.by_id(state[(SERVER_EVENT, "")]["owner"])

    async def channels(self) -> list[str]:
        owner = await self.owner()
        status, shown = await Api(self.stack, owner).call("GET", f"/servers/{self.server_id}")
        if status != 200:
            return []
        return [c["channel_id"] for c in shown["channels"] if not c["default"]]

    def someone(self, owner: User) -> User:
        return self.rng.choice([u for u in self.users if u.user_id != owner.user_id])


async def _api(world: World, method: str, path: str, body: Any = None) -> int:
    """An API call as the current owner; its status (0: no answer, a crash in progress)."""
    try:
        owner = await world.owner()
        status, _ = await Api(world.stack, owner).call(method, path, body)
        return status
    except (aiohttp.ClientError, TimeoutError, AssertionError):
        return 0


async def _tolerant(action: Action) -> None:
    """Run an action; a homeserver or bridge away (a crash of this round) only cuts it short."""
    # AssertionError: the harness's own reads assert, say a room state unreadable while
    # Synapse restarts. The actions assert nothing else: the end state is what is checked.
    with contextlib.suppress(TimeoutError, aiohttp.ClientError, AssertionError):
        await action()


async def _raw(world: World, what: Callable[[nio.AsyncClient], Awaitable[Any]]) -> None:
    """A plain Matrix client of the current owner does something by hand."""
    try:
        owner = await world.owner()
        async with world.stack.nio_client(owner) as client:
            await what(client)
    except (aiohttp.ClientError, TimeoutError, AssertionError):
        pass


def actions(world: World) -> dict[str, Callable[[], Action]]:
    """Every kind of action, each a factory drawing its arguments at random."""
    sid, rng, stack = world.server_id, world.rng, world.stack

    def role_edit() -> Action:
        role = rng.choice(["moderator", world.crew])
        power = rng.choice([30, 40, 47, 50]) if role == "moderator" else rng.randint(5, 29)
        return lambda: _api(world, "PATCH", f"/servers/{sid}/roles/{role}", {"power": power})

    def role_change() -> Action:
        async def run() -> None:
            owner = await world.owner()
            user = world.someone(owner)
            role = rng.choice(["moderator", world.crew])
            method = rng.choice(["PUT", "DELETE"])
            await _api(world, method, f"/servers/{sid}/members/{user.user_id}/roles/{role}")

        return run

    def channel_create() -> Action:
        body: dict[str, Any] = {"name": f"ch{rng.randint(0, 999)}", "kind": "text"}
        if rng.random() < 0.3:
            body["category_id"] = world.category
        if rng.random() < 0.3:
            body["allowed_roles"] = [world.crew]
        return lambda: _api(world, "POST", f"/servers/{sid}/channels", body)

    def channel_delete() -> Action:
        async def run() -> None:
            channels = await world.channels()
            if channels:
                await _api(world, "DELETE", f"/servers/{sid}/channels/{rng.choice(channels)}")

        return run

    def channel_move() -> Action:
        async def run() -> None:
            channels = await world.channels()
            if channels:
                body = {"category_id": rng.choice([None, world.category]), "order": 0}
                await _api(world, "PATCH", f"/servers/{sid}/channels/{rng.choice(channels)}", body)

        return run

    def transfer() -> Action:
        async def run() -> None:
            owner = await world.owner()
            await _api(
                world, "POST", f"/servers/{sid}/transfer", {"user_id": world.someone(owner).user_id}
            )

        return run

    def member_action() -> Action:
        async def run() -> None:
            owner = await world.owner()
            user = world.someone(owner)
            action = rng.choice(["kick", "ban", "unban"])
            if action == "unban":
                await _api(world, "DELETE", f"/servers/{sid}/bans/{user.user_id}")
            else:
                await _api(world, "POST", f"/servers/{sid}/members/{user.user_id}/{action}", {})

        return run

    def rejoin() -> Action:
        async def run() -> None:
            owner = await world.owner()
            user = world.someone(owner)
            try:
                await as_bot(stack, "POST", f"/rooms/{sid}/invite", {"user_id": user.user_id})
                async with stack.nio_client(user) as client:
                    await client.join(sid)
            except (aiohttp.ClientError, TimeoutError):
                pass

        return run

    def raw_membership() -> Action:
        async def run() -> None:
            owner = await world.owner()
            user = world.someone(owner)
            kind = rng.choice(["kick", "ban", "unban"])

            async def act(client: nio.AsyncClient) -> None:
                if kind == "kick":
                    await client.room_kick(sid, user.user_id, "by hand")
                elif kind == "ban":
                    await client.room_ban(sid, user.user_id, "by hand")
                else:
                    await client.room_unban(sid, user.user_id)

            await _raw(world, act)

        return run

    def raw_power() -> Action:
        async def run() -> None:
            owner = await world.owner()
            user = world.someone(owner)
            power = rng.choice([0, CREW_POWER, 50, 33])

            async def act(client: nio.AsyncClient) -> None:
                got = await client.room_get_state_event(sid, "m.room.power_levels")
                if isinstance(got, nio.RoomGetStateEventResponse):
                    content = dict(got.content)
                    content["users"] = {**content.get("users", {}), user.user_id: power}
                    await client.room_put_state(sid, "m.room.power_levels", content)

            await _raw(world, act)

        return run

    def raw_space_child() -> Action:
        async def run() -> None:
            channels = await world.channels()
            if not channels:
                return
            child = rng.choice(channels)
            order = f"{rng.randint(0, 20):06d}"

            async def act(client: nio.AsyncClient) -> None:
                content = {"via": [stack.server_name], "order": order}
                await client.room_put_state(sid, "m.space.child", content, child)

            await _raw(world, act)

        return run

    return {
        "role_edit": role_edit,
        "role_change": role_change,
        "channel_create": channel_create,
        "channel_delete": channel_delete,
        "channel_move": channel_move,
        "transfer": transfer,
        "member_action": member_action,
        "rejoin": rejoin,
        "raw_membership": raw_membership,
        "raw_power": raw_power,
        "raw_space_child": raw_space_child,
    }


async def kill_bridge(world: World) -> None:
    await asyncio.sleep(world.rng.uniform(0.0, 1.0))
    world.stack.kill_guilds()
    await asyncio.to_thread(world.stack.start_guilds)


async def kill_synapse(world: World) -> None:
    await asyncio.sleep(world.rng.uniform(0.0, 1.0))
    proc = world.stack.homeserver.proc
    assert proc is not None
    proc.kill()
    await asyncio.to_thread(proc.wait)
    await asyncio.to_thread(world.stack.homeserver.start)


async def build_world(stack: Stack, rng: random.Random) -> World:
    users = [await stack.register_user(f"il{i}_{secrets.token_hex(3)}") for i in range(MEMBERS + 1)]
    owner = users[0]
    server = await create_server(stack, owner, "Interleavings")
    sid, api = server["server_id"], Api(stack, owner)
    status, crew = await settled(
        api,
        "POST",
        f"/servers/{sid}/roles",
        {"name": "Crew", "power": CREW_POWER, "permissions": ["send_messages", "kick_members"]},
    )
    assert status == 201, crew
    status, category = await settled(api, "POST", f"/servers/{sid}/categories", {"name": "Den"})
    assert status == 201, category
    for name in ("alpha", "beta"):
        status, answer = await settled(
            api, "POST", f"/servers/{sid}/channels", {"name": name, "kind": "text"}
        )
        assert status == 201, answer
    for user in users[1:]:
        await join_server(stack, sid, user)
    await grant(stack, sid, owner, users[1], "moderator")
    await grant(stack, sid, owner, users[2], crew["role_id"])
    return World(
        stack,
        rng,
        sid,
        server["default_channel_id"],
        category["category_id"],
        users,
        crew["role_id"],
    )


async def _quiet(stack: Stack, db: Database) -> bool:
    row = await db.fetchone(
        "SELECT COUNT(*) AS n FROM operations WHERE status IN ('pending', 'running')"
    )
    return row is not None and int(row["n"]) == 0


@pytest.mark.parametrize(
    ("stack", "rounds"),
    [
        *(pytest.param(backend, ROUNDS, id=backend) for backend in BACKENDS),
        pytest.param(ROOM_VERSION_11, ROUNDS_V11, id=ROOM_VERSION_11),
    ],
    indirect=["stack"],
    scope="session",
)
async def test_any_interleaving_converges_once_quiet(
    stack: Stack, db: Database, rounds: int
) -> None:
    rng = random.Random(SEED)
    rounds_name = "ROUNDS_V11" if stack.backend == ROOM_VERSION_11 else "ROUNDS"
    replay = f"GUILDS_INTERLEAVE_SEED={SEED} GUILDS_INTERLEAVE_{rounds_name}={rounds}"
    try:
        world = await build_world(stack, rng)
        kinds = actions(world)
        crash_rounds = {
            "bridge": set(rng.sample(range(rounds), min(CRASHES, rounds))),
            "synapse": set(rng.sample(range(rounds), min(CRASHES, rounds))),
        }
        for round_no in range(rounds):
            chosen = rng.sample(sorted(kinds), rng.randint(2, 4))
            running: list[Awaitable[Any]] = [_tolerant(kinds[name]()) for name in chosen]
            if round_no in crash_rounds["bridge"]:
                chosen.append("kill_bridge")
                running.append(kill_bridge(world))
            if round_no in crash_rounds["synapse"] and round_no not in crash_rounds["bridge"]:
                chosen.append("kill_synapse")
                running.append(kill_synapse(world))
            world.log.append(f"round {round_no}: {', '.join(chosen)}")
            outcomes = await asyncio.gather(*running, return_exceptions=True)
            for name, outcome in zip(chosen, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    raise AssertionError(f"round {round_no}: {name} raised") from outcome
        assert await eventually(lambda: _quiet(stack, db), deadline_s=180, interval_s=0.5), (
            "operations never finished"
        )
        owner = await world.owner()
        await assert_converged(
            stack, world.server_id, owner, world.users, deadline_s=120, context=f"{replay}: "
        )
    except BaseException as exc:
        # Whatever broke, the seed replays it.
        raise AssertionError(f"interleaving failed; replay with {replay}") from exc
