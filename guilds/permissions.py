"""Who may do what in a server: permissions, rank and visibility as pure functions of the model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Any, Final

from guilds.ids import UserID
from guilds.model import (
    ADMIN_POWER,
    ALL_PERMISSIONS,
    MEMBER_POWER,
    NON_MEMBER_POSITION,
    OWNER_POSITION,
    BuiltinRole,
    Channel,
    Permission,
    Role,
    Server,
)
from guilds.rules import Actor, missing_permission_sentence, role_change_refusal


class PermissionDenied(Exception):
    """The caller's roles do not allow this; the message names the missing permission."""

    errcode: Final = "M_FORBIDDEN"

    def __init__(self, permission: Permission, message: str) -> None:
        super().__init__(message)
        self.permission = permission
        self.message = message


def permissions_of(server: Server, user_id: UserID) -> frozenset[Permission]:
    """The union of the permissions of every role the user holds; all for the owner."""
    if user_id == server.state.owner:
        return ALL_PERMISSIONS
    if not server.is_member(user_id):
        return frozenset()
    held: frozenset[Permission] = frozenset()
    for role in server.roles_of(user_id):
        held |= role.permissions
    return held


def highest_position(server: Server, user_id: UserID) -> int:
    """The rank used for "at or above": the owner outranks everyone, outsiders rank below all."""
    if user_id == server.state.owner:
        return OWNER_POSITION
    if not server.is_member(user_id):
        return NON_MEMBER_POSITION
    return max((r.position for r in server.roles_of(user_id)), default=NON_MEMBER_POSITION)


def power_of(server: Server, user_id: UserID) -> int:
    """The user's Matrix power level: the highest power among their roles (owner 100).

    With the built-in roles the most senior role is also the most powerful. Should a custom
    role rank above another yet carry less power, the maximum is still taken: a holder of a
    permission then always reaches that permission's threshold, so Matrix's own auth never
    refuses what the roles allow (the module vetoes what they do not).
    """
    if user_id == server.state.owner:
        return ADMIN_POWER
    if not server.is_member(user_id):
        return MEMBER_POWER
    return max((r.power for r in server.roles_of(user_id)), default=MEMBER_POWER)


def actor(server: Server, user_id: UserID, *, bot: UserID | None = None) -> Actor:
    """What `guilds.rules` needs to know about a user of this server."""
    return Actor(
        user_id=user_id,
        permissions=permissions_of(server, user_id),
        position=highest_position(server, user_id),
        power=power_of(server, user_id),
        owner=user_id == server.state.owner,
        bot=bot is not None and user_id == bot,
    )


def require(
    server: Server, actor_id: UserID, permission: Permission, doing: str | None = None
) -> None:
    """Raise PermissionDenied unless the actor holds the permission.

    `doing` completes the sentence: "You need the kick_members permission for kicking members."
    """
    if permission in permissions_of(server, actor_id):
        return
    message = missing_permission_sentence(permission, doing)
    if not server.is_member(actor_id):
        message = f"{message[:-1]}, and you are not a member of this server."
    raise PermissionDenied(permission, message)


class MemberAction(StrEnum):
    KICK = "kick"
    BAN = "ban"
    UNBAN = "unban"
    CHANGE_ROLES = "change_roles"


_VERB: Final[Mapping[MemberAction, str]] = {
    MemberAction.KICK: "kick",
    MemberAction.BAN: "ban",
    MemberAction.UNBAN: "unban",
    MemberAction.CHANGE_ROLES: "change the roles of",
}


def may_act_on(
    server: Server,
    actor_id: UserID,
    target_id: UserID,
    action: MemberAction = MemberAction.KICK,
) -> str | None:
    """Why the actor may not kick, ban, unban or change the roles of the target, or None.

    Rank only: the permission itself is checked with `require` first (it is a 403 naming the
    permission, where acting on the owner is a 409 for the API). Nobody acts on the owner;
    nobody acts on a member whose highest role is at or above their own (the owner excepted,
    who outranks all); nobody kicks, bans or unbans themselves. Changing one's own roles is
    allowed here — `may_grant` still limits it to roles below one's own.
    """
    if not server.is_member(actor_id):
        return "You are not a member of this server."
    verb = _VERB[action]
    if target_id == actor_id:
        if action is MemberAction.CHANGE_ROLES:
            return None
        return f"You cannot {verb} yourself." + (
            " Leave the server instead." if action is MemberAction.KICK else ""
        )
    if target_id == server.state.owner:
        return f"Nobody can {verb} the server's owner."
    if highest_position(server, target_id) >= highest_position(server, actor_id):
        return f"You cannot {verb} a member whose highest role is at or above yours."
    return None


