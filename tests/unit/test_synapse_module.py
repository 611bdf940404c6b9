"""The Synapse module's wiring, with a mocked ModuleApi (the rules themselves are pure)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest
from synapse.module_api import NOT_SPAM
from synapse.module_api.errors import ConfigError, SynapseError

from guilds.vocabulary import (
    CALL_MEMBER_EVENT,
    CHANNEL_EVENT,
    MODULE_MEMBERSHIP_PATH,
    ROLE_EVENT,
    SERVER_EVENT,
)
from synapse_module import GuildsModule
from synapse_module.acting_http import MembershipResource
from synapse_module.state import MEMBER, ROOM_MARKERS
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
    # Kicks, bans and unbans reach only the third-party rules' check_event_allowed. Still no
    # on_new_event (Synapse would load each room's whole state for it on the delivery path):
    # the bridge asks the module to act through its endpoint, served by every process.
    api.register_third_party_rules_callbacks.assert_called_once_with(
        check_event_allowed=guilds.check_event_allowed
    )
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
async def test_the_bot_and_remote_senders_pass_without_a_lookup(type_: str) -> None:
    api = make_api(channel={"kind": "text"})
    for sender in ("@guilds:here", "@x:elsewhere"):
        assert await module(api).check_event_for_spam(event(type_, sender)) == NOT_SPAM
    api.get_room_state.assert_not_called()


# --- messages, redactions and membership, against a small fake of the room states ------------

SPACE, CHANNEL, SPEAKERS = "!s:here", "!c:here", "!speakers:here"
OWNER, SENDER = "@owner:here", "@a:here"


def _role(name: str, power: int, position: int, perms: list[str], room: str | None) -> Any:
    content = {"name": name, "power": power, "position": position, "permissions": perms}
    return SimpleNamespace(content={**content, "room_id": room}, sender="@guilds:here")


def world(member_perms: list[str], *, speaker: bool = False) -> dict[str, dict]:
    """A server whose `member` role holds `member_perms`; a power-0 `speaker` role (its room
    joined by the sender if `speaker`) holds send_messages."""
    ev = lambda **content: SimpleNamespace(content=content, sender=OWNER)  # noqa: E731
    return {
        SPACE: {
            (SERVER_EVENT, ""): ev(owner=OWNER, default_channel=CHANNEL),
            (ROLE_EVENT, "member"): _role("Member", 0, 0, member_perms, None),
            (ROLE_EVENT, "speaker"): _role("Speaker", 0, 10, ["send_messages"], SPEAKERS),
            (MEMBER, SENDER): ev(membership="join"),
        },
        CHANNEL: {(CHANNEL_EVENT, ""): ev(kind="text", server_id=SPACE)},
        SPEAKERS: {(MEMBER, SENDER): ev(membership="join" if speaker else "leave")},
    }


def fake_api(rooms: dict[str, dict]) -> Mock:
    api = make_api()

    async def get_room_state(room_id: str, keys: Any) -> dict:
        state = rooms.get(room_id, {})
        return {
            (t, k): e
            for (t, k), e in state.items()
            if any(t == ft and (fk is None or k == fk) for ft, fk in keys)
        }

    api.get_room_state = AsyncMock(side_effect=get_room_state)
    return api


def message(sender: str = SENDER, room: str = CHANNEL) -> Any:
    return SimpleNamespace(
        type="m.room.message",
        sender=sender,
        room_id=room,
        content={"body": "hi"},
        is_state=lambda: False,
    )


async def test_the_message_path_reads_two_entries_and_nobodys_roles() -> None:
    api = fake_api(world(["send_messages"]))
    assert await module(api).check_event_for_spam(message()) == NOT_SPAM
    # The channel's marker, then the space's member role: point reads, no wildcard (Synapse
    # caches those per entry), and no lookup of the sender's roles.
    reads = [(c.args[0], list(c.args[1])) for c in api.get_room_state.await_args_list]
    assert reads == [(CHANNEL, [(CHANNEL_EVENT, "")]), (SPACE, [(ROLE_EVENT, "member")])]


async def test_without_send_messages_in_member_only_holders_post() -> None:
    # Observation 1: a power-0 role kept events_default at 0 for everyone.
    refusal = await module(fake_api(world(["connect"]))).check_event_for_spam(message())
    assert refusal != NOT_SPAM and "send_messages" in refusal
    holder = fake_api(world(["connect"], speaker=True))
    assert await module(holder).check_event_for_spam(message()) == NOT_SPAM
    # The owner holds every permission; rooms outside any server are not Guilds'.
    owner = fake_api(world(["connect"]))
    assert await module(owner).check_event_for_spam(message(OWNER)) == NOT_SPAM
    assert await module(owner).check_event_for_spam(message(room="!else:here")) == NOT_SPAM


def membership(sender: str, target: str, membership: str) -> Any:
    return SimpleNamespace(
        type=MEMBER,
        sender=sender,
        state_key=target,
        room_id=CHANNEL,
        content={"membership": membership},
        is_state=lambda: True,
    )


async def test_check_event_allowed_refuses_a_kick_without_kick_members() -> None:
    rooms = world(["send_messages"])
    target = "@t:here"
    before = {(MEMBER, target): SimpleNamespace(content={"membership": "join"}, sender=target)}
    before.update(rooms[CHANNEL])
    api = fake_api(rooms)
    with pytest.raises(SynapseError) as raised:
        await module(api).check_event_allowed(membership(SENDER, target, "leave"), before)
    assert raised.value.code == 403 and "kick_members" in raised.value.msg
    # Leaving oneself, the bot's own kicks and remote senders are never looked at.
    api.get_room_state.reset_mock()
    for own in (
        membership(target, target, "leave"),
        membership("@guilds:here", target, "leave"),
        membership("@x:elsewhere", target, "ban"),
        message(),
    ):
        assert await module(api).check_event_allowed(own, before) == (True, None)
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


async def test_a_channel_marker_without_server_id_is_found_by_its_parent() -> None:
    rooms = world(["connect"])
    parent = SimpleNamespace(content={"via": ["here"], "canonical": True}, sender=OWNER)
    rooms[CHANNEL] = {
        (CHANNEL_EVENT, ""): SimpleNamespace(content={"kind": "text"}, sender=OWNER),
        ("m.space.parent", SPACE): parent,
    }
    refusal = await module(fake_api(rooms)).check_event_for_spam(message())
    assert refusal != NOT_SPAM and "send_messages" in refusal
