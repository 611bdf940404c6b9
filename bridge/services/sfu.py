"""Access to the SFU (Janus VideoRoom) of voice and video channels: credentials and kicks.

As LiveKit's JWT service does for Element Call, the bridge hands a caller short-lived
credentials for one channel's SFU room only after checking, at that moment, that the caller may
enter the channel and has its `connect` permission, and that the homeserver has them joined to
the channel's room. Janus checks what the bridge signed; the bridge never relays media.

Why Janus's signed tokens (core `token_auth_secret`) rather than stored tokens or VideoRoom's
per-room `allowed` lists: a signed token is stateless like a JWT. The bridge makes it with a
secret it shares with Janus; it expires on its own; it names the one room it opens (`room=<id>`,
checked by rooms created with `signed_tokens`); and it needs neither Janus's admin API (off)
nor a list to keep in step across restarts of either process. Every request to Janus, keepalives
included, needs a valid token, so a client must come back for fresh credentials (every minute,
`TOKEN_LIFETIME_S` = 3 minutes) and one refused them is out of Janus soon after, even if a kick
were missed.

Room ids are HMAC-SHA256(secret, Matrix room id): stable across restarts of Janus and of the
bridge (the room is created again when missing), and not guessable without the secret. Each room
has a secret of its own, derived the same way, which `kick` needs; only the bridge knows it.

Participant ids are chosen by the bridge and name who they are: `<user>.<device>.<nonce>.<mac>`
(base64url parts; the MAC over the room, user, device and nonce). When a user leaves, is kicked
or banned from a channel's room, the bridge lists the Janus room's participants and kicks theirs,
and any participant whose id it did not sign. Rooms require `require_pvtid`, so a kicked
publisher's subscriptions stop too: their media stops both ways.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import MatrixClient
from bridge.errors import Forbidden, InvalidParam, NoSfu, NotFound, Unavailable
from bridge.readback.current_membership import current_membership
from bridge.readback.directory import ServerDirectory
from guilds.config import JanusSettings
from guilds.ids import RoomID, UserID
from guilds.model import Channel, Permission, Server
from guilds.permissions import may_enter, permissions_of

log = logging.getLogger(__name__)

PLUGIN = "janus.plugin.videoroom"
# The focus type Guilds members write as `focus_active` while on the Janus SFU (docs/CALLS.md).
FOCUS_TYPE = "org.guilds.janus"
TOKEN_LIFETIME_S = 180
# The bridge's own tokens, for its requests to Janus (create, list, kick).
BRIDGE_TOKEN_LIFETIME_S = 60
JANUS_TIMEOUT_S = 10.0
# A video channel holds Discord's 25 cameras with room to spare; voice channels 99 speakers.
MAX_PUBLISHERS = 100
MAX_DEVICE_ID = 255


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(
    secret: str, realm: str, descriptors: tuple[str, ...], lifetime_s: int, now: float
) -> str:
    """A Janus signed token: `<expiry>,<realm>,<descriptors…>:<base64 HMAC-SHA1 of the rest>`.

    Janus's core checks tokens of realm `janus` naming the plugin; the VideoRoom plugin checks
    the `token` of a join against realm `janus.plugin.videoroom` naming `room=<id>`."""
    data = ",".join((str(int(now + lifetime_s)), realm, *descriptors))
    mac = hmac.new(secret.encode(), data.encode(), hashlib.sha1).digest()
    return f"{data}:{base64.b64encode(mac).decode()}"


@dataclass(frozen=True)
class Participant:
    user_id: str
    device_id: str


class SfuAccess:
    """Derives room ids and secrets, signs tokens and participant ids, and talks to Janus."""

    def __init__(self, settings: JanusSettings) -> None:
        self.settings = settings
        self._key = settings.token_secret.encode()
        # Rooms known to exist in the Janus that runs now (forgotten when a request finds one
        # missing: Janus restarted).
        self._created: set[str] = set()
        self._lock = asyncio.Lock()

    # -- derived names -----------------------------------------------------------------------
    def _derive(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}\n{value}".encode(), hashlib.sha256).hexdigest()

    def room_of(self, room_id: str) -> str:
        return self._derive("room", room_id)[:32]

    def _room_secret(self, sfu_room: str) -> str:
        return self._derive("room-secret", sfu_room)

    def _participant_mac(self, sfu_room: str, user: str, device: str, nonce: str) -> str:
        return self._derive("participant", f"{sfu_room}\n{user}\n{device}\n{nonce}")[:32]

    def participant_id(self, sfu_room: str, user: str, device: str) -> str:
        nonce = secrets.token_hex(8)
        mac = self._participant_mac(sfu_room, user, device, nonce)
        return f"{_b64(user.encode())}.{_b64(device.encode())}.{nonce}.{mac}"

    def read_participant(self, sfu_room: str, participant_id: str) -> Participant | None:
        """Who a participant id was signed for, or None when the bridge did not sign it."""
        parts = participant_id.split(".")
        if len(parts) != 4:
            return None
        try:
            user, device = _unb64(parts[0]).decode(), _unb64(parts[1]).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        expected = self._participant_mac(sfu_room, user, device, parts[2])
        if not hmac.compare_digest(expected, parts[3]):
            return None
        return Participant(user, device)

    def api_token(self, now: float) -> str:
        """The token for every request to Janus's API (sessions, handles, keepalives)."""
        return sign_token(self.settings.token_secret, "janus", (PLUGIN,), TOKEN_LIFETIME_S, now)

    def room_token(self, sfu_room: str, now: float) -> str:
        """The token a join names: this one room, nothing else."""
        return sign_token(
            self.settings.token_secret, PLUGIN, (f"room={sfu_room}",), TOKEN_LIFETIME_S, now
        )

    # -- Janus requests --------------------------------------------------------------------------
    async def _videoroom(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send VideoRoom requests on one short Janus session; each answer's plugin data."""
        token = sign_token(
            self.settings.token_secret, "janus", (PLUGIN,), BRIDGE_TOKEN_LIFETIME_S, time.time()
        )
        timeout = aiohttp.ClientTimeout(total=JANUS_TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.ws_connect(self.settings.url, protocols=("janus-protocol",)) as ws,
            ):

                async def call(message: dict[str, Any]) -> dict[str, Any]:
                    transaction = secrets.token_hex(8)
                    await ws.send_json(message | {"transaction": transaction, "token": token})
                    while True:
                        answer = await ws.receive_json()
                        if answer.get("transaction") != transaction or answer.get("janus") == "ack":
                            continue
                        if answer.get("janus") == "error":
                            raise Unavailable(
                                "The SFU refused a request", retry_after_ms=2_000
                            ) from RuntimeError(str(answer.get("error")))
                        return dict(answer)

                session = (await call({"janus": "create"}))["data"]["id"]
                handle = (await call({"janus": "attach", "plugin": PLUGIN, "session_id": session}))[
                    "data"
                ]["id"]
                results = []
                for body in bodies:
                    answer = await call(
                        {
                            "janus": "message",
                            "session_id": session,
                            "handle_id": handle,
                            "body": body,
                        }
                    )
                    results.append(dict(answer.get("plugindata", {}).get("data", {})))
                await call({"janus": "destroy", "session_id": session})
                return results
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.warning("SFU request failed: %s", type(exc).__name__)
            raise Unavailable("The SFU is not reachable", retry_after_ms=2_000) from exc

    async def ensure_room(self, sfu_room: str, description: str) -> None:
        """Create the VideoRoom room when Janus does not have it (first use, Janus restarted)."""
        async with self._lock:
            if sfu_room in self._created:
                (exists,) = await self._videoroom([{"request": "exists", "room": sfu_room}])
                if exists.get("exists") is True:
                    return
                self._created.discard(sfu_room)
            answers = await self._videoroom(
                [
                    {"request": "exists", "room": sfu_room},
                    {
                        "request": "create",
                        "room": sfu_room,
                        "admin_key": self.settings.admin_key,
                        "description": description[:100],
                        "secret": self._room_secret(sfu_room),
                        "is_private": True,
                        "signed_tokens": True,
                        "require_pvtid": True,
                        "notify_joining": True,
                        "publishers": MAX_PUBLISHERS,
                        "audiocodec": "opus",
                        "videocodec": "vp8",
                        "bitrate": 600_000,
                        "fir_freq": 10,
                        "audiolevel_ext": True,
                        "audiolevel_event": False,
                        "permanent": False,
                    },
                ]
            )
            created = answers[1]
            # 427: the room exists already (another request, or it survived); that is fine.
            if created.get("videoroom") != "created" and created.get("error_code") != 427:
                raise Unavailable("The SFU could not open the call", retry_after_ms=2_000)
            self._created.add(sfu_room)

    async def kick_user(self, room_id: str, user_id: str | None) -> int:
        """Kick every participant of a channel's SFU room that belongs to `user_id`, and any
        the bridge did not sign (with `user_id` None, only those); how many were kicked."""
        sfu_room = self.room_of(room_id)
        secret = self._room_secret(sfu_room)
        (listing,) = await self._videoroom(
            [{"request": "listparticipants", "room": sfu_room, "secret": secret}]
        )
        if listing.get("videoroom") != "participants":
            return 0  # no such room: nobody to kick
        doomed = []
        for entry in listing.get("participants", []):
            pid = str(entry.get("id", ""))
            who = self.read_participant(sfu_room, pid)
            if who is None or who.user_id == user_id:
                doomed.append(pid)
        if doomed:
            await self._videoroom(
                [{"request": "kick", "room": sfu_room, "secret": secret, "id": p} for p in doomed]
            )
        return len(doomed)


class SfuCredentials:
    """The provisioning API's side: who may have credentials for which channel's SFU room.

    Without an SFU (`access` None) the route still answers a caller who may not see the server
    or the channel as it does everywhere (404 "No such …"), and everyone else `GUILDS_NO_SFU`.
    """

    def __init__(
        self,
        matrix: MatrixClient,
        directory: ServerDirectory,
        access: SfuAccess | None,
        public_url: str,
    ) -> None:
        self._matrix = matrix
        self._directory = directory
        self.access = access
        self._public_url = public_url
        # Kicks under way; the inbox does not wait for Janus.
        self._kicks: set[asyncio.Task[None]] = set()

    def _channel(self, server_id: str, channel_id: str, user: UserID) -> tuple[Server, Channel]:
        server = self._directory.get(RoomID(server_id))
        if server is None or not server.is_member(user):
            raise NotFound("No such server")
        channel = next((c for c in server.channels if c.channel_id == channel_id), None)
        # A channel the caller may not enter answers as one that does not exist (API.md).
        if channel is None or not may_enter(server, user, channel):
            raise NotFound("No such channel")
        return server, channel

    async def issue(
        self,
        server_id: str,
        channel_id: str,
        user: UserID,
        body: dict[str, Any],
        *,
        session_device: str | None = None,
    ) -> dict[str, Any]:
        """Credentials for the caller's `device_id`, which must be the device of the token they
        called with (`session_device`) when the homeserver names one: a participant id names
        the device it speaks for in the call's membership, so no session may speak for another
        of the same user's devices."""
        server, channel = self._channel(server_id, channel_id, user)
        access = self.access
        if access is None:
            raise NoSfu()
        device_id = body.get("device_id")
        if not isinstance(device_id, str) or not 1 <= len(device_id) <= MAX_DEVICE_ID:
            raise InvalidParam("device_id must be a string of 1 to 255 characters")
        if session_device is not None and device_id != session_device:
            raise Forbidden("device_id must be the device your access token was issued to")
        if not channel.kind.has_calls:
            raise InvalidParam("Calls can only be joined in voice and video channels")
        if Permission.CONNECT not in permissions_of(server, user):
            raise Forbidden("You need the connect permission to join this channel's call")
        # Asked of the homeserver, not the directory: it may not have seen a kick yet.
        joined = await current_membership(
            self._matrix, channel.channel_id, user, gone="No such channel"
        )
        if joined != "join":
            raise Forbidden("Join the channel's room before its call")
        sfu_room = access.room_of(channel.channel_id)
        await access.ensure_room(sfu_room, channel.name)
        # Someone who joined with a valid token under an id the bridge did not sign is found
        # whenever anyone asks for credentials (at least once a minute while a call lasts).
        self._spawn_kick(channel.channel_id, None)
        now = time.time()
        return {
            "focus": {"type": FOCUS_TYPE, "url": self._public_url},
            "room": sfu_room,
            "participant_id": access.participant_id(sfu_room, user, device_id),
            "token": access.api_token(now),
            "room_token": access.room_token(sfu_room, now),
            "expires_at": int((now + TOKEN_LIFETIME_S) * 1000),
        }

    async def handle_member(self, event: InboxEvent) -> None:
        """Inbox handler for room membership: out of a channel's room, out of its SFU room.

        The kick runs beside the inbox, which never waits for Janus."""
        if event.content.get("membership") not in ("leave", "ban") or event.state_key is None:
            return
        room_id = RoomID(event.room_id)
        server_id = self._directory.server_of(room_id)
        server = self._directory.get(server_id) if server_id is not None else None
        if server is None:
            return
        channel = next((c for c in server.channels if c.channel_id == room_id), None)
        if channel is None or not channel.kind.has_calls:
            return
        self._spawn_kick(room_id, event.state_key)

    def _spawn_kick(self, room_id: str, user_id: str | None) -> None:
        task = asyncio.create_task(self._kick(room_id, user_id))
        self._kicks.add(task)
        task.add_done_callback(self._kicks.discard)

    async def _kick(self, room_id: str, user_id: str | None) -> None:
        if self.access is None:
            return
        try:
            kicked = await self.access.kick_user(room_id, user_id)
        except Unavailable:
            # Janus down: its sessions went with it, and credentials are refused from now on.
            return
        if kicked:
            log.info("Removed %d participant(s) from a channel's SFU room", kicked)

    async def stop(self) -> None:
        for task in list(self._kicks):
            task.cancel()
        await asyncio.gather(*self._kicks, return_exceptions=True)
