"""Derived state: what every room of a server must hold, the divergences, and their repair.

The rooms are built as raw state (what the directory holds), the model is assembled from them
as the bridge does, and a repair plan is applied by a small pure simulator of the steps: after
any corruption, repairing then diffing must find nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.engine.steps import AutoJoinInvite, CreateRoom, Kick, Plan, SendState, Unban
from bridge.plans.derived import Divergence, divergences, repair_plan, with_pending_roles
from guilds.ids import RoomID, UserID
from guilds.layout import AUTO_JOIN_KEY, channel_allow, role_link
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, ROLE_ROOM_KEY
from tests.harness.server_states import (
    ADMIN_ROOM,
    BOT,
    CATEGORY,
    CHAT,
    GENERAL,
    MOD,
    MOD_ROOM,
    NOOK,
    OUTSIDER,
    OWNER,
    PLAIN,
    SECRET,
    SPACE,
    USERS,
    VIP,
    VIP_ROOM,
    States,
    apply,
    build,
    context,
    create_content,
    joined_with_bot,
    kinds,
)


def whats(found: list[Divergence]) -> set[tuple[RoomID, str]]:
    return {(d.room, d.what) for d in found}


def converged(states: States) -> States:
    repaired = apply(states, repair_plan(context(states), divergences(context(states))))
    assert divergences(context(repaired)) == []
    return repaired


# -- the server as made ----------------------------------------------------------------------


def test_a_server_as_made_has_no_divergence() -> None:
    for version in ("10", "11", "12"):
        assert divergences(context(build(version))) == [], version


def test_nothing_to_repair_is_an_empty_plan() -> None:
    assert repair_plan(context(build()), []).stages == ()


# -- power levels ------------------------------------------------------------------------------


def test_a_lost_power_level_write_is_found_per_user_and_repaired() -> None:
    states = build()
    levels = states[CHAT][("m.room.power_levels", "")]
    levels["users"] = {u: p for u, p in levels["users"].items() if u != MOD}
    found = divergences(context(states))
    assert found == [Divergence(CHAT, f"power_levels.users.{MOD}", 50, 0)]
    plan = repair_plan(context(states), found)
    assert [type(s) for _, _, s in plan.steps()] == [SendState]
    converged(states)


def test_a_stale_threshold_is_found_by_key() -> None:
    states = build()
    states[SECRET][("m.room.power_levels", "")]["kick"] = 0
    found = divergences(context(states))
    assert found == [Divergence(SECRET, "power_levels.kick", 50, 0)]
    converged(states)


def test_a_role_power_edit_reaches_every_room_as_divergences() -> None:
    states = build()
    role = states[SPACE][(ROLE_EVENT, "moderator")]
    role["power"] = 47
    found = divergences(context(states))
    rooms_with_mod = {d.room for d in found if d.what == f"power_levels.users.{MOD}"}
    assert rooms_with_mod == {r for r, _, _ in kinds(states)}
    assert all(d.expected == 47 and d.actual == 50 for d in found if MOD in d.what)
    converged(states)


def test_a_pending_auto_join_invite_counts_as_held() -> None:
    """A grant whose invite the module has not accepted yet is not undone by a check."""
    states = build()
    states[MOD_ROOM][("m.room.member", PLAIN)] = {"membership": "invite", AUTO_JOIN_KEY: True}
    ctx = context(states)
    assert "moderator" in with_pending_roles(ctx).assignments[PLAIN]
    found = divergences(ctx)
    assert {d.what for d in found} == {f"power_levels.users.{PLAIN}"}
    assert all(d.expected == 50 for d in found)


def test_adopted_rooms_keep_their_creators_out_of_users() -> None:
    states = build("12")
    creator = UserID("@creator:hs")
    states[CHAT][(CHANNEL_EVENT, "")]["creators"] = [creator]
    found = divergences(context(states))
    # The bot did not create the room: it needs an explicit 100 there, nobody else changes.
    assert Divergence(CHAT, f"power_levels.users.{BOT}", 100, 0) in found
    repaired = converged(states)
    assert creator not in repaired[CHAT][("m.room.power_levels", "")]["users"]


# -- memberships -------------------------------------------------------------------------------


def test_a_non_member_holding_a_role_or_inside_a_channel_is_removed() -> None:
    states = build()
    states[MOD_ROOM][("m.room.member", OUTSIDER)] = {"membership": "join"}
    states[CHAT][("m.room.member", OUTSIDER)] = {"membership": "invite"}
    found = divergences(context(states))
    assert Divergence(CHAT, f"member.{OUTSIDER}", "leave", "invite") in found
    assert Divergence(MOD_ROOM, f"member.{OUTSIDER}", "leave", "join") in found
    plan = repair_plan(context(states), found)
    kicks = [s for _, _, s in plan.steps() if isinstance(s, Kick)]
    assert {(k.room, k.user) for k in kicks} == {(CHAT, OUTSIDER), (MOD_ROOM, OUTSIDER)}
    converged(states)


def test_a_member_inside_a_gated_channel_without_its_role_is_removed() -> None:
    states = build()
    states[SECRET][("m.room.member", PLAIN)] = {"membership": "join"}
    assert divergences(context(states)) == [Divergence(SECRET, f"member.{PLAIN}", "leave", "join")]
    converged(states)


def test_the_owner_is_always_in_the_space_and_the_admins_room() -> None:
    states = build()
    states[ADMIN_ROOM][("m.room.member", OWNER)] = {"membership": "leave"}
    found = divergences(context(states))
    assert Divergence(ADMIN_ROOM, f"member.{OWNER}", "join", "leave") in found
    plan = repair_plan(context(states), found)
    assert any(isinstance(s, AutoJoinInvite) and s.user == OWNER for _, _, s in plan.steps())
    converged(states)


def test_a_ban_in_the_space_reaches_every_room_and_an_unban_lifts_them_all() -> None:
    states = build()
    states[SPACE][("m.room.member", PLAIN)] = {"membership": "ban"}
    found = divergences(context(states))
    banned_in = {d.room for d in found if d.what == f"member.{PLAIN}" and d.expected == "ban"}
    assert banned_in == {r for r, _, _ in kinds(states)} - {SPACE}
    states = converged(states)
    assert states[GENERAL][("m.room.member", PLAIN)] == {"membership": "ban"}
    # Unbanned from the space in another client: the channels follow.
    states[SPACE][("m.room.member", PLAIN)] = {"membership": "leave"}
    found = divergences(context(states))
    assert Divergence(GENERAL, f"member.{PLAIN}", "leave", "ban") in found
    plan = repair_plan(context(states), found)
    assert all(isinstance(s, Unban) for _, _, s in plan.steps())
    converged(states)


# -- every channel a member may enter (policy join_channels: all) ------------------------------


def test_under_join_all_a_member_missing_from_a_channel_is_joined() -> None:
    """As built, PLAIN and VIP are not in CHAT, MOD not in CHAT, VIP not in NOOK, and so on:
    each one a member may enter becomes a join; gated channels only for their roles; never
    the default channel (the module's one join) and never someone outside the server."""
    states = build()
    assert divergences(context(states)) == []
    found = divergences(context(states, join_all=True))
    joins = {(d.room, d.what.removeprefix("member.")) for d in found if d.expected == "join"}
    # SECRET opens to VIP and the admins (OWNER), who are in it: nobody else is joined there.
    assert joins == {(CHAT, MOD), (CHAT, VIP), (NOOK, OWNER), (NOOK, VIP), (NOOK, PLAIN)}
    plan = repair_plan(context(states, join_all=True), found)
    invites = [s for _, _, s in plan.steps() if isinstance(s, AutoJoinInvite)]
    assert {(s.room, s.user) for s in invites} == joins
    assert all(s.reason == "Members are in every channel they may enter" for s in invites)
    repaired = apply(states, plan)
    assert divergences(context(repaired, join_all=True)) == []


def test_under_join_all_a_member_who_left_a_channel_is_joined_again() -> None:
    states = build()
    states[CHAT][("m.room.member", PLAIN)] = {"membership": "leave"}
    found = divergences(context(states, join_all=True))
    assert Divergence(CHAT, f"member.{PLAIN}", "join", "leave") in found
    # The default policy leaves the choice to the member.
    assert divergences(context(states)) == []


def test_under_join_all_a_gated_channel_waits_for_the_role_room_join() -> None:
    """A grant's role-room invite not yet accepted: the module would refuse the gated
    channel's join, so it is derived once the role is held."""
    states = build()
    states[VIP_ROOM][("m.room.member", PLAIN)] = {"membership": "invite", AUTO_JOIN_KEY: True}
    found = divergences(context(states, join_all=True))
    assert Divergence(SECRET, f"member.{PLAIN}", "join", None) not in found
    states[VIP_ROOM][("m.room.member", PLAIN)] = {"membership": "join"}
    found = divergences(context(states, join_all=True))
    assert Divergence(SECRET, f"member.{PLAIN}", "join", None) in found


def test_under_join_all_the_default_channel_is_left_to_the_module() -> None:
    states = build()
    del states[GENERAL][("m.room.member", PLAIN)]
    found = divergences(context(states, join_all=True))
    assert not any(d.room == GENERAL for d in found)


def test_under_join_all_nobody_banned_or_outside_is_joined() -> None:
    states = build()
    states[SPACE][("m.room.member", PLAIN)] = {"membership": "ban"}
    found = divergences(context(states, join_all=True))
    assert not any(d.expected == "join" and PLAIN in d.what for d in found)
    assert not any(OUTSIDER in d.what for d in found)


# -- join rules and the tree -------------------------------------------------------------------


def test_a_gate_naming_a_room_of_no_role_is_rewritten_from_the_roles() -> None:
    states = build()
    states[SECRET][("m.room.join_rules", "")]["allow"].append(
        {"type": "m.room_membership", "room_id": "!elsewhere:hs"}
    )
    found = divergences(context(states))
    assert [d.what for d in found] == ["join_rules"]
    assert found[0].expected == {"join_rule": "restricted", "allow": sorted([ADMIN_ROOM, VIP_ROOM])}
    converged(states)


def test_a_gate_without_the_admins_room_gets_it_back() -> None:
    states = build()
    states[SECRET][("m.room.join_rules", "")]["allow"] = channel_allow(SPACE, [VIP_ROOM])
    assert [d.what for d in divergences(context(states))] == ["join_rules"]
    converged(states)


def test_a_channel_that_lost_its_parent_link_gets_it_back() -> None:
    states = build()
    states[NOOK][("m.space.parent", CATEGORY)] = {}
    assert divergences(context(states)) == [
        Divergence(NOOK, f"space.parent.{CATEGORY}", "linked", "missing")
    ]
    converged(states)


def test_a_channel_linked_from_two_containers_keeps_the_one_it_names() -> None:
    states = build()
    # NOOK, in the category, also linked from the space by hand.
    states[SPACE][("m.space.child", NOOK)] = {"via": ["hs"], "order": "000009"}
    found = divergences(context(states))
    assert found == [Divergence(SPACE, f"space.child.{NOOK}", "unlinked", "linked")]
    repaired = converged(states)
    assert repaired[SPACE][("m.space.child", NOOK)] == {}
    assert [c.category_id for c in context(repaired).server.channels if c.channel_id == NOOK] == [
        CATEGORY
    ]


def test_a_channel_naming_a_parent_that_does_not_link_it_drops_that_claim() -> None:
    states = build()
    states[CHAT][("m.space.parent", CATEGORY)] = {"via": ["hs"]}
    assert divergences(context(states)) == [
        Divergence(CHAT, f"space.parent.{CATEGORY}", "unlinked", "linked")
    ]
    converged(states)


def test_a_role_room_made_as_a_space_is_linked_from_the_server() -> None:
    # Issue 17, observation 2: unlinked, other clients show the role room as a space of its own.
    states = build()
    states[SPACE][("m.space.child", MOD_ROOM)] = {}
    assert divergences(context(states)) == [
        Divergence(SPACE, f"space.child.{MOD_ROOM}", "linked", "missing")
    ]
    repaired = converged(states)
    assert repaired[SPACE][("m.space.child", MOD_ROOM)] == role_link("hs")
    # Still no channel or category of the model: the link only nests the role room.
    server = context(repaired).server
    assert MOD_ROOM not in {c.channel_id for c in server.channels}
    assert MOD_ROOM not in {c.category_id for c in server.categories}


def migrated(states: States) -> list[States]:
    """The rooms after each stage of each repair, round after round of checks, until nothing
    diverges (at most eight rounds). A bridge killed between two stages resumes the same
    operation from its journal, and checks wait while it is unfinished, so these are every
    state the rooms pass through."""
    seen = [states]
    for _ in range(8):
        found = divergences(context(states))
        if not found:
            return seen
        plan = repair_plan(context(states), found)
        for stages in range(1, len(plan.stages) + 1):
            seen.append(apply(states, Plan.of(*plan.stages[:stages])))
        states = seen[-1]
    raise AssertionError(f"still diverging: {divergences(context(states))}")


def test_a_role_room_of_the_older_shape_is_found_and_nothing_else() -> None:
    states = build(older_vip_room=True)
    assert ("m.space.child", VIP_ROOM) not in states[SPACE]
    assert divergences(context(states)) == [Divergence(SPACE, "role.vip.room", "space", "room")]
    plan = repair_plan(context(states), divergences(context(states)))
    assert [type(step) for step in plan.stages[0]] == [CreateRoom]
    create = plan.stages[0][0]
    assert isinstance(create, CreateRoom)
    assert create.body["creation_content"]["type"] == "m.space"
    assert create.body["creation_content"][ROLE_ROOM_KEY] is True
    assert create.body["creation_content"]["predecessor"] == {"room_id": VIP_ROOM}
    assert create.body["room_version"] == "12"


def test_a_role_room_of_the_older_shape_is_replaced_by_a_role_space() -> None:
    rounds = migrated(build(older_vip_room=True))
    final = rounds[-1]
    server = context(final).server
    vip = server.role("vip")
    assert vip is not None and vip.room_id not in (None, VIP_ROOM)
    assert vip.previous_room_id is None
    assert "previous_room_id" not in final[SPACE][(ROLE_EVENT, "vip")]
    new = vip.room_id
    create = final[new][("m.room.create", "")]
    assert create["type"] == "m.space" and create[ROLE_ROOM_KEY] is True
    # The holder moved, the space links the new room, the gate and the private channel's
    # links name it instead of the older room.
    assert final[new][("m.room.member", VIP)] == {"membership": "join"}
    assert final[SPACE][("m.space.child", new)] == role_link("hs")
    allow = final[SECRET][("m.room.join_rules", "")]["allow"]
    assert sorted(a["room_id"] for a in allow) == sorted([ADMIN_ROOM, new])
    assert final[new][("m.space.child", SECRET)]["via"] == ["hs"]
    # The older room: emptied, tombstoned towards the new one, closed, the bot gone last.
    old = final[VIP_ROOM]
    assert old[("m.room.member", VIP)] == {"membership": "leave"}
    assert old[("m.room.member", BOT)] == {"membership": "leave"}
    assert old[("m.room.tombstone", "")]["replacement_room"] == new
    assert old[("m.room.join_rules", "")] == {"join_rule": "invite"}
    assert not old.get(("m.space.child", SECRET), {}).get("via")
    # Throughout, after every stage, the holder held the role and stayed in the channel it
    # opens; the API's model never lost the private channel.
    for states in rounds:
        model = context(states).server
        assert "vip" in model.assignments.get(VIP, frozenset()), states
        assert states[SECRET][("m.room.member", VIP)] == {"membership": "join"}
        assert SECRET in {c.channel_id for c in model.channels}
        gated = next(c for c in model.channels if c.channel_id == SECRET)
        assert gated.allowed_roles == ("vip",)


def test_rooms_the_model_does_not_know_are_left_alone() -> None:
    states = build()
    stray = RoomID("!stray:hs")
    states[stray] = {("m.room.create", ""): create_content("12"), **joined_with_bot(OUTSIDER)}
    assert divergences(context(states)) == []


def test_a_link_to_a_deleted_channel_the_bot_has_left_is_removed() -> None:
    """Interleavings seeds 3064343009 and 4232041617: a client rewrote the space's link to a
    channel (a reorder) while the channel was being deleted, after the deletion's unlink. The
    bot then left the room: the directory no longer tracks it (`left`), nothing would ever
    change in it, and the space linked it forever."""
    states = build()
    deleted = RoomID("!deleted:hs")
    states[SPACE][("m.space.child", deleted)] = {"via": ["hs"], "order": "000004"}
    states[MOD_ROOM][("m.space.child", deleted)] = {"via": ["hs"], "order": "000001"}
    ctx = replace(context(states), left=frozenset({deleted}))
    found = divergences(ctx)
    assert found == [
        Divergence(MOD_ROOM, f"space.child.{deleted}", "unlinked", "linked"),
        Divergence(SPACE, f"space.child.{deleted}", "unlinked", "linked"),
    ]
    repaired = apply(states, repair_plan(ctx, found))
    assert repaired[SPACE][("m.space.child", deleted)] == {}
    assert repaired[MOD_ROOM][("m.space.child", deleted)] == {}
    assert divergences(replace(context(repaired), left=frozenset({deleted}))) == []


def test_a_linked_room_the_bot_never_left_is_left_alone() -> None:
    # A room an admin linked, waiting for the bot to be invited to adopt it: not the bot's to
    # unlink.
    states = build()
    waiting = RoomID("!waiting:hs")
    states[SPACE][("m.space.child", waiting)] = {"via": ["hs"]}
    assert divergences(context(states)) == []


def test_each_divergence_prints_as_one_line_and_serialises() -> None:
    d = Divergence(CHAT, f"power_levels.users.{MOD}", 50, 0)
    assert d.line() == f"{CHAT}  power_levels.users.{MOD}: expected 50, actual 0"
    assert d.to_json() == {
        "room_id": CHAT,
        "what": f"power_levels.users.{MOD}",
        "expected": 50,
        "actual": 0,
    }


# -- properties ----------------------------------------------------------------------------------

ROOMS = (SPACE, GENERAL, CHAT, SECRET, CATEGORY, NOOK, ADMIN_ROOM, MOD_ROOM, VIP_ROOM)
MEMBERSHIPS = ("join", "invite", "leave", "ban")

corruption = st.one_of(
    st.tuples(
        st.just("member"),
        st.sampled_from(ROOMS),
        st.sampled_from(USERS),
        st.sampled_from(MEMBERSHIPS),
    ),
    st.tuples(
        st.just("power"),
        st.sampled_from(ROOMS),
        st.sampled_from((*USERS, BOT)),
        st.integers(-5, 100),
    ),
    st.tuples(
        st.just("threshold"),
        st.sampled_from(ROOMS),
        st.sampled_from(("kick", "ban", "invite", "redact", "events_default")),
        st.integers(0, 100),
    ),
    st.tuples(st.just("role_power"), st.sampled_from(("moderator", "vip")), st.integers(1, 99)),
    st.tuples(st.just("unparent"), st.sampled_from((GENERAL, CHAT, SECRET, NOOK, CATEGORY))),
    st.tuples(
        st.just("link"),
        st.sampled_from((SPACE, CATEGORY, ADMIN_ROOM, MOD_ROOM, VIP_ROOM)),
        st.sampled_from((GENERAL, CHAT, SECRET, NOOK)),
        st.booleans(),
    ),
    st.tuples(
        st.just("gate"),
        st.sampled_from((CHAT, SECRET, NOOK)),
        st.lists(st.sampled_from((SPACE, ADMIN_ROOM, MOD_ROOM, VIP_ROOM)), max_size=3),
    ),
)


def corrupt(states: States, change: tuple[Any, ...]) -> None:
    what = change[0]
    if what == "member":
        _, room, user, membership = change
        states[room][("m.room.member", user)] = {"membership": membership}
    elif what == "power":
        _, room, user, level = change
        states[room][("m.room.power_levels", "")]["users"][user] = level
    elif what == "threshold":
        _, room, key, level = change
        states[room][("m.room.power_levels", "")][key] = level
    elif what == "role_power":
        _, role_id, power = change
        states[SPACE][(ROLE_EVENT, role_id)]["power"] = power
    elif what == "unparent":
        room = change[1]
        parent = CATEGORY if room == NOOK else SPACE
        states[room][("m.space.parent", parent)] = {}
    elif what == "link":
        # A container links a channel by hand; maybe the channel names it as a parent too.
        _, container, room, claimed = change
        states[container][("m.space.child", room)] = {"via": ["hs"], "order": "000009"}
        if claimed:
            states[room][("m.space.parent", container)] = {"via": ["hs"]}
    elif what == "gate":
        _, room, allowed = change
        states[room][("m.room.join_rules", "")] = {
            "join_rule": "restricted",
            "allow": channel_allow(SPACE, list(allowed)),
        }


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(("10", "12")), st.lists(corruption, max_size=8))
def test_repairing_then_diffing_finds_nothing(version: str, changes: list[Any]) -> None:
    states = build(version)
    for change in changes:
        corrupt(states, change)
    repaired = apply(states, repair_plan(context(states), divergences(context(states))))
    assert divergences(context(repaired)) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(corruption, max_size=8))
