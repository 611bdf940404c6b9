"""A Guilds server's rooms as the module sees them through a fake ModuleApi, for unit tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

from synapse.module_api import ModuleApi

from guilds.ids import RoomID
from guilds.layout import channel_allow
from guilds.model import BUILTIN_ROLES
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT
from synapse_module import GuildsModule

BOT = "@guilds:here"
OWNER, MOD, MEMBER, BANNED = "@owner:here", "@mod:here", "@member:here", "@banned:here"
SPACE, GENERAL, STAFF, LOUNGE = "!space:here", "!general:here", "!staff:here", "!lounge:here"
ADMIN_ROOM, MOD_ROOM = "!admins:here", "!mods:here"

State = dict[str, dict[tuple[str, str], Any]]


def ev(content: dict[str, Any]) -> Any:
    return SimpleNamespace(content=content)


def server_state() -> State:
    roles = {r.role_id: r for r in BUILTIN_ROLES}
    space = {
        (SERVER_EVENT, ""): ev({"owner": OWNER, "default_channel": GENERAL}),
        (ROLE_EVENT, "admin"): ev(replace(roles["admin"], room_id=RoomID(ADMIN_ROOM)).content()),
        (ROLE_EVENT, "moderator"): ev(
            replace(roles["moderator"], room_id=RoomID(MOD_ROOM)).content()
        ),
        (ROLE_EVENT, "member"): ev(roles["member"].content()),
        ("m.space.child", GENERAL): ev({"via": ["here"]}),
        ("m.room.member", BANNED): ev({"membership": "ban"}),
    }
    for user in (OWNER, MOD, MEMBER):
        space[("m.room.member", user)] = ev({"membership": "join"})

    def channel(kind: str, default: bool, allow: list[str] | None) -> dict[tuple[str, str], Any]:
        return {
            (CHANNEL_EVENT, ""): ev({"kind": kind, "server_id": SPACE, "default": default}),
            ("m.room.name", ""): ev({"name": "a channel"}),
            ("m.room.join_rules", ""): ev(
                {"join_rule": "restricted", "allow": channel_allow(SPACE, allow)}  # type: ignore[arg-type]
            ),
        }

    return {
        SPACE: space,
        GENERAL: channel("text", True, None),
        STAFF: channel("text", False, [ADMIN_ROOM, MOD_ROOM]),
        LOUNGE: channel("voice", False, None),
        ADMIN_ROOM: {("m.room.member", OWNER): ev({"membership": "join"})},
        MOD_ROOM: {("m.room.member", MOD): ev({"membership": "join"})},
    }


def make_api(state: State) -> Mock:
    api = Mock(spec=ModuleApi)
    api.worker_name = None
    api.is_mine.side_effect = lambda user_id: user_id.endswith(":here")

    async def get_room_state(room_id: str, keys: Iterable[tuple[str, str | None]]) -> Any:
        room = state.get(room_id, {})
        wanted = list(keys)
        return {
            (t, k): e
            for (t, k), e in room.items()
            if any(t == wt and (wk is None or wk == k) for wt, wk in wanted)
        }

    api.get_room_state = AsyncMock(side_effect=get_room_state)
    return api


def guilds(state: State | None = None) -> tuple[GuildsModule, Mock]:
    api = make_api(server_state() if state is None else state)
    return GuildsModule(GuildsModule.parse_config({"bot_user_id": BOT}), api), api
