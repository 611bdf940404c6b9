"""Reconciliation: what other Matrix clients change in a server is read back, or repaired.

An admin may use Element instead of the Guilds UI. Events reach the bridge by transaction;
this inbox handler runs after the directory's (so the room state it reads is current) and
brings the rest of the server in line: a power level set by hand becomes a role change, a room
linked into the space becomes a channel, a kick from the space cascades to every room. It never
fights a legitimate change. What breaks a rule and could not be vetoed (the module vetoes local
senders only, so this is a federated sender) is reversed, and the log says why: event id, room,
rule — never tokens or message content.

The decisions are pure functions of the server model and the event (unit tested without a
homeserver); `Reconciler` gathers their inputs, runs the plans through the journal, and logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bridge.engine.inbox import InboxEvent
from bridge.engine.journal import OperationFailed, OperationJournal
from bridge.engine.matrix import MatrixClient, MatrixRequestError, path_segment
from bridge.engine.patience import patiently
from bridge.engine.queue import ServerQueue
from bridge.engine.steps import AutoJoinInvite, Kick, Plan, SendState, Step, Unban
from bridge.plans.channels import child_orders, next_index
from bridge.plans.derived import with_pending_roles
from bridge.plans.levels import CREATORS_KEY, derived_levels, levels_plan, merged_levels
from bridge.plans.roles import (
    ban_plan,
    kick_plan,
    outsiders,
    unban_plan,
    with_assignment,
    without_member,
)
from bridge.plans.rooms import RoomStates, ServerRooms
from bridge.readback.rooms import RoomsReader
from guilds.ids import RoomID, UserID
from guilds.layout import channel_allow, space_child
from guilds.model import (
    ADMIN_POWER,
    MEMBER_POWER,
    BuiltinRole,
    Role,
    Server,
    order_key,
)
from guilds.permissions import MemberAction, actor, may_act_on, may_grant
from guilds.powerlevels import PowerChange, creators_have_unlimited_power, power_changes
from guilds.rules import (
    SPACE_CHILD,
    RoomContext,
    RoomKind,
    role_state_refusal,
    state_permission_refusal,
)
from guilds.snapshot import RoomState, assemble, rooms_of
from guilds.vocabulary import (
    CHANNEL_EVENT,
    CHANNEL_KIND_KEY,
    ROLE_EVENT,
    ROLE_ROOM_TYPE,
    SERVER_EVENT,
    SPACE_ROOM_TYPE,
    ChannelKind,
)

log = logging.getLogger(__name__)

POWER_LEVELS: Final = "m.room.power_levels"
MEMBER: Final = "m.room.member"
SPACE_PARENT: Final = "m.space.parent"
JOIN_RULES: Final = "m.room.join_rules"
LEFT_REASON: Final = "Left the server"
KICKED_REASON: Final = "Removed from the server"
NOT_A_MEMBER_REASON: Final = "Not a member of the server"
ROLE_CHANGE_REASON: Final = "Power level changed in another client"
# The state the bot writes when it adopts a room: it must be allowed to send each of these.
_ADOPTION_STATE: Final = (CHANNEL_EVENT, SPACE_PARENT, JOIN_RULES, POWER_LEVELS)


@dataclass(frozen=True)
class Finding:
    """One thing reconciliation noticed: a rule name for grepping the log, and a sentence."""

    rule: str
    detail: str


@dataclass(frozen=True)
class Decision:
    """What to do about one event: a plan (possibly empty), rooms to forget, and why."""

    plan: Plan = Plan(())
    findings: tuple[Finding, ...] = ()
    # Rooms no longer part of the server (a channel unlinked by hand).
    forget: tuple[RoomID, ...] = ()
    # A room linked into the space that is not a Guilds room yet: adopt it (needs I/O first).
    adopt: RoomID | None = None
    # The server model the plan brings about (role changes read back), for logging and tests.
    projected: Server | None = field(default=None, compare=False)


def _plan(*stages: Sequence[Step]) -> Plan:
    return Plan.of(*[stage for stage in stages if stage])


def _links(content: Mapping[str, Any] | None) -> bool:
    via = (content or {}).get("via")
    return isinstance(via, list) and bool(via)


# -- the model before an event -----------------------------------------------------------------


def model_before(
    rooms: ServerRooms,
    room_id: RoomID,
    key: tuple[str, str],
    prev_content: Mapping[str, Any] | None,
) -> Server:
    """The server as it was before one state event (its previous content put back)."""
    room = dict(rooms.state(room_id))
    if prev_content is None:
        room.pop(key, None)
    else:
        room[key] = prev_content
    return assemble(rooms.server.server_id, _WithRoom(rooms.states, room_id, room), bot=rooms.bot)


class _WithRoom(Mapping[RoomID, RoomState]):
    """`states` with one room's state put in place: a view, since copying `states` would read
    every room the bridge tracks (expanding every compacted server)."""

    def __init__(self, states: RoomStates, room_id: RoomID, room: RoomState) -> None:
        self._states = states
        self._room_id = room_id
        self._room = room

    def __getitem__(self, room_id: RoomID) -> RoomState:
        return self._room if room_id == self._room_id else self._states[room_id]

    def __contains__(self, room_id: object) -> bool:
        return room_id == self._room_id or room_id in self._states

    def __iter__(self) -> Iterator[RoomID]:
        yield from self._states
        if self._room_id not in self._states:
            yield self._room_id

    def __len__(self) -> int:
        return len(self._states) + (self._room_id not in self._states)


# -- 1. power levels ---------------------------------------------------------------------------


def role_for_power(server: Server, power: int) -> Role | None:
    """The role a power level reads back as: admin at 100, moderator at its power, else the
    most senior custom role with exactly that power; None when no role has it."""
    if power == ADMIN_POWER:
        return server.role(BuiltinRole.ADMIN.value)
    moderator = server.role(BuiltinRole.MODERATOR.value)
    if moderator is not None and moderator.power == power:
        return moderator
    candidates = [r for r in server.roles if r.power == power and not r.builtin]
    return max(candidates, key=lambda r: r.position, default=None)


def roles_for_power(
    server: Server, user: UserID, power: int
) -> tuple[tuple[Role, ...], tuple[Role, ...]] | None:
    """(roles to grant, roles to remove) giving `user` exactly `power`; None if no roles can.

    Roles with more power than wanted are removed; if what remains falls short, the role that
    reads back as `power` is granted. 0 removes every role with power, leaving `member`.
    """
    held = [r for r in server.roles_of(user) if r.role_id != BuiltinRole.MEMBER]
    remove = tuple(r for r in held if r.power > power)
    kept = max((r.power for r in held if r.power <= power), default=MEMBER_POWER)
    if kept == power:
        return (), remove
    grant = role_for_power(server, power)
    if grant is None:
        return None
    return (grant,), remove


def _read_back(
    server: Server, sender: UserID, change: PowerChange, bot: UserID
) -> Finding | tuple[tuple[Role, ...], tuple[Role, ...]]:
    """The role changes a power change reads back as, or why it is reverted instead."""
    user = change.user_id
    if user == bot:
        return Finding("bot_power", "The bot's power follows no role.")
    if user == server.state.owner:
        return Finding("owner_power", "The owner's power cannot change; transfer ownership.")
    if not server.is_member(user):
        return Finding("not_a_member", "Only members of the server hold roles.")
    roles = roles_for_power(server, user, change.new)
    if roles is None:
        return Finding("not_expressible", f"No role has power {change.new}.")
    for role in (*roles[0], *roles[1]):
        refusal = may_grant(server, sender, role) or may_act_on(
            server, sender, user, MemberAction.CHANGE_ROLES
        )
        if refusal is not None:
            return Finding("not_allowed", refusal)
        if role.room_id is None:
            return Finding("not_expressible", f"The role {role.role_id!r} has no role room.")
    return roles


def with_roles(
    server: Server, user: UserID, grant: Iterable[Role], remove: Iterable[Role]
) -> Server:
    for role in grant:
        server = with_assignment(server, user, role.role_id, held=True)
    for role in remove:
        server = with_assignment(server, user, role.role_id, held=False)
    return server


def power_levels_decision(
    rooms: ServerRooms,
    room_id: RoomID,
    sender: UserID,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
) -> Decision:
    """Power levels someone other than the bot wrote in a room of the server.

    In the space, each user's new power is read back as role changes when the sender was
    allowed to make them; every room is then rewritten from the roles, which also restores
    whatever could not be read back (thresholds, powers no role has, changes the sender was not
    allowed to make). Anywhere else power levels are always derived: they are restored.
    `rooms` must already hold `new_content` for the room (the directory applied it), and its
    model count pending role invites as held (`with_pending_roles`).
    """
    server, bot = rooms.server, rooms.bot
    if room_id not in {room for room, _, _ in rooms.kinds}:
        return Decision()
    if room_id != server.server_id:
        plan = levels_plan(server, rooms.only([room_id]))
        if not plan.stages:
            return Decision()
        why = "Power levels outside the space always follow the roles; restored."
        return Decision(plan, (Finding("derived_power_levels", why),))
    findings: list[Finding] = []
    role_steps: list[Step] = []
    projected = server
    for change in power_changes(prev_content, new_content):
        what = f"{change.user_id}: power {change.old} -> {change.new}"
        verdict = _read_back(server, sender, change, bot)
        if isinstance(verdict, Finding):
            findings.append(Finding(verdict.rule, f"{what} reverted. {verdict.detail}"))
            continue
        grant, remove = verdict
        for role in grant:
            role_steps.append(
                AutoJoinInvite(
                    name=f"grant_{len(role_steps)}",
                    room=str(role.room_id),
                    user=change.user_id,
                    reason=ROLE_CHANGE_REASON,
                )
            )
        for role in remove:
            role_steps.append(
                Kick(
                    name=f"remove_{len(role_steps)}",
                    room=str(role.room_id),
                    user=change.user_id,
                    reason=ROLE_CHANGE_REASON,
                )
            )
        projected = with_roles(projected, change.user_id, grant, remove)
        granted = ", ".join(r.role_id for r in grant) or "none"
        removed = ", ".join(r.role_id for r in remove) or "none"
        findings.append(
            Finding("read_back", f"{what} read back: granted {granted}; removed {removed}.")
        )
    # Gated channels a removed role no longer opens (the module makes local users leave them
    # too; the bot's kicks do not depend on it).
    gate_kicks: list[Step] = []
    for channel in projected.channels:
        if channel.allowed_roles is None:
            continue
        for user in outsiders(projected, channel, rooms):
            if any(isinstance(s, Kick) and s.user == user for s in role_steps):
                gate_kicks.append(
                    Kick(
                        name=f"gate_{len(gate_kicks)}",
                        room=channel.channel_id,
                        user=user,
                        reason=ROLE_CHANGE_REASON,
                    )
                )
    levels = levels_plan(projected, rooms)
    level_steps = list(levels.stages[0]) if levels.stages else []
    if any(isinstance(s, SendState) and s.room == server.server_id for s in level_steps):
        findings.append(Finding("restored", "The space's other levels follow the roles."))
    return Decision(
        _plan(role_steps, gate_kicks + level_steps), tuple(findings), projected=projected
    )


# -- 2. rooms linked into or out of the space ---------------------------------------------------


def child_link_decision(
    rooms: ServerRooms,
    child_id: RoomID,
    sender: UserID,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
) -> Decision:
    """An `m.space.child` in the space written by someone other than the bot."""
    server = rooms.server
    space = server.server_id
    refusal = state_permission_refusal(
        actor(server, sender, bot=rooms.bot),
        RoomContext(RoomKind.SPACE, default_channel_id=server.state.default_channel),
        SPACE_CHILD,
    )
    linked_before, linked_now = _links(prev_content), _links(new_content)
    if linked_before == linked_now:
        return Decision()  # reordered or re-suggested: the directory reflects it
    if refusal is not None:
        # Only a federated sender gets here: the module vetoes local ones.
        restore = SendState(
            name="restore_link",
            room=space,
            type=SPACE_CHILD,
            state_key=child_id,
            content=dict(prev_content or {}),
        )
        return Decision(_plan([restore]), (Finding("not_allowed", f"{refusal} Reverted."),))
    if not linked_now:
        if child_id == server.state.default_channel:
            relink = SendState(
                name="relink_default",
                room=space,
                type=SPACE_CHILD,
                state_key=child_id,
                content=dict(prev_content or {}),
            )
            why = "The default channel cannot be removed from the server; linked again."
            return Decision(_plan([relink]), (Finding("default_channel", why),))
        if child_id in rooms_of(space, rooms.states):
            return Decision()  # still linked elsewhere (moved into a category)
        return Decision(
            forget=(child_id,),
            findings=(Finding("unlinked", f"{child_id} is no longer in the server."),),
        )
    if any(room == child_id for room, _, _ in rooms.kinds):
        return Decision()  # a Guilds channel or category linked again: the directory has it
    if child_id in rooms.left:
        # A channel or category being deleted, linked again: nothing to adopt (the bot left
        # it for good); convergence removes the link (`ServerRooms.left`).
        return Decision()
    return Decision(adopt=child_id)


def creators_from_events(events: Iterable[Mapping[str, Any]]) -> tuple[UserID, ...]:
    """A room's creators under v12: the sender of `m.room.create` and its additional creators."""
    for event in events:
        if event.get("type") == "m.room.create" and event.get("state_key") == "":
            content = event.get("content") or {}
            extra = content.get("additional_creators")
            found = [event.get("sender"), *(extra if isinstance(extra, list) else [])]
            return tuple(UserID(u) for u in dict.fromkeys(found) if isinstance(u, str))
    return ()


