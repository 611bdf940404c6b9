"""Channel and category operations of the provisioning API: create, edit, move, gate, delete.

Checks are pure rules (guilds.permissions, guilds.model), room changes are plans
(bridge/plans/channels.py) carried out by the journal, and answers are read back from the
directory once it holds what the plan changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from bridge.engine.matrix import path_segment
from bridge.engine.steps import Plan, SendState, Step
from bridge.errors import Conflict, Forbidden, InvalidParam, MissingParam, NotFound
from bridge.plans.channels import (
    JOIN_RULES,
    child_orders,
    containers,
    create_category_plan,
    create_channel_plan,
    delete_category_plan,
    delete_channel_plan,
    gate_kicks,
    join_rules,
    move_steps,
    next_index,
    no_longer_allowed,
    order_steps,
    position_among_all,
    reordered,
    retype_steps,
    unlink_steps,
)
from bridge.plans.levels import new_room_levels
from bridge.services.servers import Servers
from guilds.ids import RoomID, UserID
from guilds.model import (
    BuiltinRole,
    Category,
    Channel,
    Permission,
    Server,
    name_problem,
    order_key,
    topic_problem,
)
from guilds.permissions import may_enter, require
from guilds.policies import channel_count_refusal, channel_kind_refusal
from guilds.rules import RoomKind
from guilds.vocabulary import ChannelKind

log = logging.getLogger(__name__)

# How long an answer waits for the directory to show what was just changed.
SETTLE_S = 5.0


def _check(problem: str | None) -> None:
    if problem is not None:
        raise InvalidParam(problem[0].upper() + problem[1:])


def _required(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        raise MissingParam(f"{key} is required")
    return body[key]


def _name(value: Any) -> str:
    _check(name_problem(value))
    return str(value)


def _topic(value: Any) -> str:
    topic = "" if value is None else value
    _check(topic_problem(topic))
    return str(topic)


def _kind(value: Any) -> ChannelKind:
    if isinstance(value, str):
        try:
            return ChannelKind(value)
        except ValueError:
            pass
    raise InvalidParam("kind must be one of " + ", ".join(k.value for k in ChannelKind))


def _position(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidParam("order must be a position: an integer from 0")
    return value


def allowed_roles(server: Server, value: Any) -> tuple[str, ...] | None:
    """The channel's gate as the model holds it: None for everyone, else the role ids (sorted,
    admin left out since admins always may enter). Naming `member` means everyone."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise InvalidParam("allowed_roles must be a list of role ids, or null for everyone")
    unknown = sorted({r for r in value if server.role(r) is None})
    if unknown:
        raise InvalidParam(f"Unknown role: {', '.join(unknown)}")
    if BuiltinRole.MEMBER.value in value:
        return None
    gate = set(value) - {BuiltinRole.ADMIN.value}
    for role_id in gate:
        role = server.role(role_id)
        if role is None or role.room_id is None:
            raise InvalidParam(f"The role {role_id!r} has no role room to gate a channel with")
    return tuple(sorted(gate))


