"""The pure rules, without a homeserver."""

from __future__ import annotations

import pytest

from guilds.rules import call_membership_refusal, channel_kind, room_creation_refusal
from guilds.vocabulary import ChannelKind, is_role_room


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (None, None),
        ({"kind": "text"}, ChannelKind.TEXT),
        ({"kind": "voice"}, ChannelKind.VOICE),
        ({"kind": "video"}, ChannelKind.VIDEO),
        # Malformed kinds fall back to the most restrictive kind.
        ({"kind": "stage"}, ChannelKind.TEXT),
        ({"kind": 3}, ChannelKind.TEXT),
        ({}, ChannelKind.TEXT),
    ],
)
def test_channel_kind(content: dict | None, kind: ChannelKind | None) -> None:
    assert channel_kind(content) is kind


def test_call_membership_refused_only_in_text_channels() -> None:
    assert call_membership_refusal({"kind": "text"}) is not None
    assert "text channel" in (call_membership_refusal({"kind": "text"}) or "")
    assert call_membership_refusal({"kind": "bogus"}) is not None
    assert call_membership_refusal({"kind": "voice"}) is None
    assert call_membership_refusal({"kind": "video"}) is None
    # Rooms that are not Guilds channels are none of our business.
    assert call_membership_refusal(None) is None


@pytest.mark.parametrize(
    "config",
    [
        {"initial_state": [{"type": "chat.guilds.channel", "state_key": "", "content": {}}]},
        {"initial_state": [{"type": "chat.guilds.server", "state_key": "", "content": {}}]},
        {"initial_state": [{"type": "chat.guilds.role", "state_key": "admin", "content": {}}]},
        {"initial_state": [{"type": "chat.guilds.category", "state_key": "", "content": {}}]},
        {"creation_content": {"type": "chat.guilds.role"}},
        {"creation_content": {"type": "m.space", "chat.guilds.role_room": True}},
        {"creation_content": {"chat.guilds.role_room": False}},
    ],
)
def test_only_the_bot_creates_rooms_with_guilds_markers(config: dict) -> None:
    assert room_creation_refusal(config) is not None


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"name": "plain"},
        {"creation_content": {"type": "m.space"}},
        {"initial_state": [{"type": "m.room.topic", "state_key": "", "content": {"topic": "x"}}]},
        # Malformed bodies are Synapse's to refuse, not ours.
        {"initial_state": "nonsense", "creation_content": []},
    ],
)
def test_ordinary_rooms_may_be_created(config: dict) -> None:
    assert room_creation_refusal(config) is None


@pytest.mark.parametrize(
    ("create", "role_room"),
    [
        ({"type": "m.space", "chat.guilds.role_room": True, "server_id": "!s"}, True),
        ({"type": "chat.guilds.role", "server_id": "!s"}, True),  # made before issue 17
        ({"type": "m.space"}, False),
        ({"type": "m.space", "chat.guilds.role_room": "yes"}, False),
        ({"chat.guilds.role_room": True}, False),
        ({}, False),
        (None, False),
    ],
)
def test_role_rooms_of_both_shapes_are_recognised(create: dict | None, role_room: bool) -> None:
    assert is_role_room(create) is role_room
