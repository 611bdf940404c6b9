"""The bridge's picture of every Guilds server: the state of their rooms, kept in memory.

Each room's state is fetched once from the homeserver, then kept current by the events that
arrive by transaction (and by what the bridge itself just sent), so reading a server through
the API is an in-memory assembly (`guilds.snapshot.assemble`), never a walk over room state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import MatrixClient, MatrixRequestError
from bridge.engine.patience import patiently
from bridge.engine.steps import Plan, SendState
from bridge.plans.servers import DECLARED_EVENT
from bridge.readback.compact import Compacted, deep_size, framed, in_framed
from bridge.readback.evicted import EvictedServers
from guilds.config import DirectorySettings
from guilds.ids import RoomID, UserID
from guilds.model import CATEGORY_EVENT, InvalidContent, Server
from guilds.rules import SPACE_CHILD, RoomKind, channel_kind
from guilds.snapshot import assemble, is_server_space, joined, rooms_of
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT, ChannelKind, is_role_room

log = logging.getLogger(__name__)

# How many room states are fetched at once when a server is loaded.
LOAD_CONCURRENCY = 8


@dataclass
class _Entry:
    content: dict[str, Any]
    event_id: str | None
    # True once a transaction has delivered this very event (or a later one): from then on,
    # transactions arrive in stream order and each one replaces what we hold.
    confirmed: bool
    # The ids of the events this entry replaced, newest first (a few): a homeserver answering a
    # write with one of them has not written anything (see `superseded`).
    replaced: tuple[str, ...] = ()
    # `RoomStates.clock` when this entry was learned (sent or received; 0: read from `/state`
    # or restored): a `/state` answer asked for before that may be older than the entry.
    learned: int = 0


# How many replaced event ids an entry remembers.
REPLACED_KEPT = 4
# How many rooms, and state entries in each, `RoomStates.footprint` measures to estimate the rest.
FOOTPRINT_SAMPLE_ROOMS = 32
FOOTPRINT_SAMPLE_ENTRIES = 32


def _after(previous: _Entry | None) -> tuple[str, ...]:
    """The replaced ids of an entry that takes `previous`'s place."""
    if previous is None or previous.event_id is None:
        return previous.replaced if previous is not None else ()
    return ((previous.event_id,) + previous.replaced)[:REPLACED_KEPT]


def _follows(event: Mapping[str, Any], ours: _Entry) -> bool:
    """Whether a `/state` answer's event is the entry we hold or directly replaced it."""
    unsigned = event.get("unsigned")
    replaces = unsigned.get("replaces_state") if isinstance(unsigned, dict) else None
    return event.get("event_id") == ours.event_id or (
        ours.event_id is not None and replaces == ours.event_id
    )