def test_under_join_all_repairs_converge_within_three_rounds(changes: list[Any]) -> None:
    """A member banned from one channel is unbanned, then joined; a role given back is
    joined, then its channels: at most three rounds, as `guilds doctor --repair` makes."""
    states = build()
    for change in changes:
        corrupt(states, change)
    for _ in range(3):
        found = divergences(context(states, join_all=True))
        states = apply(states, repair_plan(context(states, join_all=True), found))
    assert divergences(context(states, join_all=True)) == []


@settings(max_examples=80, deadline=None)
@given(st.lists(corruption, max_size=6))
def test_repair_plans_are_valid_journal_plans(changes: list[Any]) -> None:
    states = build()
    for change in changes:
        corrupt(states, change)
    plan = repair_plan(context(states), divergences(context(states)))
    plan.validate()
    assert Plan.from_json(plan.to_json()) == plan


# -- private channels (issue 17, observation 6) ----------------------------------------------


def _linked(states: States, container: RoomID, child: RoomID) -> bool:
    return bool(states[container].get(("m.space.child", child), {}).get("via"))


def test_a_private_channel_is_found_through_its_roles_rooms() -> None:
    states = build()
    server = context(states).server
    secret = next(c for c in server.channels if c.channel_id == SECRET)
    assert (secret.order, secret.category_id, secret.allowed_roles) == ("000002", None, ("vip",))
    # In a category: the category its own parent link names, though the category links it not.
    states[SECRET][("m.space.parent", SPACE)] = {}
    states[SECRET][("m.space.parent", CATEGORY)] = {"via": ["hs"], "canonical": True}
    server = context(states).server
    assert [c.category_id for c in server.channels if c.channel_id == SECRET] == [CATEGORY]
    assert divergences(context(states)) == []


