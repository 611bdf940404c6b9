"""The Synapse module's wiring, with a mocked ModuleApi (the rules themselves are pure)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest
from synapse.module_api import NOT_SPAM, ModuleApi
from synapse.module_api.errors import ConfigError

from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT
from synapse_module import GuildsModule


def make_api(worker_name: str | None = None, channel: dict | None = None) -> Mock:
    api = Mock(spec=ModuleApi)
    api.worker_name = worker_name
    api.is_mine.side_effect = lambda user_id: user_id.endswith(":here")
    state = {} if channel is None else {(CHANNEL_EVENT, ""): SimpleNamespace(content=channel)}
    api.get_room_state = AsyncMock(return_value=state)
    return api


def event(type_: str, sender: str = "@a:here") -> Any:
    # Only the attributes the module reads; a real EventBase needs a whole homeserver.
    return SimpleNamespace(type=type_, sender=sender, room_id="!r:here", content={})


def test_parse_config_names_the_key() -> None:
    with pytest.raises(ConfigError) as raised:
        GuildsModule.parse_config({"bot_user_id": "guilds"})
    assert "bot_user_id" in str(raised.value)
    assert raised.value.path == ["bot_user_id"]
    with pytest.raises(ConfigError, match="acting_worker"):
        GuildsModule.parse_config({"bot_user_id": "@guilds:here", "acting_worker": 5})
    with pytest.raises(ConfigError, match="unknown option"):
        GuildsModule.parse_config({"bot_user_id": "@guilds:here", "colour": "red"})


def test_registers_its_callbacks() -> None:
    api = make_api()
    module = GuildsModule(GuildsModule.parse_config({"bot_user_id": "@guilds:here"}), api)
    api.register_spam_checker_callbacks.assert_called_once_with(
        check_event_for_spam=module.check_event_for_spam
    )


def test_acting_callbacks_only_on_the_named_worker() -> None:
    config = GuildsModule.parse_config({"bot_user_id": "@guilds:here", "acting_worker": "w1"})
    assert GuildsModule(config, make_api(worker_name="w1")).acts_here
    assert not GuildsModule(config, make_api(worker_name="w2")).acts_here
    assert not GuildsModule(config, make_api(worker_name=None)).acts_here
    main_config = GuildsModule.parse_config({"bot_user_id": "@guilds:here"})
    assert GuildsModule(main_config, make_api(worker_name=None)).acts_here


async def test_messages_are_passed_without_any_lookup() -> None:
    api = make_api(channel={"kind": "text"})
    module = GuildsModule(GuildsModule.parse_config({"bot_user_id": "@guilds:here"}), api)
    assert await module.check_event_for_spam(event("m.room.message")) == NOT_SPAM
    api.get_room_state.assert_not_called()


async def test_call_membership_in_text_channel_is_refused() -> None:
    api = make_api(channel={"kind": "text"})
    module = GuildsModule(GuildsModule.parse_config({"bot_user_id": "@guilds:here"}), api)
    answer = await module.check_event_for_spam(event(CALL_MEMBER_EVENT))
    assert answer != NOT_SPAM and "text channel" in answer
    api.get_room_state.assert_awaited_once_with("!r:here", [(CHANNEL_EVENT, "")])


async def test_call_membership_allowed_in_voice_and_for_remote_senders() -> None:
    api = make_api(channel={"kind": "voice"})
    module = GuildsModule(GuildsModule.parse_config({"bot_user_id": "@guilds:here"}), api)
    assert await module.check_event_for_spam(event(CALL_MEMBER_EVENT)) == NOT_SPAM
    text_api = make_api(channel={"kind": "text"})
    text_module = GuildsModule(GuildsModule.parse_config({"bot_user_id": "@guilds:here"}), text_api)
    # Vetoing a federated event would fork the room: remote senders are never refused here.
    assert (
        await text_module.check_event_for_spam(event(CALL_MEMBER_EVENT, "@x:elsewhere")) == NOT_SPAM
    )
