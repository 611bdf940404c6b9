"""Other Matrix clients reading a Guilds server: matrix-js-sdk 37.5 (in Node) and matrix-nio.

What a member sees before joining a channel is what Element, Cinny and nheko show in their room
lists and space home pages (docs/CLIENTS.md): the kind of each channel must be readable there,
from the space's `/hierarchy`, or voice and video channels look like text rooms.
"""

from __future__ import annotations

import secrets
from typing import Any

import nio
import pytest

from guilds.vocabulary import CHANNEL_KIND_KEY
from tests.harness.api import (
    Api,
    create_server,
    grant,
    join_as,
    join_server,
    role_room,
    settled,
    state_of,
)
from tests.harness.jssdk import run_scenario
from tests.harness.stack import JOIN_DEFAULT, Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database: each test runs on SQLite (ON_SQLITE
# says why), or on the SQLite stack with the admin's setting it needs.


async def add_channel(stack: Stack, owner: User, sid: str, **body: Any) -> str:
    status, channel = await Api(stack, owner).call("POST", f"/servers/{sid}/channels", body)
    assert status == 201, channel
    return str(channel["channel_id"])


async def nio_kinds(client: nio.AsyncClient, space_id: str) -> dict[str, str | None]:
    """Each child's kind as matrix-nio reads it from the hierarchy's `children_state`."""
    links: dict[str, dict[str, Any]] = {}
    page: str | None = None
    while True:
        answer = await client.space_get_hierarchy(space_id, from_page=page)
        assert isinstance(answer, nio.SpaceGetHierarchyResponse), answer
        for room in answer.rooms:
            for event in room.get("children_state", []):
                links[event["state_key"]] = event["content"]
        page = answer.next_batch
        if not page:
            return {room: link.get(CHANNEL_KIND_KEY) for room, link in links.items()}


# Under `join_channels: all` Guilds joins Bob to every channel moments after he enters, so the
# "before joining" this test is about holds only where members join channels themselves.
@pytest.mark.parametrize("stack", [JOIN_DEFAULT], indirect=True, scope="session")
async def test_channel_kinds_are_readable_from_the_space_before_joining(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Kinds")
    sid, general = server["server_id"], server["default_channel_id"]
    status, category = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/categories", {"name": "Rooms"}
    )
    assert status == 201, category
    cat = category["category_id"]
    voice = await add_channel(stack, alice, sid, name="Lounge", kind="voice")
    video = await add_channel(stack, alice, sid, name="Stage", kind="video", category_id=cat)
    text = await add_channel(stack, alice, sid, name="notes", kind="text", category_id=cat)
    retyped = await add_channel(stack, alice, sid, name="was text", kind="text")
    # Retyped and moved to the top in one edit: the link is rewritten twice, the kind holds.
    status, edited = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/channels/{retyped}", {"kind": "voice", "order": 0}
    )
    assert status == 200 and edited["kind"] == "voice", edited
    expected = {general: "text", voice: "voice", video: "video", text: "text", retyped: "voice"}

    # Bob is in the space and the default channel only (joining the server auto-joins general).
    await join_server(stack, sid, bob)
    answer = await run_scenario("hierarchy", stack, bob, space_id=sid)
    rows = {row["room_id"]: row for row in answer.result}
    assert set(expected) | {sid, cat} <= set(rows)
    for room, kind in expected.items():
        assert rows[room]["kind"] == kind, (room, rows[room])
        # Not a room type: Element would take a video-room type for its own call.
        assert rows[room]["room_type"] is None, rows[room]
    for room in (voice, video, text, retyped):
        assert rows[room]["joined"] is False, rows[room]
    assert rows[cat]["room_type"] == "m.space" and rows[cat]["kind"] is None

    async with stack.nio_client(bob) as client:
        kinds = await nio_kinds(client, sid)
    assert {room: kinds.get(room) for room in expected} == expected
    assert kinds.get(cat) is None


