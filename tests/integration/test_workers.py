"""The worker deployment itself: vetoes where the request lands, acting exactly once.

Synapse runs as a main process plus `guilds_client` (client traffic) and `guilds_writer` (the
event persister and the appservice sender), over Redis and PostgreSQL; each process logs to its
own file, which these tests read.
"""

from __future__ import annotations

import re
import secrets

import nio

from guildsctl.workers import CLIENT_WORKER, WORKERS
from tests.harness.api import create_server, eventually, grant, join_server, role_room
from tests.harness.workers import ONLY_ON_WORKERS, WorkersStack

pytestmark = ONLY_ON_WORKERS

PROCESSES = ("main", *WORKERS)


async def test_every_process_loads_the_module(workers_stack: WorkersStack) -> None:
    logs = workers_stack.synapse_log_text()
    for process in PROCESSES:
        assert "Guilds module loaded" in logs[process], process


async def test_a_rule_breaking_event_sent_to_the_client_worker_is_refused_there(
    workers_stack: WorkersStack,
) -> None:
    stack = workers_stack
    owner = await stack.register_user()
    server = await create_server(stack, owner, "Worker vetoes")
    general = server["default_channel_id"]
    marker = f"renamed-{secrets.token_hex(4)}"
    # Straight to the client worker's own port, past the router: the worker refuses it itself.
    # The owner's power level allows renaming; only the module forbids renaming the default
    # channel, so a 403 here is the module's veto, run on the worker.
    client = nio.AsyncClient(stack.workers.client_worker_url, owner.user_id)
    client.restore_login(owner.user_id, owner.device_id, owner.access_token)
    try:
        # The module joins the owner to the default channel, as the bridge asks it to; joining
        # here too would race that join across two processes, which Synapse refuses.
        async def in_general() -> bool:
            rooms = await client.joined_rooms()
            return isinstance(rooms, nio.JoinedRoomsResponse) and general in rooms.rooms

        await eventually(in_general, what="the owner joined to the default channel")
        answer = await client.room_put_state(general, "m.room.name", {"name": marker})
        assert isinstance(answer, nio.ErrorResponse), answer
        assert answer.status_code == "M_FORBIDDEN", answer
        assert "default channel" in answer.message, answer.message
        state = await client.room_get_state_event(general, "m.room.name")
        assert isinstance(state, nio.RoomGetStateEventResponse), state
        assert state.content["name"] != marker
    finally:
        await client.close()
    # The refusal was answered by the client worker: its access log has the 403, main's not.
    logs = stack.synapse_log_text()
    pattern = re.compile(r"\b403\b.*PUT /_matrix/client/v3/rooms/" + re.escape(general))
    assert pattern.search(logs[CLIENT_WORKER]), "the client worker logged no 403 for the rename"
    assert not pattern.search(logs["main"])


async def test_a_role_change_is_acted_on_exactly_once_across_all_processes(
    workers_stack: WorkersStack,
) -> None:
    stack = workers_stack
    owner, member = await stack.register_user(), await stack.register_user()
    server = await create_server(stack, owner, "Worker acting")
    sid = server["server_id"]
    await join_server(stack, sid, member)
    moderators = await role_room(stack, sid, "moderator")
    # Through the API: the bridge invites with the auto-join flag, the module joins the user.
    await grant(stack, sid, owner, member, "moderator")

    async def in_role_room() -> bool:
        async with stack.nio_client(member) as client:
            rooms = await client.joined_rooms()
            return isinstance(rooms, nio.JoinedRoomsResponse) and moderators in rooms.rooms

    await eventually(in_role_room, what="the member joined to the moderator role room")
    # Every process hears of the invite over replication, and the bridge hears of it once, by
    # transaction: it asks the module once, and the process that answered (the main one, which
    # serves /_synapse/client) accepts the invite; no other process acts.
    line = f"accept_invite('{member.user_id}', '{moderators}')"

    async def logged() -> dict[str, int]:
        counts = {p: text.count(line) for p, text in stack.synapse_log_text().items()}
        return counts if sum(counts.values()) else {}

    counts = await eventually(logged, what="the auto-join in a process log")
    assert counts == {p: int(p == "main") for p in PROCESSES}, counts
    # And the room holds one join of the member, not two racing ones.
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.hs_url}/_matrix/client/v3/rooms/{moderators}/messages?dir=b&limit=100",
        headers={"Authorization": f"Bearer {member.access_token}"},
    ) as response:
        assert response.status == 200, await response.text()
        events = (await response.json())["chunk"]
    joins = [
        e
        for e in events
        if e["type"] == "m.room.member"
        and e["state_key"] == member.user_id
        and e["content"].get("membership") == "join"
    ]
    assert len(joins) == 1, joins