def bot_power(state: RoomState, bot: UserID, creators: Sequence[UserID], version: str) -> int:
    if creators_have_unlimited_power(version) and bot in creators:
        return 2**53  # unlimited
    levels = state.get((POWER_LEVELS, ""))
    if levels is None:
        # No power levels yet: Matrix gives the creator 100, everyone else 0.
        return ADMIN_POWER if bot in creators else MEMBER_POWER
    users = levels.get("users")
    level = (users if isinstance(users, Mapping) else {}).get(bot, levels.get("users_default", 0))
    return level if isinstance(level, int) else 0


def _needed(levels: Mapping[str, Any] | None, event_type: str) -> int:
    if levels is None:
        return MEMBER_POWER
    events = levels.get("events")
    level = (events if isinstance(events, Mapping) else {}).get(
        event_type, levels.get("state_default", 50)
    )
    return level if isinstance(level, int) else ADMIN_POWER


def adoption_decision(
    rooms: ServerRooms,
    room_id: RoomID,
    events: Sequence[Mapping[str, Any]],
    link_content: Mapping[str, Any],
) -> Decision:
    """Make a room linked into the space a text channel, from its full state (the bot is in it).

    The bot writes `<ns>.channel`, `m.space.parent`, the join rule (restricted to the space)
    and the derived power levels, then gives the link an `order` after the other children.
    A room the bot may not write those into is left alone, and the log says what to do.
    """
    server, bot, via = rooms.server, rooms.bot, rooms.via
    state: dict[tuple[str, str], Mapping[str, Any]] = {}
    for event in events:
        if isinstance(event.get("type"), str) and isinstance(event.get("state_key"), str):
            state[(event["type"], event["state_key"])] = event.get("content") or {}
    create = state.get(("m.room.create", ""), {})
    if create.get("type") in (SPACE_ROOM_TYPE, ROLE_ROOM_TYPE):
        return Decision(
            findings=(Finding("not_adopted", f"{room_id} is a space, not a room for chat."),)
        )
    if (CHANNEL_EVENT, "") in state or (SERVER_EVENT, "") in state:
        return Decision(
            findings=(Finding("not_adopted", f"{room_id} already belongs to a Guilds server."),)
        )
    version = create.get("room_version")
    version = version if isinstance(version, str) else "1"
    creators = creators_from_events(events)
    levels = state.get((POWER_LEVELS, ""))
    power = bot_power(state, bot, creators, version)
    if any(power < _needed(levels, t) for t in _ADOPTION_STATE):
        return Decision(
            findings=(
                Finding(
                    "bot_lacks_power",
                    f"Give {bot} power 100 in {room_id} to adopt it as a channel.",
                ),
            )
        )
    others = (
        tuple(c for c in creators if c != bot) if creators_have_unlimited_power(version) else ()
    )
    channel_content: dict[str, Any] = {
        "kind": ChannelKind.TEXT.value,
        "server_id": server.server_id,
        "default": False,
    }
    findings = [Finding("adopted", f"{room_id} becomes a text channel.")]
    if others:
        channel_content[CREATORS_KEY] = list(others)
        findings.append(
            Finding(
                "creator_power",
                f"Room version {version}: its creators {list(others)} keep unlimited power there.",
            )
        )
    derived = derived_levels(
        server, RoomKind.CHANNEL, ChannelKind.TEXT, bot=bot, room_version=version, creators=others
    )
    marker = SendState(
        name="channel",
        room=room_id,
        type=CHANNEL_EVENT,
        state_key="",
        content=channel_content,
    )
    in_room: list[Step] = [
        SendState(
            name="parent",
            room=room_id,
            type=SPACE_PARENT,
            state_key=server.server_id,
            content={"via": [via], "canonical": True},
        ),
        SendState(
            name="join_rules",
            room=room_id,
            type=JOIN_RULES,
            state_key="",
            content={"join_rule": "restricted", "allow": channel_allow(server.server_id, None)},
        ),
    ]
    # Last: lowering others' power first could take away what the other steps need.
    levels_step = SendState(
        name="power_levels",
        room=room_id,
        type=POWER_LEVELS,
        state_key="",
        content=merged_levels(levels, derived, others, bot),
    )
    link: list[Step] = []
    if (
        not isinstance(link_content.get("order"), str)
        or link_content.get(CHANNEL_KIND_KEY) != ChannelKind.TEXT.value
    ):
        # Private channels at the top level take places too, though the space does not link them.
        siblings = child_orders(rooms, server.server_id, besides=room_id)
        order = link_content.get("order")
        if not isinstance(order, str):
            order = order_key(next_index(siblings))
        # The link says what the room now is, for clients that read the space before joining.
        content = {
            **space_child(order, via, ChannelKind.TEXT),
            **link_content,
            "order": order,
            CHANNEL_KIND_KEY: ChannelKind.TEXT.value,
        }
        link.append(
            SendState(
                name="order",
                room=server.server_id,
                type=SPACE_CHILD,
                state_key=room_id,
                content=content,
            )
        )
    # The marker last: the room reads back as a channel the moment it lands (the inbox keeps
    # applying events while the plan runs), so by then its place, parent, join rule and power
    # levels are already those of a channel.
    return Decision(_plan(link + in_room, [levels_step], [marker]), tuple(findings))


