"""The rules of a Guilds server as pure functions of room state, shared by the module and bridge.

Each `*_refusal` function answers "why may this not happen?" with a human sentence, or None
when it may. They take plain event contents, never Synapse or HTTP objects, so they are unit
tested without a homeserver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guilds.vocabulary import ChannelKind


def channel_kind(channel_content: Mapping[str, Any] | None) -> ChannelKind | None:
    """The kind a channel's state declares, or None when the room is not a Guilds channel."""
    if channel_content is None:
        return None
    kind = channel_content.get("kind")
    try:
        return ChannelKind(kind) if isinstance(kind, str) else ChannelKind.TEXT
    except ValueError:
        # A Guilds channel with a kind we do not know: treat it as text, the most restrictive.
        return ChannelKind.TEXT


def call_membership_refusal(channel_content: Mapping[str, Any] | None) -> str | None:
    """Why call membership may not be written in this room, given its channel state."""
    kind = channel_kind(channel_content)
    if kind is None or kind.has_calls:
        return None
    return "Calls can only be joined in voice and video channels; this is a text channel."
