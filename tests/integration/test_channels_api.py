"""The channel and category endpoints of the provisioning API, and their effect on Matrix.

Every effect is checked with a plain matrix-nio client: room state, the space's children, join
rules, power levels, the hierarchy API, and what a member's own join gets.
"""

from __future__ import annotations

from typing import Any

import nio

from guilds.model import CATEGORY_EVENT
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, CHANNEL_KIND_KEY
from tests.harness.api import (
    Api,
    create_server,
    eventually,
    give_role,
    hierarchy,
    join_server,
    role_room,
    state_of,
)
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE


async def seen(client: nio.AsyncClient, room_id: str) -> dict[tuple[str, str], dict]:
    """The room's state as this client sees it once in the room (joining is a no-op if in)."""
    joined = await client.join(room_id)
    assert isinstance(joined, nio.JoinResponse), joined
    return await state_of(client, room_id)


def allow(*rooms: str) -> list[dict[str, str]]:
    return [{"type": "m.room_membership", "room_id": room} for room in rooms]


async def add_channel(stack: Stack, owner: User, sid: str, **body: Any) -> dict[str, Any]:
    status, channel = await Api(stack, owner).call("POST", f"/servers/{sid}/channels", body)
    assert status == 201, channel
    return channel


async def add_category(stack: Stack, owner: User, sid: str, name: str) -> dict[str, Any]:
    status, category = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/categories", {"name": name}
    )
    assert status == 201, category
    return category


async def read_server(stack: Stack, user: User, sid: str) -> dict[str, Any]:
    status, server = await Api(stack, user).call("GET", f"/servers/{sid}")
    assert status == 200, server
    return server


async def joins(stack: Stack, user: User, room_id: str) -> nio.JoinResponse | nio.JoinError:
    async with stack.nio_client(user) as client:
        return await client.join(room_id)


async def membership(stack: Stack, reader: User, room_id: str, user: User) -> dict[str, Any]:
    async with stack.nio_client(reader) as client:
        return (await seen(client, room_id)).get(("m.room.member", user.user_id), {})


def children(space: dict[tuple[str, str], dict]) -> dict[str, dict]:
    return {key: content for (kind, key), content in space.items() if kind == "m.space.child"}


