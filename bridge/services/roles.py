"""Role operations of the provisioning API: list, create, edit and delete a server's roles.

Each check is a pure rule (guilds.permissions, guilds.rules), each change a journaled plan
(bridge/plans/roles.py) that ends with every room's power levels matching the roles.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bridge.errors import Conflict, Forbidden, InvalidParam, MissingParam, NotFound
from bridge.plans.levels import new_room_levels
from bridge.plans.roles import (
    create_role_plan,
    delete_role_plan,
    edit_role_plan,
    free_position,
    role_slug,
    with_role,
)
from bridge.services.servers import Servers
from guilds.ids import RoomID, UserID
from guilds.model import (
    ADMIN_POSITION,
    ADMIN_POWER,
    ALL_PERMISSIONS,
    COLOR_RE,
    MAX_CUSTOM_POWER,
    MEMBER_POSITION,
    MEMBER_POWER,
    BuiltinRole,
    Permission,
    Role,
    Server,
    name_problem,
)
from guilds.permissions import (
    apply_role_changes,
    may_create_role,
    may_delete_role,
    may_edit_role,
    require,
)
from guilds.policies import role_count_refusal
from guilds.rules import RoomKind

log = logging.getLogger(__name__)

# The fields of a role a PATCH may change; others (role_id, builtin…) are read-only, ignored.
EDITABLE = ("name", "color", "power", "position", "permissions")


def _invalid(problem: str) -> InvalidParam:
    return InvalidParam(problem[0].upper() + problem[1:].rstrip(".") + ".")


def _color(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not COLOR_RE.match(value):
        raise InvalidParam("color must be written #rrggbb, or be null.")
    return value


def _int(value: Any, key: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidParam(f"{key} must be an integer from {low} to {high}.")
    return value


def _permissions(value: Any) -> frozenset[Permission]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise InvalidParam("permissions must be a list of permission names.")
    unknown = sorted({p for p in value if p not in ALL_PERMISSIONS})
    if unknown:
        raise InvalidParam(f"Unknown permission(s): {', '.join(unknown)}.")
    return frozenset(Permission(p) for p in value)


def _unique_name(server: Server, name: str, role_id: str | None = None) -> None:
    for other in server.roles:
        if other.role_id != role_id and other.name.casefold() == name.casefold():
            raise Conflict(f"A role named {other.name!r} already exists.")


class Roles:
    def __init__(self, *, servers: Servers) -> None:
        # The directory, the bot and every plan's rooms (`servers.rooms`) come with `servers`.
        self.servers = servers
        self.journal = servers.journal
        self.directory = servers.directory
        self.bot = servers.bot

    def list(self, server_id: str, actor: UserID) -> list[Role]:
        return list(self.servers.visible(server_id, actor).roles)

    def _role(self, server: Server, role_id: str) -> Role:
        role = server.role(role_id)
        if role is None:
            raise NotFound("No such role")
        return role

    # -- creating ------------------------------------------------------------------------------

    async def create(self, server_id: str, actor: UserID, body: Mapping[str, Any]) -> Role:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.MANAGE_ROLES, "creating roles")
        custom = sum(1 for r in server.roles if not r.builtin)
        refusal = role_count_refusal(self.servers.policies, custom)
        if refusal is not None:
            raise Forbidden(refusal)
        if "name" not in body:
            raise MissingParam("name is required.")
        problem = name_problem(body["name"])
        if problem is not None:
            raise _invalid(problem)
        name: str = body["name"]
        color = _color(body.get("color"))
        power = _int(body.get("power", MEMBER_POWER), "power", MEMBER_POWER, MAX_CUSTOM_POWER)
        permissions = _permissions(body.get("permissions", []))
        _unique_name(server, name)
        position = free_position(server, actor)
        if position is None:
            raise Conflict("There is no free position below your highest role for a new role.")
        role_id = role_slug(name, (r.role_id for r in server.roles))
        role = Role(role_id, name, color, power, position, permissions)
        refusal = may_create_role(server, actor, role)
        if refusal is not None:
            raise Forbidden(refusal)

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
        results = await self.journal.execute("create_role", server.server_id, plan)
        room_id = RoomID(results["role_room"]["room_id"])
        # The new room is tracked first, so the role's state names a room the directory knows.
        await self.directory.refresh(server.server_id, [room_id])
        self.directory.record_plan(plan, results)
        log.info("Created role %s in %s", role_id, server.server_id)
        return self._role(self.servers.visible(server_id, actor), role_id)

    # -- editing -------------------------------------------------------------------------------

    async def update(
        self, server_id: str, role_id: str, actor: UserID, body: Mapping[str, Any]
    ) -> Role:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.MANAGE_ROLES, "editing roles")
        role = self._role(server, role_id)
        changes = self._changes(server, role, body)
        refusal = may_edit_role(server, actor, role, changes)
        if refusal is not None:
            raise Forbidden(refusal)
        updated = apply_role_changes(role, changes)
        if updated == role:
            return role
        after = with_role(server, updated)
        plan = edit_role_plan(
            after,
            updated,
            renamed=updated.name != role.name,
            rooms=self.servers.rooms.of(server),
        )
        if plan is not None:
            results = await self.journal.execute("edit_role", server.server_id, plan)
            self.directory.record_plan(plan, results)
        log.info("Edited role %s in %s", role_id, server.server_id)
        return self._role(self.servers.visible(server_id, actor), role_id)

    def _changes(self, server: Server, role: Role, body: Mapping[str, Any]) -> dict[str, Any]:
        """The requested changes, checked for shape (400) and for the built-ins' limits (409).

        Whether the caller may make them (rank, power, permissions they hold) is
        `may_edit_role`'s to say (403).
        """
        changes = {key: body[key] for key in EDITABLE if key in body}
        is_admin = role.role_id == BuiltinRole.ADMIN
        is_member = role.role_id == BuiltinRole.MEMBER
        if "name" in changes:
            problem = name_problem(changes["name"])
            if problem is not None:
                raise _invalid(problem)
            _unique_name(server, changes["name"], role.role_id)
        if "color" in changes:
            _color(changes["color"])
        if "permissions" in changes:
            permissions = _permissions(changes["permissions"])
            if is_admin and permissions != role.permissions:
                raise Conflict("The admin role's permissions cannot change.")
        if "power" in changes:
            power = _int(changes["power"], "power", MEMBER_POWER, ADMIN_POWER)
            if (is_admin or is_member) and power != role.power:
                raise Conflict(f"The {role.role_id} role's power cannot change.")
            if not is_admin and power > MAX_CUSTOM_POWER:
                raise InvalidParam(f"power must be an integer from 0 to {MAX_CUSTOM_POWER}.")
        if "position" in changes:
            position = changes["position"]
            if (is_admin or is_member) and position != role.position:
                raise Conflict(f"The {role.role_id} role's position cannot change.")
            if not (is_admin or is_member):
                _int(position, "position", MEMBER_POSITION + 1, ADMIN_POSITION - 1)
                taken = next(
                    (
                        r
                        for r in server.roles
                        if r.position == position and r.role_id != role.role_id
                    ),
                    None,
                )
                if taken is not None:
                    raise Conflict(f"The role {taken.name!r} already has position {position}.")
        return changes

    # -- deleting ------------------------------------------------------------------------------

    async def delete(self, server_id: str, role_id: str, actor: UserID) -> None:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.MANAGE_ROLES, "deleting roles")
        role = self._role(server, role_id)
        if role.builtin:
            raise Conflict(f"The built-in role {role.name!r} cannot be deleted.")
        refusal = may_delete_role(server, actor, role)
        if refusal is not None:
            raise Forbidden(refusal)
        plan = delete_role_plan(self.servers.rooms.of(server), role)
        if plan is not None:
            results = await self.journal.execute("delete_role", server.server_id, plan)
            self.directory.record_plan(plan, results)
        if role.room_id is not None:
            # The bot has left it: nothing more to track there.
            self.directory.forget_room(role.room_id)
        log.info("Deleted role %s in %s", role_id, server.server_id)
