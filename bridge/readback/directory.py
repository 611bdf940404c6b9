"""The bridge's picture of every Guilds server: the state of their rooms, kept in memory.

Each room's state is fetched once from the homeserver, then kept current by the events that
arrive by transaction (and by what the bridge itself just sent), so reading a server through
the API is an in-memory assembly (`guilds.snapshot.assemble`), never a walk over room state.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import MatrixClient, MatrixRequestError
from bridge.engine.patience import patiently
from bridge.engine.steps import Plan, SendState
from guilds.ids import RoomID, UserID
from guilds.model import CATEGORY_EVENT, InvalidContent, Server
from guilds.rules import RoomKind, channel_kind
from guilds.snapshot import assemble, is_server_space, rooms_of
from guilds.vocabulary import CHANNEL_EVENT, ChannelKind, is_role_room

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


# How many replaced event ids an entry remembers.
REPLACED_KEPT = 4
# How many rooms, and state entries in each, `RoomStates.footprint` measures to estimate the rest.
FOOTPRINT_SAMPLE_ROOMS = 32
FOOTPRINT_SAMPLE_ENTRIES = 32


def _deep_size(value: object) -> int:
    """Bytes of `value` and what it holds (dicts, lists, tuples, dataclass fields), as
    `sys.getsizeof` counts them; strings shared with other objects are counted each time."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(_deep_size(k) + _deep_size(v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        size += sum(_deep_size(v) for v in value)
    elif isinstance(value, _Entry):
        size += sys.getsizeof(value.__dict__) + sum(_deep_size(v) for v in vars(value).values())
    return size


def _after(previous: _Entry | None) -> tuple[str, ...]:
    """The replaced ids of an entry that takes `previous`'s place."""
    if previous is None or previous.event_id is None:
        return previous.replaced if previous is not None else ()
    return ((previous.event_id,) + previous.replaced)[:REPLACED_KEPT]


class RoomStates:
    """Current state of the rooms we track: room id -> (type, state_key) -> entry."""

    def __init__(self) -> None:
        self._rooms: dict[RoomID, dict[tuple[str, str], _Entry]] = {}

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rooms

    def replace(self, room_id: RoomID, events: Iterable[Mapping[str, Any]]) -> None:
        """Set a room's whole state from a `/state` answer."""
        entries: dict[tuple[str, str], _Entry] = {}
        for event in events:
            key = (str(event.get("type")), str(event.get("state_key")))
            content = event.get("content")
            entries[key] = _Entry(
                dict(content) if isinstance(content, dict) else {},
                event.get("event_id"),
                confirmed=True,
            )
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
                dict(content), event_id, confirmed=False, replaced=_after(previous)
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

    def superseded(self, room_id: RoomID, event_type: str, state_key: str, event_id: str) -> bool:
        """Whether `event_id` is one this state has been replaced since (it is not current)."""
        entry = self._rooms.get(room_id, {}).get((event_type, state_key))
        return entry is not None and event_id in entry.replaced

    def forget(self, room_id: RoomID) -> None:
        self._rooms.pop(room_id, None)

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
                measured += _deep_size(item[0]) + _deep_size(item[1])
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


