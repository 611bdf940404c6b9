"""Server-level operations of the provisioning API: create, read, edit, delete, leave, transfer.

Each check is a pure rule (guilds.permissions), each multi-room change a journaled plan
(bridge/plans/servers.py), and every read comes from the in-memory directory
(bridge/readback/directory.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import MatrixClient, MatrixRequestError, path_segment
from bridge.engine.patience import patiently
from bridge.engine.steps import Plan, SendState
from bridge.engine.store import Database
from bridge.errors import Conflict, Forbidden, InvalidParam, NotFound, Unavailable
from bridge.plans.levels import levels_plan
from bridge.plans.servers import create_server_plan, delete_server_plan, is_plain, transfer_plan
from bridge.readback.rooms import RoomsReader
from guilds.config import DEFAULT_TEMPLATE, Policies, ServerTemplate
from guilds.ids import RoomID, UserID
from guilds.model import Permission, Server, name_problem, topic_problem
from guilds.permissions import require
from guilds.policies import public_refusal, server_creation_refusal

log = logging.getLogger(__name__)

MIN_ROOM_VERSION = 10
# How long the API waits for the homeserver to report a join it has just made.
JOIN_SETTLE_S = 5.0


def icon_problem(icon: Any) -> str | None:
    if icon is None:
        return None
    if not isinstance(icon, str) or not icon.startswith("mxc://") or len(icon) > 255:
        return "icon must be an mxc:// URI from the media repository"
    return None


def _check(problem: str | None) -> None:
    if problem is not None:
        raise InvalidParam(problem[0].upper() + problem[1:])


class Servers:
    def __init__(
        self,
        *,
        matrix: MatrixClient,
        journal: OperationJournal,
        rooms: RoomsReader,
        db: Database,
        policies: Policies | None = None,
        templates: Mapping[str, ServerTemplate] | None = None,
    ) -> None:
        self.policies = policies or Policies()
        self.templates = templates or {DEFAULT_TEMPLATE.name: DEFAULT_TEMPLATE}
        # One creation at a time per owner, so servers_per_user counts what is already made.
        self._creating: dict[UserID, asyncio.Lock] = {}
        self.matrix = matrix
        self.journal = journal
        # Where every plan's context is built (bridge/readback/rooms.py); the other services
        # read the directory, the bot and the homeserver name through it too.
        self.rooms = rooms
        self.directory = rooms.directory
        self.db = db
        self.bot = rooms.bot
        self.server_name = rooms.via
        self._room_version: str | None = None
        journal.on_complete("create_server", self._created)
        journal.on_complete("delete_server", self._deleted)

    # -- reading -------------------------------------------------------------------------------

    def visible(self, server_id: str, user: UserID) -> Server:
        """The server if `user` is a member; NotFound otherwise (API.md: also when unseen)."""
        server = self.directory.get(RoomID(server_id))
        if server is None or not server.is_member(user):
            raise NotFound("No such server")
        return server

    def joined(self, user: UserID) -> list[Server]:
        return self.directory.servers_of(user)

    # -- creating ------------------------------------------------------------------------------

    async def room_version(self) -> str:
        """The homeserver's default room version, which Guilds rooms are created in."""
        if self._room_version is None:
            data = await self.matrix.request("GET", "/_matrix/client/v3/capabilities")
            versions = data.get("capabilities", {}).get("m.room_versions", {})
            default = versions.get("default")
            self._room_version = default if isinstance(default, str) else "10"
        version = self._room_version
        if not version.isdigit() or int(version) < MIN_ROOM_VERSION:
            raise Unavailable(
                f"The homeserver creates rooms in version {version}; Guilds needs "
                f"{MIN_ROOM_VERSION} or later (set default_room_version)",
                retry_after_ms=60_000,
            )
        return version

    async def create(
        self,
        owner: UserID,
        owner_token: str | None,
        name: Any,
        topic: Any,
        icon: Any,
        template: Any = None,
    ) -> Server:
        """Create a server for `owner`.

        `owner_token` is the caller's own token, for this request only; None when a creation
        accepted before a restart runs after it (bridge/engine/queue.py never stores tokens): the
        owner's joins are then the module's auto-joins, and the admins-only policy counts as
        checked when the request was accepted (`check_creation`).
        """
        chosen = self._checked(name, topic, icon, template)
        topic = chosen.topic if topic is None or topic == "" else topic
        async with self._creating.setdefault(owner, asyncio.Lock()):
            await self._check_policies(owner, owner_token)
            return await self._create(owner, owner_token, name, topic, icon, chosen)

    async def check_creation(
        self, owner: UserID, owner_token: str, name: Any, topic: Any, icon: Any, template: Any
    ) -> None:
        """The checks `create` makes, made before its request is queued: refuse early."""
        self._checked(name, topic, icon, template)
        await self._check_policies(owner, owner_token)

    def _checked(self, name: Any, topic: Any, icon: Any, template: Any) -> ServerTemplate:
        _check(name_problem(name))
        chosen = self.template(template)
        topic = chosen.topic if topic is None or topic == "" else topic
        _check(topic_problem(topic))
        _check(icon_problem(icon))
        return chosen

    def template(self, name: Any) -> ServerTemplate:
        """The named template (`default` when None), or InvalidParam naming the known ones."""
        if name is None:
            name = DEFAULT_TEMPLATE.name
        template = self.templates.get(name) if isinstance(name, str) else None
        if template is None:
            raise InvalidParam(
                f"Unknown template; the templates are {', '.join(sorted(self.templates))}"
            )
        return template

    async def _check_policies(self, owner: UserID, token: str | None) -> None:
        policies = self.policies
        is_admin = policies.create_servers == "admins" and (
            token is None or await self.is_server_admin(owner, token)
        )
        refusal = server_creation_refusal(
            policies, owner, is_admin=is_admin, servers_owned=self.owned_by(owner)
        )
        if refusal is not None:
            raise Forbidden(refusal)

    def owned_by(self, user: UserID) -> int:
        return sum(1 for sid in self.directory.server_ids() if self.directory.owner_of(sid) == user)

    async def is_server_admin(self, user: UserID, token: str) -> bool:
        """Whether the homeserver counts the caller as a server admin.

        Synapse answers its admin API only to admins, so asking about oneself with one's own
        token (for this request only, never stored) answers 200 exactly for admins.
        """
        try:
            data = await self.matrix.request(
                "GET", f"/_synapse/admin/v1/users/{path_segment(user)}/admin", token=token
            )
        except MatrixRequestError as exc:
            if exc.status in (401, 403, 404):
                return False
            raise
        return isinstance(data, dict) and data.get("admin") is True

    async def _create(
        self,
        owner: UserID,
        owner_token: str | None,
        name: str,
        topic: str,
        icon: Any,
        template: ServerTemplate,
    ) -> Server:
        plan = create_server_plan(
            owner=owner,
            name=name,
            topic=topic,
            icon=icon,
            bot=self.bot,
            room_version=await self.room_version(),
            via=self.server_name,
            template=None if is_plain(template) else template,
        )
        results = await self.journal.execute("create_server", None, plan)
        server_id = RoomID(results["space"]["room_id"])
        # The owner's own joins, made with their token for this request only (never stored), so
        # the answer shows them joined without waiting on the module's auto-join (which covers
        # an operation resumed after a crash): the space, the admin role room, then general.
        if owner_token is not None:
            for room_id in (
                server_id,
                results["role_admin"]["room_id"],
                results["general"]["room_id"],
            ):
                await self._join_as(owner_token, room_id)
        await self.directory.refresh(server_id, [server_id, RoomID(results["general"]["room_id"])])
        server = await self._settled(server_id, lambda s: owner in s.members)
        log.info("Created server %s for %s", server_id, owner)
        return server

    async def _created(self, _server_id: str | None, results: dict[str, dict[str, Any]]) -> None:
        """Every finished create_server operation, here or resumed after a crash: track it."""
        server_id = RoomID(results["space"]["room_id"])
        await self.db.execute(
            "INSERT INTO servers (server_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            server_id,
            int(time.time() * 1000),
        )
        await self.directory.load(server_id)

    async def _deleted(self, server_id: str | None, _results: dict[str, dict[str, Any]]) -> None:
        if server_id is None:
            return
        # Stored before it is forgotten, so an unavailable database changes nothing in memory.
        await self.db.execute(
            "UPDATE servers SET deleted_at = ? WHERE server_id = ? AND deleted_at IS NULL",
            int(time.time() * 1000),
            server_id,
        )
        self.directory.forget_server(RoomID(server_id))

    async def _join_as(self, token: str, room_id: str) -> None:
        # Patient: the server exists by now; a failure here must not make its job run again.
        await patiently(
            lambda: self.matrix.request(
                "POST", f"/_matrix/client/v3/join/{path_segment(room_id)}", json={}, token=token
            ),
            f"The owner's join of {room_id}",
        )

    async def _settled(self, server_id: RoomID, done: Any) -> Server:
        """The server once transactions have brought `done(server)` about, or as it is by then."""
        deadline = time.monotonic() + JOIN_SETTLE_S
        while True:
            server = self.directory.get(server_id)
            if server is None:
                raise NotFound("No such server")
            if done(server) or time.monotonic() > deadline:
                return server
            await asyncio.sleep(0.05)

    # -- editing -------------------------------------------------------------------------------

    async def update(self, server_id: str, actor: UserID, body: dict[str, Any]) -> Server:
        server = self.visible(server_id, actor)
        require(server, actor, Permission.MANAGE_SERVER, "editing the server")
        changes: list[tuple[str, dict[str, Any]]] = []
        if "name" in body:
            _check(name_problem(body["name"]))
            changes.append(("m.room.name", {"name": body["name"]}))
        if "topic" in body:
            topic = "" if body["topic"] is None else body["topic"]
            _check(topic_problem(topic))
            changes.append(("m.room.topic", {"topic": topic}))
        if "icon" in body:
            _check(icon_problem(body["icon"]))
            changes.append(("m.room.avatar", {"url": body["icon"]} if body["icon"] else {}))
        if "public" in body:
            if not isinstance(body["public"], bool):
                raise InvalidParam("public must be true or false")
            if body["public"]:
                refusal = public_refusal(self.policies.public_servers)
                if refusal is not None:
                    raise Forbidden(refusal)
            rule = "public" if body["public"] else "invite"
            changes.append(("m.room.join_rules", {"join_rule": rule}))
        if changes:
            # Journaled like every change: it waits out a homeserver that is down, and a
            # restart finishes it.
            plan = Plan.of(
                [
                    SendState(f"set_{i}", server.server_id, event_type, "", content)
                    for i, (event_type, content) in enumerate(changes)
                ]
            )
            results = await self.journal.execute("edit_server", server.server_id, plan)
            self.directory.record_plan(plan, results)
        return self.visible(server_id, actor)

    async def delete(self, server_id: str, actor: UserID) -> None:
        server = self.visible(server_id, actor)
        if actor != server.state.owner:
            raise Forbidden("Only the owner can delete the server")
        rooms = self.directory.rooms(server.server_id)
        plan = delete_server_plan(server, rooms)
        # Journaled first: a database refusing the write leaves the server exactly as it was.
        op_id = await self.journal.submit("delete_server", server.server_id, plan)
        # The server leaves every list at once; the journal finishes emptying it even after a
        # crash, and marks it deleted again when it completes.
        await self._deleted(server.server_id, {})
        await self.journal.run(op_id)
        log.info("Deleted server %s", server.server_id)

    async def leave(self, server_id: str, user: UserID, token: str) -> None:
        server = self.visible(server_id, user)
        if user == server.state.owner:
            raise Conflict("The owner cannot leave the server; transfer it or delete it")
        rooms = [r for r in self.directory.rooms(server.server_id) if r != server.server_id]
        # The user's own leaves: channels and role rooms first, the space last.
        results = await asyncio.gather(
            *(self._leave_as(token, room) for room in rooms), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        await self._leave_as(token, server.server_id)
        # Answered once the transactions have brought the leave (read your writes): the
        # caller's next GET /servers does not list the server.
        await self._settled(server.server_id, lambda s: not s.is_member(user))

    async def _leave_as(self, token: str, room_id: str) -> None:
        try:
            await self.matrix.request(
                "POST",
                f"/_matrix/client/v3/rooms/{path_segment(room_id)}/leave",
                json={},
                token=token,
            )
        except MatrixRequestError as exc:
            # Not in that room (never joined a gated channel, say): nothing to leave.
            if exc.status != 403:
                raise

    async def transfer(self, server_id: str, actor: UserID, body: dict[str, Any]) -> Server:
        server = self.visible(server_id, actor)
        if actor != server.state.owner:
            raise Forbidden("Only the owner can transfer the server")
        target = body.get("user_id")
        if not isinstance(target, str):
            raise InvalidParam("user_id must be a Matrix user id")
        if target == actor:
            raise Conflict("You already own this server")
        if not server.is_member(UserID(target)):
            raise NotFound("That user is not a member of this server")
        plan = transfer_plan(self.rooms.of(server), UserID(target))
        results = await self.journal.execute("transfer_server", server.server_id, plan)
        self.directory.record_plan(plan, results)
        return self.visible(server_id, actor)

    async def sync_power_levels(self, server_id: RoomID) -> None:
        """Bring every room's power levels in line with the roles as the directory sees them."""
        rooms = self.rooms.get(server_id)
        if rooms is None:
            return
        plan = levels_plan(rooms.server, rooms)
        if plan.stages and plan.stages[0]:
            results = await self.journal.execute("sync_power_levels", server_id, plan)
            self.directory.record_plan(plan, results)