async def test_create_channel_links_a_restricted_room_into_the_space(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Channels")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    voice = await add_channel(stack, alice, sid, name="Voice Chat", kind="voice", topic="talk")
    assert (voice["name"], voice["kind"], voice["topic"]) == ("Voice Chat", "voice", "talk")
    assert voice["category_id"] is None and voice["allowed_roles"] is None
    text = await add_channel(stack, alice, sid, name="random", kind="text")
    assert server["channels"][0]["order"] < voice["order"] < text["order"]

    read = await read_server(stack, bob, sid)
    assert [c["channel_id"] for c in read["channels"]] == [
        general,
        voice["channel_id"],
        text["channel_id"],
    ]

    async with stack.nio_client(alice) as client:
        space = await seen(client, sid)
        assert space[("m.space.child", voice["channel_id"])] == {
            "via": [stack.server_name],
            "order": voice["order"],
            "suggested": True,
            CHANNEL_KIND_KEY: "voice",
        }
        room = await seen(client, voice["channel_id"])
        assert room[(CHANNEL_EVENT, "")] == {"kind": "voice", "server_id": sid, "default": False}
        assert room[("m.room.join_rules", "")] == {"join_rule": "restricted", "allow": allow(sid)}
        assert room[("m.space.parent", sid)]["canonical"] is True
        assert room[("m.room.name", "")]["name"] == "Voice Chat"
        assert room[("m.room.topic", "")]["topic"] == "talk"
        # Members may write call membership in a voice channel; in a text channel nobody may.
        assert room[("m.room.power_levels", "")]["events"][CALL_MEMBER_EVENT] == 0
        assert room[("m.room.power_levels", "")]["users"][alice.user_id] == 100
        text_room = await seen(client, text["channel_id"])
        assert text_room[("m.room.power_levels", "")]["events"][CALL_MEMBER_EVENT] == 100

    # A member joins the new channels with any client; someone outside the server cannot.
    assert isinstance(await joins(stack, bob, voice["channel_id"]), nio.JoinResponse)
    async with stack.nio_client(bob) as client:
        assert {general, voice["channel_id"], text["channel_id"]} <= await hierarchy(client, sid)
    outsider = await stack.register_user()
    refused = await joins(stack, outsider, text["channel_id"])
    assert isinstance(refused, nio.JoinError) and refused.status_code == "M_FORBIDDEN"


async def test_gated_channel_in_a_category(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Gated")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    category = await add_category(stack, alice, sid, "Staff")
    cat = category["category_id"]
    assert set(category) == {"category_id", "name", "order"} and category["name"] == "Staff"
    gated = await add_channel(
        stack, alice, sid, name="mods", kind="text", category_id=cat, allowed_roles=["moderator"]
    )
    assert gated["category_id"] == cat and gated["allowed_roles"] == ["moderator"]
    lounge = await add_channel(stack, alice, sid, name="lounge", kind="video", category_id=cat)
    assert lounge["allowed_roles"] is None and lounge["order"] > gated["order"]
    admins = await role_room(stack, sid, "admin")
    moderators = await role_room(stack, sid, "moderator")

    async with stack.nio_client(alice) as client:
        space = await seen(client, sid)
        assert children(space)[cat]["via"] == [stack.server_name]
        sub = await seen(client, cat)
        assert sub[("m.room.create", "")]["type"] == "m.space"
        assert sub[(CATEGORY_EVENT, "")] == {"server_id": sid}
        # The gated channel is private: linked from its roles' rooms, not the category.
        assert set(children(sub)) == {lounge["channel_id"]}
        assert gated["channel_id"] in children(await seen(client, admins))
        room = await seen(client, gated["channel_id"])
        assert room[("m.room.join_rules", "")] == {
            "join_rule": "restricted",
            "allow": allow(admins, moderators),
        }
        assert room[("m.space.parent", cat)]["canonical"] is True
        assert ("m.space.parent", sid) not in room
        # The admin sees everything in the hierarchy.
        assert {cat, gated["channel_id"], lounge["channel_id"]} <= await hierarchy(client, sid)

    # A plain member: the gated channel is hidden everywhere and its join refused.
    visible = {c["channel_id"] for c in (await read_server(stack, bob, sid))["channels"]}
    assert lounge["channel_id"] in visible and gated["channel_id"] not in visible
    assert gated["channel_id"] in {
        c["channel_id"] for c in (await read_server(stack, alice, sid))["channels"]
    }
    async with stack.nio_client(bob) as client:
        listed = await hierarchy(client, sid)
        assert {cat, lounge["channel_id"]} <= listed and gated["channel_id"] not in listed
        refused = await client.join(gated["channel_id"])
        assert isinstance(refused, nio.JoinError) and refused.status_code == "M_FORBIDDEN"
        assert isinstance(await client.join(lounge["channel_id"]), nio.JoinResponse)

    # With the role, the channel opens; moderators manage channels too.
    await give_role(stack, sid, "moderator", bob)
    async with stack.nio_client(bob) as client:
        assert gated["channel_id"] in await hierarchy(client, sid)
        assert isinstance(await client.join(gated["channel_id"]), nio.JoinResponse)
    made = await add_channel(stack, bob, sid, name="by a moderator", kind="text")
    assert made["name"] == "by a moderator"


async def test_create_errors_change_nothing(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Strict")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    outsider = await stack.register_user()

    async def snapshot() -> Any:
        read = await read_server(stack, alice, sid)
        async with stack.nio_client(alice) as client:
            tree = children(await seen(client, sid))
        return read["channels"], read["categories"], tree

    before = await snapshot()
    ok = {"name": "fine", "kind": "text"}
    cases: list[tuple[User, str, Any, int, str]] = [
        (bob, "channels", ok, 403, "M_FORBIDDEN"),
        (outsider, "channels", ok, 404, "M_NOT_FOUND"),
        (alice, "channels", {"kind": "text"}, 400, "M_MISSING_PARAM"),
        (alice, "channels", {"name": "x"}, 400, "M_MISSING_PARAM"),
        (alice, "channels", {**ok, "name": ""}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "name": "x" * 101}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "name": "a\u0000b"}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "name": 7}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "kind": "stage"}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "topic": 5}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "allowed_roles": ["ghost"]}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "allowed_roles": "moderator"}, 400, "M_INVALID_PARAM"),
        (alice, "channels", {**ok, "category_id": "!nope:localhost"}, 404, "M_NOT_FOUND"),
        # A channel is not a category.
        (alice, "channels", {**ok, "category_id": general}, 404, "M_NOT_FOUND"),
        (alice, "channels", [ok], 400, "M_BAD_JSON"),
        (bob, "categories", {"name": "Mine"}, 403, "M_FORBIDDEN"),
        (alice, "categories", {}, 400, "M_MISSING_PARAM"),
        (alice, "categories", {"name": " "}, 400, "M_INVALID_PARAM"),
    ]
    for user, what, body, status, errcode in cases:
        got, error = await Api(stack, user).call("POST", f"/servers/{sid}/{what}", body)
        assert (got, error["errcode"]) == (status, errcode), (user.user_id, body, error)
        if status == 403:
            assert "manage_channels" in error["error"]
    status, error = await Api(stack, alice).call("POST", "/servers/!nope:localhost/channels", ok)
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    status, error = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/channels", raw=b"{not json"
    )
    assert (status, error["errcode"]) == (400, "M_NOT_JSON")
    huge = b'{"name": "x", "kind": "text", "topic": "' + b"x" * (70 * 1024) + b'"}'
    status, error = await Api(stack, alice).call("POST", f"/servers/{sid}/channels", raw=huge)
    assert (status, error["errcode"]) == (413, "M_TOO_LARGE")
    assert await snapshot() == before


