"""A user's membership of a room as the homeserver has it now, not as the directory last saw it.

Read where a decision must not wait for the directory to catch up (a kick or a ban a moment
ago): credentials for a channel's SFU room, redeeming an invite. One behaviour for every caller:

- the member event's `membership` (`join`, `invite`, `leave`, `ban`, `knock`);
- None when the user has no member event in the room (404) or it holds no membership string;
- 403 means the bot itself is no longer in the room, so it cannot read the room's state: to the
  caller the room is gone, and the request answers 404 with the caller's word for what is gone
  (`NotFound(gone)`), as a server or channel the bridge no longer has;
- anything else (429, 5xx, homeserver unreachable) propagates, for the error middleware.
"""

from __future__ import annotations

from bridge.engine.matrix import MatrixClient, MatrixRequestError, path_segment
from bridge.errors import NotFound
from guilds.ids import UserID


async def current_membership(
    matrix: MatrixClient, room_id: str, user: UserID, *, gone: str
) -> str | None:
    """`user`'s membership of `room_id` now; raises NotFound(gone) if the bot is not in it."""
    try:
        content = await matrix.request(
            "GET",
            f"/_matrix/client/v3/rooms/{path_segment(room_id)}/state/m.room.member/"
            f"{path_segment(user)}",
        )
    except MatrixRequestError as exc:
        if exc.status == 404:
            return None
        if exc.status == 403:
            raise NotFound(gone) from exc
        raise
    membership = content.get("membership") if isinstance(content, dict) else None
    return membership if isinstance(membership, str) else None
