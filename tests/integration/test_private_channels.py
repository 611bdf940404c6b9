"""Private channels reveal nothing about themselves to members who cannot enter them (issue 17,
observation 6; docs/DESIGN.md, "Private channels").

A gated channel is linked only from the rooms of its roles and the admins' room (spaces their
holders alone read): a member without the role reads, over the raw Client-Server API, the
space's and the category's state, `/hierarchy`, `/sync` and the space's timeline without
finding its id, name or topic; a holder and an admin find it through the role's space and enter
it; gating an existing channel moves its link there (by the API, or by convergence after a raw
change of the join rule), ungating moves it back, and the invariants hold after each.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote

import nio

from tests.harness.api import (
    Api,
    as_bot,
    create_server,
    eventually,
    grant,
    hierarchy,
    join_as,
    join_server,
    role_room,
    settled,
)
from tests.harness.invariants import assert_converged
from tests.harness.jssdk import run_scenario
from tests.harness.readable import everything_readable, mentions, raw
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

pytestmark = ON_SQLITE

SPACE_CHILD = "m.space.child"


async def new_role(stack: Stack, owner: User, sid: str, name: str) -> str:
    status, role = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/roles", {"name": name, "power": 10, "permissions": []}
    )
    assert status == 201, role
    return str(role["role_id"])


async def new_channel(stack: Stack, owner: User, sid: str, **body: Any) -> str:
    status, channel = await Api(stack, owner).call("POST", f"/servers/{sid}/channels", body)
    assert status == 201, channel
    return str(channel["channel_id"])


async def member(stack: Stack, sid: str, name: str) -> User:
    user = await stack.register_user(f"{name}{secrets.token_hex(3)}")
    await join_server(stack, sid, user)
    return user


async def link_of(stack: Stack, container: str, child: str) -> dict[str, Any] | None:
    """The content of `container`'s link to `child` as the bot reads it (None: no such link)."""
    status, content = await as_bot(
        stack, "GET", f"/rooms/{quote(container)}/state/{SPACE_CHILD}/{quote(child)}"
    )
    return content if status == 200 else None


async def test_a_private_channel_names_itself_nowhere_a_member_without_the_role_reads(
    stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Vault")
    sid = server["server_id"]
    status, category = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/categories", {"name": "Ops"}
    )
    assert status == 201, category
    cat = str(category["category_id"])
    crew = await new_role(stack, alice, sid, "Crew")
    lobby = await new_channel(stack, alice, sid, name="lobby", kind="text", category_id=cat)
    secret = await new_channel(
        stack,
        alice,
        sid,
        name="heist-plans",
        kind="voice",
        topic="the vault at midnight",
        category_id=cat,
        allowed_roles=[crew],
    )
    carol, mod, dave = [await member(stack, sid, n) for n in ("carol", "mod", "dave")]
    await grant(stack, sid, alice, mod, "moderator")
    await grant(stack, sid, alice, dave, crew)
    await assert_converged(stack, sid, alice, [carol, mod, dave])
    needles = (secret, "heist-plans", "the vault at midnight")

    # Carol (member) and a moderator (manage_channels) may not enter it: nothing they can read
    # names it, not the space's or the category's state, /hierarchy, /sync or any timeline.
    for outsider in (carol, mod):
        seen = await everything_readable(stack, outsider, [sid, cat, lobby])
        leaks = {where: mentions(value, needles) for where, value in seen.items()}
        assert not any(leaks.values()), (outsider.user_id, leaks)
        status, view = await Api(stack, outsider).call("GET", f"/servers/{sid}")
        assert status == 200 and not mentions(view, needles), view
        async with stack.nio_client(outsider) as client:
            assert secret not in await hierarchy(client, sid)
            assert isinstance(await client.join(secret), nio.JoinError)

    # A holder of the role (matrix-js-sdk, as Element pages the hierarchy) finds it through
    # the role's space, and enters it; the admin finds it through the admins' space.
    crew_room, admin_room = [await role_room(stack, sid, r) for r in (crew, "admin")]
    for holder, through in ((dave, crew_room), (alice, admin_room)):
        answer = await run_scenario("hierarchy", stack, holder, space_id=sid)
        rows = {row["room_id"]: row for row in answer.result}
        assert secret in rows and through in rows, (holder.user_id, rows)
        assert rows[secret]["kind"] == "voice"
    assert isinstance(await join_as(stack, dave, secret), nio.JoinResponse)
    # The Guilds view is unchanged: in its category, at its place, gated on its role.
    for viewer in (alice, dave):
        status, view = await Api(stack, viewer).call("GET", f"/servers/{sid}")
        assert status == 200, view
        channel = next(c for c in view["channels"] if c["channel_id"] == secret)
        assert channel["category_id"] == cat and channel["allowed_roles"] == [crew], channel
        assert channel["name"] == "heist-plans" and channel["topic"] == "the vault at midnight"
    # Linked from the crew's and the admins' rooms alone.
    assert await link_of(stack, cat, secret) is None
    assert await link_of(stack, sid, secret) is None
    for through in (crew_room, admin_room):
        assert (await link_of(stack, through, secret) or {}).get("via"), through
    await assert_converged(stack, sid, alice, [carol, mod, dave])


