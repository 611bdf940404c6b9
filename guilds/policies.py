"""The homeserver admin's policies as pure rules: each refusal names the policy that refuses.

The bridge asks these before acting on an API request; the Synapse module asks the ones a
client could bypass the bridge for (a room linked into a space by hand, call membership, a
channel's kind, a public join rule). Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from guilds.config import ModulePolicies, Policies

KEY = "policies"


def _key(name: str) -> str:
    return f"{KEY}.{name}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def may_create_servers(policies: Policies, user: str, is_admin: bool) -> bool:
    """Whether `create_servers` lets this user create a server (`is_admin`: a server admin)."""
    if policies.create_servers == "everyone":
        return True
    if policies.create_servers == "admins":
        return is_admin
    if user in policies.create_servers_users:
        return True
    regex = policies.create_servers_regex
    return regex is not None and re.fullmatch(regex, user) is not None


def server_creation_refusal(
    policies: Policies, user: str, *, is_admin: bool, servers_owned: int
) -> str | None:
    if not may_create_servers(policies, user, is_admin):
        who = {
            "admins": "the homeserver's admins",
            "listed": "the users it lists",
        }.get(policies.create_servers, "nobody")
        return f"The policy {_key('create_servers')} allows only {who} to create servers"
    limit = policies.limits.servers_per_user
    if limit is not None and servers_owned >= limit:
        return (
            f"The policy {_key('limits.servers_per_user')} allows "
            f"{_plural(limit, 'server')} per user, and you own {servers_owned}"
        )
    return None


def channel_count_refusal(limit: int | None, channels: int) -> str | None:
    """Whether one more channel fits in a server that has `channels` already."""
    if limit is not None and channels >= limit:
        return (
            f"The policy {_key('limits.channels_per_server')} allows "
            f"{_plural(limit, 'channel')} per server"
        )
    return None


def channel_kind_refusal(kinds: Iterable[str], kind: str) -> str | None:
    allowed = tuple(kinds)
    if kind not in allowed:
        return (
            f"The policy {_key('channel_kinds')} allows only {', '.join(allowed)} channels, "
            f"not {kind}"
        )
    return None


def role_count_refusal(policies: Policies, custom_roles: int) -> str | None:
    """Whether one more role fits; the built-in admin, moderator and member do not count."""
    limit = policies.limits.roles_per_server
    if limit is not None and custom_roles >= limit:
        return (
            f"The policy {_key('limits.roles_per_server')} allows "
            f"{_plural(limit, 'role')} per server besides admin, moderator and member"
        )
    return None


def call_members_refusal(limit: int | None, others_in_call: int) -> str | None:
    """Whether one more person fits in a voice or video channel's call."""
    if limit is not None and others_in_call >= limit:
        return (
            f"The policy {_key('limits.members_per_voice_channel')} allows "
            f"{_plural(limit, 'member')} in a call"
        )
    return None


def public_refusal(public_servers: bool) -> str | None:
    if not public_servers:
        return f"The policy {_key('public_servers')} does not allow public servers"
    return None


def module_channel_kind_refusal(policies: ModulePolicies, kind: object) -> str | None:
    if not isinstance(kind, str):
        return None  # a malformed kind is the shared rules' to refuse
    return channel_kind_refusal(policies.channel_kinds, kind)
