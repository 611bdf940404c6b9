"""Invite links: codes stored by the bridge, created, listed, revoked, previewed and redeemed.

A code names a server, and may expire or run out of uses. Redeeming one makes the bot invite the
caller to the server's space; the caller's own client then joins, and the Synapse module joins
them to the default channel. A use is counted once per user, in the same database transaction
that checks the code is still usable, so two people racing for the last use cannot both win.

A deleted server's invites are answered 404 M_NOT_FOUND, to preview and to redeem alike: the
server is gone from the directory the moment it is deleted, as if the code had never existed.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.engine.matrix import MatrixClient, MatrixRequestError, path_segment
from bridge.engine.store import Database, IntegrityError, Row
from bridge.errors import (
    Forbidden,
    InvalidParam,
    InviteExhausted,
    InviteExpired,
    InviteRevoked,
    LimitExceeded,
    NotFound,
)
from bridge.readback.current_membership import current_membership
from bridge.services.ratelimit import RateLimiter
from bridge.services.servers import Servers
from guilds.ids import RoomID, UserID
from guilds.model import Permission, Server
from guilds.permissions import require

log = logging.getLogger(__name__)

# secrets.token_urlsafe(9): 12 URL-safe characters, 72 random bits. Unguessable even without the
# redemption limit: a billion guesses a second would need about 150,000 years to find one code.
CODE_BYTES = 9
# Anything else in a URL is not one of our codes; refused without a database round trip.
CODE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_USES_LIMIT = 1_000_000
MIN_EXPIRES_IN_S = 60
MAX_EXPIRES_IN_S = 365 * 24 * 3600
# The server icon on the landing page: a thumbnail of this size, of an image type only.
ICON_SIZE = 256
ICON_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
ICONS_KEPT = 64
# Per user. Failed redemptions count too, so guessing codes stays slow.
REDEEM_BURST, REDEEM_PERIOD_S = 10, 60.0
CREATE_BURST, CREATE_PERIOD_S = 20, 60.0

_BY_CODE = (
    "SELECT code, server_id, creator, created_at, expires_at, max_uses, uses, revoked_at"
    " FROM invites WHERE code = ?"
)
_BY_SERVER = (
    "SELECT code, server_id, creator, created_at, expires_at, max_uses, uses, revoked_at"
    " FROM invites WHERE server_id = ? ORDER BY created_at DESC, code"
)
_INSERT = (
    "INSERT INTO invites"
    " (code, server_id, creator, created_at, expires_at, max_uses, uses, revoked_at)"
    " VALUES (?, ?, ?, ?, ?, ?, 0, NULL)"
)


class InviteStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class Invite:
    """One stored invite code; times are milliseconds since the epoch."""

    code: str
    server_id: RoomID
    creator: UserID
    created_at: int
    expires_at: int | None
    max_uses: int | None
    uses: int
    revoked_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> Invite:
        return cls(
            code=row["code"],
            server_id=RoomID(row["server_id"]),
            creator=UserID(row["creator"]),
            created_at=int(row["created_at"]),
            expires_at=None if row["expires_at"] is None else int(row["expires_at"]),
            max_uses=None if row["max_uses"] is None else int(row["max_uses"]),
            uses=int(row["uses"]),
            revoked_at=None if row["revoked_at"] is None else int(row["revoked_at"]),
        )

    def status(self, now_ms: int) -> InviteStatus:
        """Why the code can no longer be used, checked in this order; VALID if it can."""
        if self.revoked_at is not None:
            return InviteStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now_ms:
            return InviteStatus.EXPIRED
        if self.max_uses is not None and self.uses >= self.max_uses:
            return InviteStatus.EXHAUSTED
        return InviteStatus.VALID


_REFUSALS = {
    InviteStatus.REVOKED: InviteRevoked,
    InviteStatus.EXPIRED: InviteExpired,
    InviteStatus.EXHAUSTED: InviteExhausted,
}


def _optional_int(body: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python, but `true` is not a number of uses in JSON.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidParam(f"{key} must be a whole number from {low} to {high}")
    return value


def invite_limits(body: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(max_uses, expires_in_s) of a create request, or InvalidParam; None means unlimited."""
    return (
        _optional_int(body, "max_uses", 1, MAX_USES_LIMIT),
        _optional_int(body, "expires_in_s", MIN_EXPIRES_IN_S, MAX_EXPIRES_IN_S),
    )