# -- 4. leaving, kicks and bans in the space ------------------------------------------------


def membership_decision(
    rooms: ServerRooms,
    user: UserID,
    sender: UserID,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
) -> Decision:
    """A member left, was kicked, banned or unbanned in the space: the same in every room of
    the server, as the API's kick, ban and unban do."""
    server = rooms.server
    membership = new_content.get("membership")
    before = (prev_content or {}).get("membership")
    if membership not in ("leave", "ban") or user == rooms.bot or membership == before:
        return Decision()
    if before == "ban":
        # An unban from another client: lifted in every room, exactly as the API's unban
        # (else the channels would refuse the user forever once they are back in the space).
        return Decision(
            unban_plan(rooms, user),
            (Finding("unban_cascade", f"{user} is unbanned in every room of the server."),),
        )
    if user == server.state.owner:
        # The owner cannot leave or be removed: back into the space (the module auto-joins).
        steps: list[Step] = []
        if membership == "ban":
            steps.append(Unban(name="unban_owner", room=server.server_id, user=user))
        back = AutoJoinInvite(name="invite_owner", room=server.server_id, user=user)
        return Decision(
            _plan(steps, [back]),
            (Finding("owner", "The owner cannot leave or be removed; invited back."),),
        )
    after = without_member(server, user)
    if membership == "ban":
        reason = new_content.get("reason")
        plan = ban_plan(
            after,
            user,
            reason if isinstance(reason, str) else None,
            rooms=rooms,
        )
        rule = "ban_cascade"
    else:
        rule = "leave_cascade" if sender == user else "kick_cascade"
        reason = LEFT_REASON if sender == user else KICKED_REASON
        plan = kick_plan(after, user, reason, rooms=rooms)
    return Decision(
        plan or Plan(()),
        (Finding(rule, f"{user} is removed from every room of the server."),),
        projected=after,
    )


