"""The module on a fake ModuleApi that knows one room, and events made of what it reads."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

from synapse.module_api import ModuleApi

from guilds.vocabulary import CHANNEL_EVENT
from synapse_module import GuildsModule


def make_api(worker_name: str | None = None, channel: dict | None = None) -> Mock:
    api = Mock(spec=ModuleApi)
    api.worker_name = worker_name
    api.is_mine.side_effect = lambda user_id: user_id.endswith(":here")
    state = {} if channel is None else {(CHANNEL_EVENT, ""): SimpleNamespace(content=channel)}
    api.get_room_state = AsyncMock(return_value=state)
    return api


def event(type_: str, sender: str = "@a:here", state_key: str | None = None) -> Any:
    # Only the attributes the module reads; a real EventBase needs a whole homeserver.
    return SimpleNamespace(
        type=type_,
        sender=sender,
        room_id="!r:here",
        content={"device_id": "D"},
        state_key=state_key,
        is_state=lambda: state_key is not None,
    )


def module(api: Mock, **config: Any) -> GuildsModule:
    return GuildsModule(GuildsModule.parse_config({"bot_user_id": "@guilds:here", **config}), api)
