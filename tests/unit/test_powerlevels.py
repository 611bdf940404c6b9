"""Power levels derived from roles, compared with what is in a room, read back, and guarded."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guilds.ids import RoomID, UserID
from guilds.model import BUILTIN_ROLES, Permission, Role, Server, ServerState
from guilds.permissions import actor, permissions_of, power_of
from guilds.powerlevels import (
    PowerChange,
    creators_have_unlimited_power,
    derive_power_levels,
    merged_power_levels,
    needs_rewrite,
    power_changes,
    threshold,
)
from guilds.rules import RoomContext, RoomKind, power_levels_refusal, state_event_refusal
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from guilds.vocabulary import ChannelKind as Kind

P = Permission
HS = "example.org"


def uid(name: str) -> UserID:
    return UserID(f"@{name}:{HS}")


OWNER, ADMIN, MOD, DJ, MEMBER, OUTSIDER = (
    uid(n) for n in ("owner", "admin", "mod", "dj", "member", "outsider")
)
BOT = uid("guilds")
DJ_ROLE = Role("dj", "DJ", None, 20, 300, frozenset({P.CREATE_INVITES, P.MANAGE_MESSAGES}))
SERVER = Server(
    RoomID(f"!space:{HS}"),
    "S",
    "",
    None,
    ServerState(OWNER, RoomID(f"!general:{HS}")),
    (*BUILTIN_ROLES, DJ_ROLE),
    assignments={
        ADMIN: frozenset({"admin"}),
        MOD: frozenset({"moderator"}),
        DJ: frozenset({"dj"}),
        OUTSIDER: frozenset({"moderator"}),
    },
    members=frozenset({OWNER, ADMIN, MOD, DJ, MEMBER}),
)

ROOMS: list[tuple[RoomKind, Kind | None]] = [
    (RoomKind.SPACE, None),
    (RoomKind.CATEGORY, None),
    (RoomKind.CHANNEL, Kind.TEXT),
    (RoomKind.CHANNEL, Kind.VOICE),
    (RoomKind.CHANNEL, Kind.VIDEO),
    (RoomKind.DEFAULT_CHANNEL, Kind.TEXT),
    (RoomKind.ROLE_ROOM, None),
]
ADMIN_ONLY = (
    "m.room.power_levels",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.tombstone",
    SERVER_EVENT,
)


def derive(room: RoomKind = RoomKind.SPACE, kind: Kind | None = None, version: str = "11"):
    return derive_power_levels(SERVER, room, bot=BOT, room_version=version, channel_kind=kind)


@pytest.mark.parametrize("version", ["10", "11", "12"])
@pytest.mark.parametrize(("room", "kind"), ROOMS)
def test_users_in_every_room_and_version(room: RoomKind, kind: Kind | None, version: str) -> None:
    content = derive(room, kind, version)
    expected = {OWNER: 100, ADMIN: 100, MOD: 50, DJ: 20}
    if version != "12":
        # Above the admins, so it can lower, kick and ban them (nobody can at equal power).
        expected[BOT] = 101
    # Members at power 0 are left to users_default; the bot in v12 is the creator.
    assert content["users"] == expected
    assert content["users_default"] == 0
    assert content["state_default"] == 100
    for event_type in ADMIN_ONLY:
        assert content["events"][event_type] == 100


@pytest.mark.parametrize(("room", "kind"), ROOMS)
def test_thresholds_per_room_kind(room: RoomKind, kind: Kind | None) -> None:
    content = derive(room, kind)
    events = content["events"]
    assert content["redact"] == 20  # the DJ role holds manage_messages at power 20
    assert content["notifications"] == {"room": 20}
    if room is RoomKind.ROLE_ROOM:
        # Role-room membership is the role assignment: the bot's alone.
        assert (content["kick"], content["ban"], content["invite"]) == (100, 100, 100)
        assert content["events_default"] == 100
        assert set(events) == set(ADMIN_ONLY)
        return
    assert (content["kick"], content["ban"], content["invite"]) == (50, 50, 20)
    if room is RoomKind.SPACE:
        assert content["events_default"] == 100
        assert events["m.space.child"] == 50
        assert events["m.room.name"] == events["m.room.topic"] == events["m.room.avatar"] == 100
        assert events[ROLE_EVENT] == 100
        assert CALL_MEMBER_EVENT not in events
    elif room is RoomKind.CATEGORY:
        assert content["events_default"] == 100
        assert events["m.space.child"] == events["m.space.parent"] == 50
        assert events["m.room.name"] == 50
    else:
        assert content["events_default"] == 0
        for event_type in ("m.room.name", "m.room.topic", "m.room.avatar", CHANNEL_EVENT):
            assert events[event_type] == 50
        assert events["m.space.parent"] == 50
        # Pins follow manage_messages, like redacting others' messages (issue 18).
        assert events["m.room.pinned_events"] == 20
        assert "m.space.child" not in events
        assert events[CALL_MEMBER_EVENT] == (0 if kind is not Kind.TEXT else 100)


def test_versions_and_creators() -> None:
    assert not creators_have_unlimited_power("10")
    assert not creators_have_unlimited_power("11")
    assert creators_have_unlimited_power("12")
    assert creators_have_unlimited_power("13")
    assert creators_have_unlimited_power("org.matrix.hydra.11")
    # No creator may appear in v12's users, the bot's additional creators included.
    content = derive_power_levels(
        SERVER, RoomKind.SPACE, bot=BOT, room_version="12", creators=[ADMIN]
    )
    assert ADMIN not in content["users"]
    assert BOT not in content["users"]
    content = derive_power_levels(
        SERVER, RoomKind.SPACE, bot=BOT, room_version="11", creators=[ADMIN]
    )
    assert content["users"][ADMIN] == 100
    with pytest.raises(ValueError, match="kind"):
        derive_power_levels(SERVER, RoomKind.CHANNEL, bot=BOT, room_version="11")


def test_thresholds_follow_role_edits() -> None:
    # Giving `member` kick_members drops the kick threshold to 0; the module vetoes the rest.
    member = Role("member", "Member", None, 0, 0, BUILTIN_ROLES[2].permissions | {P.KICK_MEMBERS})
    server = Server(
        SERVER.server_id, "S", "", None, SERVER.state, (BUILTIN_ROLES[0], BUILTIN_ROLES[1], member)
    )
    assert threshold(server, P.KICK_MEMBERS) == 0
    assert threshold(server, P.MANAGE_ROLES) == 100
    # Taking send_messages from everyone makes the channel read-only below moderators.
    quiet = Role("member", "Member", None, 0, 0, frozenset())
    server = Server(
        SERVER.server_id, "S", "", None, SERVER.state, (BUILTIN_ROLES[0], BUILTIN_ROLES[1], quiet)
    )
    content = derive_power_levels(
        server, RoomKind.CHANNEL, bot=BOT, room_version="12", channel_kind=Kind.VOICE
    )
    assert content["events_default"] == 50
    assert content["events"][CALL_MEMBER_EVENT] == 50


# --- Properties over arbitrary role sets ---------------------------------------------------------

USERS = [uid(f"u{i}") for i in range(6)]


@st.composite
def servers(draw: st.DrawFn) -> Server:
    count = draw(st.integers(min_value=0, max_value=5))
    positions = draw(
        st.lists(
            st.integers(min_value=1, max_value=999).filter(lambda p: p != 500),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    custom = tuple(
        Role(
            f"r{i}",
            f"R{i}",
            None,
            draw(st.integers(min_value=0, max_value=99)),
            position,
            frozenset(draw(st.sets(st.sampled_from(list(Permission))))),
        )
        for i, position in enumerate(positions)
    )
    member_perms = frozenset(draw(st.sets(st.sampled_from(list(Permission)))))
    moderator_power = draw(st.integers(min_value=0, max_value=99))
    roles = (
        BUILTIN_ROLES[0],
        Role("moderator", "Mod", None, moderator_power, 500, BUILTIN_ROLES[1].permissions),
        Role("member", "Member", None, 0, 0, member_perms),
        *custom,
    )
    ids = [r.role_id for r in roles if r.role_id != "member"]
    assignments = {u: frozenset(draw(st.sets(st.sampled_from(ids), max_size=3))) for u in USERS}
    members = frozenset(draw(st.sets(st.sampled_from(USERS))))
    owner = draw(st.sampled_from(USERS))
    return Server(
        RoomID(f"!s:{HS}"),
        "S",
        "",
        None,
        ServerState(owner, RoomID(f"!g:{HS}")),
        roles,
        assignments=assignments,
        members=members | {owner},
    )


THRESHOLD_OF = {
    "kick": P.KICK_MEMBERS,
    "ban": P.BAN_MEMBERS,
    "invite": P.CREATE_INVITES,
    "redact": P.MANAGE_MESSAGES,
    "events_default": P.SEND_MESSAGES,
}


@settings(max_examples=200)
@given(server=servers(), version=st.sampled_from(["10", "11", "12"]), kind=st.sampled_from(Kind))
def test_derived_levels_match_the_roles(server: Server, version: str, kind: Kind) -> None:
    content = derive_power_levels(
        server, RoomKind.CHANNEL, bot=BOT, room_version=version, channel_kind=kind
    )
    for user in USERS:
        held = server.roles_of(user) if server.is_member(user) else ()
        most = max((r.power for r in held), default=0)
        level = content["users"].get(user, content["users_default"])
        if user == server.state.owner:
            assert level == 100
        else:
            # Never more power than a held role carries; non-members have none.
            assert level == most
            assert level <= max((r.power for r in held), default=0)
    for key, permission in THRESHOLD_OF.items():
        holders = [r.power for r in server.roles if permission in r.permissions]
        assert content[key] == min(holders, default=100)
        # Matrix's own auth never stops someone the roles allow.
        for user in USERS:
            if permission in permissions_of(server, user):
                assert content["users"].get(user, 0) >= content[key]
    # The derived content is its own fixed point.
    assert not needs_rewrite(content, content)
    assert merged_power_levels(content, content) == content


# --- Comparing with the room -----------------------------------------------------------------


def test_needs_rewrite_ignores_order_and_keeps_harmless_additions() -> None:
    derived = derive(RoomKind.CHANNEL, Kind.TEXT, "12")
    reordered = dict(reversed(list(copy.deepcopy(derived).items())))
    assert not needs_rewrite(reordered, derived)
    assert needs_rewrite(None, derived)
    harmless = copy.deepcopy(derived)
    harmless["historical"] = 100
    harmless["events"]["im.vector.modular.widgets"] = 100
    harmless["notifications"]["custom"] = 75
    harmless["users"]["@muted:elsewhere"] = -1
    assert not needs_rewrite(harmless, derived)
    assert merged_power_levels(harmless, derived) == harmless


WIDGETS = "im.vector.modular.widgets"
# A type Guilds does not derive, set above the admins' 100 by another client.
UPGRADES_ONLY = "org.example.upgrade"


@pytest.mark.parametrize(
    ("mutate", "gone"),
    [
        (lambda c: c["users"].__setitem__(MEMBER, 50), ("users", MEMBER)),
        (lambda c: c["users"].__setitem__(MOD, 100), None),
        (lambda c: c["users"].__setitem__("@stranger:x", 1), ("users", "@stranger:x")),
        (lambda c: c["users"].__setitem__(BOT, 100), ("users", BOT)),  # v12: the creator
        (lambda c: c["events"].__setitem__(WIDGETS, 0), ("events", WIDGETS)),
        (lambda c: c["events"].__setitem__(UPGRADES_ONLY, 150), ("events", UPGRADES_ONLY)),
        (lambda c: c.__setitem__("kick", 0), None),
        (lambda c: c["events"].__setitem__("m.room.name", 0), None),
        (lambda c: c.pop("redact"), None),
    ],
)  # fmt: skip
def test_needs_rewrite_when_power_is_not_justified(mutate: Any, gone: tuple | None) -> None:
    derived = derive(RoomKind.CHANNEL, Kind.TEXT, "12")
    existing = copy.deepcopy(derived)
    mutate(existing)
    assert needs_rewrite(existing, derived, creators=[BOT])
    merged = merged_power_levels(existing, derived, creators=[BOT])
    assert merged == derived
    if gone is not None:
        assert gone[1] not in merged[gone[0]]


# --- Reading back a change made elsewhere ---------------------------------------------------------


def test_power_changes_read_back() -> None:
    old = {"users": {ADMIN: 100, MOD: 50, DJ: 20}, "users_default": 0}
    new = {"users": {ADMIN: 100, MOD: 100, MEMBER: 50}, "users_default": 0, "kick": 0}
    assert power_changes(old, new) == (
        PowerChange(DJ, 20, 0),
        PowerChange(MEMBER, 0, 50),
        PowerChange(MOD, 50, 100),
    )
    assert power_changes(old, old) == ()
    # An explicit entry equal to the default is no change; a missing one falls to the default.
    assert power_changes({"users": {}}, {"users": {MEMBER: 0}}) == ()
    assert power_changes(
        {"users": {MEMBER: 5}, "users_default": 5}, {"users": {}, "users_default": 10}
    ) == (PowerChange(MEMBER, 5, 10),)
    # Malformed values are read as absent, never crash the bridge.
    assert power_changes(None, {"users": {MEMBER: "50", DJ: 7}}) == (PowerChange(DJ, 0, 7),)
    assert power_changes({"users": []}, {"users": None}) == ()


# --- Guarding changes sent by local users --------------------------------------------------------


def _with(content: dict, **users: int) -> dict:
    changed = copy.deepcopy(content)
    for name, level in users.items():
        changed["users"][uid(name)] = level
    return changed


def test_power_level_changes_allowed() -> None:
    derived = derive(version="11")
    owner, admin = actor(SERVER, OWNER), actor(SERVER, ADMIN)
    # An admin promotes a member to 50 (read back as a role change) or demotes a moderator.
    assert power_levels_refusal(admin, derived, _with(derived, member=50), derived) is None
    assert power_levels_refusal(admin, derived, _with(derived, mod=0), derived) is None
    # The owner may raise someone to 100 (only the owner grants admin).
    assert power_levels_refusal(owner, derived, _with(derived, mod=100), derived) is None
    assert power_levels_refusal(owner, derived, _with(derived, admin=0), derived) is None
    # Lowering oneself is allowed.
    assert power_levels_refusal(admin, derived, _with(derived, admin=10), derived) is None
    # Any change back towards the derived content repairs and is allowed, even a threshold.
    broken = copy.deepcopy(derived)
    broken["kick"] = 0
    broken["events"]["m.room.name"] = 0
    assert power_levels_refusal(admin, broken, derived, derived) is None
    # Unknown keys (no power in them) may change.
    assert power_levels_refusal(admin, derived, {**derived, "historical": 1}, derived) is None
    # What the merge keeps may be written: unknown types made admin-only, notification keys.
    extra = copy.deepcopy(derived)
    extra["events"][WIDGETS] = 100
    extra["notifications"]["custom"] = 3
    assert power_levels_refusal(admin, derived, extra, derived) is None
    # ... but not an unknown type opened to everyone; removing the entry returns to the
    # derived content, which is always allowed.
    opened = copy.deepcopy(extra)
    opened["events"][WIDGETS] = 0
    assert power_levels_refusal(admin, extra, opened, derived) is not None
    del opened["events"][WIDGETS]
    assert power_levels_refusal(admin, extra, opened, derived) is None
    # The bot, always.
    bot = actor(SERVER, BOT, bot=BOT)
    assert power_levels_refusal(bot, derived, {"users": {}}, derived) is None


@pytest.mark.parametrize(
    ("who", "change", "why"),
    [
        (MOD, {"member": 10}, "manage_roles"),
        (ADMIN, {"member": 100}, "below your own"),
        (ADMIN, {"admin": 101}, "raise your own"),
        (ADMIN, {"owner": 50}, "at or above"),
        (OWNER, {"owner": 50}, "owner's power"),
        (OWNER, {"mod": 101}, "more power"),
    ],
)
def test_power_level_changes_refused_for_users(who: UserID, change: dict, why: str) -> None:
    derived = derive(version="11")
    refusal = power_levels_refusal(actor(SERVER, who), derived, _with(derived, **change), derived)
    assert refusal is not None
    assert why in refusal


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.__setitem__("kick", 0),
        lambda c: c.__setitem__("users_default", 50),
        lambda c: c.__setitem__("state_default", 0),
        lambda c: c.__setitem__("events_default", 0),
        lambda c: c["events"].__setitem__("m.room.name", 0),
        lambda c: c["events"].pop("m.room.power_levels"),
        lambda c: c["events"].__setitem__("im.vector.modular.widgets", 0),
        lambda c: c["notifications"].__setitem__("room", 0),
    ],
)
def test_thresholds_cannot_be_changed_even_by_the_owner(mutate: Any) -> None:
    derived = derive(version="12")
    new = copy.deepcopy(derived)
    mutate(new)
    refusal = power_levels_refusal(actor(SERVER, OWNER), derived, new, derived)
    assert refusal is not None
    assert "follows the server's roles" in refusal


def test_power_levels_through_the_module_entry_point() -> None:
    derived = derive(version="12")
    space = RoomContext(RoomKind.SPACE)
    new = _with(derived, member=99)
    assert (
        state_event_refusal(
            actor(SERVER, ADMIN),
            space,
            "m.room.power_levels",
            "",
            derived,
            new,
            derived_power_levels=derived,
        )
        is None
    )
    refusal = state_event_refusal(
        actor(SERVER, DJ), space, "m.room.power_levels", "", derived, new,
        derived_power_levels=derived,
    )  # fmt: skip
    assert refusal is not None
    assert "manage_roles" in refusal
    # Without a derived content, the previous one is the reference: no threshold may move.
    kicked = {**derived, "kick": 0}
    assert state_event_refusal(
        actor(SERVER, OWNER), space, "m.room.power_levels", "", derived, kicked
    )


def test_power_of_matches_derivation() -> None:
    content = derive(version="10")
    for user in (OWNER, ADMIN, MOD, DJ, MEMBER, OUTSIDER):
        assert content["users"].get(user, 0) == power_of(SERVER, user)
