"""Guilds operations survive a SIGKILL of the bridge in the middle, and end whole on restart.

Each operation is planned with the bridge's own plan builders and journaled in its database,
exactly as an API request would; the real `guilds serve` process picks it up as it connects,
is killed with SIGKILL once part of it is done, and is started again. Afterwards the server's
rooms must match its model: nothing half-changed, no room created twice.
"""

from __future__ import annotations

import sys
from typing import Any

import nio

from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import MatrixClient
from bridge.engine.steps import Plan
from bridge.engine.store import Database
from bridge.plans.roles import grant_plan, kick_plan, with_assignment, without_member
from bridge.plans.servers import create_server_plan, delete_server_plan
from bridge.readback.directory import ServerDirectory
from bridge.readback.rooms import RoomsReader
from guilds.config import ServerTemplate, TemplateChannel, TemplateRole
from guilds.ids import RoomID, UserID
from guildsctl.synapse import spawn
from tests.harness.api import Api, create_server, eventually, join_server
from tests.harness.stack import Stack, User


async def steps_done(db: Database, op_id: str) -> tuple[int, int, str]:
    row = await db.fetchone(
        "SELECT o.status,"
        " (SELECT COUNT(*) FROM operation_steps s WHERE s.op_id = o.op_id"
        "  AND s.status = 'done') AS done,"
        " (SELECT COUNT(*) FROM operation_steps s WHERE s.op_id = o.op_id) AS total"
        " FROM operations o WHERE o.op_id = ?",
        op_id,
    )
    assert row is not None
    return int(row["done"]), int(row["total"]), str(row["status"])


async def run_and_kill_midway(
    stack: Stack,
    db: Database,
    bot: MatrixClient,
    kind: str,
    server_id: str | None,
    plan: Plan,
    kill_after: int,
) -> str:
    """Journal `plan`, let `guilds serve` start it, SIGKILL it, restart; return the op id."""
    stack.stop_guilds()
    try:
        op_id = await OperationJournal(db, bot, stack.bot_user_id).submit(kind, server_id, plan)
        stack.guilds_proc = spawn(
            [sys.executable, "-m", "guildsctl.cli", "serve", "-c", str(stack.config_path)],
            log_path=stack.guilds_log,
            cwd=stack.root,
        )

        async def partly_done() -> bool:
            done, _, status = await steps_done(db, op_id)
            return done >= kill_after or status in ("done", "failed")

        await stack.kill_guilds_when(partly_done)
        done, total, status = await steps_done(db, op_id)
        assert status == "running" and kill_after <= done < total, (done, total, status)
    finally:
        stack.start_guilds()

    async def finished() -> bool:
        return (await steps_done(db, op_id))[2] in ("done", "failed")

    assert await eventually(finished, deadline_s=60), "the resumed operation never finished"
    assert (await steps_done(db, op_id))[2] == "done"
    return op_id


async def joined_rooms(bot: MatrixClient) -> set[str]:
    data = await bot.request("GET", "/_matrix/client/v3/joined_rooms")
    return set(data["joined_rooms"])


async def test_create_server_killed_midway_ends_whole(
    stack: Stack, db: Database, bot: MatrixClient, alice: User
) -> None:
    before = await joined_rooms(bot)
    capabilities = await bot.request("GET", "/_matrix/client/v3/capabilities")
    plan = create_server_plan(
        owner=UserID(alice.user_id),
        name="Crash-proof",
        topic="",
        icon=None,
        bot=UserID(stack.bot_user_id),
        room_version=capabilities["capabilities"]["m.room_versions"]["default"],
        via=stack.server_name,
    )
    await run_and_kill_midway(stack, db, bot, "create_server", None, plan, kill_after=2)

    # Exactly the space, two role rooms and general: no room created twice.
    created = await joined_rooms(bot) - before
    assert len(created) == 4, created

    # The bridge tracks the server, and the module joined the owner through the invites.
    async def listed() -> dict[str, Any] | None:
        status, answer = await Api(stack, alice).call("GET", "/servers")
        if status != 200:  # "Guilds is starting" while the restarted bridge loads its servers
            return None
        found = [s for s in answer["servers"] if s["name"] == "Crash-proof"]
        return found[0] if found else None

    summary = await eventually(listed)
    assert summary is not None and summary["server_id"] in created
    status, server = await Api(stack, alice).call("GET", f"/servers/{summary['server_id']}")
    assert status == 200
    assert server["owner"] == alice.user_id and "admin" in server["me"]["roles"]
    assert [c["name"] for c in server["channels"]] == ["general"]
    async with stack.nio_client(alice) as client:
        for room in (server["server_id"], server["default_channel_id"]):

            async def joined(room: str = room) -> bool:
                rooms = await client.joined_rooms()
                return isinstance(rooms, nio.JoinedRoomsResponse) and room in rooms.rooms

            assert await eventually(joined), f"the owner is not in {room}"


