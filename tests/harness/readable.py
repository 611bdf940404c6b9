"""What a user can read over the raw Client-Server API, for the tests of what must stay hidden
from them (private channels, role rooms; docs/CLIENTS.md, "Private channels")."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.harness.stack import Stack, User


async def raw(stack: Stack, user: User, path: str) -> tuple[int, Any]:
    """One Client-Server GET as `user` (the token in the header), its JSON answer."""
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.hs_url}/_matrix/client{path}",
        headers={"Authorization": f"Bearer {user.access_token}"},
    ) as response:
        return response.status, await response.json()


async def everything_readable(stack: Stack, user: User, rooms: list[str]) -> dict[str, Any]:
    """What `user` can read of these rooms and of their own account: a full `/sync` (long
    timelines), each room's state, timeline and `/hierarchy` (with its links' content)."""
    sync_filter = quote(json.dumps({"room": {"timeline": {"limit": 200}}}))
    seen: dict[str, Any] = {}
    status, seen["sync"] = await raw(stack, user, f"/v3/sync?full_state=true&filter={sync_filter}")
    assert status == 200, seen["sync"]
    for room in rooms:
        room_path = quote(room)
        for what, path in (
            ("state", f"/v3/rooms/{room_path}/state"),
            ("messages", f"/v3/rooms/{room_path}/messages?dir=b&limit=500"),
            ("hierarchy", f"/v1/rooms/{room_path}/hierarchy?limit=100"),
        ):
            status, answer = await raw(stack, user, path)
            # A room the user is not in may answer 403; that reveals nothing either.
            seen[f"{what} {room}"] = answer if status == 200 else status
    return seen


def mentions(value: Any, needles: tuple[str, ...]) -> list[str]:
    """The needles found anywhere in `value` (as JSON text)."""
    text = json.dumps(value)
    return [needle for needle in needles if needle in text]
