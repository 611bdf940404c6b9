"""Each room's derived power levels, aware of who created it (rooms adopted from other clients).

The one owner of power levels in the bridge: a room being created (`new_room_levels`), a room
to bring in line or retype (`wanted_levels`, `levels_step`, `levels_plan`, reading the rooms from
`ServerRooms`) and a room being adopted (`derived_levels` with its creators, `merged_levels`)
all derive them here, from `guilds.powerlevels`.

Guilds creates every room it makes as the bot, so under room version 12 the bot is the one
creator and `guilds.powerlevels.derive_power_levels` leaves it out of `users`. A room adopted
from another client (bridge/readback/reconcile.py) was created by someone else: under v12 that
creator keeps unlimited power, may not appear in `users`, and the bot needs an explicit 100.
Adoption records those creators in the channel's `<ns>.channel` content (`creators`), since the
room state the bridge tracks holds contents only, not the sender of `m.room.create`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from bridge.engine.steps import Plan, SendState, Step
from bridge.plans.rooms import RoomStates, ServerRooms
from guilds.ids import RoomID, UserID
from guilds.model import ADMIN_POWER, Server
from guilds.powerlevels import (
    creators_have_unlimited_power,
    derive_power_levels,
    merged_power_levels,
)
from guilds.rules import RoomKind
from guilds.vocabulary import CHANNEL_EVENT, ChannelKind

# The `<ns>.channel` key listing an adopted room's creators other than the bot.
CREATORS_KEY: Final = "creators"


def room_version_of(states: RoomStates, room_id: RoomID) -> str:
    create = states.get(room_id, {}).get(("m.room.create", ""), {})
    version = create.get("room_version")
    return version if isinstance(version, str) else "1"


def adopted_creators(states: RoomStates, room_id: RoomID) -> tuple[UserID, ...]:
    """The creators of a room that are not the bot (recorded when the room was adopted)."""
    channel = states.get(room_id, {}).get((CHANNEL_EVENT, ""), {})
    listed = channel.get(CREATORS_KEY)
    if not isinstance(listed, list):
        return ()
    return tuple(UserID(u) for u in listed if isinstance(u, str))


def derived_levels(
    server: Server,
    kind: RoomKind,
    channel_kind: ChannelKind | None,
    *,
    bot: UserID,
    room_version: str,
    creators: Iterable[UserID] = (),
) -> dict[str, Any]:
    """What the roles say the room's power levels are, with `creators` the non-bot creators."""
    others = [c for c in creators if c != bot]
    content = derive_power_levels(
        server,
        kind,
        bot=bot,
        room_version=room_version,
        channel_kind=channel_kind,
        creators=others,
    )
    if others and creators_have_unlimited_power(room_version):
        # The bot did not create this room: it holds its power from `users`, like before v12.
        content["users"][bot] = ADMIN_POWER
    return content


def new_room_levels(
    server: Server,
    kind: RoomKind,
    channel_kind: ChannelKind | None = None,
    *,
    bot: UserID,
    room_version: str,
) -> dict[str, Any]:
    """The power levels of a room the bot is about to create (it is the room's one creator)."""
    return derived_levels(server, kind, channel_kind, bot=bot, room_version=room_version)


def wanted_levels(
    server: Server,
    room: RoomID,
    kind: RoomKind,
    channel_kind: ChannelKind | None,
    rooms: ServerRooms,
    derived_by_shape: dict[Any, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The power-levels content the room must hold under `server` (the model as it is, or as
    an operation will leave it): derived from the roles, aware of the room's version and
    creators, keeping what other clients added that grants nothing.

    `kind` and `channel_kind` are the room's as it will be (a channel being retyped).
    `derived_by_shape`, shared across the rooms of one server, keeps each derivation for
    rooms of the same kind, version and creators: a server's hundred channels derive once.
    """
    states = rooms.states
    version = room_version_of(states, room)
    creators = adopted_creators(states, room) if creators_have_unlimited_power(version) else ()
    shape = (kind, channel_kind, version, tuple(sorted(creators)))
    derived = (derived_by_shape or {}).get(shape)
    if derived is None:
        derived = derived_levels(
            server, kind, channel_kind, bot=rooms.bot, room_version=version, creators=creators
        )
        if derived_by_shape is not None:
            derived_by_shape[shape] = derived
    existing = rooms.state(room).get(("m.room.power_levels", ""))
    return merged_levels(existing, derived, creators, rooms.bot)


def merged_levels(
    existing: Mapping[str, Any] | None,
    derived: dict[str, Any],
    creators: Iterable[UserID],
    bot: UserID,
) -> dict[str, Any]:
    """`derived` written over a room's `existing` power levels: what other clients added that
    grants nothing is kept, and so are the levels above the bot's own (`writable_levels`)."""
    return writable_levels(existing, merged_power_levels(existing, derived, creators=creators), bot)


def levels_step(
    name: str,
    server: Server,
    room: RoomID,
    kind: RoomKind,
    channel_kind: ChannelKind | None,
    rooms: ServerRooms,
) -> Step | None:
    """The step rewriting one room's power levels, or None when they already match the roles."""
    existing = rooms.state(room).get(("m.room.power_levels", ""))
    content = wanted_levels(server, room, kind, channel_kind, rooms)
    if existing is not None and content == dict(existing):
        return None
    return SendState(
        name=name, room=room, type="m.room.power_levels", state_key="", content=content
    )


def writable_levels(
    existing: Mapping[str, Any] | None, wanted: dict[str, Any], bot: UserID
) -> dict[str, Any]:
    """`wanted`, except the levels above the bot's 100, which Matrix does not let it change.

    Only adopted rooms have them: under v12 Synapse gives `m.room.tombstone` 150, so that only
    a creator may upgrade the room. Those stay as the creators set them. Nor does the bot
    raise its own power: a room of version 10 or 11 adopted from another client keeps the bot
    at the 100 it was given there, below the `BOT_POWER_BEFORE_V12` of the rooms it creates.
    """
    if existing is None:
        return wanted
    content = dict(wanted)
    held = _mapping(existing.get("users")).get(bot)
    users = _mapping(content.get("users"))
    if _is_level(held) and _is_level(users.get(bot)) and users[bot] > held:
        content["users"] = {**users, bot: held}
    for key, level in existing.items():
        if key not in ("users", "events", "notifications") and _above(level):
            content[key] = level
    for section in ("events", "notifications"):
        old = existing.get(section)
        if not isinstance(old, Mapping):
            continue
        merged = dict(content.get(section) or {})
        for key, level in old.items():
            if _above(level):
                merged[key] = level
        content[section] = merged
    return content


def _is_level(level: Any) -> bool:
    return isinstance(level, int) and not isinstance(level, bool)


def _above(level: Any) -> bool:
    return _is_level(level) and level > ADMIN_POWER


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def levels_plan(server: Server, rooms: ServerRooms) -> Plan:
    """Rewrite the power levels of every room of `rooms` that differs from what the roles of
    `server` say (the model as it is, or as an operation will leave it)."""
    steps = [
        step
        for i, (room, kind, channel_kind) in enumerate(rooms.kinds)
        if (step := levels_step(f"pl_{i}", server, room, kind, channel_kind, rooms)) is not None
    ]
    return Plan.of(steps) if steps else Plan(())