# A template of 20 channels, as the config parser builds it from guilds.yaml: the default
# channel, 19 more across the top level and two categories, one gated by a custom role.
TWENTY = ServerTemplate(
    name="twenty",
    topic="Twenty rooms",
    welcome_message="Welcome to twenty",
    default_channel="lobby",
    categories=("text-rooms", "voice-rooms"),
    roles=(TemplateRole("crew", "Crew", "#336699", 20, ("manage_messages",)),),
    channels=(
        *(TemplateChannel(f"top-{i}", "text") for i in range(5)),
        *(TemplateChannel(f"text-{i}", "text", f"topic {i}", "text-rooms") for i in range(7)),
        *(TemplateChannel(f"voice-{i}", "voice", "", "voice-rooms") for i in range(6)),
        TemplateChannel("crew-only", "text", "", "text-rooms", ("crew",)),
    ),
)


async def space_tree(bot: MatrixClient, room: str) -> set[str]:
    """Every room below `room` in the space tree, through its `m.space.child` state."""
    found: set[str] = set()
    state = await bot.request("GET", f"/_matrix/client/v3/rooms/{room}/state")
    for event in state:
        if event["type"] == "m.space.child" and event["content"].get("via"):
            found.add(event["state_key"])
            found |= await space_tree(bot, event["state_key"])
    return found


async def test_create_server_from_a_twenty_channel_template_killed_midway_ends_whole(
    stack: Stack, db: Database, bot: MatrixClient, alice: User
) -> None:
    assert len(TWENTY.channels) + 1 == 20
    before = await joined_rooms(bot)
    capabilities = await bot.request("GET", "/_matrix/client/v3/capabilities")
    plan = create_server_plan(
        owner=UserID(alice.user_id),
        name="Twenty",
        topic="",
        icon=None,
        bot=UserID(stack.bot_user_id),
        room_version=capabilities["capabilities"]["m.room_versions"]["default"],
        via=stack.server_name,
        template=TWENTY,
    )
    # Killed once a good part of the rooms exist, well before the links and invites.
    await run_and_kill_midway(stack, db, bot, "create_server", None, plan, kill_after=8)

    # The space, three role rooms, two categories and 20 channels, each created once.
    created = await joined_rooms(bot) - before
    assert len(created) == 1 + 3 + 2 + 20, len(created)

    async def listed() -> dict[str, Any] | None:
        status, answer = await Api(stack, alice).call("GET", "/servers")
        if status != 200:  # 503 while the restarted bridge is still loading its servers
            return None
        found = [s for s in answer["servers"] if s["name"] == "Twenty"]
        return found[0] if found else None

    summary = await eventually(listed)
    assert summary is not None and summary["server_id"] in created
    sid = summary["server_id"]
    status, server = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert status == 200
    assert server["owner"] == alice.user_id and "admin" in server["me"]["roles"]
    names = sorted(c["name"] for c in server["channels"])
    assert names == sorted(["lobby", *(c.name for c in TWENTY.channels)])
    assert sorted(c["name"] for c in server["categories"]) == ["text-rooms", "voice-rooms"]
    channel_ids = {c["channel_id"] for c in server["channels"]}
    assert len(channel_ids) == 20 and channel_ids <= created
    # Every channel hangs in the space tree (directly or under its category).
    assert channel_ids <= await space_tree(bot, sid)

    async with stack.nio_client(alice) as client:
        for room in (sid, server["default_channel_id"]):

            async def joined(room: str = room) -> bool:
                rooms = await client.joined_rooms()
                return isinstance(rooms, nio.JoinedRoomsResponse) and room in rooms.rooms

            assert await eventually(joined), f"the owner is not in {room}"
        # The welcome message was posted once, not again by the resumed operation.
        history = await client.room_messages(server["default_channel_id"], limit=100)
        assert isinstance(history, nio.RoomMessagesResponse), history
        welcomes = [e for e in history.chunk if getattr(e, "body", None) == TWENTY.welcome_message]
        assert len(welcomes) == 1, welcomes


