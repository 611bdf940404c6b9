"""Plans of multi-room operations: stages of idempotent steps, and how each step is carried out.

A `Plan` is plain data: an ordered list of stages, each a list of steps that do not depend on one
another (the journal runs them concurrently); a step may name the result of a step of an earlier
stage with `Ref`, resolved just before it runs. Plans serialise to JSON so the journal
(bridge/engine/journal.py) can store one before anything runs and resume it after a crash.

Every step must be safe to run again after it may already have taken effect, because a crash can
come between the homeserver doing it and the journal recording it. What Synapse 1.163 answers
when a step was already done (each measured against a real Synapse):

- createRoom: the step passes a deterministic alias in the bridge's exclusive namespace; the retry
  gets 400 M_ROOM_IN_USE and resolves the alias to the room created the first time.
- PUT state with the content already there: 200 with the existing event id (no new event).
- PUT send/{txnId}: the same txn id from the same appservice answers the first event id. Synapse
  keeps those txn ids in memory for about 30 minutes, so a bridge crash *and* a Synapse restart
  during one send could still duplicate that one message.
- invite: 200 if already invited; 403 M_FORBIDDEN "… is already in the room." if joined.
- kick: 403 M_FORBIDDEN "The target user is not in the room" if left or never joined,
  403 M_BAD_STATE "Cannot kick user who was banned" if banned.
- ban: 200 if already banned. unban: 200 if never a member, 403 M_BAD_STATE "Cannot unban user
  who was not banned (membership=leave)" after an unban.
- join (already joined) and leave (already left): 200.

Messages are not matched: on a 403 the membership steps read the target's membership and call
the step done when it is already what the step wanted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from bridge.engine.matrix import MatrixRequestError, path_segment
from guilds.layout import auto_join_invite

# Room aliases made by operations. They must fall inside the registration's exclusive alias
# namespace (`#_guilds_.*`), so no user can take one and the bot may create them.
OPERATION_ALIAS_PREFIX = "_guilds_op_"
# Marks a `Ref` in a plan's JSON; a plain mapping in a step's arguments may not use this key.
REF_KEY = "__ref__"
PLAN_FORMAT = 1


class PlanError(ValueError):
    """A plan is malformed: duplicate or missing names, a bad reference, unserialisable data."""


class StaleAnswer(Exception):
    """The homeserver answered a state write with an event the state has since replaced.

    Nothing was written (see `ServerDirectory.superseded`); the step is retried, as after a 5xx.
    """


# Whether an event id is one a room's state has since replaced: (room, type, state_key, id).
SupersededCheck = Callable[[str, str, str, str], bool]


class MatrixRequester(Protocol):
    """What steps need of `bridge.matrix.MatrixClient` (unit tests pass a fake)."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        user_id: str | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class Ref:
    """The result of the step named `step` (of an earlier stage): its `key`, or its main value."""

    step: str
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {REF_KEY: self.step} if self.key is None else {REF_KEY: self.step, "key": self.key}


Arg = str | Ref


@dataclass(frozen=True)
class StepContext:
    """Where and as what a step runs; the ids it derives are the same on every attempt."""

    matrix: MatrixRequester
    bot_user_id: str
    op_id: str
    stage: int
    idx: int
    # Set by the journal from the directory; None where nothing tracks the rooms (unit tests).
    superseded: SupersededCheck | None = None

    @property
    def server_name(self) -> str:
        return self.bot_user_id.split(":", 1)[1]

    @property
    def alias_localpart(self) -> str:
        return operation_alias_localpart(self.op_id, self.stage, self.idx)

    @property
    def txn_id(self) -> str:
        return f"guilds_op_{self.op_id}_{self.stage}_{self.idx}"


def operation_alias_localpart(op_id: str, stage: int, idx: int) -> str:
    return f"{OPERATION_ALIAS_PREFIX}{op_id}_{stage}_{idx}"