class Invites:
    def __init__(
        self,
        *,
        db: Database,
        matrix: MatrixClient,
        servers: Servers,
        public_url: str,
        clock: Callable[[], float] = time.time,
        create_limiter: RateLimiter | None = None,
        redeem_limiter: RateLimiter | None = None,
    ) -> None:
        self.db = db
        self.matrix = matrix
        self.servers = servers
        self.public_url = public_url.rstrip("/")
        self._icons: dict[str, tuple[bytes, str]] = {}  # mxc URI → thumbnail, oldest first
        self._clock = clock
        self.create_limiter = create_limiter or RateLimiter(
            burst=CREATE_BURST, period_s=CREATE_PERIOD_S
        )
        self.redeem_limiter = redeem_limiter or RateLimiter(
            burst=REDEEM_BURST, period_s=REDEEM_PERIOD_S
        )

    def url(self, code: str) -> str:
        """The landing page of a code (served by the web UI)."""
        return f"{self.public_url}/invite/{code}"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @staticmethod
    def _limit(limiter: RateLimiter, user: UserID, doing: str) -> None:
        wait_ms = limiter.take(user)
        if wait_ms is not None:
            raise LimitExceeded(
                f"Too many attempts at {doing}; try again later", retry_after_ms=wait_ms
            )

    def _managed(self, server_id: str, actor: UserID) -> Server:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.CREATE_INVITES, "managing invites")
        return server

    async def _get(self, code: str) -> Invite | None:
        if not CODE_RE.fullmatch(code):
            return None
        row = await self.db.fetchone(_BY_CODE, code)
        return None if row is None else Invite.from_row(row)

    # -- managing ------------------------------------------------------------------------------

    async def create(self, server_id: str, actor: UserID, body: Mapping[str, Any]) -> Invite:
        self._limit(self.create_limiter, actor, "creating invites")
        server = self._managed(server_id, actor)
        # What the creator leaves out, the policies.invites defaults fill in.
        defaults = self.servers.policies.invites
        body = {"max_uses": defaults.max_uses, "expires_in_s": defaults.expires_in_s, **body}
        max_uses, expires_in_s = invite_limits(body)
        now = self._now_ms()
        expires_at = None if expires_in_s is None else now + expires_in_s * 1000
        # A collision of 72 random bits will not happen; if it ever did, draw again.
        for _ in range(3):
            code = secrets.token_urlsafe(CODE_BYTES)
            try:
                await self.db.execute(
                    _INSERT,
                    code,
                    server.server_id,
                    actor,
                    now,
                    expires_at,
                    max_uses,
                )
            except IntegrityError:
                continue
            log.info("%s created an invite to %s", actor, server.server_id)
            return Invite(code, server.server_id, actor, now, expires_at, max_uses, 0, None)
        raise RuntimeError("could not draw an unused invite code")

    async def of_server(self, server_id: str, actor: UserID) -> list[Invite]:
        server = self._managed(server_id, actor)
        rows = await self.db.fetchall(
            _BY_SERVER,
            server.server_id,
        )
        return [Invite.from_row(row) for row in rows]

    async def revoke(self, server_id: str, actor: UserID, code: str) -> None:
        """Revoke a code of this server; revoking it again changes nothing."""
        server = self._managed(server_id, actor)
        invite = await self._get(code)
        if invite is None or invite.server_id != server.server_id:
            raise NotFound("No such invite in this server")
        await self.db.execute(
            "UPDATE invites SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL",
            self._now_ms(),
            code,
        )
        log.info("%s revoked an invite to %s", actor, server.server_id)

    # -- using ---------------------------------------------------------------------------------

    async def preview(self, code: str) -> tuple[Invite, Server, InviteStatus]:
        """What the landing page shows, for anyone holding the code (no account needed)."""
        invite = await self._get(code)
        server = None if invite is None else self.servers.directory.get(invite.server_id)
        if invite is None or server is None:
            raise NotFound("No such invite")
        return invite, server, invite.status(self._now_ms())

    async def icon(self, code: str) -> tuple[bytes, str]:
        """The server's icon for the landing page of a usable code (bytes, content type).

        Media needs a token since Matrix 1.11, and a visitor has none: the bot fetches a
        thumbnail. An mxc URI names immutable content, so each is fetched once (a few kept).
        """
        invite, server, status = await self.preview(code)
        if status != InviteStatus.VALID or not server.icon:
            raise NotFound("No icon for this invite")
        cached = self._icons.get(server.icon)
        if cached is None:
            body, kind = await self.matrix.thumbnail(server.icon, ICON_SIZE)
            if kind not in ICON_TYPES:
                raise NotFound("No icon for this invite")
            cached = (body, kind)
            if len(self._icons) >= ICONS_KEPT:
                self._icons.pop(next(iter(self._icons)))
            self._icons[server.icon] = cached
        return cached

    async def redeem(self, code: str, user: UserID) -> RoomID:
        """Have the bot invite `user` to the code's server; count the use once per user."""
        self._limit(self.redeem_limiter, user, "redeeming invites")
        invite = await self._get(code)
        server = None if invite is None else self.servers.directory.get(invite.server_id)
        if invite is None or server is None:
            raise NotFound("No such invite")
        # Asked of the homeserver, not the directory: a ban or a join made a moment ago counts.
        membership = await self._membership(server.server_id, user)
        counted = await self._count_use(code, user, membership)
        if membership == "join":
            return server.server_id
        try:
            await self.matrix.request(
                "POST",
                f"/_matrix/client/v3/rooms/{path_segment(server.server_id)}/invite",
                json={"user_id": user},
            )
        except Exception as exc:
            # The use was not delivered: give it back, so a failed invite costs the server nothing.
            if counted:
                await self._uncount_use(code, user)
            if isinstance(exc, MatrixRequestError) and exc.status == 403:
                now = await self._membership(server.server_id, user)
                if now == "join":
                    return server.server_id
                if now == "ban":
                    raise Forbidden("You are banned from this server") from exc
                raise Forbidden(f"The homeserver refused the invite: {exc.message}") from exc
            raise
        log.info("%s redeemed an invite to %s", user, server.server_id)
        return server.server_id

    async def _membership(self, server_id: RoomID, user: UserID) -> str | None:
        return await current_membership(self.matrix, server_id, user, gone="No such invite")

    async def _count_use(self, code: str, user: UserID, membership: str | None) -> bool:
        """Check the code and count the use, in one transaction; True if a use was counted.

        Refusals come in API.md's order (revoked, expired, exhausted), then a ban. A user who
        redeemed this code before (and has perhaps not joined yet) already holds their use, so
        an exhausted code still lets them through; neither they nor a member cost another use.
        """
        now = self._now_ms()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(_BY_CODE, code)
            if row is None:
                raise NotFound("No such invite")
            status = Invite.from_row(row).status(now)
            if status in (InviteStatus.REVOKED, InviteStatus.EXPIRED):
                raise _REFUSALS[status]()
            before = await tx.fetchone(
                "SELECT 1 AS seen FROM invite_redemptions WHERE code = ? AND user_id = ?",
                code,
                user,
            )
            if status == InviteStatus.EXHAUSTED and before is None:
                raise InviteExhausted()
            if membership == "ban":
                raise Forbidden("You are banned from this server")
            if membership == "join" or before is not None:
                return False
            # Conditional, so that even another process racing for the last use cannot overshoot.
            changed = await tx.execute(
                "UPDATE invites SET uses = uses + 1 WHERE code = ? AND revoked_at IS NULL"
                " AND (expires_at IS NULL OR expires_at > ?)"
                " AND (max_uses IS NULL OR uses < max_uses)",
                code,
                now,
            )
            if changed != 1:
                raise InviteExhausted()
            await tx.execute(
                "INSERT INTO invite_redemptions (code, user_id, redeemed_at) VALUES (?, ?, ?)",
                code,
                user,
                now,
            )
            return True

    async def _uncount_use(self, code: str, user: UserID) -> None:
        try:
            async with self.db.transaction() as tx:
                removed = await tx.execute(
                    "DELETE FROM invite_redemptions WHERE code = ? AND user_id = ?", code, user
                )
                if removed:
                    await tx.execute(
                        "UPDATE invites SET uses = uses - 1 WHERE code = ? AND uses > 0", code
                    )
        except Exception:
            # The caller's failure is the one to report; a use lost is the lesser harm.
            log.exception("Could not give back a use of an invite to %s", user)