class RoomStates:
    """Current state of the rooms we track: room id -> (type, state_key) -> entry."""

    def __init__(self) -> None:
        self._rooms: dict[RoomID, dict[tuple[str, str], _Entry]] = {}
        # Counts every entry learned from a write or a transaction (see `replace`).
        self.clock = 0

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rooms

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def replace(
        self, room_id: RoomID, events: Iterable[Mapping[str, Any]], asked_at: int | None = None
    ) -> None:
        """Set a room's whole state from a `/state` answer, asked for when `clock` read
        `asked_at` (None: nothing learned since can be newer than the answer).

        The homeserver may have taken its snapshot before a write or a transaction that
        reached us while the answer was on its way (a channel created while the space is
        renamed reads the space back). Such an entry stays, unless the answer holds that very
        event or the one that directly replaced it; otherwise the answer would set the room
        back, and nothing would bring the newer state again until the next change of that key.
        Every later event still arrives by transaction, so keeping ours never hides one.
        """
        held = self._rooms.get(room_id, {}) if asked_at is not None else {}
        newer = {key: entry for key, entry in held.items() if entry.learned > (asked_at or 0)}
        entries: dict[tuple[str, str], _Entry] = {}
        for event in events:
            key = (str(event.get("type")), str(event.get("state_key")))
            content = event.get("content")
            event_id = event.get("event_id")
            ours = newer.pop(key, None)
            if ours is not None and not _follows(event, ours):
                entries[key] = ours
                continue
            entries[key] = _Entry(
                dict(content) if isinstance(content, dict) else {},
                event_id,
                confirmed=True,
                replaced=ours.replaced if ours is not None else (),
            )
        # Keys first learned while the answer was on its way (a channel linked meanwhile).
        entries.update(newer)
        self._rooms[room_id] = entries

    def apply_sent(
        self,
        room_id: RoomID,
        event_type: str,
        state_key: str,
        content: Mapping[str, Any],
        event_id: str | None,
    ) -> None:
        """Record state the bridge itself just sent, before its transaction comes back."""
        room = self._rooms.get(room_id)
        if room is not None:
            previous = room.get((event_type, state_key))
            if previous is not None and event_id is not None and event_id == previous.event_id:
                return  # the same event again (a write the homeserver deduplicated)
            room[(event_type, state_key)] = _Entry(
                dict(content),
                event_id,
                confirmed=False,
                replaced=_after(previous),
                learned=self._tick(),
            )

    def apply_received(self, event: Mapping[str, Any]) -> bool:
        """Apply a state event that came by transaction; True if it changed what we hold."""
        room = self._rooms.get(RoomID(str(event.get("room_id"))))
        if room is None:
            return False
        key = (str(event.get("type")), str(event.get("state_key")))
        current = room.get(key)
        event_id = event.get("event_id")
        unsigned = event.get("unsigned")
        replaces = unsigned.get("replaces_state") if isinstance(unsigned, dict) else None
        if current is not None and not current.confirmed:
            if event_id == current.event_id:
                current.confirmed = True
                return False
            if replaces != current.event_id:
                # Older than what we sent ourselves (its transaction was still on its way).
                return False
        content = event.get("content")
        room[key] = _Entry(
            dict(content) if isinstance(content, dict) else {},
            event_id,
            confirmed=True,
            # Only what the homeserver says this event replaced counts as replaced: after a
            # restart, events stored before it are handled after the rooms were loaded anew,
            # and such an older event does not make the newer one we hold a replaced one.
            replaced=_after(current)
            if current is None or replaces == current.event_id
            else current.replaced,
            learned=self._tick(),
        )
        return True

    def out_of_order(self, event: Mapping[str, Any]) -> bool:
        """Whether a received event does not follow what we hold as confirmed current state:
        it replaced another event than ours (an event stored before a restart and handled after
        the room was read anew, or a fork the homeserver resolved). What we hold may then be
        newer or older than it: only the homeserver can say."""
        room = self._rooms.get(RoomID(str(event.get("room_id"))))
        if room is None:
            return False
        current = room.get((str(event.get("type")), str(event.get("state_key"))))
        if current is None or not current.confirmed or current.event_id is None:
            return False
        unsigned = event.get("unsigned")
        replaces = unsigned.get("replaces_state") if isinstance(unsigned, dict) else None
        return event.get("event_id") != current.event_id and replaces != current.event_id

    def doubt(self, room_id: RoomID, event_type: str, state_key: str) -> None:
        """What we hold for this key may be older than the homeserver's: any `/state` answer
        replaces it, even one asked for before it was learned."""
        entry = self._rooms.get(room_id, {}).get((event_type, state_key))
        if entry is not None:
            entry.learned = 0

    def superseded(self, room_id: RoomID, event_type: str, state_key: str, event_id: str) -> bool:
        """Whether `event_id` is one this state has been replaced since (it is not current)."""
        entry = self._rooms.get(room_id, {}).get((event_type, state_key))
        return entry is not None and event_id in entry.replaced

    def forget(self, room_id: RoomID) -> None:
        self._rooms.pop(room_id, None)

    def export(self, room_id: RoomID) -> list[list[Any]]:
        """A room's entries as plain JSON values, exactly: `restore` gives them back.

        One row per entry, `[type, state_key, content, event_id]`, followed by `confirmed` and
        the replaced ids only where they differ from what a freshly read room has.
        """
        rows: list[list[Any]] = []
        for (event_type, state_key), entry in sorted(self._rooms.get(room_id, {}).items()):
            row: list[Any] = [event_type, state_key, entry.content, entry.event_id]
            if not entry.confirmed or entry.replaced:
                row += [entry.confirmed, list(entry.replaced)]
            rows.append(row)
        return rows

    def restore(self, room_id: RoomID, rows: Iterable[list[Any]]) -> None:
        """Set a room's entries from `export`'s rows."""
        self._rooms[room_id] = {
            (row[0], row[1]): _Entry(
                row[2],
                row[3],
                confirmed=row[4] if len(row) > 4 else True,
                replaced=tuple(row[5]) if len(row) > 5 else (),
            )
            for row in rows
        }

    def footprint(self) -> tuple[int, int, int]:
        """(rooms, state entries, estimated bytes) of what is held.

        Counts are exact. Bytes are estimated, so that a scrape costs O(rooms), not a walk over
        every event: each room's dict is measured, and its entries count as the mean deep size
        of up to FOOTPRINT_SAMPLE_ENTRIES of them, drawn at random from up to
        FOOTPRINT_SAMPLE_ROOMS rooms drawn at random, times how many it holds.
        """
        rooms = list(self._rooms.values())
        entries = sum(len(room) for room in rooms)
        sampled = 0
        measured = 0
        # Sampling for an estimate, not for secrets.
        for room in random.sample(rooms, min(len(rooms), FOOTPRINT_SAMPLE_ROOMS)):  # noqa: S311
            items = list(room.items())
            for item in random.sample(items, min(len(items), FOOTPRINT_SAMPLE_ENTRIES)):  # noqa: S311
                measured += deep_size(item[0]) + deep_size(item[1])
                sampled += 1
        per_entry = measured / sampled if sampled else 0.0
        containers = sys.getsizeof(self._rooms) + sum(sys.getsizeof(room) for room in rooms)
        return len(rooms), entries, containers + round(per_entry * entries)

    def view(self) -> Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]:
        return _View(self._rooms)