@dataclass(frozen=True)
class Step:
    """One idempotent room change. Subclasses set `kind` (its name in JSON) and `primary`."""

    name: str

    kind: ClassVar[str] = ""
    # The result key a `Ref` without a key resolves to.
    primary: ClassVar[str] = "room_id"
    _kinds: ClassVar[dict[str, type[Step]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            if cls.kind in Step._kinds:
                raise TypeError(f"two step classes are called {cls.kind!r}")
            Step._kinds[cls.kind] = cls

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        """Carry the step out (its arguments already resolved); return its JSON result."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise PlanError when the step can never succeed as written."""

    # -- arguments ----------------------------------------------------------------------------

    def arguments(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}

    def refs(self) -> Iterator[Ref]:
        yield from _refs_in(self.arguments())

    def resolved(self, results: Mapping[str, Mapping[str, Any]], plan: Plan) -> Step:
        """A copy with every `Ref` replaced by the result it names."""
        values = {k: _resolve(v, results, plan) for k, v in self.arguments().items()}
        return dataclasses.replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "args": {k: _encode(v) for k, v in self.arguments().items()},
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Step:
        try:
            cls = Step._kinds[data["kind"]]
            args = {k: _decode(v) for k, v in data["args"].items()}
            return cls(name=data["name"], **args)
        except (KeyError, TypeError, AttributeError) as exc:
            raise PlanError(f"not a step: {exc}") from exc


@dataclass(frozen=True)
class Plan:
    """Stages run in order; the steps of one stage are independent and may run concurrently."""

    stages: tuple[tuple[Step, ...], ...]

    @classmethod
    def of(cls, *stages: Sequence[Step]) -> Plan:
        return cls(tuple(tuple(stage) for stage in stages))

    def steps(self) -> Iterator[tuple[int, int, Step]]:
        for stage_no, stage in enumerate(self.stages):
            for idx, step in enumerate(stage):
                yield stage_no, idx, step

    def step(self, name: str) -> Step:
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Step]:
        return {step.name: step for _, _, step in self.steps()}

    def validate(self) -> None:
        """Raise PlanError unless every name is unique and every Ref names an earlier stage."""
        seen: dict[str, int] = {}
        for stage_no, stage in enumerate(self.stages):
            if not stage:
                raise PlanError(f"stage {stage_no} is empty")
            for step in stage:
                if not isinstance(step, Step) or not step.kind:
                    raise PlanError(f"stage {stage_no} holds {step!r}, not a step")
                if not step.name:
                    raise PlanError(f"a {step.kind} step in stage {stage_no} has no name")
                if step.name in seen or sum(s.name == step.name for s in stage) > 1:
                    raise PlanError(f"two steps are named {step.name!r}")
                for ref in step.refs():
                    if seen.get(ref.step, stage_no) >= stage_no:
                        raise PlanError(
                            f"step {step.name!r} refers to {ref.step!r}, which is not a step "
                            "of an earlier stage"
                        )
                step.validate()
            for step in stage:
                seen[step.name] = stage_no

    def to_json(self) -> str:
        data = {
            "format": PLAN_FORMAT,
            "stages": [[step.to_json() for step in stage] for stage in self.stages],
        }
        try:
            return json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise PlanError(f"the plan is not JSON-serialisable: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise PlanError("not a plan this bridge knows how to read")
        return cls.of(*[[Step.from_json(s) for s in stage] for stage in data["stages"]])


# -- references in arguments ---------------------------------------------------------------------


def _refs_in(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _refs_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _refs_in(v)


def _resolve(value: Any, results: Mapping[str, Mapping[str, Any]], plan: Plan) -> Any:
    if isinstance(value, Ref):
        key = value.key or type(plan.step(value.step)).primary
        try:
            return results[value.step][key]
        except KeyError as exc:
            raise PlanError(f"{value.step!r} has no result {key!r}") from exc
    if isinstance(value, Mapping):
        return {k: _resolve(v, results, plan) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v, results, plan) for v in value]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, Ref):
        return value.to_json()
    if isinstance(value, Mapping):
        if REF_KEY in value:
            raise PlanError(f"{REF_KEY!r} is reserved for references and cannot be a content key")
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if REF_KEY in value:
            return Ref(value[REF_KEY], value.get("key"))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _text(value: Any, what: str) -> str:
    # After resolution every room and user argument is a string; anything else is a plan bug.
    if not isinstance(value, str):
        raise PlanError(f"{what} must be a string, not {type(value).__name__}")
    return value


# -- the steps -----------------------------------------------------------------------------------

ROOMS = "/_matrix/client/v3/rooms"


def _room_path(room: Any, rest: str) -> str:
    return f"{ROOMS}/{path_segment(_text(room, 'room'))}/{rest}"


async def membership_of(matrix: MatrixRequester, room: str, user: str) -> str | None:
    """The user's membership in the room as the bot sees it; None if they never had one."""
    try:
        content = await matrix.request(
            "GET", _room_path(room, f"state/m.room.member/{path_segment(user)}")
        )
    except MatrixRequestError as exc:
        if exc.status == 404:
            return None
        raise
    membership = content.get("membership") if isinstance(content, dict) else None
    return membership if isinstance(membership, str) else None


@dataclass(frozen=True)
class CreateRoom(Step):
    """POST /createRoom as the bot, made idempotent by a deterministic alias of the operation.

    `body` is the createRoom request body, except `room_alias_name` (the step's own). The alias is
    removed when the operation ends; the room's canonical alias is kept off it.
    """

    body: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    kind: ClassVar[str] = "create_room"

    def validate(self) -> None:
        if "room_alias_name" in self.body:
            raise PlanError(
                f"step {self.name!r}: room_alias_name is the step's own; publish a public alias "
                "with a later step"
            )

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        body = dict(self.body)
        body["room_alias_name"] = ctx.alias_localpart
        initial_state = list(body.get("initial_state") or [])
        # Synapse makes the alias canonical unless initial_state sets one: clients would show it.
        if not any(
            e.get("type") == "m.room.canonical_alias" and e.get("state_key", "") == ""
            for e in initial_state
        ):
            initial_state.append({"type": "m.room.canonical_alias", "state_key": "", "content": {}})
        body["initial_state"] = initial_state
        try:
            data = await ctx.matrix.request("POST", "/_matrix/client/v3/createRoom", json=body)
            return {"room_id": str(data["room_id"])}
        except MatrixRequestError as exc:
            if exc.errcode != "M_ROOM_IN_USE":
                raise
        # Created by an attempt whose answer was lost (a crash, a timeout): that is our room.
        alias = f"#{ctx.alias_localpart}:{ctx.server_name}"
        data = await ctx.matrix.request(
            "GET", f"/_matrix/client/v3/directory/room/{path_segment(alias)}"
        )
        return {"room_id": str(data["room_id"])}


@dataclass(frozen=True)
class SendState(Step):
    """PUT a state event as the bot; the same content twice is one event."""

    room: Arg
    type: str
    state_key: Arg
    content: Mapping[str, Any]

    kind: ClassVar[str] = "send_state"
    primary: ClassVar[str] = "event_id"

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        state_key = _text(self.state_key, "state_key")
        data = await ctx.matrix.request(
            "PUT",
            _room_path(self.room, f"state/{path_segment(self.type)}/{path_segment(state_key)}"),
            json=dict(self.content),
        )
        event_id = str(data["event_id"])
        room = _text(self.room, "room")
        if ctx.superseded is not None and ctx.superseded(room, self.type, state_key, event_id):
            raise StaleAnswer(
                f"{self.type} in {room}: the homeserver answered with {event_id}, which the "
                "room's state has since replaced (a worker behind on the room); nothing written"
            )
        return {"event_id": event_id, "room_id": self.room}


@dataclass(frozen=True)
class SendMessage(Step):
    """Send an event as the bot with a txn id derived from the step, so a retry is deduplicated."""

    room: Arg
    content: Mapping[str, Any]
    type: str = "m.room.message"

    kind: ClassVar[str] = "send_message"
    primary: ClassVar[str] = "event_id"

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        data = await ctx.matrix.request(
            "PUT",
            _room_path(self.room, f"send/{path_segment(self.type)}/{path_segment(ctx.txn_id)}"),
            json=dict(self.content),
        )
        return {"event_id": str(data["event_id"]), "room_id": self.room}


@dataclass(frozen=True)
class _Membership(Step):
    """A membership change by the bot on `user`; `done_when` is the membership it leads to."""

    room: Arg
    user: Arg
    reason: str | None = None

    action: ClassVar[str] = ""
    done_when: ClassVar[frozenset[str | None]] = frozenset()

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        room, user = _text(self.room, "room"), _text(self.user, "user")
        body: dict[str, Any] = {"user_id": user}
        if self.reason:
            body["reason"] = self.reason
        try:
            await ctx.matrix.request("POST", _room_path(room, self.action), json=body)
        except MatrixRequestError as exc:
            # Synapse refuses some repeats ("already in the room", "not in the room"): look.
            if exc.status != 403 or await membership_of(ctx.matrix, room, user) not in (
                self.done_when
            ):
                raise
        return {"room_id": room, "user_id": user}


@dataclass(frozen=True)
class Invite(_Membership):
    kind: ClassVar[str] = "invite"
    action: ClassVar[str] = "invite"
    done_when: ClassVar[frozenset[str | None]] = frozenset({"invite", "join"})


@dataclass(frozen=True)
class AutoJoinInvite(_Membership):
    """An invite the Synapse module accepts on the invitee's behalf (role rooms, default channel).

    Sent as the member state event itself, because `/invite` keeps no extra content and the
    module recognises these invites by `AUTO_JOIN_KEY` in it.
    """

    kind: ClassVar[str] = "auto_join_invite"
    done_when: ClassVar[frozenset[str | None]] = frozenset({"invite", "join"})

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        room, user = _text(self.room, "room"), _text(self.user, "user")
        content = {"membership": "invite", **auto_join_invite(self.reason)}
        path = _room_path(room, f"state/m.room.member/{path_segment(user)}")
        try:
            await ctx.matrix.request("PUT", path, json=content)
        except MatrixRequestError as exc:
            if (
                exc.status != 403
                or await membership_of(ctx.matrix, room, user) not in self.done_when
            ):
                raise
        return {"room_id": room, "user_id": user}


@dataclass(frozen=True)
class Kick(_Membership):
    kind: ClassVar[str] = "kick"
    action: ClassVar[str] = "kick"
    done_when: ClassVar[frozenset[str | None]] = frozenset({None, "leave", "ban"})


@dataclass(frozen=True)
class Ban(_Membership):
    kind: ClassVar[str] = "ban"
    action: ClassVar[str] = "ban"
    done_when: ClassVar[frozenset[str | None]] = frozenset({"ban"})


@dataclass(frozen=True)
class Unban(_Membership):
    kind: ClassVar[str] = "unban"
    action: ClassVar[str] = "unban"
    done_when: ClassVar[frozenset[str | None]] = frozenset({None, "leave", "invite", "join"})


@dataclass(frozen=True)
class Join(Step):
    """The bot joins a room of its own homeserver (a no-op when it is in already)."""

    room: Arg

    kind: ClassVar[str] = "join"

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        data = await ctx.matrix.request(
            "POST", f"/_matrix/client/v3/join/{path_segment(_text(self.room, 'room'))}", json={}
        )
        return {"room_id": str(data.get("room_id", self.room))}


@dataclass(frozen=True)
class EmptyRoom(Step):
    """Kick everyone joined to or invited into the room but the bot, as they are when it runs.

    Read at execution, not at planning: someone may join in between (the module joins new
    members to the default channel a moment after they join the space). Close the room to
    joins in an earlier stage so nobody comes in after the read. Re-running kicks whoever is
    still there, so the step is idempotent.
    """

    room: Arg
    reason: str | None = None

    kind: ClassVar[str] = "empty_room"

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        room = _text(self.room, "room")
        data = await ctx.matrix.request(
            "GET", _room_path(room, "members"), query={"not_membership": "leave"}
        )
        inside = sorted(
            event["state_key"]
            for event in (data.get("chunk") or [] if isinstance(data, dict) else [])
            if isinstance(event, dict)
            and isinstance(event.get("state_key"), str)
            and event["state_key"] != ctx.bot_user_id
            and isinstance(event.get("content"), dict)
            and event["content"].get("membership") in ("join", "invite")
        )
        for user in inside:
            kick = Kick(name=f"{self.name}_kick", room=room, user=user, reason=self.reason)
            await kick.apply(ctx)
        return {"room_id": room, "kicked": len(inside)}


@dataclass(frozen=True)
class Leave(Step):
    """The bot leaves the room (a no-op when it is not in it)."""

    room: Arg

    kind: ClassVar[str] = "leave"

    async def apply(self, ctx: StepContext) -> dict[str, Any]:
        try:
            await ctx.matrix.request("POST", _room_path(self.room, "leave"), json={})
        except MatrixRequestError as exc:
            # Synapse: 404 "Not a known room" when the bot never was in it.
            if exc.status != 404:
                raise
        return {"room_id": self.room}