class Channels:
    def __init__(self, *, servers: Servers) -> None:
        self.servers = servers
        self.matrix = servers.matrix
        self.journal = servers.journal
        self.directory = servers.directory
        self.bot = servers.bot
        # One structural change per server at a time: orders are computed from the tree as it
        # is, so two concurrent creations would otherwise pick the same place.
        self._locks: dict[RoomID, asyncio.Lock] = {}

    # -- shared --------------------------------------------------------------------------------

    def _managed(self, server_id: str, actor: UserID) -> Server:
        server = self.servers.visible(server_id, actor)
        require(server, actor, Permission.MANAGE_CHANNELS, "managing channels")
        return server

    def _allowed_kind(self, kind: ChannelKind) -> None:
        refusal = channel_kind_refusal(self.servers.policies.channel_kinds, kind.value)
        if refusal is not None:
            raise Forbidden(refusal)

    def _room_for_one_more(self, server: Server) -> None:
        limit = self.servers.policies.limits.channels_per_server
        refusal = channel_count_refusal(limit, len(server.channels))
        if refusal is not None:
            raise Forbidden(refusal)

    def _lock(self, server_id: RoomID) -> asyncio.Lock:
        return self._locks.setdefault(server_id, asyncio.Lock())

    @staticmethod
    def _channel_of(server: Server, channel_id: str, viewer: UserID | None = None) -> Channel:
        """The channel, or NotFound; with a `viewer`, also NotFound for a channel they may not
        enter, word for word as for one that does not exist: manage_channels reaches only the
        channels one sees, and the answer reveals nothing of the others (as on Discord)."""
        for channel in server.channels:
            if channel.channel_id == channel_id:
                if viewer is not None and not may_enter(server, viewer, channel):
                    break
                return channel
        raise NotFound("No such channel")

    @staticmethod
    def _category_of(server: Server, category_id: str) -> Category:
        for category in server.categories:
            if category.category_id == category_id:
                return category
        raise NotFound("No such category")

    def _category_arg(self, server: Server, value: Any) -> RoomID | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidParam("category_id must be a category id, or null for the top level")
        return self._category_of(server, value).category_id

    async def _carry_out(
        self, kind: str, server_id: RoomID, stages: list[list[Step]], touched: Iterable[RoomID]
    ) -> None:
        """Run the changes: one state event directly, anything more as a journaled plan."""
        stages = [stage for stage in stages if stage]
        if not stages:
            return
        if len(stages) == 1 and len(stages[0]) == 1 and isinstance(stages[0][0], SendState):
            step = stages[0][0]
            room, state_key = RoomID(str(step.room)), str(step.state_key)
            event_id = await self.matrix.send_state(room, step.type, state_key, step.content)
            self.directory.record_sent(room, step.type, state_key, step.content, event_id)
            return
        await self.journal.execute(kind, server_id, Plan.of(*stages))
        await self.directory.refresh(server_id, set(touched))

    async def _settled(self, server_id: RoomID, find: Any) -> Any:
        """What `find(server)` returns once the directory shows it (or raise NotFound)."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            server = self.directory.get(server_id)
            if server is not None:
                try:
                    return find(server)
                except NotFound:
                    if time.monotonic() > deadline:
                        raise
            elif time.monotonic() > deadline:
                raise NotFound("No such server")
            await asyncio.sleep(0.05)

    # -- channels ------------------------------------------------------------------------------

    async def create_channel(self, server_id: str, actor: UserID, body: dict[str, Any]) -> Channel:
        server = self._managed(server_id, actor)
        name = _name(_required(body, "name"))
        kind = _kind(_required(body, "kind"))
        self._allowed_kind(kind)
        topic = _topic(body.get("topic"))
        gate = allowed_roles(server, body.get("allowed_roles"))
        category = self._category_arg(server, body.get("category_id"))
        sid = server.server_id
        async with self._lock(sid):
            server = self._managed(server_id, actor)
            self._room_for_one_more(server)
            rooms = self.servers.rooms.of(server)
            parent = category or sid
            order = order_key(next_index(child_orders(rooms, parent)))
            levels = new_room_levels(
                server,
                RoomKind.CHANNEL,
                kind,
                bot=self.bot,
                room_version=await self.servers.room_version(),
            )
            plan = create_channel_plan(
                rooms,
                name=name,
                kind=kind,
                topic=topic,
                parent=parent,
                allowed_roles=gate,
                order=order,
                power_levels=levels,
            )
            results = await self.journal.execute("create_channel", sid, plan)
            room = RoomID(results["channel"]["room_id"])
            links = containers(server, category, gate)
            await self.directory.refresh(sid, [parent, room, *links])
        log.info("Created channel %s in server %s", room, sid)
        return await self._settled(sid, lambda s: self._channel_of(s, room))

    async def update_channel(
        self, server_id: str, actor: UserID, channel_id: str, body: dict[str, Any]
    ) -> Channel:
        server = self._managed(server_id, actor)
        channel = self._channel_of(server, channel_id, actor)
        name = _name(body["name"]) if "name" in body else channel.name
        topic = _topic(body["topic"]) if "topic" in body else channel.topic
        kind = _kind(body["kind"]) if "kind" in body else channel.kind
        if kind != channel.kind:
            self._allowed_kind(kind)
        position = _position(body["order"]) if "order" in body else None
        gate = (
            allowed_roles(server, body["allowed_roles"])
            if "allowed_roles" in body
            else channel.allowed_roles
        )
        moving = "category_id" in body
        category = self._category_arg(server, body["category_id"]) if moving else None
        if channel.default:
            if name != channel.name:
                raise Conflict("The default channel cannot be renamed")
            if kind != channel.kind:
                raise Conflict("The default channel's kind cannot be changed")
            if gate is not None:
                raise Conflict("The default channel is open to every member; it cannot be gated")
            if moving and category is not None:
                # The homeserver refuses unlinking the default channel from the space, to anyone.
                raise Conflict("The default channel stays at the top level of the server")

        sid = server.server_id
        async with self._lock(sid):
            server = self._managed(server_id, actor)
            channel = self._channel_of(server, channel_id, actor)
            rooms = self.servers.rooms.of(server)
            room = channel.channel_id
            first: list[Step] = []
            second: list[Step] = []
            if name != channel.name:
                first.append(self._state(room, "m.room.name", {"name": name}))
            if topic != channel.topic:
                first.append(self._state(room, "m.room.topic", {"topic": topic}))
            gating = gate != channel.allowed_roles
            if gating:
                first.append(self._state(room, JOIN_RULES, join_rules(server, gate)))
            old_parent = channel.category_id or sid
            new_category = category if moving else channel.category_id
            new_parent = new_category or sid
            # The rooms that link the channel: its parent, or its roles' rooms when gated.
            old_links = containers(server, channel.category_id, channel.allowed_roles)
            new_links = containers(server, new_category, gate)
            touched = {room, old_parent, new_parent, *old_links, *new_links}
            changes: dict[RoomID, str] = {}
            siblings = self._siblings(server, new_category)
            # The position the caller asked for counts the channels they see (docs/API.md).
            at = position_among_all(
                siblings, self._seen_by(server, actor, new_category), room, position
            )
            if new_parent != old_parent:
                if at is None:
                    changes = {room: order_key(next_index(child_orders(rooms, new_parent)))}
                else:
                    changes = reordered(siblings, room, at)
                point, unparent = move_steps(
                    room, old_parent=old_parent, new_parent=new_parent, via=rooms.via
                )
                first += point
                second += unparent
            elif at is not None:
                changes = reordered(siblings, room, at)
            if new_links != old_links and room not in changes:
                changes[room] = channel.order
            if kind != channel.kind:
                # The links rewritten below carry the new kind; the others get it here.
                first += retype_steps(rooms, room, kind, links=room not in changes)
            # The channel's kind as it now is: a retype in the same edit is not undone.
            first += order_steps(
                rooms,
                new_parent,
                changes,
                prefix="order",
                link_kinds={room: kind},
                where={room: new_links},
            )
            second += unlink_steps(rooms, room, old_links, new_links)
            await self._carry_out("update_channel", sid, [first, second], touched)
            if gating:
                # Read who is inside only now that the new join rule holds: whoever joined
                # a moment ago is seen, and nobody the rule refuses can join after the read.
                inside = await self._inside(room)
                kicks = gate_kicks(room, no_longer_allowed(server, channel, gate, inside, self.bot))
                await self._carry_out("gate_channel", sid, [kicks], [room])
        return await self._settled(sid, lambda s: self._channel_of(s, room))

    async def _inside(self, room: RoomID) -> set[UserID]:
        """Who is joined to or invited into the room, asked of the homeserver (not the directory,
        which may not have a join of the last few milliseconds yet)."""
        data = await self.matrix.request(
            "GET",
            f"/_matrix/client/v3/rooms/{path_segment(room)}/members",
            query={"not_membership": "leave"},
        )
        chunk = data.get("chunk") if isinstance(data, dict) else None
        return {
            UserID(event["state_key"])
            for event in chunk or []
            if isinstance(event, dict)
            and isinstance(event.get("state_key"), str)
            and isinstance(event.get("content"), dict)
            and event["content"].get("membership") in ("join", "invite")
        }

    @staticmethod
    def _state(room: RoomID, event_type: str, content: dict[str, Any]) -> SendState:
        return SendState(
            name=f"set_{event_type}", room=room, type=event_type, state_key="", content=content
        )

    @staticmethod
    def _siblings(server: Server, category: RoomID | None) -> list[tuple[RoomID, str]]:
        return [(c.channel_id, c.order) for c in server.channels if c.category_id == category]

    @staticmethod
    def _seen_by(server: Server, actor: UserID, category: RoomID | None) -> set[RoomID]:
        return {
            c.channel_id
            for c in server.channels
            if c.category_id == category and may_enter(server, actor, c)
        }

    async def delete_channel(self, server_id: str, actor: UserID, channel_id: str) -> None:
        server = self._managed(server_id, actor)
        channel = self._channel_of(server, channel_id, actor)
        if channel.default:
            raise Conflict("The default channel cannot be deleted")
        sid = server.server_id
        async with self._lock(sid):
            parent = channel.category_id or sid
            plan = delete_channel_plan(self.servers.rooms.of(server), channel)
            await self.journal.execute("delete_channel", sid, plan)
            self.directory.forget_room(channel.channel_id)
            linking = containers(server, channel.category_id, channel.allowed_roles)
            await self.directory.refresh(sid, [parent, *linking])
        log.info("Deleted channel %s of server %s", channel.channel_id, sid)

    # -- categories ----------------------------------------------------------------------------

    async def create_category(
        self, server_id: str, actor: UserID, body: dict[str, Any]
    ) -> Category:
        server = self._managed(server_id, actor)
        name = _name(_required(body, "name"))
        sid = server.server_id
        async with self._lock(sid):
            server = self._managed(server_id, actor)
            rooms = self.servers.rooms.of(server)
            order = order_key(next_index(child_orders(rooms, sid)))
            levels = new_room_levels(
                server,
                RoomKind.CATEGORY,
                bot=self.bot,
                room_version=await self.servers.room_version(),
            )
            plan = create_category_plan(rooms, name=name, order=order, power_levels=levels)
            results = await self.journal.execute("create_category", sid, plan)
            room = RoomID(results["category"]["room_id"])
            await self.directory.refresh(sid, [sid, room])
        log.info("Created category %s in server %s", room, sid)
        return await self._settled(sid, lambda s: self._category_of(s, room))

    async def update_category(
        self, server_id: str, actor: UserID, category_id: str, body: dict[str, Any]
    ) -> Category:
        server = self._managed(server_id, actor)
        category = self._category_of(server, category_id)
        name = _name(body["name"]) if "name" in body else category.name
        position = _position(body["order"]) if "order" in body else None
        sid = server.server_id
        async with self._lock(sid):
            server = self._managed(server_id, actor)
            category = self._category_of(server, category_id)
            room = category.category_id
            steps: list[Step] = []
            if name != category.name:
                steps.append(self._state(room, "m.room.name", {"name": name}))
            if position is not None:
                siblings = [(c.category_id, c.order) for c in server.categories]
                changes = reordered(siblings, room, position)
                steps += order_steps(self.servers.rooms.of(server), sid, changes, prefix="order")
            await self._carry_out("update_category", sid, [steps], {sid, room})
        return await self._settled(sid, lambda s: self._category_of(s, room))

    async def delete_category(self, server_id: str, actor: UserID, category_id: str) -> None:
        server = self._managed(server_id, actor)
        category = self._category_of(server, category_id)
        sid = server.server_id
        async with self._lock(sid):
            server = self._managed(server_id, actor)
            room = category.category_id
            moved = [c.channel_id for c in server.channels if c.category_id == room]
            plan = delete_category_plan(self.servers.rooms.of(server), room)
            await self.journal.execute("delete_category", sid, plan)
            self.directory.forget_room(room)
            await self.directory.refresh(sid, [sid, *moved])
        log.info("Deleted category %s of server %s (%d channels moved up)", room, sid, len(moved))
