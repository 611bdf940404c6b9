"""The JSON shapes of docs/API.md, rendered from the model as a given caller may see it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from guilds.ids import UserID
from guilds.model import Category, Channel, Role, Server
from guilds.permissions import permissions_of, power_of, visible_channels

if TYPE_CHECKING:
    # Types only: bridge.invites imports the services, which must stay free to import shapes.
    from bridge.services.invites import Invite, InviteStatus


def role_json(role: Role) -> dict[str, Any]:
    return {
        "role_id": role.role_id,
        "name": role.name,
        "color": role.color,
        "power": role.power,
        "position": role.position,
        "permissions": sorted(role.permissions),
        "builtin": role.builtin,
    }


def channel_json(channel: Channel) -> dict[str, Any]:
    return {
        "channel_id": channel.channel_id,
        "name": channel.name,
        "kind": channel.kind.value,
        "topic": channel.topic,
        "category_id": channel.category_id,
        "order": channel.order,
        "allowed_roles": list(channel.allowed_roles) if channel.allowed_roles is not None else None,
        "default": channel.default,
    }


def category_json(category: Category) -> dict[str, Any]:
    return {"category_id": category.category_id, "name": category.name, "order": category.order}


def me_json(server: Server, user_id: UserID) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "roles": [r.role_id for r in server.roles_of(user_id)],
        "power": power_of(server, user_id),
        "permissions": sorted(permissions_of(server, user_id)),
    }


def server_json(server: Server, user_id: UserID) -> dict[str, Any]:
    """`Server`: gated channels the caller cannot enter are left out."""
    return {
        "server_id": server.server_id,
        "name": server.name,
        "topic": server.topic,
        "icon": server.icon,
        "owner": server.state.owner,
        "default_channel_id": server.state.default_channel,
        "categories": [category_json(c) for c in server.categories],
        "channels": [channel_json(c) for c in visible_channels(server, user_id)],
        "roles": [role_json(r) for r in server.roles],
        "me": me_json(server, user_id),
    }


def server_summary_json(server: Server) -> dict[str, Any]:
    return {
        "server_id": server.server_id,
        "name": server.name,
        "icon": server.icon,
        "member_count": len(server.members),
    }


def invite_json(invite: Invite, url: str) -> dict[str, Any]:
    """`Invite`: times in ms since the epoch; `expires_at`, `max_uses` null when unlimited."""
    return {
        "code": invite.code,
        "url": url,
        "server_id": invite.server_id,
        "creator": invite.creator,
        "created_at": invite.created_at,
        "expires_at": invite.expires_at,
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "revoked": invite.revoked_at is not None,
    }


def invite_preview_json(invite: Invite, server: Server, status: InviteStatus) -> dict[str, Any]:
    """What `GET /invites/{code}` shows anyone; `status` says why an invalid code is invalid."""
    return {
        "server_id": server.server_id,
        "name": server.name,
        "icon": server.icon,
        "member_count": len(server.members),
        "expires_at": invite.expires_at,
        "valid": status == "valid",
        "status": status.value,
    }


def member_json(server: Server, user_id: UserID, member_event: Mapping[str, Any]) -> dict[str, Any]:
    """`Member`: the display name and avatar are those of the user's member event in the space."""
    name = member_event.get("displayname")
    avatar = member_event.get("avatar_url")
    return {
        "user_id": user_id,
        "display_name": name if isinstance(name, str) and name else None,
        "avatar": avatar if isinstance(avatar, str) and avatar else None,
        "roles": [r.role_id for r in server.roles_of(user_id)],
        "power": power_of(server, user_id),
        "owner": user_id == server.state.owner,
    }