def stray_member_decision(
    server: Server,
    room_id: RoomID,
    user: UserID,
    content: Mapping[str, Any],
    space_membership: str | None,
) -> Decision:
    """Someone joined a channel, category or role room while not in the space (as the
    homeserver says now): out of it, as a leave of the space would have taken them.

    The space's rooms admit its members only, but a join authorised a moment before a leave
    can land after the leave's cascade read the room (the module joins a new member to the
    default channel while they leave the server), and a private channel's invite outlives a
    kick. Discord has no member of a channel who is not in the server.
    """
    if (
        content.get("membership") != "join"
        or space_membership == "join"
        or room_id == server.server_id
        or server.is_member(user)
    ):
        return Decision()
    kick = Kick(name="kick_stray", room=room_id, user=user, reason=NOT_A_MEMBER_REASON)
    return Decision(
        Plan.of([kick]),
        (Finding("stray_member", f"{user} is in {room_id} but not in the server; removed."),),
    )


# -- 5. Guilds markers written by someone else ------------------------------------------------


def guilds_state_decision(
    before: Server,
    event_type: str,
    state_key: str,
    sender: UserID,
    prev_content: Mapping[str, Any] | None,
    new_content: Mapping[str, Any],
    bot: UserID,
) -> Decision:
    """`<ns>.server` or `<ns>.role` written in the space by someone other than the bot.

    `<ns>.server` is the bot's alone. A role edit is judged by the rules of role edits against
    the server as it was before (`model_before`), so a sender cannot vouch for themselves.
    """
    restore = SendState(
        name="restore",
        room=before.server_id,
        type=event_type,
        state_key=state_key,
        content=dict(prev_content or {}),
    )
    if event_type == SERVER_EVENT:
        return Decision(
            _plan([restore]),
            (Finding("forged_server_state", "Only Guilds writes the server marker; restored."),),
        )
    refusal = role_state_refusal(
        actor(before, sender, bot=bot),
        RoomContext(RoomKind.SPACE, default_channel_id=before.state.default_channel),
        state_key,
        prev_content,
        new_content,
        before.roles,
    )
    if refusal is None:
        return Decision()
    return Decision(_plan([restore]), (Finding("role_not_allowed", f"{refusal} Restored."),))