async def test_edit_rename_retype_move_and_reorder(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Editable")
    sid, general = server["server_id"], server["default_channel_id"]
    api = Api(stack, alice)
    cat = (await add_category(stack, alice, sid, "Topics"))["category_id"]
    a = (await add_channel(stack, alice, sid, name="alpha", kind="text"))["channel_id"]
    b = (await add_channel(stack, alice, sid, name="beta", kind="text"))["channel_id"]
    c = (await add_channel(stack, alice, sid, name="gamma", kind="voice"))["channel_id"]

    status, edited = await api.call(
        "PATCH", f"/servers/{sid}/channels/{a}", {"name": "alpha two", "topic": "new"}
    )
    assert status == 200 and (edited["name"], edited["topic"]) == ("alpha two", "new")
    status, edited = await api.call("PATCH", f"/servers/{sid}/channels/{a}", {"kind": "video"})
    assert status == 200 and edited["kind"] == "video"
    status, edited = await api.call("PATCH", f"/servers/{sid}/channels/{c}", {"kind": "text"})
    assert status == 200 and edited["kind"] == "text"
    async with stack.nio_client(alice) as client:
        room = await seen(client, a)
        assert room[("m.room.name", "")]["name"] == "alpha two"
        assert room[("m.room.topic", "")]["topic"] == "new"
        assert room[(CHANNEL_EVENT, "")]["kind"] == "video"
        assert room[("m.room.power_levels", "")]["events"][CALL_MEMBER_EVENT] == 0
        room = await seen(client, c)
        assert room[(CHANNEL_EVENT, "")]["kind"] == "text"
        assert room[("m.room.power_levels", "")]["events"][CALL_MEMBER_EVENT] == 100

    # Into the category and back out: links both ways follow.
    status, moved = await api.call("PATCH", f"/servers/{sid}/channels/{b}", {"category_id": cat})
    assert status == 200 and moved["category_id"] == cat
    async with stack.nio_client(alice) as client:
        assert children(await seen(client, sid))[b] == {}
        assert children(await seen(client, cat))[b]["via"] == [stack.server_name]
        room = await seen(client, b)
        assert room[("m.space.parent", cat)]["canonical"] is True
        assert room[("m.space.parent", sid)] == {}
    status, moved = await api.call("PATCH", f"/servers/{sid}/channels/{b}", {"category_id": None})
    assert status == 200 and moved["category_id"] is None
    async with stack.nio_client(alice) as client:
        assert children(await seen(client, sid))[b]["via"] == [stack.server_name]
        assert children(await seen(client, cat))[b] == {}
        room = await seen(client, b)
        assert room[("m.space.parent", sid)]["canonical"] is True
        assert room[("m.space.parent", cat)] == {}

    # Reorder: gamma first among the top-level channels; the order is total and in Matrix too.
    status, first = await api.call("PATCH", f"/servers/{sid}/channels/{c}", {"order": 0})
    assert status == 200
    top = [ch for ch in (await read_server(stack, alice, sid))["channels"] if not ch["category_id"]]
    assert [ch["channel_id"] for ch in top] == [c, general, a, b]
    assert len({ch["order"] for ch in top}) == len(top) and top[0]["order"] == first["order"]
    async with stack.nio_client(alice) as client:
        tree = children(await seen(client, sid))
        assert [tree[ch["channel_id"]]["order"] for ch in top] == [ch["order"] for ch in top]
    # The default channel may be moved within the top level.
    status, moved = await api.call("PATCH", f"/servers/{sid}/channels/{general}", {"order": 99})
    assert status == 200
    top = [ch for ch in (await read_server(stack, alice, sid))["channels"] if not ch["category_id"]]
    assert [ch["channel_id"] for ch in top] == [c, a, b, general]
    # Into a category at a given place.
    status, placed = await api.call(
        "PATCH", f"/servers/{sid}/channels/{a}", {"category_id": cat, "order": 0}
    )
    assert status == 200 and placed["category_id"] == cat
    status, placed = await api.call(
        "PATCH", f"/servers/{sid}/channels/{c}", {"category_id": cat, "order": 0}
    )
    in_cat = [ch for ch in (await read_server(stack, alice, sid))["channels"] if ch["category_id"]]
    assert [ch["channel_id"] for ch in in_cat] == [c, a]


async def test_a_position_counts_the_channels_the_mover_sees(
    stack: Stack, alice: User, bob: User
) -> None:
    # A moderator manages channels but may not enter one gated to admins: he is not told it
    # exists, so the position he asks for counts only the channels he sees (as the web UI's
    # drag computes it); the hidden channel keeps its place among the others.
    server = await create_server(stack, alice, "Shelves")
    sid, general = server["server_id"], server["default_channel_id"]
    hidden = (await add_channel(stack, alice, sid, name="staff", kind="text", allowed_roles=[]))[
        "channel_id"
    ]
    x = (await add_channel(stack, alice, sid, name="x", kind="text"))["channel_id"]
    y = (await add_channel(stack, alice, sid, name="y", kind="text"))["channel_id"]
    await join_server(stack, sid, bob)
    await give_role(stack, sid, "moderator", bob)

    def top(read: dict[str, Any]) -> list[str]:
        shown = [c for c in read["channels"] if c["category_id"] is None]
        return [c["channel_id"] for c in sorted(shown, key=lambda c: (c["order"], c["channel_id"]))]

    assert top(await read_server(stack, bob, sid)) == [general, x, y]
    # x to the end of what he sees: after y (without counting staff, 2 would leave it in place).
    status, moved = await Api(stack, bob).call(
        "PATCH", f"/servers/{sid}/channels/{x}", {"order": 2}
    )
    assert status == 200, moved
    assert top(await read_server(stack, bob, sid)) == [general, y, x]
    assert top(await read_server(stack, alice, sid)) == [general, hidden, y, x]
    # x back to the second place he sees: before y, and still after staff.
    status, moved = await Api(stack, bob).call(
        "PATCH", f"/servers/{sid}/channels/{x}", {"order": 1}
    )
    assert status == 200, moved
    assert top(await read_server(stack, alice, sid)) == [general, hidden, x, y]


async def test_gating_removes_who_may_no_longer_enter(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Gate")
    sid = server["server_id"]
    carol = await stack.register_user()
    for user in (bob, carol):
        await join_server(stack, sid, user)
    await give_role(stack, sid, "moderator", carol)
    ops = (await add_channel(stack, alice, sid, name="ops", kind="text"))["channel_id"]
    for user in (alice, bob, carol):
        assert isinstance(await joins(stack, user, ops), nio.JoinResponse)

    status, gated = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/channels/{ops}", {"allowed_roles": ["moderator"]}
    )
    assert status == 200 and gated["allowed_roles"] == ["moderator"]
    admins, moderators = (
        await role_room(stack, sid, "admin"),
        await role_room(stack, sid, "moderator"),
    )
    async with stack.nio_client(alice) as client:
        state = await seen(client, ops)
        assert state[("m.room.join_rules", "")]["allow"] == allow(admins, moderators)
        assert state[("m.room.member", bob.user_id)]["membership"] == "leave"
        assert state[("m.room.member", bob.user_id)].get("reason")
        assert state[("m.room.member", carol.user_id)]["membership"] == "join"
        assert state[("m.room.member", alice.user_id)]["membership"] == "join"
    refused = await joins(stack, bob, ops)
    assert isinstance(refused, nio.JoinError) and refused.status_code == "M_FORBIDDEN"
    assert ops not in {c["channel_id"] for c in (await read_server(stack, bob, sid))["channels"]}

    # Naming `member` opens the channel to everyone again.
    status, opened = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/channels/{ops}", {"allowed_roles": ["member", "moderator"]}
    )
    assert status == 200 and opened["allowed_roles"] is None
    async with stack.nio_client(alice) as client:
        state = await seen(client, ops)
        assert state[("m.room.join_rules", "")]["allow"] == allow(sid)
    assert isinstance(await joins(stack, bob, ops), nio.JoinResponse)

    # Admin-only: the moderator goes too, the admin stays.
    status, closed = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/channels/{ops}", {"allowed_roles": []}
    )
    assert status == 200 and closed["allowed_roles"] == []
    for user in (bob, carol):
        assert (await membership(stack, alice, ops, user))["membership"] == "leave"
    assert (await membership(stack, alice, ops, alice))["membership"] == "join"