class ServerDirectory:
    """Every Guilds server the bot administers, as models assembled from tracked room state."""

    def __init__(self, matrix: MatrixClient, bot: UserID) -> None:
        self._matrix = matrix
        self._bot = bot
        self._states = RoomStates()
        self._server_of: dict[RoomID, RoomID] = {}
        self._models: dict[RoomID, Server] = {}
        self._stale: set[RoomID] = set()

    # -- reading -------------------------------------------------------------------------------

    def get(self, server_id: RoomID) -> Server | None:
        if server_id not in self._server_of or self._server_of[server_id] != server_id:
            return None
        if server_id in self._stale or server_id not in self._models:
            try:
                self._models[server_id] = assemble(server_id, self._states.view(), bot=self._bot)
            except (InvalidContent, KeyError):
                log.warning("Server %s has unreadable state; left out", server_id)
                return None
            self._stale.discard(server_id)
        return self._models[server_id]

    def server_ids(self) -> list[RoomID]:
        return [room for room, server in self._server_of.items() if room == server]

    def servers_of(self, user_id: UserID) -> list[Server]:
        """The servers `user_id` has joined."""
        found = []
        for server_id in self.server_ids():
            server = self.get(server_id)
            if server is not None and server.is_member(user_id):
                found.append(server)
        return found

    def server_of(self, room_id: RoomID) -> RoomID | None:
        return self._server_of.get(room_id)

    def rooms(self, server_id: RoomID) -> list[RoomID]:
        """Every tracked room of the server, the space included."""
        return [room for room, server in self._server_of.items() if server == server_id]

    def states(self) -> Mapping[RoomID, Mapping[tuple[str, str], Mapping[str, Any]]]:
        return self._states.view()

    def footprint(self) -> dict[str, int]:
        """Servers, rooms, state events and the estimated bytes of their state (for metrics)."""
        rooms, events, size = self._states.footprint()
        return {
            "servers": len(self.server_ids()),
            "rooms": rooms,
            "state_events": events,
            "bytes": size,
        }

    def room_kinds(self, server_id: RoomID) -> list[tuple[RoomID, RoomKind, ChannelKind | None]]:
        """What each room of the server is, as power levels and rules need to know."""
        kinds = (self._kind_of(room_id, server_id) for room_id in self.rooms(server_id))
        return [kind for kind in kinds if kind is not None]

    def room_kind(self, room_id: RoomID) -> RoomKind | None:
        """What a tracked room is to its server; None for a room the directory does not track."""
        server_id = self._server_of.get(room_id)
        kind = self._kind_of(room_id, server_id) if server_id is not None else None
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

    # -- loading -------------------------------------------------------------------------------

    async def load(self, server_id: RoomID) -> Server | None:
        """(Re)read every room of a server from the homeserver."""
        space = await self._fetch(server_id)
        if space is None:
            return None
        self._states.replace(server_id, space)
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
        if self._server_of.get(server_id) != server_id:
            return None
        await self._load_rooms(server_id, set(room_ids))
        await self._load_missing(server_id)
        self._stale.add(server_id)
        return self.get(server_id)

    async def _load_missing(self, server_id: RoomID) -> None:
        missing = rooms_of(server_id, self._states.view()) - self._tracked()
        if missing:
            await self._load_rooms(server_id, missing)

    def _tracked(self) -> set[RoomID]:
        return set(self._server_of)

    async def _load_rooms(self, server_id: RoomID, room_ids: set[RoomID]) -> None:
        semaphore = asyncio.Semaphore(LOAD_CONCURRENCY)

        async def one(room_id: RoomID) -> None:
            async with semaphore:
                state = await self._fetch(room_id)
            if state is not None:
                self._states.replace(room_id, state)
                self._server_of[room_id] = server_id

        await asyncio.gather(*(one(room_id) for room_id in room_ids))

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
        self._states.apply_sent(room_id, event_type, state_key, content, event_id)
        server_id = self._server_of.get(room_id)
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
        return self._states.superseded(RoomID(room_id), event_type, state_key, event_id)

    def forget_room(self, room_id: RoomID) -> None:
        """Stop tracking one room of a server (a deleted channel or category the bot has left)."""
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
        for room_id in [r for r, s in self._server_of.items() if s == server_id]:
            self._server_of.pop(room_id, None)
            self._states.forget(room_id)
        self._models.pop(server_id, None)
        self._stale.discard(server_id)

    async def handle(self, event: InboxEvent) -> None:
        """Inbox handler: keep tracked rooms current; pick up rooms newly linked to a server."""
        if event.state_key is None:
            return
        room_id = RoomID(event.room_id)
        server_id = self._server_of.get(room_id)
        if server_id is None:
            return
        out_of_order = self._states.out_of_order(event.event)
        if not self._states.apply_received(event.event):
            return
        self._stale.add(server_id)
        if out_of_order:
            # Which of the two is current, the homeserver knows: read the room again rather
            # than let an older event stand (convergence derives every room from this state).
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
