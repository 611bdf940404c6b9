"""A user's membership as the homeserver has it now (bridge/readback/current_membership.py), and
its two callers: SFU credentials (bridge/services/sfu.py) and redeeming an invite
(bridge/services/invites.py), which read it the same way and answer a room the bot has left the
same way (404 "No such …")."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

import pytest

from bridge.engine.matrix import MatrixClient, MatrixRequestError
from bridge.engine.migrations import migrate
from bridge.engine.store import Database
from bridge.errors import Forbidden, NotFound
from bridge.readback.current_membership import current_membership
from bridge.services.invites import Invites
from bridge.services.sfu import SfuAccess, SfuCredentials
from guilds.config import JanusSettings
from guilds.ids import RoomID, UserID
from guilds.model import BUILTIN_ROLES, Channel, Server, ServerState
from guilds.vocabulary import ChannelKind

SPACE, GENERAL, VOICE = RoomID("!space:x"), RoomID("!general:x"), RoomID("!voice:x")
OWNER, ANN = UserID("@owner:x"), UserID("@ann:x")
CODE = "abcdefghijkl"


def member_path(room_id: str, user: str) -> str:
    """The path of `user`'s member event in `room_id`, each id escaped whole."""
    return f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/m.room.member/" + quote(
        user, safe=""
    )


class Homeserver(MatrixClient):
    """Answers a member event's GET from `answers` (a content, or an error to raise); records
    every request and accepts any other."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("http://homeserver.invalid", "unused")
        self.answers = answers
        self.requests: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, **_: Any) -> Any:
        self.requests.append((method, path))
        if method == "GET":
            answer = self.answers[path]
            if isinstance(answer, Exception):
                raise answer
            return answer
        return {}


def error(status: int) -> MatrixRequestError:
    return MatrixRequestError(status, "M_SOMETHING", "as the homeserver said")


# -- the helper ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"membership": "join"}, "join"),
        ({"membership": "ban", "reason": "spam"}, "ban"),
        ({"membership": "leave"}, "leave"),
        # No member event: never was a member.
        (error(404), None),
        # A member event without a usable membership counts as none.
        ({"displayname": "Ann"}, None),
        ({"membership": 3}, None),
        (["not", "an", "object"], None),
    ],
)
async def test_the_membership_is_read_from_the_homeserver(
    answer: Any, expected: str | None
) -> None:
    homeserver = Homeserver({member_path(SPACE, ANN): answer})
    assert await current_membership(homeserver, SPACE, ANN, gone="No such thing") == expected


async def test_a_room_the_bot_has_left_is_gone_under_the_callers_word() -> None:
    homeserver = Homeserver({member_path(SPACE, ANN): error(403)})
    with pytest.raises(NotFound) as raised:
        await current_membership(homeserver, SPACE, ANN, gone="No such invite")
    assert raised.value.message == "No such invite"


@pytest.mark.parametrize("status", [429, 500, 400])
async def test_other_errors_propagate(status: int) -> None:
    homeserver = Homeserver({member_path(SPACE, ANN): error(status)})
    with pytest.raises(MatrixRequestError) as raised:
        await current_membership(homeserver, SPACE, ANN, gone="No such thing")
    assert raised.value.status == status


async def test_ids_are_escaped_in_the_path() -> None:
    room, user = RoomID("!a/b?c:x"), UserID("@ann#1:x")
    path = "/_matrix/client/v3/rooms/%21a%2Fb%3Fc%3Ax/state/m.room.member/%40ann%231%3Ax"
    homeserver = Homeserver({path: {"membership": "join"}})
    assert await current_membership(homeserver, room, user, gone="No such thing") == "join"


# -- SFU credentials ----------------------------------------------------------------------------
def voice_server() -> Server:
    return Server(
        server_id=SPACE,
        name="Server",
        topic="",
        icon=None,
        state=ServerState(OWNER, GENERAL),
        roles=BUILTIN_ROLES,
        channels=(
            Channel(GENERAL, "general", ChannelKind.TEXT, "", None, "000000", None, default=True),
            Channel(VOICE, "voice", ChannelKind.VOICE, "", None, "000001", None),
        ),
        assignments={},
        members=frozenset({OWNER, ANN}),
    )


def the_directory() -> Any:
    """Holds the one server, as the bridge's directory would."""
    return SimpleNamespace(get=lambda server_id: voice_server() if server_id == SPACE else None)