@ON_SQLITE
async def test_role_rooms_stay_out_of_other_clients_room_lists(
    stack: Stack, alice: User, bob: User
) -> None:
    # Issue 17, observation 2: every role holder saw an empty "<Role> (role)" room in Element's
    # room list and Cinny's Home. Restricted joins through the role rooms must keep working.
    server = await create_server(stack, alice, "Tidy")
    sid, general = server["server_id"], server["default_channel_id"]
    status, crew = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/roles", {"name": "Crew", "power": 10, "permissions": []}
    )
    assert status == 201, crew
    crew_id = str(crew["role_id"])
    gated = await add_channel(
        stack, alice, sid, name="crew-only", kind="text", allowed_roles=[crew_id]
    )
    await join_server(stack, sid, bob)
    for role_id in ("moderator", crew_id):
        await grant(stack, sid, alice, bob, role_id)
    rooms = {r: await role_room(stack, sid, r) for r in ("admin", "moderator", crew_id)}
    # The gate still opens through the role room: Bob joins the gated channel by himself.
    assert isinstance(await join_as(stack, bob, gated), nio.JoinResponse)

    holders = ((bob, {rooms["moderator"], rooms[crew_id]}), (alice, {rooms["admin"]}))
    for user, held in holders:
        answer = await run_scenario("room_list", stack, user, room_ids=[sid, general, *held])
        lists = answer.result
        # They hold the roles, so they are in the role rooms; no list shows one.
        assert held <= {row["room_id"] for row in lists["joined"]}, lists
        for view in ("element", "cinny_home", "top_spaces"):
            shown = {row["room_id"] for row in lists[view]}
            assert not shown & set(rooms.values()), (user.user_id, view, lists[view])
        assert general in {row["room_id"] for row in lists["element"]}, lists
        assert sid in {row["room_id"] for row in lists["top_spaces"]}, lists


def _mentions(value: Any, needles: tuple[str, ...]) -> bool:
    """Whether any needle appears anywhere in this JSON-like value (keys included)."""
    return any(needle in repr(value) for needle in needles)


@ON_SQLITE
async def test_a_private_channel_reveals_nothing_to_a_member_without_the_role(
    stack: Stack, alice: User
) -> None:
    # Issue 17, observation 6, read by a moderator (manage_channels) who may not enter it.
    server = await create_server(stack, alice, "Private")
    sid = server["server_id"]
    status, crew = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/roles", {"name": "Crew", "power": 10, "permissions": []}
    )
    assert status == 201, crew
    secret = await add_channel(
        stack,
        alice,
        sid,
        name="heist-plans",
        kind="voice",
        topic="the vault at midnight",
        allowed_roles=[crew["role_id"]],
    )
    mod = await stack.register_user(f"mod{secrets.token_hex(3)}")
    await join_server(stack, sid, mod)
    await grant(stack, sid, alice, mod, "moderator")
    words = ("heist-plans", "the vault at midnight")

    # The provisioning API: not listed, and editing or deleting it is "no such channel", as for
    # a channel that does not exist: a moderator's manage_channels reaches only what they see.
    api = Api(stack, mod)
    status, seen_server = await api.call("GET", f"/servers/{sid}")
    assert status == 200 and not _mentions(seen_server, (secret, *words)), seen_server
    for method, body in (("PATCH", {"name": "ours now"}), ("DELETE", None)):
        status, answer = await settled(api, method, f"/servers/{sid}/channels/{secret}", body)
        made_up = await settled(
            api, method, f"/servers/{sid}/channels/!nothing:{stack.server_name}", body
        )
        assert (status, answer) == made_up and status == 404, (status, answer)

    async with stack.nio_client(mod) as client:
        # The channel itself is closed to them: no state, no name, no join.
        assert isinstance(await client.room_get_state(secret), nio.RoomGetStateError)
        assert isinstance(await client.join(secret), nio.JoinError)
        # The space's state: Guilds' own events name no channel of the role's.
        space = await state_of(client, sid)
    assert not _mentions(space, words)
    guilds_state = {k: v for k, v in space.items() if k[0].startswith("chat.guilds.")}
    assert not _mentions(guilds_state, (secret,)), guilds_state
    # /hierarchy (matrix-js-sdk, as Element and Cinny page it) has no row for it.
    answer = await run_scenario("hierarchy", stack, mod, space_id=sid)
    assert secret not in {row["room_id"] for row in answer.result}
    assert not _mentions(answer.result, words)
    # Nor its link: a private channel is linked from its roles' rooms alone (docs/DESIGN.md,
    # "Private channels"; tests/integration/test_private_channels.py reads everything else).
    links = [key for key, content in space.items() if _mentions((key, content), (secret,))]
    assert links == [], links
