"""Who may do what: the permission matrix, rank, role edits, visibility, state-event rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guilds.ids import RoomID, UserID
from guilds.model import (
    ALL_PERMISSIONS,
    BUILTIN_ROLES,
    NON_MEMBER_POSITION,
    OWNER_POSITION,
    Channel,
    Permission,
    Role,
    Server,
    ServerState,
)
from guilds.permissions import (
    MemberAction,
    PermissionDenied,
    actor,
    highest_position,
    may_act_on,
    may_create_role,
    may_delete_role,
    may_edit_role,
    may_enter,
    may_grant,
    permissions_of,
    power_of,
    require,
    visible_channels,
)
from guilds.rules import (
    Actor,
    RoomContext,
    RoomKind,
    default_channel_refusal,
    guilds_state_refusal,
    role_change_refusal,
    role_state_refusal,
    state_event_refusal,
    state_permission_refusal,
)
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from guilds.vocabulary import ChannelKind as Kind

P = Permission
HS = "example.org"


def uid(name: str) -> UserID:
    return UserID(f"@{name}:{HS}")


OWNER, ADMIN, ADMIN2, MOD, DJ, MEMBER, MEMBER2, OUTSIDER = (
    uid(n) for n in ("owner", "admin", "admin2", "mod", "dj", "member", "member2", "outsider")
)
BOT = uid("guilds")
GENERAL = RoomID(f"!general:{HS}")
DJ_ROLE = Role(
    "dj",
    "DJ",
    "#00ff00",
    20,
    300,
    frozenset({P.CREATE_INVITES, P.MANAGE_MESSAGES, P.CONNECT}),
    RoomID(f"!dj:{HS}"),
)
ADMIN_ROLE, MOD_ROLE, MEMBER_ROLE = BUILTIN_ROLES
TEXT = Channel(GENERAL, "general", Kind.TEXT, "", None, "000000", None, default=True)
STAFF = Channel(RoomID(f"!staff:{HS}"), "staff", Kind.TEXT, "", None, "000001", ("moderator",))
STAGE = Channel(RoomID(f"!stage:{HS}"), "stage", Kind.VOICE, "", None, "000002", ("dj",))
ADMINS = Channel(RoomID(f"!admins:{HS}"), "admins", Kind.TEXT, "", None, "000003", ())


def make_server(**overrides: object) -> Server:
    fields: dict = {
        "server_id": RoomID(f"!space:{HS}"),
        "name": "Server",
        "topic": "",
        "icon": None,
        "state": ServerState(OWNER, GENERAL),
        "roles": (*BUILTIN_ROLES, DJ_ROLE),
        "channels": (TEXT, STAFF, STAGE, ADMINS),
        "assignments": {
            ADMIN: frozenset({"admin"}),
            ADMIN2: frozenset({"admin"}),
            MOD: frozenset({"moderator"}),
            DJ: frozenset({"dj"}),
            # Assignments of someone who left grant nothing.
            OUTSIDER: frozenset({"admin"}),
        },
        "members": frozenset({OWNER, ADMIN, ADMIN2, MOD, DJ, MEMBER, MEMBER2}),
    }
    fields.update(overrides)
    return Server(**fields)


SERVER = make_server()
PEOPLE = {
    "owner": OWNER,
    "admin": ADMIN,
    "moderator": MOD,
    "custom": DJ,
    "member": MEMBER,
    "non-member": OUTSIDER,
}


# --- The permission matrix ---------------------------------------------------------------------


def _can(permission: Permission) -> Callable[[UserID], bool]:
    return lambda who: permission in permissions_of(SERVER, who)


def _kick_member(who: UserID) -> bool:
    return (
        P.KICK_MEMBERS in permissions_of(SERVER, who)
        and may_act_on(SERVER, who, MEMBER2, MemberAction.KICK) is None
    )


def _ban_moderator(who: UserID) -> bool:
    return (
        P.BAN_MEMBERS in permissions_of(SERVER, who)
        and may_act_on(SERVER, who, MOD, MemberAction.BAN) is None
    )


def _grant(role: Role) -> Callable[[UserID], bool]:
    return lambda who: (
        may_grant(SERVER, who, role) is None
        and may_act_on(SERVER, who, MEMBER2, MemberAction.CHANGE_ROLES) is None
    )


def _enter(channel: Channel) -> Callable[[UserID], bool]:
    return lambda who: channel in visible_channels(SERVER, who)


def _rename_dj(who: UserID) -> bool:
    return may_edit_role(SERVER, who, DJ_ROLE, {"name": "Disc jockey"}) is None


ACTIONS: dict[str, tuple[Callable[[UserID], bool], set[str]]] = {
    "manage_server": (_can(P.MANAGE_SERVER), {"owner", "admin"}),
    "manage_channels": (_can(P.MANAGE_CHANNELS), {"owner", "admin", "moderator"}),
    "manage_roles": (_can(P.MANAGE_ROLES), {"owner", "admin"}),
    "kick_members": (_can(P.KICK_MEMBERS), {"owner", "admin", "moderator"}),
    "ban_members": (_can(P.BAN_MEMBERS), {"owner", "admin", "moderator"}),
    "create_invites": (_can(P.CREATE_INVITES), {"owner", "admin", "moderator", "custom"}),
    "manage_messages": (_can(P.MANAGE_MESSAGES), {"owner", "admin", "moderator", "custom"}),
    "send_messages": (
        _can(P.SEND_MESSAGES),
        {"owner", "admin", "moderator", "custom", "member"},
    ),
    "connect": (_can(P.CONNECT), {"owner", "admin", "moderator", "custom", "member"}),
    "video": (_can(P.VIDEO), {"owner", "admin", "moderator", "custom", "member"}),
    "kick a member": (_kick_member, {"owner", "admin", "moderator"}),
    "ban a moderator": (_ban_moderator, {"owner", "admin"}),
    "grant dj": (_grant(DJ_ROLE), {"owner", "admin"}),
    "grant moderator": (_grant(MOD_ROLE), {"owner", "admin"}),
    "grant admin": (_grant(ADMIN_ROLE), {"owner"}),
    "rename the dj role": (_rename_dj, {"owner", "admin"}),
    "enter general": (_enter(TEXT), {"owner", "admin", "moderator", "custom", "member"}),
    "enter staff (moderator-gated)": (_enter(STAFF), {"owner", "admin", "moderator"}),
    "enter stage (dj-gated)": (_enter(STAGE), {"owner", "admin", "custom"}),
    "enter admins (gated to nobody)": (_enter(ADMINS), {"owner", "admin"}),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("who", sorted(PEOPLE))
def test_permission_matrix(action: str, who: str) -> None:
    check, allowed = ACTIONS[action]
    assert check(PEOPLE[who]) is (who in allowed)


def test_rank_and_power() -> None:
    assert highest_position(SERVER, OWNER) == OWNER_POSITION
    assert highest_position(SERVER, ADMIN) == 1000
    assert highest_position(SERVER, MOD) == 500
    assert highest_position(SERVER, DJ) == 300
    assert highest_position(SERVER, MEMBER) == 0
    assert highest_position(SERVER, OUTSIDER) == NON_MEMBER_POSITION
    assert [power_of(SERVER, u) for u in (OWNER, ADMIN, MOD, DJ, MEMBER, OUTSIDER)] == [
        100,
        100,
        50,
        20,
        0,
        0,
    ]
    assert permissions_of(SERVER, OWNER) == ALL_PERMISSIONS
    assert permissions_of(SERVER, OUTSIDER) == frozenset()


def test_power_is_the_most_powerful_role_even_when_ranked_lower() -> None:
    # A senior but weak role must not lower a moderator below the kick threshold.
    herald = Role("herald", "Herald", None, 10, 600, frozenset())
    server = make_server(
        roles=(*BUILTIN_ROLES, herald), assignments={MOD: frozenset({"moderator", "herald"})}
    )
    assert highest_position(server, MOD) == 600
    assert power_of(server, MOD) == 50


def test_the_owner_is_admin_even_without_the_assignment() -> None:
    server = make_server(assignments={}, members=frozenset())
    assert permissions_of(server, OWNER) == ALL_PERMISSIONS
    assert power_of(server, OWNER) == 100


# --- require ------------------------------------------------------------------------------------


def test_require_names_the_missing_permission() -> None:
    require(SERVER, MOD, P.KICK_MEMBERS)
    with pytest.raises(PermissionDenied) as denied:
        require(SERVER, MEMBER, P.KICK_MEMBERS, "kicking members")
    assert denied.value.permission is P.KICK_MEMBERS
    assert "kick_members" in str(denied.value)
    assert str(denied.value) == denied.value.message
    assert denied.value.message == "You need the kick_members permission for kicking members."
    assert denied.value.errcode == "M_FORBIDDEN"
    with pytest.raises(PermissionDenied, match="manage_server.*not a member"):
        require(SERVER, OUTSIDER, P.MANAGE_SERVER)


@pytest.mark.parametrize("permission", sorted(Permission))
def test_require_for_every_permission(permission: Permission) -> None:
    require(SERVER, OWNER, permission)
    with pytest.raises(PermissionDenied, match=permission.value):
        require(SERVER, OUTSIDER, permission)


# --- acting on members --------------------------------------------------------------------------

KICK_TABLE: dict[UserID, set[UserID]] = {
    OWNER: {ADMIN, ADMIN2, MOD, DJ, MEMBER, MEMBER2},
    ADMIN: {MOD, DJ, MEMBER, MEMBER2},
    MOD: {DJ, MEMBER, MEMBER2},
    DJ: {MEMBER, MEMBER2},
    MEMBER: set(),
    OUTSIDER: set(),
}
TARGETS = (OWNER, ADMIN, ADMIN2, MOD, DJ, MEMBER, MEMBER2)


@pytest.mark.parametrize("action", [MemberAction.KICK, MemberAction.BAN])
@pytest.mark.parametrize("who", sorted(KICK_TABLE))
def test_who_may_act_on_whom(who: UserID, action: MemberAction) -> None:
    allowed = {t for t in TARGETS if may_act_on(SERVER, who, t, action) is None}
    assert allowed == KICK_TABLE[who]


def test_acting_on_members_explains_why() -> None:
    assert "owner" in (may_act_on(SERVER, ADMIN, OWNER, MemberAction.BAN) or "")
    assert "yourself" in (may_act_on(SERVER, MOD, MOD, MemberAction.KICK) or "")
    assert "yourself" in (may_act_on(SERVER, OWNER, OWNER, MemberAction.KICK) or "")
    assert "at or above" in (may_act_on(SERVER, ADMIN, ADMIN2) or "")
    assert "not a member" in (may_act_on(SERVER, OUTSIDER, MEMBER) or "")
    # A former member (unban) ranks below everyone.
    assert may_act_on(SERVER, MOD, OUTSIDER, MemberAction.UNBAN) is None
    # Changing one's own roles is a matter for may_grant.
    assert may_act_on(SERVER, ADMIN, ADMIN, MemberAction.CHANGE_ROLES) is None
    assert may_act_on(SERVER, ADMIN, ADMIN2, MemberAction.CHANGE_ROLES) is not None


def test_granting_roles() -> None:
    assert "everyone" in (may_grant(SERVER, OWNER, MEMBER_ROLE) or "").lower()
    assert "manage_roles" in (may_grant(SERVER, MOD, DJ_ROLE) or "")
    assert "below your highest role" in (may_grant(SERVER, ADMIN, ADMIN_ROLE) or "")
    assert may_grant(SERVER, OWNER, ADMIN_ROLE) is None
    assert may_grant(SERVER, ADMIN, MOD_ROLE) is None
    # A custom role holding manage_roles grants only below itself.
    keeper = Role("keeper", "Keeper", None, 30, 400, frozenset({P.MANAGE_ROLES}))
    server = make_server(
        roles=(*BUILTIN_ROLES, DJ_ROLE, keeper),
        assignments={DJ: frozenset({"keeper"})},
    )
    assert may_grant(server, DJ, DJ_ROLE) is None
    assert may_grant(server, DJ, keeper) is not None
    assert may_grant(server, DJ, MOD_ROLE) is not None


# --- editing roles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "role", "changes", "why"),
    [
        (ADMIN, DJ_ROLE, {"name": "Disc jockey", "color": None}, None),
        (ADMIN, DJ_ROLE, {"power": 99, "position": 999}, None),
        (ADMIN, DJ_ROLE, {"permissions": ["manage_roles", "video"]}, None),
        (ADMIN, MOD_ROLE, {"power": 60, "name": "Mods"}, None),
        (ADMIN, MEMBER_ROLE, {"permissions": ["connect"], "color": "#123456"}, None),
        (OWNER, ADMIN_ROLE, {"name": "Admins", "color": "#000000"}, None),
        (MOD, DJ_ROLE, {"name": "x"}, "manage_roles"),
        (OUTSIDER, DJ_ROLE, {"name": "x"}, "manage_roles"),
        (ADMIN, ADMIN_ROLE, {"name": "Admins"}, "below your highest role"),
        (OWNER, ADMIN_ROLE, {"permissions": ["send_messages"]}, "admin role's permissions"),
        (OWNER, ADMIN_ROLE, {"power": 99}, "power 100"),
        (OWNER, MEMBER_ROLE, {"power": 1}, "power is 0"),
        (OWNER, MEMBER_ROLE, {"position": 5}, "ranks below"),
        (OWNER, DJ_ROLE, {"power": 100}, "between 0 and 99"),
        (OWNER, DJ_ROLE, {"power": -1}, "between 0 and 99"),
        (OWNER, DJ_ROLE, {"position": 1000}, "between 1 and 999"),
        (OWNER, DJ_ROLE, {"position": 0}, "between 1 and 999"),
        (OWNER, DJ_ROLE, {"position": 500}, "already has position 500"),
        (OWNER, DJ_ROLE, {"name": "moderator"}, "already exists"),
        (OWNER, DJ_ROLE, {"name": ""}, "1 to 100"),
        (OWNER, DJ_ROLE, {"name": "a\nb"}, "control"),
        (OWNER, DJ_ROLE, {"color": "green"}, "#rrggbb"),
        (OWNER, DJ_ROLE, {"power": "5"}, "integer"),
        (OWNER, DJ_ROLE, {"permissions": ["fly"]}, "unknown permission"),
        (OWNER, DJ_ROLE, {"role_id": "x"}, "unknown role field"),
    ],
)
def test_editing_roles(who: UserID, role: Role, changes: dict, why: str | None) -> None:
    refusal = may_edit_role(SERVER, who, role, changes)
    if why is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert why in refusal


def test_role_editors_cannot_escalate() -> None:
    # Keeper may manage roles but holds neither ban_members nor more than 30 power.
    keeper = Role("keeper", "Keeper", None, 30, 400, frozenset({P.MANAGE_ROLES, P.CONNECT}))
    server = make_server(
        roles=(*BUILTIN_ROLES, DJ_ROLE, keeper), assignments={DJ: frozenset({"keeper"})}
    )
    assert may_edit_role(server, DJ, DJ_ROLE, {"permissions": ["connect"]}) is None
    assert "ban_members" in (
        may_edit_role(server, DJ, DJ_ROLE, {"permissions": ["ban_members"]}) or ""
    )
    assert "more power" in (may_edit_role(server, DJ, DJ_ROLE, {"power": 31}) or "")
    assert may_edit_role(server, DJ, DJ_ROLE, {"power": 30}) is None
    assert "below your highest role" in (
        may_edit_role(server, DJ, DJ_ROLE, {"position": 450}) or ""
    )
    assert "below your highest role" in (may_edit_role(server, DJ, MOD_ROLE, {"name": "M"}) or "")
    assert "below your highest role" in (may_edit_role(server, DJ, keeper, {"name": "K"}) or "")
    # Removing a permission the editor lacks is fine: the role is below them anyway.
    assert may_edit_role(server, DJ, DJ_ROLE, {"permissions": []}) is None


def test_creating_and_deleting_roles() -> None:
    fresh = Role("bard", "Bard", None, 10, 250, frozenset({P.SEND_MESSAGES}))
    assert may_create_role(SERVER, ADMIN, fresh) is None
    assert "manage_roles" in (may_create_role(SERVER, MOD, fresh) or "")
    assert "already exists" in (may_create_role(SERVER, ADMIN, DJ_ROLE) or "")
    assert "built-in" in (
        role_change_refusal(actor(SERVER, OWNER), None, Role("admin", "A", None, 1, 2, frozenset()))
        or ""
    )
    bad_id = Role("Bad Id", "Bad", None, 10, 251, frozenset())
    assert "role id" in (may_create_role(SERVER, ADMIN, bad_id) or "")
    assert may_delete_role(SERVER, ADMIN, DJ_ROLE) is None
    assert "manage_roles" in (may_delete_role(SERVER, MOD, DJ_ROLE) or "")
    for builtin in (MOD_ROLE, MEMBER_ROLE):
        assert "cannot be deleted" in (may_delete_role(SERVER, OWNER, builtin) or "")
    assert "below your highest role" in (may_delete_role(SERVER, ADMIN, ADMIN_ROLE) or "")
    # The bot carries out what the bridge has checked.
    assert role_change_refusal(actor(SERVER, BOT, bot=BOT), MOD_ROLE, None) is None


# --- visibility -------------------------------------------------------------------------------


def test_visible_channels() -> None:
    assert visible_channels(SERVER, OUTSIDER) == ()
    assert visible_channels(SERVER, MEMBER) == (TEXT,)
    assert visible_channels(SERVER, MOD) == (TEXT, STAFF)
    assert visible_channels(SERVER, DJ) == (TEXT, STAGE)
    assert visible_channels(SERVER, ADMIN) == (TEXT, STAFF, STAGE, ADMINS)
    assert visible_channels(SERVER, OWNER) == (TEXT, STAFF, STAGE, ADMINS)
    assert not may_enter(SERVER, OUTSIDER, TEXT)


@given(
    allowed=st.none() | st.lists(st.sampled_from(["admin", "moderator", "member", "dj"])),
    held=st.sets(st.sampled_from(["moderator", "dj"])),
)
def test_entering_a_channel_property(allowed: list[str] | None, held: set[str]) -> None:
    channel = Channel(
        RoomID(f"!c:{HS}"),
        "c",
        Kind.TEXT,
        "",
        None,
        "0",
        None if allowed is None else tuple(allowed),
    )
    server = make_server(channels=(channel,), assignments={MEMBER: frozenset(held)})
    expected = allowed is None or bool((held | {"member"}) & set(allowed))
    assert may_enter(server, MEMBER, channel) is expected
    assert may_enter(server, OWNER, channel)
    assert not may_enter(server, OUTSIDER, channel)


# --- the state-event rules the module applies ---------------------------------------------------

SPACE = RoomContext(RoomKind.SPACE, default_channel_id=GENERAL)
CHANNEL = RoomContext(RoomKind.CHANNEL, Kind.TEXT)
VOICE = RoomContext(RoomKind.CHANNEL, Kind.VOICE)
DEFAULT = RoomContext(RoomKind.DEFAULT_CHANNEL, Kind.TEXT)
CATEGORY = RoomContext(RoomKind.CATEGORY)
ROLE_ROOM = RoomContext(RoomKind.ROLE_ROOM)
VIA = {"via": [HS]}
CHANNEL_STATE = {"kind": "text", "server_id": "!space:example.org", "default": False}


def a(who: UserID) -> Actor:
    return actor(SERVER, who, bot=BOT)


@pytest.mark.parametrize(
    ("room", "event_type", "state_key", "prev", "new", "allowed", "refused", "why"),
    [
        # Channel name, topic and kind need manage_channels.
        (CHANNEL, "m.room.name", "", {"name": "a"}, {"name": "b"}, MOD, MEMBER, "manage_channels"),
        (CHANNEL, "m.room.topic", "", None, {"topic": "t"}, MOD, DJ, "manage_channels"),
        (CHANNEL, "m.room.avatar", "", None, {"url": "mxc://x/y"}, MOD, DJ, "manage_channels"),
        (
            CHANNEL,
            CHANNEL_EVENT,
            "",
            CHANNEL_STATE,
            {**CHANNEL_STATE, "kind": "voice"},
            MOD,
            MEMBER,
            "manage_channels",
        ),
        # Pinning a message is moderating messages (issue 18): manage_messages, in a channel.
        (CHANNEL, "m.room.pinned_events", "", None, {"pinned": ["$a"]}, DJ, MEMBER,
         "manage_messages"),
        (VOICE, "m.room.pinned_events", "", {"pinned": ["$a"]}, {"pinned": []}, MOD, MEMBER,
         "pinning messages in this channel"),
        # The space tree needs manage_channels, in the space, a category and a channel.
        (SPACE, "m.space.child", "!new:example.org", None, VIA, MOD, DJ, "manage_channels"),
        (CATEGORY, "m.space.child", "!c:example.org", VIA, {}, MOD, DJ, "manage_channels"),
        (CHANNEL, "m.space.parent", "!space:example.org", VIA, {}, MOD, DJ, "manage_channels"),
        # The server's own name needs manage_server, a category's manage_channels.
        (SPACE, "m.room.name", "", None, {"name": "S"}, ADMIN, MOD, "manage_server"),
        (CATEGORY, "m.room.name", "", None, {"name": "C"}, MOD, MEMBER, "manage_channels"),
        # Joining a call needs connect, and a voice or video channel.
        (VOICE, CALL_MEMBER_EVENT, "_@x", None, {"memberships": [1]}, MEMBER, OUTSIDER, "connect"),
        (CHANNEL, CALL_MEMBER_EVENT, "_@x", None, {"memberships": [1]}, BOT, OWNER, "text channel"),
        # The default channel: its topic may change, its name and kind never, by anyone.
        (DEFAULT, "m.room.topic", "", None, {"topic": "hi"}, MOD, MEMBER, "manage_channels"),
        (DEFAULT, "m.room.name", "", {"name": "general"}, {"name": "x"}, BOT, OWNER, "renamed"),
        (
            DEFAULT,
            CHANNEL_EVENT,
            "",
            CHANNEL_STATE,
            {**CHANNEL_STATE, "kind": "voice"},
            BOT,
            OWNER,
            "kind cannot",
        ),
        (DEFAULT, "m.space.parent", "!space:example.org", VIA, {}, BOT, OWNER, "removed"),
        (DEFAULT, "m.room.tombstone", "", None, {"replacement_room": "!x"}, BOT, OWNER, "deleted"),
        (SPACE, "m.space.child", GENERAL, VIA, {}, BOT, OWNER, "removed"),
        (SPACE, "m.space.child", GENERAL, VIA, {"via": []}, BOT, OWNER, "removed"),
        # Guilds markers are the bot's alone.
        (SPACE, SERVER_EVENT, "", None, {"owner": OWNER}, BOT, OWNER, "server"),
        (CHANNEL, CHANNEL_EVENT, "", None, CHANNEL_STATE, BOT, OWNER, "mark a room"),
        (
            CHANNEL,
            CHANNEL_EVENT,
            "",
            CHANNEL_STATE,
            {**CHANNEL_STATE, "default": True},
            BOT,
            OWNER,
            "Only a channel's kind",
        ),
        (
            CHANNEL,
            CHANNEL_EVENT,
            "",
            CHANNEL_STATE,
            {**CHANNEL_STATE, "kind": "stage"},
            BOT,
            OWNER,
            "text, voice or video",
        ),
        (CATEGORY, "chat.guilds.category", "", None, {"server_id": "!s"}, BOT, OWNER, "category"),
        # Roles: manage_roles, and only below one's own rank.
        (SPACE, ROLE_EVENT, "dj", DJ_ROLE.content(), {**DJ_ROLE.content(), "name": "D"}, ADMIN, MOD,
         "manage_roles"),
        (SPACE, ROLE_EVENT, "admin", ADMIN_ROLE.content(),
         {**ADMIN_ROLE.content(), "name": "Boss"}, OWNER, ADMIN, "below your highest role"),
        (SPACE, ROLE_EVENT, "moderator", MOD_ROLE.content(), {}, BOT, OWNER, "cannot be deleted"),
        (SPACE, ROLE_EVENT, "dj", DJ_ROLE.content(), {"name": 5}, BOT, OWNER, "not a valid role"),
        (CHANNEL, ROLE_EVENT, "dj", None, DJ_ROLE.content(), BOT, OWNER, "space only"),
    ],
)  # fmt: skip
def test_state_event_rules(
    room: RoomContext,
    event_type: str,
    state_key: str,
    prev: dict | None,
    new: dict,
    allowed: UserID,
    refused: UserID,
    why: str,
) -> None:
    assert state_event_refusal(a(allowed), room, event_type, state_key, prev, new) is None
    refusal = state_event_refusal(a(refused), room, event_type, state_key, prev, new)
    assert refusal is not None
    assert why in refusal
    # Sentences a user can read.
    assert refusal[0].isupper()
    assert refusal.endswith(".")


def test_the_bot_is_never_refused() -> None:
    bot = a(BOT)
    assert bot.bot
    for room, event_type, state_key in [
        (SPACE, SERVER_EVENT, ""),
        (SPACE, "m.space.child", GENERAL),
        (DEFAULT, "m.room.name", ""),
        (SPACE, ROLE_EVENT, "admin"),
    ]:
        assert state_event_refusal(bot, room, event_type, state_key, {"x": 1}, {}) is None


def test_rules_that_let_things_through() -> None:
    # Re-sending the default channel's unchanged name, or adding more `via`, is harmless.
    owner = a(OWNER)
    assert (
        default_channel_refusal(owner, DEFAULT, "m.room.name", "", {"name": "g"}, {"name": "g"})
        is None
    )
    assert (
        default_channel_refusal(owner, SPACE, "m.space.child", GENERAL, VIA, {"via": [HS, "b"]})
        is None
    )
    # Removing an ordinary channel from the space is managing channels.
    assert state_event_refusal(a(MOD), SPACE, "m.space.child", "!other:x", VIA, {}) is None
    # Leaving a call is always allowed, even in a text channel.
    assert state_event_refusal(a(MEMBER), CHANNEL, CALL_MEMBER_EVENT, "_@x", None, {}) is None
    # Types outside the table are left to Matrix's thresholds.
    assert state_permission_refusal(a(MEMBER), CHANNEL, "im.vector.modular.widgets") is None
    assert state_permission_refusal(a(MEMBER), ROLE_ROOM, "m.room.name") is None
    assert guilds_state_refusal(a(MEMBER), CHANNEL, "m.room.name", None, {}) is None
    # A role created by state, by an admin, below their rank.
    fresh = {"name": "Bard", "power": 5, "position": 42, "permissions": ["connect"]}
    assert role_state_refusal(a(ADMIN), SPACE, "bard", None, fresh, SERVER.roles) is None
    assert "already has position" in (
        role_state_refusal(a(ADMIN), SPACE, "bard", None, {**fresh, "position": 300}, SERVER.roles)
        or ""
    )