async def test_delete_server_killed_midway_ends_whole(
    stack: Stack, db: Database, bot: MatrixClient, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Short-lived")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    # The plan the API would make, from the same directory the bridge keeps.
    directory = ServerDirectory(bot, UserID(stack.bot_user_id))
    model = await directory.load(RoomID(sid))
    assert model is not None
    plan = delete_server_plan(model, directory.rooms(RoomID(sid)))
    await run_and_kill_midway(stack, db, bot, "delete_server", sid, plan, kill_after=2)

    for user in (alice, bob):
        status, listed = await Api(stack, user).call("GET", "/servers")
        assert sid not in {s["server_id"] for s in listed["servers"]}
    assert not (await joined_rooms(bot)) & set(directory.rooms(RoomID(sid)))
    async with stack.nio_client(bob) as client:
        for room in directory.rooms(RoomID(sid)):
            answer = await client.join(room)
            assert isinstance(answer, nio.JoinError), f"{room} can still be joined"


async def server_with_channels(stack: Stack, owner: User, member: User, count: int) -> str:
    """A server with `count` extra text channels that `member` has joined, all of them."""
    server = await create_server(stack, owner, "Busy")
    sid = server["server_id"]
    for i in range(count):
        status, _ = await Api(stack, owner).call(
            "POST", f"/servers/{sid}/channels", {"name": f"room-{i}", "kind": "text"}
        )
        assert status == 201
    await join_server(stack, sid, member)
    status, full = await Api(stack, member).call("GET", f"/servers/{sid}")
    assert status == 200
    async with stack.nio_client(member) as client:
        for channel in full["channels"]:
            joined = await client.join(channel["channel_id"])
            assert isinstance(joined, nio.JoinResponse), joined
    return sid


async def loaded(bot: MatrixClient, stack: Stack, sid: str) -> ServerDirectory:
    directory = ServerDirectory(bot, UserID(stack.bot_user_id))
    assert await directory.load(RoomID(sid)) is not None
    return directory


async def test_role_change_killed_midway_ends_whole(
    stack: Stack, db: Database, bot: MatrixClient, alice: User, bob: User
) -> None:
    # 19 channels and general: a role change across 20 channels, as the reliability issue asks.
    sid = await server_with_channels(stack, alice, bob, 19)
    directory = await loaded(bot, stack, sid)
    server = directory.get(RoomID(sid))
    assert server is not None
    assert len(server.channels) == 20
    moderator = server.role("moderator")
    assert moderator is not None
    bob_id = UserID(bob.user_id)
    plan = grant_plan(
        with_assignment(server, bob_id, "moderator", held=True),
        bob_id,
        moderator,
        rooms=RoomsReader(directory, bot=UserID(stack.bot_user_id), via=stack.server_name).of(
            server
        ),
    )
    await run_and_kill_midway(stack, db, bot, "grant_role", sid, plan, kill_after=2)

    # Every room of the server gives bob a moderator's power, and he holds the role.
    for room in directory.rooms(RoomID(sid)):
        levels = await bot.request(
            "GET", f"/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/"
        )
        assert levels["users"].get(bob.user_id) == 50, room

    async def holds() -> bool:
        status, page = await Api(stack, alice).call("GET", f"/servers/{sid}/members?limit=100")
        mine = [m for m in page["members"] if m["user_id"] == bob.user_id]
        return status == 200 and bool(mine) and "moderator" in mine[0]["roles"]

    assert await eventually(holds), "bob does not hold the moderator role"


async def test_kick_cascade_killed_midway_ends_whole(
    stack: Stack, db: Database, bot: MatrixClient, alice: User, bob: User
) -> None:
    sid = await server_with_channels(stack, alice, bob, 6)
    directory = await loaded(bot, stack, sid)
    server = directory.get(RoomID(sid))
    assert server is not None
    bob_id = UserID(bob.user_id)
    plan = kick_plan(
        without_member(server, bob_id),
        bob_id,
        "Testing a crash",
        rooms=RoomsReader(directory, bot=UserID(stack.bot_user_id), via=stack.server_name).of(
            server
        ),
    )
    await run_and_kill_midway(stack, db, bot, "kick_member", sid, plan, kill_after=2)

    async with stack.nio_client(bob) as client:
        rooms = await client.joined_rooms()
        assert isinstance(rooms, nio.JoinedRoomsResponse)
        assert not set(rooms.rooms) & set(directory.rooms(RoomID(sid)))
    status, _ = await Api(stack, bob).call("GET", f"/servers/{sid}")
    assert status == 404
