"""A small Guilds server built as the bot through the Client-Server API, from `guilds.layout`.

The module's integration tests need a server whose rooms look exactly like the bridge's, with
users holding different roles, without going through the provisioning API (which is tested on
its own). Everything here speaks plain Client-Server API with the appservice token.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote

import nio

from guilds.ids import RoomID, UserID
from guilds.layout import (
    auto_join_invite,
    channel_body,
    role_room_body,
    server_content,
    space_body,
    space_child,
)
from guilds.model import BUILTIN_ROLES, Permission, Role, Server, ServerState, order_key
from guilds.powerlevels import derive_power_levels
from guilds.rules import RoomKind
from guilds.vocabulary import ROLE_EVENT, SERVER_EVENT, ChannelKind
from tests.harness.stack import Stack, User

T = TypeVar("T")

ROOM_VERSION = "12"  # Synapse 1.163's default, which the test homeserver keeps

# Passes the moderators' thresholds (power 50) without manage_channels or connect: whatever
# Matrix's own auth lets it do beyond its permissions, only the module can refuse.
HELPER = Role(
    "helper",
    "Helper",
    None,
    50,
    400,
    frozenset({Permission.SEND_MESSAGES, Permission.VIDEO, Permission.CREATE_INVITES}),
)
# At power 0, so calls are open to power 0 in voice channels; everyone else lacks `connect`.
SPEAKER = Role("speaker", "Speaker", None, 0, 100, frozenset({Permission.CONNECT}))
# This server's `member` role cannot connect to calls: only speakers, moderators and admins can.
MEMBER = replace(
    next(r for r in BUILTIN_ROLES if r.role_id == "member"),
    permissions=frozenset({Permission.SEND_MESSAGES, Permission.VIDEO}),
)
ROLES = (
    *(r for r in BUILTIN_ROLES if r.role_id in ("admin", "moderator")),
    HELPER,
    SPEAKER,
    MEMBER,
)
ROLE_ROOM_ROLES = ("admin", "moderator", "helper", "speaker")


class MatrixError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.errcode = body.get("errcode")
        self.error = body.get("error", "")


class BotClient:
    """The bridge's bot, driven directly with the appservice token."""

    def __init__(self, stack: Stack) -> None:
        assert stack.http is not None
        self._http = stack.http
        self._url = stack.hs_url
        self._token = stack.config.appservice.registration.as_token
        self.user_id = stack.bot_user_id
        self.server_name = stack.server_name

    async def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        async with self._http.request(
            method,
            f"{self._url}/_matrix/client/v3{path}",
            json=body,
            headers={"Authorization": f"Bearer {self._token}"},
        ) as response:
            answer: dict[str, Any] = await response.json()
            if response.status != 200:
                raise MatrixError(response.status, answer)
            return answer

    async def create_room(self, body: dict[str, Any]) -> RoomID:
        return RoomID((await self.request("POST", "/createRoom", body))["room_id"])

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> str:
        path = f"/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key, safe='')}"
        return str((await self.request("PUT", path, content))["event_id"])

    async def invite(self, room_id: str, user_id: str, *, auto_join: bool = False) -> None:
        if auto_join:
            # Extra content travels only through the member state event, not /invite.
            content = {"membership": "invite", **auto_join_invite()}
            await self.put_state(room_id, "m.room.member", content, user_id)
        else:
            await self.request("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": user_id})

    async def kick(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"/rooms/{quote(room_id)}/kick", {"user_id": user_id})

    async def ban(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"/rooms/{quote(room_id)}/ban", {"user_id": user_id})

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        path = f"/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key, safe='')}"
        try:
            return await self.request("GET", path)
        except MatrixError as error:
            if error.errcode == "M_NOT_FOUND":
                return {}
            raise

    async def membership(self, room_id: str, user_id: str) -> str | None:
        membership = (await self.state(room_id, "m.room.member", user_id)).get("membership")
        return membership if isinstance(membership, str) else None


