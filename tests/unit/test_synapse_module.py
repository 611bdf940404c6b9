"""The Synapse module's wiring, with a mocked ModuleApi (the rules themselves are pure)."""

from __future__ import annotations

import pytest
from synapse.module_api import NOT_SPAM
from synapse.module_api.errors import ConfigError

from guilds.vocabulary import CALL_MEMBER_EVENT, MODULE_MEMBERSHIP_PATH
from synapse_module import GuildsModule
from synapse_module.acting_http import MembershipResource
from synapse_module.state import ROOM_MARKERS
from tests.harness.module_api import event, make_api, module


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
    guilds = module(api)
    api.register_spam_checker_callbacks.assert_called_once_with(
        check_event_for_spam=guilds.check_event_for_spam,
        user_may_join_room=guilds.user_may_join_room,
        user_may_invite=guilds.user_may_invite,
        user_may_create_room=guilds.user_may_create_room,
    )
    # No on_new_event (Synapse would load each room's whole state for it on every event): the
    # bridge asks the module to act through its endpoint, served by every process.
    api.register_third_party_rules_callbacks.assert_not_called()
    (path, resource), _ = api.register_web_resource.call_args
    assert path == MODULE_MEMBERSHIP_PATH == "/_synapse/client/guilds/v1/membership"
    assert isinstance(resource, MembershipResource)


def test_every_process_serves_the_acting_endpoint_and_acting_worker_is_accepted() -> None:
    for worker_name in (None, "w1", "w2"):
        api = make_api(worker_name=worker_name)
        # Configurations written for earlier versions name an acting worker: they still load.
        module(api, acting_worker="w1")
        api.register_web_resource.assert_called_once()


@pytest.mark.parametrize("type_", ["m.room.message", "m.reaction", "m.room.redaction"])
async def test_the_message_path_looks_nothing_up(type_: str) -> None:
    api = make_api(channel={"kind": "text"})
    assert await module(api).check_event_for_spam(event(type_)) == NOT_SPAM
    api.get_room_state.assert_not_called()


async def test_call_membership_in_text_channel_is_refused() -> None:
    api = make_api(channel={"kind": "text"})
    key = "_@a:here_D"
    answer = await module(api).check_event_for_spam(event(CALL_MEMBER_EVENT, state_key=key))
    assert answer != NOT_SPAM and "text channel" in answer
    # One lookup, of the room's own markers: a text channel needs nothing from its space.
    (room_id, keys), _ = api.get_room_state.await_args
    assert room_id == "!r:here"
    assert set(ROOM_MARKERS) <= set(keys) and (CALL_MEMBER_EVENT, key) in keys


async def test_call_membership_allowed_outside_servers_and_for_remote_senders() -> None:
    # A voice "channel" with no server: not a Guilds server, nothing to rule on.
    api = make_api(channel={"kind": "voice"})
    answer = await module(api).check_event_for_spam(
        event(CALL_MEMBER_EVENT, state_key="_@a:here_D")
    )
    assert answer == NOT_SPAM
    text_api = make_api(channel={"kind": "text"})
    # Vetoing a federated event would fork the room: remote senders are never refused here.
    remote = event(CALL_MEMBER_EVENT, "@x:elsewhere", state_key="k")
    assert await module(text_api).check_event_for_spam(remote) == NOT_SPAM
    text_api.get_room_state.assert_not_called()