def test_gating_a_public_channel_moves_its_link_to_the_roles_rooms() -> None:
    states = build()
    states[CHAT][("m.room.join_rules", "")]["allow"] = channel_allow(SPACE, [ADMIN_ROOM, MOD_ROOM])
    found = whats(divergences(context(states)))
    assert {
        (ADMIN_ROOM, f"space.child.{CHAT}"),
        (MOD_ROOM, f"space.child.{CHAT}"),
        (SPACE, f"space.child.{CHAT}"),
    } <= found
    plan = repair_plan(context(states), divergences(context(states)))
    # The new links first, the space's removed after: the channel never leaves the tree.
    unlinks = [
        stage
        for stage, _, step in plan.steps()
        if isinstance(step, SendState) and step.type == "m.space.child" and not step.content
    ]
    links = [
        stage
        for stage, _, step in plan.steps()
        if isinstance(step, SendState) and step.type == "m.space.child" and step.content
    ]
    assert min(unlinks) > max(links)
    repaired = converged(states)
    assert not _linked(repaired, SPACE, CHAT)
    assert _linked(repaired, ADMIN_ROOM, CHAT) and _linked(repaired, MOD_ROOM, CHAT)
    assert repaired[MOD_ROOM][("m.space.child", CHAT)]["order"] == "000001"
    assert repaired[MOD_ROOM][("m.space.child", CHAT)]["chat.guilds.kind"] == "text"
    chat = [c for c in context(repaired).server.channels if c.channel_id == CHAT]
    assert [(c.order, c.category_id) for c in chat] == [("000001", None)]


