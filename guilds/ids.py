"""Typed Matrix identifiers, so a room id cannot be passed where a user id is expected."""

from __future__ import annotations

import re
from typing import NewType

UserID = NewType("UserID", str)
RoomID = NewType("RoomID", str)
EventID = NewType("EventID", str)

# Localparts of user ids as the spec allows them for new users (lower case, digits, ._=-/+).
LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")
# A server name: a DNS name, IPv4 or [IPv6] literal, with an optional port.
SERVER_NAME_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?$")


def user_id(localpart: str, server_name: str) -> UserID:
    return UserID(f"@{localpart}:{server_name}")


def split_user_id(uid: str) -> tuple[str, str]:
    """Return (localpart, server_name) of a user id, or raise ValueError."""
    if not uid.startswith("@") or ":" not in uid:
        raise ValueError(f"not a Matrix user id: {uid!r}")
    localpart, _, server = uid[1:].partition(":")
    if not localpart or not SERVER_NAME_RE.match(server):
        raise ValueError(f"not a Matrix user id: {uid!r}")
    return localpart, server