def credentials(homeserver: Homeserver) -> SfuCredentials:
    directory = the_directory()
    janus = JanusSettings("ws://127.0.0.1:1", "ws://127.0.0.1:1", secrets.token_hex(32), "key")
    return SfuCredentials(homeserver, directory, SfuAccess(janus), "http://guilds")


async def test_sfu_credentials_for_a_channel_the_bot_has_left_answer_no_such_channel() -> None:
    homeserver = Homeserver({member_path(VOICE, ANN): error(403)})
    with pytest.raises(NotFound) as raised:
        await credentials(homeserver).issue(SPACE, VOICE, ANN, {"device_id": "DEV"})
    assert raised.value.message == "No such channel"
    assert homeserver.requests == [("GET", member_path(VOICE, ANN))]


@pytest.mark.parametrize("answer", [error(404), {"membership": "leave"}, {"membership": "invite"}])
async def test_sfu_credentials_need_the_caller_joined_to_the_channel_now(answer: Any) -> None:
    homeserver = Homeserver({member_path(VOICE, ANN): answer})
    with pytest.raises(Forbidden, match="Join the channel's room before its call"):
        await credentials(homeserver).issue(SPACE, VOICE, ANN, {"device_id": "DEV"})


# -- redeeming an invite ------------------------------------------------------------------------
@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(f"sqlite:///{tmp_path / 'guilds.db'}")
    await migrate(database)
    await database.execute(
        "INSERT INTO invites"
        " (code, server_id, creator, created_at, expires_at, max_uses, uses, revoked_at)"
        " VALUES (?, ?, ?, 0, NULL, NULL, 0, NULL)",
        CODE,
        SPACE,
        OWNER,
    )
    try:
        yield database
    finally:
        await database.close()


def invites(db: Database, homeserver: Homeserver) -> Invites:
    directory = the_directory()
    servers = SimpleNamespace(directory=directory)
    return Invites(db=db, matrix=homeserver, servers=cast(Any, servers), public_url="http://g")


async def uses(db: Database) -> int:
    row = await db.fetchone("SELECT uses FROM invites WHERE code = ?", CODE)
    assert row is not None
    return int(row["uses"])


async def test_redeeming_an_invite_to_a_server_the_bot_has_left_answers_no_such_invite(
    db: Database,
) -> None:
    homeserver = Homeserver({member_path(SPACE, ANN): error(403)})
    with pytest.raises(NotFound) as raised:
        await invites(db, homeserver).redeem(CODE, ANN)
    assert raised.value.message == "No such invite"
    # Refused before a use was counted or an invitation sent.
    assert await uses(db) == 0
    assert [method for method, _ in homeserver.requests] == ["GET"]


async def test_redeeming_reads_the_membership_now_and_invites_a_stranger(db: Database) -> None:
    homeserver = Homeserver({member_path(SPACE, ANN): error(404)})
    assert await invites(db, homeserver).redeem(CODE, ANN) == SPACE
    assert await uses(db) == 1
    assert homeserver.requests[-1] == ("POST", "/_matrix/client/v3/rooms/%21space%3Ax/invite")


async def test_redeeming_as_a_member_sends_no_invitation(db: Database) -> None:
    homeserver = Homeserver({member_path(SPACE, ANN): {"membership": "join"}})
    assert await invites(db, homeserver).redeem(CODE, ANN) == SPACE
    assert [method for method, _ in homeserver.requests] == ["GET"]