async def test_edit_errors_change_nothing(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Guarded")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    cat = (await add_category(stack, alice, sid, "Box"))["category_id"]
    other = (await add_channel(stack, alice, sid, name="other", kind="text"))["channel_id"]

    async def snapshot() -> Any:
        read = await read_server(stack, alice, sid)
        async with stack.nio_client(alice) as client:
            rooms = [await seen(client, room) for room in (sid, general, other)]
        # Memberships aside (bob's join), nothing in these rooms may change.
        return (
            read["channels"],
            read["categories"],
            [{k: v for k, v in room.items() if k[0] != "m.room.member"} for room in rooms],
        )

    before = await snapshot()
    cases: list[tuple[User, str, Any, int, str]] = [
        (alice, general, {"name": "lobby"}, 409, "M_CONFLICT"),
        (alice, general, {"kind": "voice"}, 409, "M_CONFLICT"),
        (alice, general, {"allowed_roles": ["moderator"]}, 409, "M_CONFLICT"),
        (alice, general, {"category_id": cat}, 409, "M_CONFLICT"),
        (bob, other, {"name": "mine"}, 403, "M_FORBIDDEN"),
        # Reordering is managing channels too (the web UI's drag is this request).
        (bob, other, {"order": 0}, 403, "M_FORBIDDEN"),
        (bob, other, {"category_id": cat, "order": 0}, 403, "M_FORBIDDEN"),
        (alice, "!nope:localhost", {"name": "x"}, 404, "M_NOT_FOUND"),
        (alice, cat, {"name": "x"}, 404, "M_NOT_FOUND"),
        (alice, other, {"category_id": "!nope:localhost"}, 404, "M_NOT_FOUND"),
        (alice, other, {"name": ""}, 400, "M_INVALID_PARAM"),
        (alice, other, {"kind": "forum"}, 400, "M_INVALID_PARAM"),
        (alice, other, {"order": -1}, 400, "M_INVALID_PARAM"),
        (alice, other, {"order": "1"}, 400, "M_INVALID_PARAM"),
        (alice, other, {"order": True}, 400, "M_INVALID_PARAM"),
        (alice, other, {"allowed_roles": ["ghost"]}, 400, "M_INVALID_PARAM"),
        (alice, other, {"topic": ["x"]}, 400, "M_INVALID_PARAM"),
        (alice, other, {"category_id": 5}, 400, "M_INVALID_PARAM"),
    ]
    for user, channel, body, status, errcode in cases:
        got, error = await Api(stack, user).call(
            "PATCH", f"/servers/{sid}/channels/{channel}", body
        )
        assert (got, error["errcode"]) == (status, errcode), (channel, body, error)
        if status == 403:
            assert "manage_channels" in error["error"]
    assert await snapshot() == before
    # Naming the default channel as it is, or its topic, is no rename.
    status, same = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/channels/{general}", {"name": "general", "topic": "Say hi"}
    )
    assert status == 200 and (same["name"], same["topic"]) == ("general", "Say hi")