class _View(Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]):
    """A read-only mapping of room id -> state key -> content over RoomStates."""

    def __init__(self, rooms: dict[RoomID, dict[tuple[str, str], _Entry]]) -> None:
        self._rooms = rooms

    def __getitem__(self, room_id: RoomID) -> Mapping[tuple[str, str], Mapping[str, Any]]:
        return {key: entry.content for key, entry in self._rooms[room_id].items()}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._rooms)

    def __len__(self) -> int:
        return len(self._rooms)


MIB = 1024 * 1024

# How often per `idle_s` the directory looks for idle servers to compact.
COMPACT_CHECKS_PER_IDLE = 4

# Space state read for every server (`space_entry`) that a compacted server answers itself.
KEPT_SPACE_TYPES = frozenset({DECLARED_EVENT})


class ServerDirectory:
    """Every Guilds server the bot administers, as models assembled from tracked room state.

    A server is held in full while in use and compacted (`Compacted`) once unused for
    `idle_s`, or when more than `max_loaded` servers are held in full (the least recently used
    first). Beyond `compacted_budget_mib` of compacted servers, the least recently used are
    evicted: written out of memory (`EvictedServers`), so that memory stays flat however many
    servers are idle. Neither loses anything: every method that needs a server's state takes it
    back into memory first, so callers see no difference but the time that takes
    (milliseconds). A server is never compacted nor evicted while it is being read from the
    homeserver (pinned), nor while `busy` says it has work running or waiting.
    """

    def __init__(
        self,
        matrix: MatrixClient,
        bot: UserID,
        settings: DirectorySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._matrix = matrix
        self._bot = bot
        self.settings = settings if settings is not None else DirectorySettings()
        self._clock = clock
        self._states = RoomStates()
        self._server_of: dict[RoomID, RoomID] = {}
        self._models: dict[RoomID, Server] = {}
        self._stale: set[RoomID] = set()
        # Servers held in full -> when last used, least recently used first.
        self._loaded: OrderedDict[RoomID, float] = OrderedDict()
        # Compacted servers, in the order they were last used (compaction follows it).
        self._compact: dict[RoomID, Compacted] = {}
        # What the compacted servers hold, in bytes (`Compacted.size`), kept up to date.
        self._compact_bytes = 0
        self._evicted = EvictedServers(self.settings.evict_dir)
        # Servers being read from the homeserver (how many reads): never compacted meanwhile.
        self._pinned: dict[RoomID, int] = {}
        # How many times each server was forgotten: a read that began before a forget (a deleted
        # server, say) must not put the server back when its answer comes.
        self._forgets: dict[RoomID, int] = {}
        # Rooms of a server the bot has left (a deleted channel or category), and that server,
        # while one of its containers may still link them: a client linked one again as it
        # was deleted. Not tracked (nothing in them can be changed), but convergence removes
        # such a link (`ServerRooms.left`). Kept apart from compaction and eviction: a handful.
        self._left: dict[RoomID, RoomID] = {}
        # Whether a server has operations running or waiting (the bridge's queue): such a
        # server is about to be used, so it is neither compacted nor evicted.
        self.busy: Callable[[RoomID], bool] = lambda _: False
        self.compactions = 0
        self.expansions = 0
        self.evictions = 0
        self.reloads = 0
        self._task: asyncio.Task[None] | None = None

    # -- reading -------------------------------------------------------------------------------

    def _is_server(self, server_id: RoomID) -> bool:
        """Whether `server_id` is a server the directory tracks (in memory or evicted)."""
        if self._server_of.get(server_id) == server_id:
            return True
        return self._evicted.count > 0 and self._evicted.holds(server_id)

    def get(self, server_id: RoomID) -> Server | None:
        if not self._is_server(server_id):
            return None
        self._use(server_id)
        return self._model(server_id)

    def _model(self, server_id: RoomID) -> Server | None:
        if server_id in self._stale or server_id not in self._models:
            try:
                self._models[server_id] = assemble(server_id, self._states.view(), bot=self._bot)
            except (InvalidContent, KeyError):
                log.warning("Server %s has unreadable state; left out", server_id)
                return None
            self._stale.discard(server_id)
        return self._models[server_id]

    def server_ids(self) -> list[RoomID]:
        held = [room for room, server in self._server_of.items() if room == server]
        return held + self._evicted.server_ids()

    def servers_of(self, user_id: UserID) -> list[Server]:
        """The servers `user_id` has joined."""
        found = []
        # Of the evicted servers, only those the user is a member of are taken back.
        evicted = set(self._evicted.servers_with(user_id))
        for server_id in self.server_ids():
            if (
                self._evicted.count
                and server_id not in self._server_of
                and server_id not in evicted
            ):
                continue
            compact = self._compact.get(server_id)
            if compact is not None and not (
                compact.readable and in_framed(compact.members, user_id)
            ):
                continue
            server = self.get(server_id)
            if server is not None and server.is_member(user_id):
                found.append(server)
        return found

    def owner_of(self, server_id: RoomID) -> UserID | None:
        """The server's owner (None: no such server, or unreadable), without expanding it."""
        compact = self._compact.get(server_id)
        if compact is not None:
            return compact.owner if compact.readable else None
        if server_id not in self._server_of and self._evicted.holds(server_id):
            return self._evicted.owner(server_id)
        server = self.get(server_id)
        return server.state.owner if server is not None else None

    def space_entry(
        self, server_id: RoomID, event_type: str, state_key: str = ""
    ) -> Mapping[str, Any] | None:
        """The content of one state entry of the server's space (None: none held)."""
        compact = self._compact.get(server_id)
        if compact is not None and event_type in KEPT_SPACE_TYPES:
            return compact.kept.get((event_type, state_key))
        if event_type in KEPT_SPACE_TYPES and server_id not in self._server_of:
            if self._evicted.holds(server_id):
                return self._evicted.kept(server_id, event_type, state_key)
        return self.states().get(server_id, {}).get((event_type, state_key))

    def joined_users(self) -> set[UserID]:
        """Every user joined to some room the directory tracks."""
        users: set[UserID] = self._evicted.joined_users()
        for server_id in self.server_ids():
            if server_id not in self._server_of:
                continue  # evicted: counted above
            compact = self._compact.get(server_id)
            if compact is not None:
                held = {
                    UserID(u)
                    for text in (compact.members, compact.joined_elsewhere)
                    for u in text.split("\n")
                    if u
                }
                if compact.owner is not None and not compact.owner_joined:
                    # A member whether joined or not; joined to no room here.
                    held.discard(compact.owner)
                users |= held
                continue
            view = self._states.view()
            for room_id in self.rooms(server_id):
                if room_id in view:
                    users |= joined(view[room_id])
        return users

    def call_memberships(
        self, room_ids: Iterable[RoomID]
    ) -> list[tuple[RoomID, str, Mapping[str, Any]]]:
        """The call memberships with content in these rooms, (room, state_key, content)."""
        wanted = set(room_ids)
        found: list[tuple[RoomID, str, Mapping[str, Any]]] = []
        for compact in self._compact.values():
            found.extend(c for c in compact.calls if c[0] in wanted)
        found.extend(self._evicted.calls(wanted))
        view = self._states.view()
        for room_id in wanted:
            if room_id in view and self._server_of.get(room_id) not in self._compact:
                found.extend(
                    (room_id, key, content)
                    for (event_type, key), content in view[room_id].items()
                    if event_type == CALL_MEMBER_EVENT and content
                )
        return found

    def space_links(self, room_id: RoomID) -> list[tuple[RoomID, Mapping[str, Any]]]:
        """(server, content) of every `m.space.child` entry for `room_id` in a server's space,
        for a room no server tracks: read without taking any server back, so that an event in
        a room the bot has just joined costs no walk over every idle server."""
        found: list[tuple[RoomID, Mapping[str, Any]]] = []
        view = self._states.view()
        for server_id in [room for room, server in self._server_of.items() if room == server]:
            compact = self._compact.get(server_id)
            if compact is not None:
                found.extend((server_id, link) for room, link in compact.links if room == room_id)
            elif server_id in view:
                held = view[server_id].get((SPACE_CHILD, room_id))
                if held is not None:
                    found.append((server_id, held))
        if self._evicted.count:
            found.extend(self._evicted.links(room_id))
        return found

    def left_rooms(self, server_id: RoomID) -> frozenset[RoomID]:
        """The rooms of the server the bot has left that its containers may still link."""
        return frozenset(room for room, server in self._left.items() if server == server_id)

    def server_left(self, room_id: RoomID) -> RoomID | None:
        """The server a room the bot has left belonged to; None for any other room."""
        return self._left.get(room_id)

    def server_of(self, room_id: RoomID) -> RoomID | None:
        held = self._server_of.get(room_id)
        if held is not None or not self._evicted.count:
            return held
        return self._evicted.server_of(room_id)

    def rooms(self, server_id: RoomID) -> list[RoomID]:
        """Every tracked room of the server, the space included."""
        if server_id not in self._server_of and self._evicted.count:
            return self._evicted.rooms(server_id)
        return [room for room, server in self._server_of.items() if server == server_id]

    def states(self) -> Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]:
        """Every tracked room's state; reading a room of a compacted server expands it."""
        return _DirectoryView(self)

    def footprint(self) -> dict[str, int]:
        """Servers, rooms, state events and the estimated bytes of their state (for metrics).

        `servers` counts every server, `loaded` those held in full, `compacted` those held
        compacted, `evicted` the rest (out of memory); `rooms` and `state_events` are those of
        the servers held in full; `bytes` is the estimated size of what they hold plus
        `compact_bytes`, what the compacted ones hold (measured); `evicted_bytes` is the size of
        the evicted servers' file (on disk, not in memory), `evicted_compact_bytes` what they
        held in memory when compacted. `evictions` and `reloads` count servers evicted and
        taken back since start.
        """
        rooms, events, size = self._states.footprint()
        compact = self._compact_bytes
        evicted_compact, on_disk = self._evicted.size()
        return {
            "servers": len(self.server_ids()),
            "loaded": len(self._loaded),
            "compacted": len(self._compact),
            "evicted": self._evicted.count,
            "rooms": rooms,
            "state_events": events,
            "bytes": size + compact,
            "compact_bytes": compact,
            "evicted_bytes": on_disk,
            "evicted_compact_bytes": evicted_compact,
            "evictions": self.evictions,
            "reloads": self.reloads,
        }

    def room_kinds(self, server_id: RoomID) -> list[tuple[RoomID, RoomKind, ChannelKind | None]]:
        """What each room of the server is, as power levels and rules need to know."""
        compact = self._compact.get(server_id)
        if compact is not None:
            return list(compact.kinds)
        if server_id not in self._server_of and self._evicted.count:
            return self._evicted.kinds(server_id)
        kinds = (self._kind_of(room_id, server_id) for room_id in self.rooms(server_id))
        return [kind for kind in kinds if kind is not None]

    def call_rooms(self) -> set[RoomID]:
        """Every voice and video channel of every server, without taking any server back."""
        rooms = {
            room_id
            for server_id in [room for room, server in self._server_of.items() if room == server]
            for room_id, _, kind in self.room_kinds(server_id)
            if kind is not None and kind.has_calls
        }
        if self._evicted.count:
            rooms.update(self._evicted.call_rooms())
        return rooms

    def room_kind(self, room_id: RoomID) -> RoomKind | None:
        """What a tracked room is to its server; None for a room the directory does not track."""
        server_id = self._server_of.get(room_id)
        if server_id is None:
            return self._evicted.kind(room_id) if self._evicted.count else None
        compact = self._compact.get(server_id)
        if compact is not None:
            return next((kind for room, kind, _ in compact.kinds if room == room_id), None)
        kind = self._kind_of(room_id, server_id)
        return kind[1] if kind is not None else None

    def _kind_of(
        self, room_id: RoomID, server_id: RoomID
    ) -> tuple[RoomID, RoomKind, ChannelKind | None] | None:
        state = self._states.view()[room_id]
        if room_id == server_id:
            return (room_id, RoomKind.SPACE, None)
        if (CHANNEL_EVENT, "") in state:
            channel = state[(CHANNEL_EVENT, "")]
            kind = RoomKind.DEFAULT_CHANNEL if channel.get("default") is True else RoomKind.CHANNEL
            return (room_id, kind, channel_kind(channel))
        if (CATEGORY_EVENT, "") in state:
            return (room_id, RoomKind.CATEGORY, None)
        if is_role_room(state.get(("m.room.create", ""))):
            return (room_id, RoomKind.ROLE_ROOM, None)
        return None

    # -- holding servers in full or compacted ------------------------------------------------

    def is_loaded(self, server_id: RoomID) -> bool:
        """Whether the server is held in full (not compacted)."""
        return server_id in self._loaded

    def is_evicted(self, server_id: RoomID) -> bool:
        """Whether the server is evicted (held out of memory)."""
        return server_id not in self._server_of and self._evicted.holds(server_id)

    def _use(self, server_id: RoomID) -> None:
        """The server is in use: held in full (taken back and expanded if need be), most
        recently used."""
        if server_id not in self._server_of:
            self._reload(server_id)
        if server_id in self._compact:
            self._expand(server_id)
        self._loaded[server_id] = self._clock()
        self._loaded.move_to_end(server_id)
        if len(self._loaded) > self.settings.max_loaded_servers:
            self.compact_idle(keep=server_id)

    def _held(self, server_id: RoomID) -> bool:
        """Whether the server must stay as it is: being read, or with work running or waiting."""
        return bool(self._pinned.get(server_id)) or self.busy(server_id)

    def compact_idle(self, keep: RoomID | None = None) -> int:
        """Compact the servers unused for `idle_s`, and the least recently used beyond
        `max_loaded_servers`, then evict compacted servers beyond `compacted_budget_mib`;
        answers how many were compacted. Never `keep`, nor a held server (`_held`)."""
        settings = self.settings
        now = self._clock()
        done = 0
        for server_id, used in list(self._loaded.items()):
            over = len(self._loaded) > settings.max_loaded_servers
            if not over and now - used < settings.idle_s:
                break  # the rest were used more recently
            if server_id == keep or self._held(server_id):
                continue
            try:
                self._compact_server(server_id)
            except Exception:
                # Held in full as before: a failure here must never fail the read that asked.
                log.exception("Compacting server %s failed; it stays held in full", server_id)
                self._loaded.move_to_end(server_id)
                continue
            done += 1
        self.evict_over_budget(keep)
        return done

    def evict_over_budget(self, keep: RoomID | None = None) -> int:
        """Evict the least recently used compacted servers while they hold more than
        `compacted_budget_mib`; answers how many were evicted. Never `keep`, nor a held
        server."""
        budget = self.settings.compacted_budget_mib * MIB
        done = 0
        for server_id in list(self._compact):
            if self._compact_bytes <= budget:
                break
            if server_id == keep or self._held(server_id):
                continue
            try:
                self._evict(server_id)
            except Exception:
                # Held compacted as before: the file may be full or gone; memory still works.
                log.exception("Evicting server %s failed; it stays compacted", server_id)
                break
            done += 1
        return done

    def _evict(self, server_id: RoomID) -> None:
        compact = self._compact[server_id]
        rooms = self.rooms(server_id)
        self._evicted.put(server_id, compact, rooms)
        del self._compact[server_id]
        self._compact_bytes -= compact.size()
        for room_id in rooms:
            self._server_of.pop(room_id, None)
        self.evictions += 1
        log.debug("Evicted the idle server %s from memory", server_id)

    def _reload(self, server_id: RoomID) -> None:
        """Take an evicted server back into memory, compacted (nothing if not evicted)."""
        taken = self._evicted.take(server_id)
        if taken is None:
            return
        compact, rooms = taken
        for room_id in rooms:
            self._server_of[room_id] = server_id
        self._compact[server_id] = compact
        self._compact_bytes += compact.size()
        self.reloads += 1
        log.debug("Took the evicted server %s back into memory", server_id)

    def start(self) -> None:
        """Compact idle servers from now on, looking a few times per `idle_s`."""
        if self._task is None:
            self._task = asyncio.create_task(self._compacting(), name="guilds-directory-compact")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def close(self) -> None:
        """Drop the evicted servers' file (their state is lost: call only when done)."""
        self._evicted.close()

    async def _compacting(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.settings.idle_s / COMPACT_CHECKS_PER_IDLE))
            try:
                self.compact_idle()
            except Exception:
                log.exception("Compacting idle servers failed")

    def _compact_server(self, server_id: RoomID) -> None:
        model = self._model(server_id)
        rooms = self.rooms(server_id)
        view = self._states.view()
        space = view[server_id] if server_id in view else {}
        members = (model.members | {model.state.owner}) if model is not None else frozenset()
        joined_any: set[str] = set()
        calls: list[tuple[RoomID, str, dict[str, Any]]] = []
        exported = []
        for room_id in rooms:
            if room_id not in view:
                continue
            state = view[room_id]
            joined_any |= joined(state)
            calls.extend(
                (room_id, key, dict(content))
                for (event_type, key), content in state.items()
                if event_type == CALL_MEMBER_EVENT and content
            )
            exported.append([room_id, self._states.export(room_id)])
        compact = Compacted(
            blob=zlib.compress(json.dumps(exported, separators=(",", ":")).encode()),
            readable=model is not None,
            owner=model.state.owner if model is not None else None,
            members=framed(members),
            joined_elsewhere=framed(joined_any - members),
            owner_joined=model is not None and model.state.owner in joined_any,
            kinds=tuple(self.room_kinds(server_id)),
            kept={
                key: dict(content) for key, content in space.items() if key[0] in KEPT_SPACE_TYPES
            },
            calls=tuple(calls),
            links=tuple(
                (RoomID(key), dict(content))
                for (event_type, key), content in space.items()
                if event_type == SPACE_CHILD and self._server_of.get(RoomID(key)) != server_id
            ),
        )
        for room_id in rooms:
            self._states.forget(room_id)
        self._models.pop(server_id, None)
        self._stale.discard(server_id)
        self._loaded.pop(server_id, None)
        self._compact[server_id] = compact
        self._compact_bytes += compact.size()
        self.compactions += 1
        log.debug("Compacted the idle server %s: %d bytes held", server_id, compact.size())

    def _expand(self, server_id: RoomID) -> None:
        compact = self._compact.pop(server_id)
        self._compact_bytes -= compact.size()
        for room_id, rows in json.loads(zlib.decompress(compact.blob)):
            self._states.restore(RoomID(room_id), rows)
        self._stale.add(server_id)
        self.expansions += 1
        log.debug("Expanded the compacted server %s", server_id)

    # -- loading -------------------------------------------------------------------------------

    async def load(self, server_id: RoomID) -> Server | None:
        """(Re)read every room of a server from the homeserver."""
        with self._reading(server_id):
            forgets = self._forgets.get(server_id, 0)
            asked_at = self._states.clock
            space = await self._fetch(server_id)
            if space is None or self._forgets.get(server_id, 0) != forgets:
                return None
            self._states.replace(server_id, space, asked_at)
            if not is_server_space(self._states.view()[server_id]):
                self._states.forget(server_id)
                return None
            self._server_of[server_id] = server_id
            # Twice: the second round reaches the children of the categories found by the first.
            for _ in range(2):
                await self._load_missing(server_id)
            self._stale.add(server_id)
            return self.get(server_id)

    async def refresh(self, server_id: RoomID, room_ids: Iterable[RoomID]) -> Server | None:
        """Re-read some rooms of a server (those an operation just changed or created).

        After a multi-room operation this gives the caller read-after-write: the rooms' state
        is fetched now instead of waiting for their transactions.
        """
        if not self._is_server(server_id):
            return None
        with self._reading(server_id):
            await self._load_rooms(server_id, set(room_ids))
            await self._load_missing(server_id)
            self._stale.add(server_id)
            return self.get(server_id)

    @contextmanager
    def _reading(self, server_id: RoomID) -> Iterator[None]:
        """While a server's rooms are read from the homeserver: held in full, not compacted
        (rooms read into a compacted server would be lost at its next expansion)."""
        if self._is_server(server_id):
            self._use(server_id)
        self._pinned[server_id] = self._pinned.get(server_id, 0) + 1
        try:
            yield
        finally:
            left = self._pinned.pop(server_id) - 1
            if left:
                self._pinned[server_id] = left

    async def _load_missing(self, server_id: RoomID) -> None:
        if not self._is_server(server_id):
            return  # forgotten while its rooms were read
        linked = rooms_of(server_id, self._states.view())
        for room in [r for r, s in self._left.items() if s == server_id and r not in linked]:
            del self._left[room]  # no longer linked: nothing left to remove
        missing = {r for r in linked if self.server_of(r) is None}
        if missing:
            await self._load_rooms(server_id, missing)

    async def _load_rooms(self, server_id: RoomID, room_ids: set[RoomID]) -> None:
        semaphore = asyncio.Semaphore(LOAD_CONCURRENCY)
        forgets = self._forgets.get(server_id, 0)

        async def one(room_id: RoomID) -> None:
            async with semaphore:
                asked_at = self._states.clock
                state = await self._fetch(room_id)
            if self._forgets.get(server_id, 0) != forgets:
                return  # the server was forgotten meanwhile
            if state is None:
                return
            if room_id == server_id or self._bot_inside(state):
                self._states.replace(room_id, state, asked_at)
                self._server_of[room_id] = server_id
                self._left.pop(room_id, None)
            else:
                self._left[room_id] = server_id

        await asyncio.gather(*(one(room_id) for room_id in room_ids))

    def _bot_inside(self, events: Iterable[Mapping[str, Any]]) -> bool:
        """Whether the bot is still in a room whose `/state` answered these events: Synapse
        answers a room the bot left with its state at the leave (a role room it retired),
        where the bot can change nothing; such a room is not tracked."""
        for event in events:
            if event.get("type") == "m.room.member" and event.get("state_key") == self._bot:
                content = event.get("content")
                membership = content.get("membership") if isinstance(content, dict) else None
                return membership not in ("leave", "ban")
        return True

    async def _fetch(self, room_id: RoomID) -> list[dict[str, Any]] | None:
        try:
            # Patient: a read-back after an operation's changes must not fail the operation
            # (its job would run again and could repeat a change that was made).
            return await patiently(
                lambda: self._matrix.get_state(room_id), f"Reading the state of {room_id}"
            )
        except MatrixRequestError as exc:
            if exc.status in (403, 404):
                # The bot is not (or no longer) in that room.
                return None
            raise

    # -- keeping current -------------------------------------------------------------------------

    def record_sent(
        self,
        room_id: RoomID,
        event_type: str,
        state_key: str,
        content: Mapping[str, Any],
        event_id: str | None = None,
    ) -> None:
        """What the bridge itself just changed, so a read right after a write sees it."""
        server_id = self.server_of(room_id)
        if server_id is not None:
            self._use(server_id)
        self._states.apply_sent(room_id, event_type, state_key, content, event_id)
        if server_id is not None:
            self._stale.add(server_id)

    def superseded(self, room_id: str, event_type: str, state_key: str, event_id: str) -> bool:
        """Whether the homeserver answered a state write with an event since replaced.

        Synapse answers a write whose content equals the current state's with that event's id
        and writes nothing. A worker that has not yet seen the latest event of a room takes an
        older one for current: writing back an earlier content (a role's power edited, then
        edited back) is then answered with that older event, and the room keeps the newer
        one. The write must be made again once the worker has caught up.
        """
        server_id = self.server_of(RoomID(room_id))
        if server_id is not None:
            self._use(server_id)
        return self._states.superseded(RoomID(room_id), event_type, state_key, event_id)

    def forget_room(self, room_id: RoomID) -> None:
        """Stop tracking one room of a server (a deleted channel or category the bot has left)."""
        if (server_id := self.server_of(room_id)) is not None:
            self._use(server_id)
        server_id = self._server_of.pop(room_id, None)
        self._states.forget(room_id)
        if server_id is not None:
            self._stale.add(server_id)

    def record_plan(self, plan: Plan, results: Mapping[str, Mapping[str, Any]]) -> None:
        """Record the state an operation's plan sent, so the answer reads it back at once."""
        for _, _, step in plan.steps():
            if not isinstance(step, SendState) or step.name not in results:
                continue
            sent = step.resolved(results, plan)
            assert isinstance(sent, SendState)
            self.record_sent(
                RoomID(str(sent.room)),
                sent.type,
                str(sent.state_key),
                sent.content,
                results[step.name].get("event_id"),
            )

    def forget_server(self, server_id: RoomID) -> None:
        self._forgets[server_id] = self._forgets.get(server_id, 0) + 1
        for room_id in [r for r, s in self._server_of.items() if s == server_id]:
            self._server_of.pop(room_id, None)
            self._states.forget(room_id)
        for room_id in [r for r, s in self._left.items() if s == server_id]:
            del self._left[room_id]
        self._models.pop(server_id, None)
        self._stale.discard(server_id)
        self._loaded.pop(server_id, None)
        if (compact := self._compact.pop(server_id, None)) is not None:
            self._compact_bytes -= compact.size()
        self._evicted.forget(server_id)

    async def handle(self, event: InboxEvent) -> None:
        """Inbox handler: keep tracked rooms current; pick up rooms newly linked to a server."""
        if event.state_key is None:
            return
        room_id = RoomID(event.room_id)
        # An event for an evicted server takes it back into memory (`_reading`) and applies.
        server_id = self.server_of(room_id)
        if server_id is None:
            return
        with self._reading(server_id):
            await self._apply(event, room_id, server_id)

    async def _apply(self, event: InboxEvent, room_id: RoomID, server_id: RoomID) -> None:
        out_of_order = self._states.out_of_order(event.event)
        if not self._states.apply_received(event.event):
            return
        self._stale.add(server_id)
        if (
            event.type == "m.room.member"
            and event.state_key == self._bot
            and room_id != server_id
            and event.content.get("membership") in ("leave", "ban")
        ):
            # The bot left the room (a role room of the older shape it retired, say): nothing
            # there can be changed any more, so it is no room of the server's. A link to it
            # that a client wrote again while it was deleted is convergence's to remove.
            self.forget_room(room_id)
            self._left[room_id] = server_id
            return
        if out_of_order:
            # Which of the two is current, the homeserver knows: read the room again rather
            # than let an older event stand (convergence derives every room from this state).
            # Any read under way may answer too, though it was asked for before this event.
            self._states.doubt(room_id, event.type, str(event.state_key))
            log.info(
                "Event %s in %s does not follow the state held; reading the room again",
                event.event_id,
                room_id,
            )
            await self._load_rooms(server_id, {room_id})
        if room_id == server_id or event.type == "m.space.child":
            # A room newly linked into the space or a category (say, from another client), or
            # a new role's room: start tracking it.
            await self._load_missing(server_id)


class _DirectoryView(Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]):
    """A read-only mapping of room id -> state key -> content over every tracked room: a room
    of a compacted server is read by expanding the server (`ServerDirectory._use`)."""

    def __init__(self, directory: ServerDirectory) -> None:
        self._directory = directory

    def __getitem__(self, room_id: RoomID) -> Mapping[tuple[str, str], Mapping[str, Any]]:
        directory = self._directory
        server_id = directory.server_of(room_id)
        if server_id is not None and directory._is_server(server_id):
            directory._use(server_id)
        return directory._states.view()[room_id]

    def __contains__(self, room_id: object) -> bool:
        directory = self._directory
        if room_id in directory._states:
            return True
        server_id = directory.server_of(room_id)  # type: ignore[arg-type]
        return server_id is not None and (
            server_id in directory._compact or server_id not in directory._server_of
        )

    def _rooms(self) -> list[RoomID]:
        directory = self._directory
        compacted = [r for r, s in directory._server_of.items() if s in directory._compact]
        return list(directory._states.view()) + compacted + directory._evicted.all_rooms()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._rooms())

    def __len__(self) -> int:
        return len(self._rooms())