# -- the inbox handler ---------------------------------------------------------------------------


class Reconciler:
    """Inbox handler: reads back what other clients changed, and repairs what breaks a rule."""

    def __init__(
        self,
        *,
        matrix: MatrixClient,
        journal: OperationJournal,
        rooms: RoomsReader,
        queue: ServerQueue | None = None,
    ) -> None:
        self.matrix = matrix
        self.journal = journal
        # Each decision reads the server's rooms as built here (bridge/readback/rooms.py).
        self.rooms = rooms
        self.directory = rooms.directory
        self.bot = rooms.bot
        self.queue = queue

    async def handle(self, event: InboxEvent) -> None:
        """Reconcile at the server's turn (bridge/engine/queue.py), after what is already queued.

        Handed to the queue rather than waited for here: the inbox must go on applying events
        to the directory meanwhile, or a request holding the turn would wait for a directory
        that cannot move.
        """
        if self.queue is None:
            await self._handle(event)
            return
        server_id = self._server_for(event)
        if server_id is not None:
            self.queue.later(
                server_id, lambda: self._handle(event), f"Reconciling {event.event_id}"
            )

    def _server_for(self, event: InboxEvent) -> RoomID | None:
        """The server whose turn the event's reconciliation needs; None if it needs none."""
        if event.state_key is None:
            return None
        room_id = RoomID(event.room_id)
        known = self.directory.server_of(room_id)
        if event.sender == self.bot:
            bot_joined = event.type == MEMBER and event.state_key == self.bot
            return self._linking_server(room_id) if bot_joined and known is None else None
        if known is None and event.type == POWER_LEVELS:
            return self._linking_server(room_id)
        return known

    def _linking_server(self, room_id: RoomID) -> RoomID | None:
        # Without taking idle servers back into memory (the directory keeps such links aside).
        for server_id, link in self.directory.space_links(room_id):
            if _links(link):
                return server_id
        return None

    async def _handle(self, event: InboxEvent) -> None:
        if event.state_key is None:
            return
        if event.sender == self.bot:
            if event.type == MEMBER and event.state_key == self.bot:
                await self._bot_joined(event)
            # Everything else the bot sends, the bridge decided itself.
            return
        room_id = RoomID(event.room_id)
        server_id = self.directory.server_of(room_id)
        if server_id is None:
            if event.type == POWER_LEVELS:
                # A linked room the bot could not adopt may just have given it the power.
                await self._linked_room_changed(room_id, event)
            return
        server = self.directory.get(server_id)
        if server is None:
            return
        if event.type == POWER_LEVELS and event.state_key == "":
            await self._power_levels(server, room_id, event)
        elif event.type == SPACE_CHILD and room_id == server_id:
            await self._child_link(server, event)
        elif event.type == MEMBER and room_id == server_id:
            decision = membership_decision(
                self.rooms.of(server),
                UserID(event.state_key),
                UserID(event.sender),
                event.prev_content,
                event.content,
            )
            await self._carry_out("reconcile_membership", server_id, event, decision)
        elif event.type == MEMBER and event.content.get("membership") == "join":
            await self._joined_room(server, room_id, event)
        elif event.type in (ROLE_EVENT, SERVER_EVENT) and room_id == server_id:
            await self._guilds_state(server, event)

    # -- each kind of event ------------------------------------------------------------------

    async def _joined_room(self, server: Server, room_id: RoomID, event: InboxEvent) -> None:
        user = UserID(event.state_key or "")
        if user == self.bot or server.is_member(user):
            return
        # The directory may not have the space's newest membership yet (events of two rooms
        # can arrive in either order from two event persisters): the homeserver decides.
        # Patient, as the kick itself would be: a homeserver that is down is waited out.
        path = (
            f"/_matrix/client/v3/rooms/{path_segment(server.server_id)}"
            f"/state/m.room.member/{path_segment(user)}"
        )
        try:
            member = await patiently(
                lambda: self.matrix.request("GET", path),
                f"Reading {user}'s membership of {server.server_id}",
            )
            space_membership = member.get("membership")
        except MatrixRequestError as exc:
            if exc.status != 404:
                raise
            space_membership = None
        decision = stray_member_decision(server, room_id, user, event.content, space_membership)
        await self._carry_out("reconcile_membership", server.server_id, event, decision)

    async def _power_levels(self, server: Server, room_id: RoomID, event: InboxEvent) -> None:
        rooms = self.rooms.of(server)
        if room_id not in {room for room, _, _ in rooms.kinds}:
            # A room linked into the space but not adopted yet: the bot may have just been
            # given the power it lacked.
            link = rooms.state(server.server_id).get((SPACE_CHILD, room_id))
            if _links(link):
                await self._adopt(server, room_id, dict(link or {}), event)
            return
        decision = power_levels_decision(
            rooms.with_model(with_pending_roles(rooms)),
            room_id,
            UserID(event.sender),
            event.prev_content,
            event.content,
        )
        await self._carry_out("reconcile_power_levels", server.server_id, event, decision)

    async def _child_link(self, server: Server, event: InboxEvent) -> None:
        child_id = RoomID(str(event.state_key))
        decision = child_link_decision(
            self.rooms.of(server),
            child_id,
            UserID(event.sender),
            event.prev_content,
            event.content,
        )
        if decision.adopt is not None:
            await self._adopt(server, decision.adopt, event.content, event)
            return
        await self._carry_out("reconcile_space_child", server.server_id, event, decision)

    async def _guilds_state(self, server: Server, event: InboxEvent) -> None:
        prev = event.prev_content
        key = (event.type, str(event.state_key))
        before = model_before(self.rooms.of(server), server.server_id, key, prev)
        decision = guilds_state_decision(
            before,
            event.type,
            str(event.state_key),
            UserID(event.sender),
            prev,
            event.content,
            self.bot,
        )
        if not decision.plan.stages and event.type == ROLE_EVENT:
            # A legitimate role edit from another client: its power and permissions set the
            # power levels of every room.
            decision = Decision(levels_plan(server, self.rooms.of(server)))
        await self._carry_out("reconcile_guilds_state", server.server_id, event, decision)

    async def _bot_joined(self, event: InboxEvent) -> None:
        """The bot joined a room (say, after an invite): adopt it if a server links it."""
        if event.content.get("membership") != "join":
            return
        await self._linked_room_changed(RoomID(event.room_id), event)

    async def _linked_room_changed(self, room_id: RoomID, event: InboxEvent) -> None:
        """Adopt a room some server links but the bridge does not track, if it now can."""
        if self.directory.server_of(room_id) is not None:
            return
        for server_id, link in self.directory.space_links(room_id):
            server = self.directory.get(server_id) if _links(link) else None
            if server is not None:
                await self._adopt(server, room_id, dict(link), event)
                return

    async def _adopt(
        self, server: Server, room_id: RoomID, link: Mapping[str, Any], event: InboxEvent
    ) -> None:
        try:
            await self.matrix.join_room(room_id)
        except MatrixRequestError as exc:
            if exc.status in (403, 404):
                log.warning(
                    "Reconcile %s in %s (server %s), rule not_adopted: the bot cannot join %s "
                    "(%s); invite %s to the room to adopt it as a channel",
                    event.event_id,
                    event.room_id,
                    server.server_id,
                    room_id,
                    exc.errcode,
                    self.bot,
                )
                return
            raise
        events = await self.matrix.get_state(room_id)
        decision = adoption_decision(self.rooms.of(server), room_id, events, link)
        await self._carry_out("adopt_channel", server.server_id, event, decision)
        if decision.plan.stages:
            await self.directory.refresh(server.server_id, [room_id, server.server_id])

    # -- carrying out ---------------------------------------------------------------------------

    async def _carry_out(
        self, kind: str, server_id: RoomID, event: InboxEvent, decision: Decision
    ) -> None:
        for finding in decision.findings:
            log.info(
                "Reconcile %s (%s) in %s, server %s, sent by %s, rule %s: %s",
                event.event_id,
                event.type,
                event.room_id,
                server_id,
                event.sender,
                finding.rule,
                finding.detail,
            )
        for room_id in decision.forget:
            self.directory.forget_room(room_id)
        if not decision.plan.stages:
            return
        try:
            await self.journal.execute(kind, server_id, decision.plan)
        except OperationFailed as exc:
            # The journal recorded why; running the same plan again would fail the same way.
            log.error(
                "Reconcile %s in %s: operation %s failed", event.event_id, server_id, exc.op_id
            )