async def test_delete_channel_empties_closes_and_unlinks_it(
    stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Pruned")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    temp = (await add_channel(stack, alice, sid, name="temp", kind="text"))["channel_id"]
    assert isinstance(await joins(stack, bob, temp), nio.JoinResponse)

    for user, channel, status, errcode in [
        (bob, temp, 403, "M_FORBIDDEN"),
        (alice, general, 409, "M_CONFLICT"),
        (alice, "!nope:localhost", 404, "M_NOT_FOUND"),
    ]:
        got, error = await Api(stack, user).call("DELETE", f"/servers/{sid}/channels/{channel}")
        assert (got, error["errcode"]) == (status, errcode)
    assert (await membership(stack, bob, temp, bob))["membership"] == "join"

    status, _ = await Api(stack, alice).call("DELETE", f"/servers/{sid}/channels/{temp}")
    assert status == 204
    for user in (alice, bob):
        listed = {c["channel_id"] for c in (await read_server(stack, user, sid))["channels"]}
        assert temp not in listed and general in listed
    async with stack.nio_client(alice) as client:
        assert children(await seen(client, sid))[temp] == {}
    async with stack.nio_client(bob) as client:
        rooms = await client.joined_rooms()
        assert isinstance(rooms, nio.JoinedRoomsResponse) and temp not in rooms.rooms
        assert temp not in await hierarchy(client, sid)
        # Nobody is left in the room: Synapse no longer knows how to join it at all.
        assert isinstance(await client.join(temp), nio.JoinError)
    got, error = await Api(stack, alice).call("DELETE", f"/servers/{sid}/channels/{temp}")
    assert (got, error["errcode"]) == (404, "M_NOT_FOUND")
    got, error = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/channels/{temp}", {"name": "back"}
    )
    assert (got, error["errcode"]) == (404, "M_NOT_FOUND")


