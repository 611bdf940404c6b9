"""Servers declared in guilds.yaml: created at start-up, reconciled at every start and by apply.

The config is the source of truth for what it declares and for nothing else: a declared channel
deleted by hand comes back, a declared role edited by hand is restored, a declared member gets
their roles back; channels, roles and members it does not name are left alone. A declared server
is found again by the `<ns>.declared` state in its space, written in the same journaled plan that
creates it, so a crash or a restart never makes a second one.

Reconciling is planned first (`plan`: what would be created, changed, left alone), then carried
out (`apply`); `guilds apply --dry-run` prints the plan only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.api.app import require_user
from bridge.api.appservice import bearer_token
from bridge.engine.journal import OperationFailed, OperationJournal
from bridge.engine.matrix import MatrixClientError
from bridge.engine.queue import ServerQueue
from bridge.engine.steps import AutoJoinInvite, Plan
from bridge.errors import MatrixError
from bridge.plans.levels import new_room_levels
from bridge.plans.roles import create_role_plan, grant_plan, with_assignment, with_role
from bridge.plans.servers import DECLARED_EVENT, create_server_plan, is_plain
from bridge.readback.directory import ServerDirectory
from bridge.services.channels import Channels
from bridge.services.roles import Roles
from bridge.services.servers import Servers
from guilds.config import DeclaredServer, TemplateChannel, TemplateRole
from guilds.ids import RoomID, UserID
from guilds.model import Permission, Role, Server
from guilds.rules import RoomKind

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What reconciling did (or, in a dry run, would do), one line per thing."""

    dry_run: bool = False
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        would = "would be " if self.dry_run else ""
        out: list[str] = []
        for title, items in (
            (f"{would}created", self.created),
            (f"{would}changed", self.changed),
            ("left alone", self.unchanged),
            ("failed", self.failed),
        ):
            out.append(f"{title}: {len(items)}")
            out += [f"  {item}" for item in items]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "failed": self.failed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        return cls(
            bool(data.get("dry_run")),
            list(data.get("created", [])),
            list(data.get("changed", [])),
            list(data.get("unchanged", [])),
            list(data.get("failed", [])),
        )


@dataclass(frozen=True)
class Action:
    created: bool
    what: str
    run: Callable[[], Awaitable[Any]]


def _role_body(role: TemplateRole) -> dict[str, Any]:
    return {
        "name": role.name,
        "color": role.color,
        "power": role.power,
        "permissions": sorted(role.permissions),
    }


def _role_differs(held: Role, wanted: TemplateRole) -> list[str]:
    differs = []
    if held.name != wanted.name:
        differs.append("name")
    if held.color != wanted.color:
        differs.append("color")
    if held.power != wanted.power:
        differs.append("power")
    if sorted(held.permissions) != sorted(wanted.permissions):
        differs.append("permissions")
    return differs