def may_grant(server: Server, actor_id: UserID, role: Role) -> str | None:
    """Why the actor may not grant (or remove) this role, or None.

    Needs manage_roles and a role strictly below the actor's highest position; the owner may
    grant any role, admin included. `member` is never granted or removed: it is everyone.
    Whether the *target member* may be acted on is `may_act_on(..., CHANGE_ROLES)`.
    """
    if role.role_id == BuiltinRole.MEMBER:
        return "Everyone has the member role; it cannot be granted or removed."
    if Permission.MANAGE_ROLES not in permissions_of(server, actor_id):
        return missing_permission_sentence(Permission.MANAGE_ROLES, "granting roles")
    if role.position >= highest_position(server, actor_id):
        return f"You can only grant roles below your highest role; {role.name!r} is not."
    return None


ROLE_FIELDS: Final = frozenset({"name", "color", "power", "position", "permissions"})


def apply_role_changes(role: Role, changes: Mapping[str, Any]) -> Role:
    """The role after a PATCH-like set of changes; raise ValueError for a malformed change."""
    unknown = set(changes) - ROLE_FIELDS
    if unknown:
        raise ValueError(f"unknown role field(s): {', '.join(sorted(unknown))}")
    updated = role
    if "name" in changes:
        if not isinstance(changes["name"], str):
            raise ValueError("name must be a string")
        updated = replace(updated, name=changes["name"])
    if "color" in changes:
        if changes["color"] is not None and not isinstance(changes["color"], str):
            raise ValueError("color must be a string or null")
        updated = replace(updated, color=changes["color"])
    if "power" in changes:
        updated = replace(updated, power=_integer(changes["power"], "power"))
    if "position" in changes:
        updated = replace(updated, position=_integer(changes["position"], "position"))
    if "permissions" in changes:
        raw = changes["permissions"]
        if not isinstance(raw, list | tuple | frozenset | set) or not all(
            isinstance(p, str) for p in raw
        ):
            raise ValueError("permissions must be a list of permission names")
        try:
            updated = replace(updated, permissions=frozenset(Permission(p) for p in raw))
        except ValueError:
            bad = sorted(p for p in raw if p not in ALL_PERMISSIONS)
            raise ValueError(f"unknown permission(s): {', '.join(bad)}") from None
    return updated


def _integer(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer")
    return value


def may_edit_role(
    server: Server, actor_id: UserID, role: Role, changes: Mapping[str, Any]
) -> str | None:
    """Why the actor may not apply these changes to this role, or None.

    The rule set is `guilds.rules.role_change_refusal`: needs manage_roles; built-in roles
    can be edited but not deleted; admin's permissions, power and position never change;
    member stays at power 0 and position 0; other roles take power 0–99 and a free position
    between member and admin; nobody edits a role at or above their own position or moves one
    there; nobody gives a role more power than they have or a permission they lack; names are
    valid and unique. A malformed change is refused with the reason too.
    """
    try:
        updated = apply_role_changes(role, changes)
    except ValueError as error:
        return f"This role change is not valid: {error}."
    return role_change_refusal(actor(server, actor_id), role, updated, server.roles)


def may_create_role(server: Server, actor_id: UserID, role: Role) -> str | None:
    """Why the actor may not create this role (same rules as editing, from nothing)."""
    if server.role(role.role_id) is not None:
        return f"A role with the id {role.role_id!r} already exists."
    return role_change_refusal(actor(server, actor_id), None, role, server.roles)


def may_delete_role(server: Server, actor_id: UserID, role: Role) -> str | None:
    """Why the actor may not delete this role: built-in roles never, others below their rank."""
    return role_change_refusal(actor(server, actor_id), role, None, server.roles)


def may_enter(server: Server, user_id: UserID, channel: Channel) -> bool:
    """Whether the user may join this channel: members, and for gated channels role holders.

    Admins (and so the owner) may always enter, as API.md says of gated channels.
    """
    if not server.is_member(user_id):
        return False
    if channel.allowed_roles is None:
        return True
    held = {r.role_id for r in server.roles_of(user_id)}
    return BuiltinRole.ADMIN.value in held or bool(held & set(channel.allowed_roles))


def visible_channels(server: Server, user_id: UserID) -> tuple[Channel, ...]:
    """The channels the user may enter, in the server's order; none for a non-member."""
    return tuple(c for c in server.channels if may_enter(server, user_id, c))