async def test_categories_rename_reorder_and_delete(stack: Stack, alice: User, bob: User) -> None:
    server = await create_server(stack, alice, "Sorted")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    api = Api(stack, alice)
    one = (await add_category(stack, alice, sid, "One"))["category_id"]
    two = (await add_category(stack, alice, sid, "Two"))["category_id"]
    x = (await add_channel(stack, alice, sid, name="x", kind="text", category_id=one))["channel_id"]
    y = (await add_channel(stack, alice, sid, name="y", kind="voice", category_id=one))[
        "channel_id"
    ]
    assert isinstance(await joins(stack, bob, one), nio.JoinResponse)

    status, renamed = await api.call("PATCH", f"/servers/{sid}/categories/{one}", {"name": "Uno"})
    assert status == 200 and renamed == {
        "category_id": one,
        "name": "Uno",
        "order": renamed["order"],
    }
    status, _ = await api.call("PATCH", f"/servers/{sid}/categories/{two}", {"order": 0})
    assert status == 200
    read = await read_server(stack, alice, sid)
    assert [c["category_id"] for c in read["categories"]] == [two, one]
    async with stack.nio_client(alice) as client:
        assert (await seen(client, one))[("m.room.name", "")]["name"] == "Uno"

    before = await read_server(stack, alice, sid)
    for user, cat, body, status, errcode in [
        (bob, one, {"name": "Mine"}, 403, "M_FORBIDDEN"),
        (bob, one, {"order": 0}, 403, "M_FORBIDDEN"),
        (alice, "!nope:localhost", {"name": "x"}, 404, "M_NOT_FOUND"),
        (alice, x, {"name": "x"}, 404, "M_NOT_FOUND"),
        (alice, one, {"name": ""}, 400, "M_INVALID_PARAM"),
        (alice, one, {"order": -3}, 400, "M_INVALID_PARAM"),
    ]:
        got, error = await Api(stack, user).call("PATCH", f"/servers/{sid}/categories/{cat}", body)
        assert (got, error["errcode"]) == (status, errcode), (cat, body, error)
    got, error = await Api(stack, bob).call("DELETE", f"/servers/{sid}/categories/{one}")
    assert (got, error["errcode"]) == (403, "M_FORBIDDEN")
    assert await read_server(stack, alice, sid) == before

    top_before = max(c["order"] for c in before["channels"] if c["category_id"] is None)
    status, _ = await api.call("DELETE", f"/servers/{sid}/categories/{one}")
    assert status == 204
    read = await read_server(stack, alice, sid)
    assert [c["category_id"] for c in read["categories"]] == [two]
    moved = {c["channel_id"]: c for c in read["channels"] if c["channel_id"] in (x, y)}
    assert all(c["category_id"] is None and c["order"] > top_before for c in moved.values())
    assert moved[x]["order"] < moved[y]["order"]
    async with stack.nio_client(alice) as client:
        tree = children(await seen(client, sid))
        assert tree[one] == {}
        assert tree[x]["via"] == [stack.server_name] and tree[y]["via"] == [stack.server_name]
        room = await seen(client, x)
        assert room[("m.space.parent", sid)]["canonical"] is True
        assert room[("m.space.parent", one)] == {}
        assert {x, y} <= await hierarchy(client, sid) and one not in await hierarchy(client, sid)

    async def bob_out() -> bool:
        async with stack.nio_client(bob) as client:
            rooms = await client.joined_rooms()
            return isinstance(rooms, nio.JoinedRoomsResponse) and one not in rooms.rooms

    assert await eventually(bob_out)
    assert isinstance(await joins(stack, bob, one), nio.JoinError)
    got, error = await api.call("DELETE", f"/servers/{sid}/categories/{one}")
    assert (got, error["errcode"]) == (404, "M_NOT_FOUND")
