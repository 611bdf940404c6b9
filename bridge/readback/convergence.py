"""Level-triggered convergence: every room of a server brought back to what its model derives.

Edge-triggered plans are not enough: two operations interleaved, a write the homeserver took in
the wrong order, a crash between two steps, or another client's change can each leave a room
that no later event repairs. So the bridge compares a server's rooms with what its model
derives (bridge/plans/derived.py) and repairs the difference:

- after each operation of the server (the journal calls back when one ends);
- on every received state event that touches derived state, the bot's own included: a write of
  the bridge that lost a race arrives as an event like any other;
- at start-up, for every server, once the operations a crash left unfinished are resumed;
- on a slow sweep of every server (`convergence.sweep_interval_s`).

A check waits while an operation of the server is unfinished (its plan is moving the rooms, and
a half-done plan is not a divergence), confirms what it found by reading those rooms again from
the homeserver, and carries the repair out as a journaled operation of the server. Each repair
is logged with its cause (event id, room and event type, or start-up, sweep, operation, doctor:
never tokens or content) and counted by cause in `repairs`.

It never fights a change reconcile.py reads back: that handler runs first on the same event and
turns, say, a power set by an admin in another client into a role change; auto-join invites of
role rooms count as held (`derived.with_pending_roles`), so the check derives the new power.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Final

from bridge.engine.inbox import InboxEvent
from bridge.engine.journal import OperationFailed, OperationJournal
from bridge.engine.store import Database
from bridge.plans.derived import Divergence, divergences, repair_plan
from bridge.readback.rooms import RoomsReader
from guilds.ids import RoomID
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, SERVER_EVENT

log = logging.getLogger(__name__)

# The operation kind of a repair, in the journal.
REPAIR_KIND: Final = "converge"
# State events whose change may make a room differ from what the model derives.
DERIVED_TYPES: Final = frozenset(
    {
        "m.room.power_levels",
        "m.room.member",
        "m.room.join_rules",
        "m.space.child",
        "m.space.parent",
        "m.room.create",
        ROLE_EVENT,
        SERVER_EVENT,
        CHANNEL_EVENT,
    }
)
# A burst of events (an operation's writes) makes one check, this long after the last.
DEBOUNCE_S: Final = 0.3
# How long a check waits before looking again while an operation of the server is unfinished.
BUSY_RETRY_S: Final = 0.5
# After this many checks in a row that each had to repair, the next ones back off: something
# undoes the repairs (a client or a rule at odds with the model), and the log says what.
REPEATS_BEFORE_BACKOFF: Final = 5
MAX_BACKOFF_S: Final = 60.0
# How long a check waits for unfinished operations at most: one left behind by a process that
# is gone for good must not hold the server's convergence back forever.
MAX_BUSY_WAIT_S: Final = 120.0
# After a check that failed (the homeserver away, say), the next one comes this much later.
FAILED_RETRY_S: Final = 5.0


@dataclass(frozen=True)
class Cause:
    """Why a server is checked: `kind` (event, operation, startup, sweep, doctor) and, for an
    event, which one (id, room, type) — what the log and the repair counter name."""

    kind: str
    event_id: str | None = None
    room_id: str | None = None
    event_type: str | None = None

    def describe(self) -> str:
        if self.event_id is None:
            return self.kind
        return f"{self.kind} {self.event_id} ({self.event_type}) in {self.room_id}"


def _category(divergence: Divergence) -> str:
    """The part of a room a divergence is about, without user ids: what repairs are counted by."""
    what = divergence.what
    if what.startswith("power_levels"):
        return "power_levels"
    if what.startswith("member."):
        return f"member_{divergence.expected}"
    if what.startswith("space.parent"):
        return "space_parent"
    if what.startswith("space.child"):
        return "space_child"
    return what


class Convergence:
    """Checks servers against their derived state and repairs them, one check per server at
    a time."""

    def __init__(
        self,
        *,
        db: Database,
        journal: OperationJournal,
        rooms: RoomsReader,
        sweep_interval_s: float,
        turn: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.journal = journal
        # Each check derives from the server's rooms as built here (bridge/readback/rooms.py).
        self.rooms = rooms
        self.directory = rooms.directory
        self.sweep_interval_s = sweep_interval_s
        self._clock = clock
        # The server's turn (bridge/engine/queue.py `ServerQueue.turn`): a check and its repair run
        # between the server's operations, never during one. Without a queue, a lock per server.
        self.turn = turn
        # Repairs counted by (cause kind, what was repaired): the metrics' source.
        self.repairs: Counter[tuple[str, str]] = Counter()
        # Called with (cause kind, what was repaired) for every repair: where a metrics
        # counter (guilds_convergence_repairs_total) is wired.
        self.on_repair: Callable[[str, str], None] | None = None
        self._locks: dict[RoomID, asyncio.Lock] = {}
        self._pending: dict[RoomID, asyncio.Task[None]] = {}
        self._causes: dict[RoomID, Cause] = {}
        self._repeats: dict[RoomID, int] = {}
        # Servers a scheduled check is running for; those to check once more after it.
        self._checking: set[RoomID] = set()
        self._again: dict[RoomID, Cause] = {}
        self._retry_after: dict[RoomID, float] = {}
        self._sweep_task: asyncio.Task[None] | None = None
        self._stopped = False

    # -- what triggers a check -------------------------------------------------------------------

    async def handle(self, event: InboxEvent) -> None:
        """Inbox handler (after the directory's and the reconciler's): schedule a check of the
        server when the event touches derived state, whoever sent it."""
        if event.state_key is None or event.type not in DERIVED_TYPES:
            return
        room_id = RoomID(event.room_id)
        # The bot's leave of a deleted channel: a client may have linked it again meanwhile.
        server_id = self.directory.server_of(room_id) or self.directory.server_left(room_id)
        if server_id is None:
            return
        self.schedule(
            server_id, Cause("event", event.event_id, event.room_id, event.type), DEBOUNCE_S
        )

    async def after_operation(self, kind: str, server_id: str | None) -> None:
        """Journal hook: an operation ended (done or failed); its server is checked."""
        if kind == REPAIR_KIND or server_id is None:
            return
        self.schedule(RoomID(server_id), Cause("operation", event_type=kind), DEBOUNCE_S)

    def schedule(self, server_id: RoomID, cause: Cause, delay_s: float = 0.0) -> None:
        """Check the server after `delay_s`; a check already waiting is pushed back instead."""
        if self._stopped:
            return
        self._causes.setdefault(server_id, cause)
        pending = self._pending.get(server_id)
        if pending is not None and not pending.done():
            pending.cancel()
        # A fresh context: scheduled from code that holds the server's turn (the end of an
        # operation), the check must still wait for the turn, not inherit it.
        self._pending[server_id] = asyncio.create_task(
            self._delayed(server_id, delay_s),
            name=f"guilds-converge-{server_id}",
            context=contextvars.Context(),
        )

    async def _delayed(self, server_id: RoomID, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        # From here on a newer event does not cancel this check.
        self._pending.pop(server_id, None)
        cause = self._causes.pop(server_id, Cause("event"))
        if server_id in self._checking:
            # A check of the server is under way (maybe waiting out an operation): one more
            # runs after it, however many events come meanwhile.
            self._again.setdefault(server_id, cause)
            return
        self._checking.add(server_id)
        try:
            await self.converge(server_id, cause)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Convergence of server %s (%s) failed", server_id, cause.describe())
            self._again.setdefault(server_id, cause)
            self._retry_after[server_id] = max(FAILED_RETRY_S, self._backoff(server_id))
        finally:
            self._checking.discard(server_id)
        again = self._again.pop(server_id, None)
        if again is not None:
            self.schedule(server_id, again, self._retry_after.pop(server_id, DEBOUNCE_S))

    def start(self) -> None:
        """Check every server once the resumed operations are through, then sweep slowly."""
        if self._sweep_task is None:
            self._sweep_task = asyncio.create_task(
                self._run(), name="guilds-converge-sweep", context=contextvars.Context()
            )

    async def _run(self) -> None:
        await self.journal.wait_resumed()
        cause = Cause("startup")
        while not self._stopped:
            for server_id in self.directory.server_ids():
                try:
                    if cause.kind == "sweep":
                        # Read afresh: an event the homeserver never delivered (lost in a
                        # restart of its own) left the directory behind, and the sweep is
                        # what catches it.
                        await self.directory.refresh(server_id, self.directory.rooms(server_id))
                    await self.converge(server_id, cause)
                except Exception:
                    log.exception("Convergence of server %s (%s) failed", server_id, cause.kind)
            if self.sweep_interval_s <= 0:
                return
            await asyncio.sleep(self.sweep_interval_s)
            cause = Cause("sweep")

    async def stop(self) -> None:
        self._stopped = True
        tasks = [t for t in (self._sweep_task, *self._pending.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- a check -----------------------------------------------------------------------------------

    def find(self, server_id: RoomID) -> list[Divergence] | None:
        """What differs in the server's rooms as the directory holds them; None: no such server."""
        rooms = self.rooms.get(server_id)
        return divergences(rooms) if rooms is not None else None

    def _turn(self, server_id: RoomID) -> AbstractAsyncContextManager[Any]:
        if self.turn is not None:
            return self.turn(server_id)
        return self._locks.setdefault(server_id, asyncio.Lock())

    async def converge(
        self, server_id: RoomID, cause: Cause, *, repair: bool = True, wait: bool = True
    ) -> list[Divergence]:
        """Check one server and repair it (with `repair`); return what differed.

        With `wait`, first waits (a bounded time) while an operation of the server is
        unfinished: `guilds doctor` run without `guilds serve` does not, since nothing would
        finish it. What the directory shows as divergent is read again from the homeserver
        before anything is repaired.
        """
        if wait:
            waited_until = self._clock() + MAX_BUSY_WAIT_S
            while True:
                if self._clock() >= waited_until or not await self._busy(server_id):
                    break
                await asyncio.sleep(BUSY_RETRY_S)
        async with self._turn(server_id):
            found = self.find(server_id)
            if not found:
                self._repeats.pop(server_id, None)
                return []
            # The directory may lag behind the homeserver: look again at the rooms involved
            # and at those the model is read from (the space, the role rooms).
            await self.directory.refresh(server_id, self._rooms_to_reread(server_id, found))
            found = self.find(server_id) or []
            if not found or not repair:
                return found
            await self._repair(server_id, cause, found)
            return found

    def _rooms_to_reread(self, server_id: RoomID, found: Iterable[Divergence]) -> set[RoomID]:
        server = self.directory.get(server_id)
        rooms = {d.room for d in found} | {server_id}
        if server is not None:
            rooms |= {room for r in server.roles for room in r.room_ids}
        return rooms

    async def _busy(self, server_id: RoomID) -> bool:
        """Whether an operation of the server (other than a repair) is unfinished."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM operations WHERE server_id = ?"
            " AND status IN ('pending', 'running') AND kind <> ?",
            server_id,
            REPAIR_KIND,
        )
        return row is not None and int(row["n"]) > 0

    async def _repair(self, server_id: RoomID, cause: Cause, found: list[Divergence]) -> None:
        rooms = self.rooms.get(server_id)
        if rooms is None:
            return
        plan = repair_plan(rooms, found)
        if not plan.stages:
            return
        for divergence in found:
            self._count(cause, divergence)
            log.info(
                "Converge server %s (cause: %s): %s in %s: expected %r, found %r",
                server_id,
                cause.describe(),
                divergence.what,
                divergence.room,
                divergence.expected,
                divergence.actual,
            )
        repeats = self._repeats.get(server_id, 0) + 1
        self._repeats[server_id] = repeats
        if repeats > REPEATS_BEFORE_BACKOFF:
            log.warning(
                "Server %s needed repairs %d checks in a row: something undoes them",
                server_id,
                repeats,
            )
        try:
            results = await self.journal.execute(REPAIR_KIND, server_id, plan)
        except OperationFailed as exc:
            log.error("Converge server %s: repair operation %s failed", server_id, exc.op_id)
            return
        self.directory.record_plan(plan, results)
        if repeats > REPEATS_BEFORE_BACKOFF:
            # The repair's own events schedule the next check; let it wait a little longer.
            await asyncio.sleep(self._backoff(server_id))

    def _count(self, cause: Cause, divergence: Divergence) -> None:
        """One repair, counted by its cause and by what it repaired (exported as a metric)."""
        what = _category(divergence)
        self.repairs[(cause.kind, what)] += 1
        if self.on_repair is not None:
            self.on_repair(cause.kind, what)

    def _backoff(self, server_id: RoomID) -> float:
        repeats = max(0, self._repeats.get(server_id, 0) - REPEATS_BEFORE_BACKOFF)
        return float(min(MAX_BACKOFF_S, BUSY_RETRY_S * 2**repeats))


# -- guilds doctor ---------------------------------------------------------------------------------

# Repair rounds `guilds doctor --repair` makes at most: a repair may reveal what it hid (a
# member let in by a gate that was wrong), which the next round repairs.
DOCTOR_ROUNDS: Final = 3


@dataclass(frozen=True)
class ServerReport:
    """What `guilds doctor` found in one server, and what is left after repairing."""

    server_id: str
    found: tuple[Divergence, ...]
    remaining: tuple[Divergence, ...]
    repaired: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "server_id": self.server_id,
            "found": [d.to_json() for d in self.found],
            "remaining": [d.to_json() for d in self.remaining],
            "repaired": self.repaired,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerReport:
        def divergences_of(key: str) -> tuple[Divergence, ...]:
            return tuple(
                Divergence(RoomID(d["room_id"]), d["what"], d["expected"], d["actual"])
                for d in data.get(key, [])
            )

        return cls(
            str(data["server_id"]),
            divergences_of("found"),
            divergences_of("remaining"),
            bool(data.get("repaired")),
            data.get("error"),
        )


@dataclass(frozen=True)
class DoctorReport:
    servers: tuple[ServerReport, ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        return all(not s.remaining and s.error is None for s in self.servers)

    def to_json(self) -> dict[str, Any]:
        return {"servers": [s.to_json() for s in self.servers]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DoctorReport:
        return cls(tuple(ServerReport.from_json(s) for s in data.get("servers", [])))

    def lines(self) -> list[str]:
        out: list[str] = []
        for server in self.servers:
            if server.error is not None:
                out.append(f"server {server.server_id}: {server.error}")
                continue
            if not server.found:
                out.append(f"server {server.server_id}: every room matches the model")
                continue
            out.append(f"server {server.server_id}: {len(server.found)} divergence(s)")
            out += [f"  {d.line()}" for d in server.found]
            if server.repaired:
                if server.remaining:
                    out.append(f"  still divergent after repairing: {len(server.remaining)}")
                    out += [f"  {d.line()}" for d in server.remaining]
                else:
                    out.append("  repaired: every room matches the model now")
        if not self.servers:
            out.append("no servers")
        return out


async def doctor(
    convergence: Convergence,
    server_id: str | None,
    *,
    repair: bool,
    wait: bool,
) -> DoctorReport:
    """Compare each server (or the one named) with its model; with `repair`, converge it."""
    directory = convergence.directory
    ids = [RoomID(server_id)] if server_id is not None else sorted(directory.server_ids())
    reports: list[ServerReport] = []
    cause = Cause("doctor")
    for sid in ids:
        if directory.get(sid) is None:
            reports.append(ServerReport(sid, (), (), error="no such server"))
            continue
        # Everything read afresh, not as the directory last heard of it.
        await directory.refresh(sid, directory.rooms(sid))
        found = await convergence.converge(sid, cause, repair=False, wait=wait)
        remaining = found
        if repair and found:
            for _ in range(DOCTOR_ROUNDS):
                await convergence.converge(sid, cause, repair=True, wait=wait)
                await directory.refresh(sid, directory.rooms(sid))
                remaining = convergence.find(sid) or []
                if not remaining:
                    break
        reports.append(ServerReport(sid, tuple(found), tuple(remaining), repaired=repair))
    return DoctorReport(tuple(reports))
