"""Member operations of the provisioning API: the member list, role grants, kicks and bans.

Each check is a pure rule (guilds.permissions), each change a journaled plan
(bridge/plans/roles.py) that cascades over every room of the server and ends with every room's
power levels matching the roles.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bridge.engine.steps import Plan, membership_of
from bridge.errors import Conflict, Forbidden, InvalidParam, NotFound
from bridge.plans.roles import (
    ban_plan,
    grant_plan,
    kick_plan,
    revoke_plan,
    unban_plan,
    with_assignment,
    without_member,
)
from bridge.services.servers import Servers
from guilds.ids import RoomID, UserID
from guilds.model import BuiltinRole, Permission, Role, Server
from guilds.permissions import MemberAction, highest_position, may_act_on, may_grant, require
from guilds.snapshot import banned

log = logging.getLogger(__name__)

DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 500
MAX_REASON: Final = 512
# How long a role grant waits for the module's auto-join to reach the bridge, so the answer
# shows the role; past it the answer shows the member as they are (the join still lands).
GRANT_SETTLE_S: Final = 5.0


@dataclass(frozen=True)
class MemberPage:
    members: list[tuple[UserID, Mapping[str, Any]]]
    next: str | None


def _sort_key(server: Server, user: UserID) -> tuple[int, str]:
    return (-highest_position(server, user), user)


def _token(key: tuple[int, str]) -> str:
    raw = json.dumps([key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _from_token(token: str) -> tuple[int, str]:
    """The sort key a `from` token resumes after; InvalidParam when it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParam("from is not a token this server gave out.") from None
    if (
        not isinstance(key, list)
        or len(key) != 2
        or not isinstance(key[0], int)
        or isinstance(key[0], bool)
        or not isinstance(key[1], str)
    ):
        raise InvalidParam("from is not a token this server gave out.")
    return (key[0], key[1])


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidParam(f"limit must be an integer from 1 to {MAX_PAGE}.")
    return int(value)