async def test_gating_moves_the_link_and_ungating_moves_it_back(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Gates")
    sid = server["server_id"]
    crew = await new_role(stack, alice, sid, "Crew")
    plans = await new_channel(stack, alice, sid, name="plans", kind="text")
    carol, dave = [await member(stack, sid, n) for n in ("carol", "dave")]
    await grant(stack, sid, alice, dave, crew)
    crew_room, admin_room = [await role_room(stack, sid, r) for r in (crew, "admin")]
    api = Api(stack, alice)
    path = f"/servers/{sid}/channels/{plans}"
    order = (await link_of(stack, sid, plans) or {}).get("order")

    async def outsider_sees() -> bool:
        async with stack.nio_client(carol) as client:
            return plans in await hierarchy(client, sid)

    # Gated through the API: the space's link is emptied, the role rooms link it.
    status, answer = await settled(api, "PATCH", path, {"allowed_roles": [crew]})
    assert status == 200, answer
    assert await link_of(stack, sid, plans) == {}
    for through in (crew_room, admin_room):
        link = await link_of(stack, through, plans) or {}
        assert link.get("via") and link.get("order") == order, (through, link)
    assert not await outsider_sees()
    async with stack.nio_client(dave) as client:
        assert plans in await hierarchy(client, sid)
    await assert_converged(stack, sid, alice, [carol, dave], context="gated: ")

    # Ungated: its normal link is back, at its place, and the role rooms' are gone.
    status, answer = await settled(api, "PATCH", path, {"allowed_roles": None})
    assert status == 200, answer
    assert (await link_of(stack, sid, plans) or {}).get("order") == order
    for through in (crew_room, admin_room):
        assert await link_of(stack, through, plans) == {}, through
    assert await eventually(outsider_sees, what="carol to see the channel again")
    await assert_converged(stack, sid, alice, [carol, dave], context="ungated: ")

    # Gated from another client (the admin edits the join rule): convergence moves the link.
    # Her own client joins first: Guilds' auto-join of the owner may still be on its way.
    assert isinstance(await join_as(stack, alice, plans), nio.JoinResponse)
    async with stack.nio_client(alice) as client:
        rule = {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": r} for r in (admin_room, crew_room)],
        }
        sent = await client.room_put_state(plans, "m.room.join_rules", rule)
        assert isinstance(sent, nio.RoomPutStateResponse), sent

    async def moved() -> bool:
        space_link = await link_of(stack, sid, plans)
        return space_link == {} and bool(await link_of(stack, crew_room, plans) or {})

    assert await eventually(moved, deadline_s=60, what="convergence to move the link")
    assert not await outsider_sees()
    await assert_converged(stack, sid, alice, [carol, dave], context="gated by hand: ")


async def test_a_grant_racing_a_gate_converges(stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Race")
    sid = server["server_id"]
    crew = await new_role(stack, alice, sid, "Crew")
    plans = await new_channel(stack, alice, sid, name="plans", kind="text")
    carol = await member(stack, sid, "carol")
    api = Api(stack, alice)
    grant_path = f"/servers/{sid}/members/{carol.user_id}/roles/{crew}"
    gated, granted = await asyncio.gather(
        settled(api, "PATCH", f"/servers/{sid}/channels/{plans}", {"allowed_roles": [crew]}),
        settled(api, "PUT", grant_path),
    )
    assert gated[0] == 200 and granted[0] == 200, (gated, granted)
    await assert_converged(stack, sid, alice, [carol])
    async with stack.nio_client(carol) as client:
        assert plans in await hierarchy(client, sid)
    assert await link_of(stack, sid, plans) == {}


async def test_a_channel_gated_after_being_open_leaves_its_bare_id_and_nothing_after(
    stack: Stack, alice: User
) -> None:
    # What a channel made private late still shows to members without the role (docs/DESIGN.md,
    # "Private channels", "What a late gate leaves"): the bare room id as the state key of the
    # space's emptied link, the link it had while open in the space's timeline, and, to those
    # who were inside, the channel as it stood when the gate removed them. Nothing written
    # after the gate reaches them: not its new name or topic, not a row in /hierarchy, not a
    # join.
    server = await create_server(stack, alice, "Late")
    sid = server["server_id"]
    crew = await new_role(stack, alice, sid, "Crew")
    plans = await new_channel(stack, alice, sid, name="plans", kind="voice", topic="open talk")
    carol, dave = [await member(stack, sid, n) for n in ("carol", "dave")]
    await grant(stack, sid, alice, dave, crew)
    await assert_converged(stack, sid, alice, [carol, dave], context="open: ")

    async def carol_inside() -> bool:
        status, own = await raw(
            stack, carol, f"/v3/rooms/{quote(plans)}/state/m.room.member/{quote(carol.user_id)}"
        )
        return status == 200 and own.get("membership") == "join"

    # Guilds joins every member to every open channel; the gate must find her inside.
    assert await eventually(carol_inside, deadline_s=60, what="carol's auto-join to #plans")
    crew_room = await role_room(stack, sid, crew)
    api = Api(stack, alice)
    path = f"/servers/{sid}/channels/{plans}"
    status, answer = await settled(api, "PATCH", path, {"allowed_roles": [crew]})
    assert status == 200, answer
    status, answer = await settled(
        api, "PATCH", path, {"name": "vault-plans", "topic": "after the gate"}
    )
    assert status == 200, answer
    erin = await member(stack, sid, "erin")  # entered the server after the gate
    await assert_converged(stack, sid, alice, [carol, dave, erin], context="gated: ")
    after_gate = ("vault-plans", "after the gate")

    for outsider in (carol, erin):
        who = outsider.user_id
        # Nothing written after the gate, anywhere they can read.
        seen = await everything_readable(stack, outsider, [sid])
        leaks = {where: mentions(value, after_gate) for where, value in seen.items()}
        assert not any(leaks.values()), (who, leaks)
        # The bare id: the state key of the space's emptied link ...
        space_state = seen[f"state {sid}"]
        links = [e for e in space_state if e["type"] == SPACE_CHILD and e["state_key"] == plans]
        assert [e["content"] for e in links] == [{}], (who, links)
        # ... and the link it had while open, in the space's timeline (history `shared`:
        # Erin, who came later, reads it too), with its order and kind, no name.
        history = [
            e["content"]
            for e in seen[f"messages {sid}"]["chunk"]
            if e["type"] == SPACE_CHILD and e.get("state_key") == plans
        ]
        assert any(c.get("via") and c.get("chat.guilds.kind") == "voice" for c in history), (
            who,
            history,
        )
        assert not mentions(history, ("open talk", *after_gate)), history
        # Not in /hierarchy, and no way in.
        rows = seen[f"hierarchy {sid}"]["rooms"]
        assert plans not in {row["room_id"] for row in rows}, (who, rows)
        async with stack.nio_client(outsider) as client:
            assert isinstance(await client.join(plans), nio.JoinError)
        # matrix-js-sdk (as Element and Cinny read the space): the link is there, unlinked;
        # the room is refused, and the SDK knows no name or topic for it from after the gate.
        answer = await run_scenario("space_links", stack, outsider, space_id=sid, probe=plans)
        view = answer.result
        assert {"state_key": plans, "linked": False} in view["children"], (who, view)
        assert view["join_refused"] == "M_FORBIDDEN", (who, view)
        assert view["probe_name"] not in after_gate and view["probe_topic"] not in after_gate

    # Carol was inside when the gate came: she reads the channel as it stood when she was
    # removed (its name and topic while open, the join rule naming the roles' rooms, and why
    # she was removed), never what came after. Erin, never inside, reads nothing of it.
    status, frozen = await raw(stack, carol, f"/v3/rooms/{quote(plans)}/state")
    assert status == 200, frozen
    by_type = {(e["type"], e["state_key"]): e["content"] for e in frozen}
    assert by_type[("m.room.name", "")]["name"] == "plans", by_type
    assert by_type[("m.room.topic", "")]["topic"] == "open talk", by_type
    allowed = {a["room_id"] for a in by_type[("m.room.join_rules", "")]["allow"]}
    assert crew_room in allowed, by_type
    assert by_type[("m.room.member", carol.user_id)]["membership"] == "leave", by_type
    assert not mentions(frozen, after_gate), frozen
    status, _ = await raw(stack, erin, f"/v3/rooms/{quote(plans)}/state")
    assert status == 403
    # A holder reads the channel as it is now.
    status, now = await raw(stack, dave, f"/v3/rooms/{quote(plans)}/state/m.room.name/")
    assert status == 200 and now["name"] == "vault-plans", now