@dataclass
class GuildsServer:
    bot: BotClient
    server_id: RoomID
    general: RoomID
    staff: RoomID  # text, gated by the helper role (and admin)
    lounge: RoomID  # voice
    role_rooms: dict[str, RoomID]
    users: dict[str, User] = field(default_factory=dict)
    power_levels: dict[RoomID, dict[str, Any]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> User:
        return self.users[name]


async def join(stack: Stack, user: User, room_id: str) -> None:
    async with stack.nio_client(user) as client:
        response = await client.join(room_id)
        assert isinstance(response, nio.JoinResponse), (user.user_id, room_id, response)


# Who holds which roles (beyond `member`) in the built server; `owner` is the server's owner.
CAST: dict[str, tuple[str, ...]] = {
    "owner": ("admin",),
    "admin": ("admin",),
    "moderator": ("moderator",),
    "helper": ("helper",),
    "speaker": ("speaker",),
    "member": (),
    "banned": (),
}


async def build_guilds_server(stack: Stack, name: str = "Guilds test server") -> GuildsServer:
    """Create the space, its role rooms, `general` (default), `staff` (gated) and `lounge`."""
    bot = BotClient(stack)
    users = {who: await stack.register_user() for who in [*CAST, "outsider"]}
    owner = UserID(users["owner"].user_id)
    members = frozenset(UserID(users[who].user_id) for who in CAST if who != "banned")
    model = Server(
        server_id=RoomID("!placeholder"),
        name=name,
        topic="",
        icon=None,
        state=ServerState(owner, RoomID("!placeholder")),
        roles=ROLES,
        assignments={UserID(users[who].user_id): frozenset(held) for who, held in CAST.items()},
        members=members,
    )

    def levels(kind: RoomKind, channel_kind: ChannelKind | None = None) -> dict[str, Any]:
        return derive_power_levels(
            model,
            kind,
            bot=UserID(bot.user_id),
            room_version=ROOM_VERSION,
            channel_kind=channel_kind,
        )

    space_levels = levels(RoomKind.SPACE)
    server_id = await bot.create_room(
        space_body(name=name, topic="", icon=None, roles=list(ROLES), power_levels=space_levels)
    )
    role_rooms: dict[str, RoomID] = {}
    for role in ROLES:
        if role.role_id not in ROLE_ROOM_ROLES:
            continue
        room_id = await bot.create_room(
            role_room_body(server_id=server_id, role=role, power_levels=levels(RoomKind.ROLE_ROOM))
        )
        role_rooms[role.role_id] = room_id
        await bot.put_state(
            server_id, ROLE_EVENT, replace(role, room_id=room_id).content(), role.role_id
        )

    text_levels = levels(RoomKind.CHANNEL, ChannelKind.TEXT)
    voice_levels = levels(RoomKind.CHANNEL, ChannelKind.VOICE)
    channels: dict[str, RoomID] = {}
    for index, (channel, kind, default, gates, channel_levels) in enumerate(
        [
            ("general", ChannelKind.TEXT, True, None, text_levels),
            (
                "staff",
                ChannelKind.TEXT,
                False,
                [role_rooms["admin"], role_rooms["helper"]],
                text_levels,
            ),
            ("lounge", ChannelKind.VOICE, False, None, voice_levels),
        ]
    ):
        room_id = await bot.create_room(
            channel_body(
                server_id=server_id,
                name=channel,
                kind=kind,
                topic="",
                default=default,
                gate_rooms=gates,
                power_levels=channel_levels,
                via=bot.server_name,
            )
        )
        channels[channel] = room_id
        await bot.put_state(
            server_id,
            "m.space.child",
            space_child(order_key(index), bot.server_name, kind),
            room_id,
        )
    await bot.put_state(server_id, SERVER_EVENT, server_content(owner, channels["general"]))

    built = GuildsServer(
        bot,
        server_id,
        channels["general"],
        channels["staff"],
        channels["lounge"],
        role_rooms,
        users,
        {
            server_id: space_levels,
            channels["general"]: text_levels,
            channels["staff"]: text_levels,
            channels["lounge"]: voice_levels,
        },
    )
    for who, held in CAST.items():
        user = users[who]
        await bot.invite(server_id, user.user_id)
        await join(stack, user, server_id)
        for role_id in held:
            await bot.invite(role_rooms[role_id], user.user_id)
            await join(stack, user, role_rooms[role_id])
        await join(stack, user, channels["general"])
        await join(stack, user, channels["lounge"])
    for who in ("owner", "admin", "helper"):
        await join(stack, users[who], channels["staff"])
    await bot.ban(server_id, users["banned"].user_id)
    return built