def parse_reason(body: Mapping[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise InvalidParam(f"reason must be a string of at most {MAX_REASON} characters.")
    return reason or None


def _looks_like_user_id(value: str) -> bool:
    localpart, sep, domain = value[1:].partition(":")
    return value.startswith("@") and bool(localpart) and bool(sep) and bool(domain)


class Members:
    def __init__(self, *, servers: Servers) -> None:
        # The directory, the bot and every plan's rooms (`servers.rooms`) come with `servers`.
        self.servers = servers
        self.journal = servers.journal
        self.directory = servers.directory
        self.bot = servers.bot
        # The member order of each server's current model (models are immutable and replaced
        # when the server changes), so a page costs a slice, not a sort of every member.
        self._orders: dict[RoomID, tuple[Server, list[UserID], list[tuple[int, str]]]] = {}

    # -- reading -------------------------------------------------------------------------------

    def page(self, server_id: str, actor: UserID, limit: int, start: str | None) -> MemberPage:
        """Members in a stable order (highest role first, then user id), `limit` at a time.

        `from` names the last member of the previous page by its sort key, so a member who
        joins or leaves between pages shifts nothing: no duplicates, no gaps among the rest.
        """
        server = self.servers.visible(server_id, actor)
        after = _from_token(start) if start is not None else None
        users, keys = self._order(server)
        first = bisect.bisect_right(keys, after) if after is not None else 0
        chunk = users[first : first + limit]
        next_token = _token(keys[first + limit - 1]) if len(users) - first > limit else None
        space = self.directory.states().get(server.server_id, {})
        return MemberPage([(u, space.get(("m.room.member", u), {})) for u in chunk], next_token)

    def _order(self, server: Server) -> tuple[list[UserID], list[tuple[int, str]]]:
        """The server's members and owner sorted by `_sort_key`, with their keys."""
        cached = self._orders.get(server.server_id)
        if cached is not None and cached[0] is server:
            return cached[1], cached[2]
        ordered = sorted(
            ((_sort_key(server, u), u) for u in server.members | {server.state.owner}),
        )
        # Only for servers held in full: a compacted (or deleted) server's order would keep
        # its whole model alive.
        for held in [sid for sid in self._orders if not self.directory.is_loaded(sid)]:
            del self._orders[held]
        users, keys = [u for _, u in ordered], [k for k, _ in ordered]
        self._orders[server.server_id] = (server, users, keys)
        return users, keys

    def member(
        self, server_id: str, actor: UserID, user: UserID
    ) -> tuple[Server, Mapping[str, Any]]:
        server = self.servers.visible(server_id, actor)
        if not server.is_member(user):
            raise NotFound("No such member")
        content = self.directory.states().get(server.server_id, {}).get(("m.room.member", user))
        return server, content or {}

    def bans(self, server_id: str, actor: UserID) -> list[tuple[UserID, str | None]]:
        """Who is banned from the server, with the reason given (ban_members: those who may
        lift a ban see the list), in user id order."""
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.BAN_MEMBERS, "viewing bans")
        space = self.directory.states().get(server.server_id, {})
        found: list[tuple[UserID, str | None]] = []
        for user in sorted(banned(space)):
            reason = space.get(("m.room.member", user), {}).get("reason")
            found.append((user, reason if isinstance(reason, str) and reason else None))
        return found

    # -- roles ---------------------------------------------------------------------------------

    def _role_change(
        self, server_id: str, actor: UserID, user: UserID, role_id: str, *, grant: bool
    ) -> tuple[Server, Role]:
        """Check a grant or removal; return the server and the role."""
        server = self.servers.visible(server_id, actor)
        doing = "granting roles" if grant else "removing roles"
        require(server, actor, Permission.MANAGE_ROLES, doing)
        role = server.role(role_id)
        if role is None:
            raise NotFound("No such role")
        if not server.is_member(user):
            raise NotFound("No such member")
        if role.role_id == BuiltinRole.MEMBER:
            raise InvalidParam("Everyone has the member role; it cannot be granted or removed.")
        owner = server.state.owner
        if user == owner and (actor != owner or (not grant and role.role_id == BuiltinRole.ADMIN)):
            raise Conflict("The owner's roles cannot be changed: the owner is always an admin.")
        refusal = may_act_on(server, actor, user, MemberAction.CHANGE_ROLES) or may_grant(
            server, actor, role
        )
        if refusal is not None:
            raise Forbidden(refusal)
        if role.room_id is None:
            raise Conflict(f"The role {role.name!r} has no role room; it cannot be granted.")
        return server, role

    async def grant(self, server_id: str, actor: UserID, user: UserID, role_id: str) -> None:
        server, role = self._role_change(server_id, actor, user, role_id, grant=True)
        if role.role_id in server.assignments.get(user, frozenset()):
            return  # already held: nothing changes
        after = with_assignment(server, user, role.role_id, held=True)
        plan = grant_plan(
            after,
            user,
            role,
            rooms=self.servers.rooms.of(server),
        )
        await self._execute("grant_role", plan, server.server_id)

        def holds(s: Server) -> bool:
            return role.role_id in s.assignments.get(user, frozenset())

        if await self._settled(server.server_id, holds):
            # Anything derived meanwhile from a model without the join is put right now.
            await self.servers.sync_power_levels(server.server_id)
        log.info("Granted %s to %s in %s", role.role_id, user, server.server_id)

    async def revoke(self, server_id: str, actor: UserID, user: UserID, role_id: str) -> None:
        server, role = self._role_change(server_id, actor, user, role_id, grant=False)
        states = self.directory.states()
        assert role.room_id is not None
        held = any(
            states.get(room, {}).get(("m.room.member", user), {}).get("membership")
            in ("join", "invite")
            for room in role.room_ids
        )
        if not held:
            # The directory may not have the invite or join of a grant made a moment ago (its
            # transaction still on its way): ask the homeserver before answering "not held".
            held = await membership_of(self.servers.matrix, role.room_id, user) in (
                "join",
                "invite",
            )
        if not held:
            return  # not held: nothing changes
        after = with_assignment(server, user, role.role_id, held=False)
        plan = revoke_plan(
            after,
            user,
            role,
            rooms=self.servers.rooms.of(server),
        )
        await self._execute("revoke_role", plan, server.server_id)
        # The kick is done on the homeserver: read the role room back rather than wait.
        await self.directory.refresh(server.server_id, list(role.room_ids))
        log.info("Removed %s from %s in %s", role.role_id, user, server.server_id)

    # -- kicks and bans ------------------------------------------------------------------------

    def _target(self, server: Server, actor: UserID, user: UserID, action: MemberAction) -> None:
        if user == server.state.owner:
            done = "banned" if action is MemberAction.BAN else "kicked"
            raise Conflict(f"The server's owner cannot be {done}.")
        if user == self.bot:
            raise Conflict("The Guilds bot runs this server; it cannot be removed from it.")
        refusal = may_act_on(server, actor, user, action)
        if refusal is not None:
            raise Forbidden(refusal)

    async def kick(
        self, server_id: str, actor: UserID, user: UserID, body: Mapping[str, Any]
    ) -> None:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.KICK_MEMBERS, "kicking members")
        reason = parse_reason(body)
        if not server.is_member(user):
            raise NotFound("No such member")
        self._target(server, actor, user, MemberAction.KICK)
        await self._remove("kick_member", kick_plan, server, user, reason)
        log.info("Kicked %s from %s", user, server.server_id)

    async def ban(
        self, server_id: str, actor: UserID, user: UserID, body: Mapping[str, Any]
    ) -> None:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.BAN_MEMBERS, "banning members")
        reason = parse_reason(body)
        if not _looks_like_user_id(user):
            raise InvalidParam("That is not a Matrix user id.")
        # Anyone may be banned, member or not: a ban ahead of a first join keeps them out too.
        self._target(server, actor, user, MemberAction.BAN)
        await self._remove("ban_member", ban_plan, server, user, reason)
        log.info("Banned %s from %s", user, server.server_id)

    async def _remove(
        self,
        kind: str,
        plan_for: Callable[..., Plan],
        server: Server,
        user: UserID,
        reason: str | None,
    ) -> None:
        """Take `user` out of every room of the server with `plan_for` (kick_plan, ban_plan)."""
        plan = plan_for(
            without_member(server, user),
            user,
            reason,
            rooms=self.servers.rooms.of(server),
        )
        await self._execute(kind, plan, server.server_id)
        await self._reread_memberships(server)

    async def unban(self, server_id: str, actor: UserID, user: UserID) -> None:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.BAN_MEMBERS, "unbanning members")
        states = self.directory.states()
        if user not in banned(states.get(server.server_id, {})):
            raise NotFound("That user is not banned from this server")
        refusal = may_act_on(server, actor, user, MemberAction.UNBAN)
        if refusal is not None:
            raise Forbidden(refusal)
        plan = unban_plan(self.servers.rooms.of(server), user)
        await self._execute("unban_member", plan, server.server_id)
        await self.directory.refresh(server.server_id, [server.server_id])
        log.info("Unbanned %s from %s", user, server.server_id)

    # -- carrying out --------------------------------------------------------------------------

    async def _execute(self, kind: str, plan: Plan, server_id: RoomID) -> None:
        results = await self.journal.execute(kind, server_id, plan)
        self.directory.record_plan(plan, results)

    async def _reread_memberships(self, server: Server) -> None:
        """Read back the rooms whose membership makes the model: the space and the role rooms."""
        rooms = [server.server_id] + [room for r in server.roles for room in r.room_ids]
        await self.directory.refresh(server.server_id, rooms)

    async def _settled(self, server_id: RoomID, done: Callable[[Server], bool]) -> bool:
        deadline = time.monotonic() + GRANT_SETTLE_S
        while True:
            server = self.directory.get(server_id)
            if server is not None and done(server):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
