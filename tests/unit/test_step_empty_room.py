"""EmptyRoom reads who is inside when it runs and kicks them all but the bot, idempotently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.engine.matrix import MatrixRequestError
from bridge.engine.steps import EmptyRoom, StepContext

BOT = "@guilds:x"


class Room:
    """Just enough of a homeserver for one room's members and kicks."""

    def __init__(self, members: dict[str, str]) -> None:
        self.members = members
        self.kicks: list[str] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        user_id: str | None = None,
    ) -> Any:
        if path.endswith("/members"):
            assert query == {"not_membership": "leave"}
            chunk = [
                {"state_key": u, "content": {"membership": m}}
                for u, m in self.members.items()
                if m != "leave"
            ]
            return {"chunk": chunk}
        if path.endswith("/kick"):
            user = json["user_id"]
            if self.members.get(user) not in ("join", "invite"):
                raise MatrixRequestError(403, "M_FORBIDDEN", "The target user is not in the room")
            self.kicks.append(user)
            self.members[user] = "leave"
            return {}
        if "/state/m.room.member/" in path:
            return {"membership": self.members.get(path.rsplit("/", 1)[1], "leave")}
        raise AssertionError(f"unexpected {method} {path}")


def context(room: Room) -> StepContext:
    return StepContext(matrix=room, bot_user_id=BOT, op_id="op", stage=0, idx=0)


async def test_kicks_everyone_inside_but_the_bot() -> None:
    room = Room({BOT: "join", "@a:x": "join", "@b:x": "invite", "@c:x": "leave", "@d:x": "ban"})
    result = await EmptyRoom(name="empty", room="!r:x", reason="gone").apply(context(room))
    assert sorted(room.kicks) == ["@a:x", "@b:x"]
    assert result == {"room_id": "!r:x", "kicked": 2}
    assert room.members[BOT] == "join"


async def test_running_again_kicks_only_who_is_left() -> None:
    room = Room({BOT: "join", "@a:x": "join"})
    step = EmptyRoom(name="empty", room="!r:x")
    await step.apply(context(room))
    room.members["@late:x"] = "join"
    assert (await step.apply(context(room)))["kicked"] == 1
    assert room.kicks == ["@a:x", "@late:x"]