def test_ungating_a_private_channel_gives_the_space_its_link_back() -> None:
    states = build()
    states[SECRET][("m.room.join_rules", "")]["allow"] = channel_allow(SPACE, None)
    repaired = converged(states)
    assert repaired[SPACE][("m.space.child", SECRET)]["order"] == "000002"
    assert not _linked(repaired, ADMIN_ROOM, SECRET) and not _linked(repaired, VIP_ROOM, SECRET)


def test_a_private_channel_linked_from_the_space_by_hand_is_unlinked_there() -> None:
    states = build()
    states[SPACE][("m.space.child", SECRET)] = {"via": ["hs"], "order": "000002"}
    states[MOD_ROOM][("m.space.child", SECRET)] = {"via": ["hs"], "order": "000002"}
    assert whats(divergences(context(states))) == {
        (SPACE, f"space.child.{SECRET}"),
        (MOD_ROOM, f"space.child.{SECRET}"),
    }
    repaired = converged(states)
    assert not _linked(repaired, SPACE, SECRET) and not _linked(repaired, MOD_ROOM, SECRET)


def test_a_regated_private_channel_moves_between_roles_rooms() -> None:
    states = build()
    states[SECRET][("m.room.join_rules", "")]["allow"] = channel_allow(
        SPACE, [ADMIN_ROOM, MOD_ROOM]
    )
    repaired = converged(states)
    assert _linked(repaired, ADMIN_ROOM, SECRET) and _linked(repaired, MOD_ROOM, SECRET)
    assert not _linked(repaired, VIP_ROOM, SECRET) and not _linked(repaired, SPACE, SECRET)