class Declarations:
    def __init__(
        self,
        *,
        declared: tuple[DeclaredServer, ...],
        servers: Servers,
        channels: Channels,
        roles: Roles,
        queue: ServerQueue | None = None,
    ) -> None:
        self.declared = declared
        self.queue = queue
        self.servers = servers
        self.channels = channels
        self.roles = roles
        self.directory: ServerDirectory = servers.directory
        self.journal: OperationJournal = servers.journal
        self.bot = servers.bot
        # (declaration, user) already greeted by this process: one invite each, not one per call.
        self._greeted: set[tuple[str, UserID]] = set()
        self._greeting: set[asyncio.Task[None]] = set()

    # -- finding -------------------------------------------------------------------------------

    def find(self, key: str) -> Server | None:
        for server_id in self.directory.server_ids():
            content = self.directory.space_entry(server_id, DECLARED_EVENT)
            if content and content.get("key") == key:
                return self.directory.get(server_id)
        return None

    def known_users(self) -> set[UserID]:
        """Local users the bridge has met: joined to any room it tracks.

        A regex in `members` covers these; the homeserver lists its users only to its admins.
        """
        suffix = f":{self.servers.server_name}"
        users = {user for user in self.directory.joined_users() if user.endswith(suffix)}
        return users - {self.bot}

    def wanted_members(self, declared: DeclaredServer) -> dict[UserID, set[str]]:
        """Every declared member with the roles declared for them (owner excluded)."""
        wanted: dict[UserID, set[str]] = {}
        known = self.known_users()
        for rule in declared.members:
            users = {UserID(u) for u in rule.users} | {u for u in known if rule.matches(u)}
            for user in users:
                wanted.setdefault(user, set()).update(rule.roles)
        wanted.pop(UserID(declared.owner), None)
        return wanted

    def greet(self, user: UserID) -> None:
        """A user just used the API: join them now to the declared servers that name them.

        This is how a regex reaches users the bridge had not met (the homeserver lists its users
        to its admins only): at their first request, not at the next reconcile.
        """
        for declared in self.declared:
            if (declared.key, user) in self._greeted or user == declared.owner:
                continue
            rules = [rule for rule in declared.members if rule.matches(user)]
            if not rules:
                continue
            self._greeted.add((declared.key, user))
            server = self.find(declared.key)
            if server is None or server.is_member(user):
                continue
            roles = {role for rule in rules for role in rule.roles}
            task = asyncio.create_task(self._greet(server.server_id, user, roles, declared.key))
            self._greeting.add(task)
            task.add_done_callback(self._greeting.discard)

    async def _greet(self, sid: RoomID, user: UserID, roles: set[str], key: str) -> None:
        try:
            async with self._turn(sid):
                await self._add_member(sid, user, roles)
            log.info("Declared server %s: %s joined at their first request", key, user)
        except (MatrixError, MatrixClientError, OperationFailed) as exc:
            self._greeted.discard((key, user))
            log.warning("Declared server %s: could not add %s: %s", key, user, exc)

    # -- planning ------------------------------------------------------------------------------

    def plan(self, declared: DeclaredServer) -> tuple[list[Action], list[str]]:
        """What reconciling this declaration does, and what it leaves alone as declared."""
        server = self.find(declared.key)
        if server is None:
            layout = declared.layout
            what = (
                f"server {declared.key}: {declared.name!r} owned by {declared.owner} "
                f"({1 + len(layout.channels)} channels, {len(layout.categories)} categories, "
                f"{len(layout.roles)} custom roles)"
            )
            actions = [Action(True, what, lambda: self._create(declared))]
            for user, roles in sorted(self.wanted_members(declared).items()):
                actions.append(Action(True, self._member_text(declared, user, roles), _noop))
            return actions, []
        return self._reconcile_plan(declared, server)

    @staticmethod
    def _member_text(declared: DeclaredServer, user: UserID, roles: set[str]) -> str:
        held = f" with {', '.join(sorted(roles))}" if roles else ""
        return f"server {declared.key}: member {user}{held}"

    def _reconcile_plan(
        self, declared: DeclaredServer, server: Server
    ) -> tuple[list[Action], list[str]]:
        key, sid, owner = declared.key, server.server_id, UserID(declared.owner)
        actions: list[Action] = []
        unchanged: list[str] = []
        prefix = f"server {key}"
        if server.name != declared.name:
            actions.append(
                Action(
                    False,
                    f"{prefix}: name {server.name!r} → {declared.name!r}",
                    lambda: self._set_state(sid, "m.room.name", {"name": declared.name}),
                )
            )
        if declared.topic is not None and server.topic != declared.topic:
            actions.append(
                Action(
                    False,
                    f"{prefix}: topic restored",
                    lambda: self._set_state(sid, "m.room.topic", {"topic": declared.topic}),
                )
            )
        if server.state.owner != owner:
            # Ownership moves only by the owner's own hand (POST /transfer): say so, loudly.
            unchanged.append(
                f"{prefix}: owner is {server.state.owner}, not {owner} (transfer it by hand)"
            )
        for role in declared.layout.roles:
            held = server.role(role.role_id)
            if held is None:
                actions.append(
                    Action(True, f"{prefix}: role {role.role_id}", self._role_creator(sid, role))
                )
            elif differs := _role_differs(held, role):
                actions.append(
                    Action(
                        False,
                        f"{prefix}: role {role.role_id} restored ({', '.join(differs)})",
                        self._role_restorer(sid, owner, role),
                    )
                )
            else:
                unchanged.append(f"{prefix}: role {role.role_id}")
        have = {c.name for c in server.categories}
        for name in declared.layout.categories:
            if name in have:
                unchanged.append(f"{prefix}: category {name!r}")
            else:
                actions.append(
                    Action(
                        True,
                        f"{prefix}: category {name!r}",
                        self._category_creator(sid, owner, name),
                    )
                )
        for wanted in declared.layout.channels:
            actions += self._channel_actions(declared, server, wanted, unchanged)
        for user, roles in sorted(self.wanted_members(declared).items()):
            if not server.is_member(user):
                actions.append(
                    Action(
                        True,
                        self._member_text(declared, user, roles),
                        self._member_adder(sid, user, roles),
                    )
                )
                continue
            missing = roles - server.assignments.get(user, frozenset())
            if missing:
                actions.append(
                    Action(
                        False,
                        f"{prefix}: member {user} given back {', '.join(sorted(missing))}",
                        self._member_adder(sid, user, missing),
                    )
                )
            else:
                unchanged.append(f"{prefix}: member {user}")
        return actions, unchanged

    def _channel_actions(
        self,
        declared: DeclaredServer,
        server: Server,
        wanted: TemplateChannel,
        unchanged: list[str],
    ) -> list[Action]:
        prefix = f"server {declared.key}: channel #{wanted.name}"
        sid, owner = server.server_id, UserID(declared.owner)
        held = next((c for c in server.channels if c.name == wanted.name and not c.default), None)
        if held is None:
            return [Action(True, prefix, self._channel_creator(sid, owner, wanted))]
        category = next(
            (c.name for c in server.categories if c.category_id == held.category_id), None
        )
        body: dict[str, Any] = {}
        if held.kind.value != wanted.kind:
            body["kind"] = wanted.kind
        if held.topic != wanted.topic:
            body["topic"] = wanted.topic
        if held.allowed_roles != wanted.allowed_roles:
            body["allowed_roles"] = (
                None if wanted.allowed_roles is None else list(wanted.allowed_roles)
            )
        if category != wanted.category:
            body["category"] = wanted.category
        if not body:
            unchanged.append(prefix)
            return []
        text = f"{prefix} restored ({', '.join(sorted(body))})"
        return [Action(False, text, self._channel_restorer(sid, owner, held.channel_id, body))]

    # -- carrying out --------------------------------------------------------------------------

    async def reconcile(self, *, dry_run: bool = False) -> Report:
        """Plan every declared server, then (unless a dry run) carry the plan out.

        An existing server is planned and changed at its turn (bridge/engine/queue.py), so no
        request
        changes it between the plan and the changes.
        """
        report = Report(dry_run=dry_run)
        for declared in self.declared:
            server = self.find(declared.key)
            async with self._turn(None if server is None else server.server_id):
                actions, unchanged = self.plan(declared)
                report.unchanged += unchanged
                if not actions:
                    report.unchanged.append(f"server {declared.key}: as declared")
                for action in actions:
                    (report.created if action.created else report.changed).append(action.what)
                if not dry_run:
                    await self._run(declared, actions, report)
        for line in report.lines():
            log.info("Declared servers: %s", line)
        return report

    def _turn(self, server_id: RoomID | None) -> AbstractAsyncContextManager[None]:
        if self.queue is None or server_id is None:
            return contextlib.nullcontext()
        return self.queue.turn(server_id)

    async def _run(self, declared: DeclaredServer, actions: list[Action], report: Report) -> None:
        for action in actions:
            try:
                await action.run()
            except (MatrixError, MatrixClientError, OperationFailed) as exc:
                log.warning("Declared %s failed: %s", action.what, exc)
                report.failed.append(f"{action.what}: {exc}")
                if action.what.startswith(f"server {declared.key}:") and action.created:
                    if self.find(declared.key) is None:
                        return  # no server: nothing else of it can be done

    async def _create(self, declared: DeclaredServer) -> None:
        layout = declared.layout
        topic = declared.topic if declared.topic is not None else layout.topic
        plan = create_server_plan(
            owner=UserID(declared.owner),
            name=declared.name,
            topic=topic,
            icon=None,
            bot=self.bot,
            room_version=await self.servers.room_version(),
            via=self.servers.server_name,
            template=None if is_plain(layout) else layout,
            declared=declared.key,
        )
        # The completion hook records the server and loads it into the directory.
        results = await self.journal.execute("create_server", None, plan)
        server_id = RoomID(results["space"]["room_id"])
        await self.directory.refresh(server_id, [server_id])
        log.info("Created declared server %s as %s", declared.key, server_id)
        # Its members, now that it exists.
        for user, roles in self.wanted_members(declared).items():
            await self._add_member(server_id, user, roles)

    async def _set_state(self, room: RoomID, event_type: str, content: dict[str, Any]) -> None:
        event_id = await self.servers.matrix.send_state(room, event_type, "", content)
        self.directory.record_sent(room, event_type, "", content, event_id)

    def _role_creator(self, sid: RoomID, wanted: TemplateRole) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            server = self._current(sid)
            taken = {r.position for r in server.roles}
            # Declared roles rank just above member, as template roles do.
            position = next(p for p in range(1, 1000) if p not in taken and p != 500)
            role = Role(
                wanted.role_id,
                wanted.name,
                wanted.color,
                wanted.power,
                position,
                frozenset(Permission(p) for p in wanted.permissions),
            )
            after = with_role(server, role)
            version = await self.servers.room_version()
            plan = create_role_plan(
                after,
                role,
                rooms=self.servers.rooms.of(server),
                room_power_levels=new_room_levels(
                    after, RoomKind.ROLE_ROOM, bot=self.bot, room_version=version
                ),
            )
            results = await self.journal.execute("create_role", sid, plan)
            await self.directory.refresh(sid, [RoomID(results["role_room"]["room_id"])])
            self.directory.record_plan(plan, results)

        return run

    def _role_restorer(
        self, sid: RoomID, owner: UserID, wanted: TemplateRole
    ) -> Callable[[], Awaitable[Any]]:
        return lambda: self.roles.update(sid, wanted.role_id, owner, _role_body(wanted))

    def _category_creator(
        self, sid: RoomID, owner: UserID, name: str
    ) -> Callable[[], Awaitable[Any]]:
        return lambda: self.channels.create_category(sid, owner, {"name": name})

    def _category_id(self, sid: RoomID, name: str | None) -> str | None:
        if name is None:
            return None
        server = self._current(sid)
        return next((c.category_id for c in server.categories if c.name == name), None)

    def _channel_creator(
        self, sid: RoomID, owner: UserID, wanted: TemplateChannel
    ) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            body: dict[str, Any] = {
                "name": wanted.name,
                "kind": wanted.kind,
                "topic": wanted.topic,
                "category_id": self._category_id(sid, wanted.category),
                "allowed_roles": (
                    None if wanted.allowed_roles is None else list(wanted.allowed_roles)
                ),
            }
            await self.channels.create_channel(sid, owner, body)

        return run

    def _channel_restorer(
        self, sid: RoomID, owner: UserID, channel: RoomID, body: dict[str, Any]
    ) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            patch = dict(body)
            if "category" in patch:
                patch["category_id"] = self._category_id(sid, patch.pop("category"))
            await self.channels.update_channel(sid, owner, channel, patch)

        return run

    def _member_adder(
        self, sid: RoomID, user: UserID, roles: set[str]
    ) -> Callable[[], Awaitable[Any]]:
        return lambda: self._add_member(sid, user, roles)

    async def _add_member(self, sid: RoomID, user: UserID, roles: set[str]) -> None:
        """Invite into the space (the module joins a local user), then into each role room."""
        server = self._current(sid)
        if not server.is_member(user):
            plan = Plan.of([AutoJoinInvite(name="invite", room=sid, user=user)])
            await self.journal.execute("declared_member", sid, plan)
        for role_id in sorted(roles):
            server = self._current(sid)
            role = server.role(role_id)
            if role is None or role.room_id is None:
                continue
            after = with_assignment(server, user, role_id, held=True)
            plan = grant_plan(
                after,
                user,
                role,
                rooms=self.servers.rooms.of(server),
            )
            results = await self.journal.execute("grant_role", sid, plan)
            self.directory.record_plan(plan, results)
        await self.directory.refresh(sid, [sid])

    def _current(self, sid: RoomID) -> Server:
        server = self.directory.get(sid)
        if server is None:
            raise MatrixClientError(f"the server {sid} is no longer known")
        return server


async def _noop() -> None:
    return None


def greet_declared_members(declarations: Declarations) -> Any:
    """A provisioning middleware: each caller is greeted (see `Declarations.greet`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if bearer_token(request) is not None:
            try:
                declarations.greet(await require_user(request))
            except (MatrixError, MatrixClientError):
                pass  # the handler answers a bad token, or an absent homeserver, itself
        return await handler(request)

    return middleware
