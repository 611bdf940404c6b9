"""The directory evicts idle servers beyond its budget for compacted ones, so memory stays flat
however many servers are idle, and takes them back when used, losing nothing."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import stat
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from bench.directory_memory import CapturedHomeserver, copy_id, original_id, synthetic_server
from bridge.engine.inbox import InboxEvent
from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import MatrixRequestError
from bridge.engine.store import Database
from bridge.readback.directory import ServerDirectory
from bridge.readback.reconcile import Reconciler
from bridge.readback.rooms import RoomsReader
from guilds.config import DEFAULT_COMPACTED_BUDGET_MIB, DirectorySettings
from guilds.ids import RoomID, UserID
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT
from tests.harness.api import eventually
from tests.harness.directories import Clock, HeldReads, everything, inbox

MIB = 1024 * 1024


class Homeserver(HeldReads, CapturedHomeserver):
    """The captured server's copies, its reads counted and held on demand."""


def small() -> dict[str, Any]:
    return synthetic_server(members=6, channels=3, seed=1)


async def directory_of(
    captured: dict[str, Any],
    copies: int,
    *,
    max_loaded: int = 64,
    idle_s: int = 60,
    budget_mib: float = DEFAULT_COMPACTED_BUDGET_MIB,
    evict_dir: str | None = None,
) -> tuple[ServerDirectory, Homeserver, Clock, list[RoomID]]:
    """A directory that has loaded `copies` copies of `captured` (their ids, in load order)."""
    homeserver = Homeserver(captured)
    clock = Clock()
    settings = DirectorySettings(max_loaded, idle_s, budget_mib, evict_dir)
    directory = ServerDirectory(homeserver, homeserver.bot, settings, clock=clock)
    servers = [RoomID(copy_id(homeserver.server_id, n)) for n in range(1, copies + 1)]
    for server_id in servers:
        assert await directory.load(server_id) is not None
    return directory, homeserver, clock, servers


def evicted_all(directory: ServerDirectory, clock: Clock) -> None:
    clock.now += 61
    directory.compact_idle()
    size = directory.footprint()
    assert size["loaded"] == size["compacted"] == 0, size
    assert size["evicted"] == size["servers"], size


async def test_an_evicted_server_answers_every_read_as_before(tmp_path: Path) -> None:
    directory, homeserver, clock, (first, second) = await directory_of(
        small(), 2, budget_mib=0, evict_dir=str(tmp_path)
    )
    model = directory.get(first)
    assert model is not None
    call = {"call_id": "", "expires": 45000}
    voice = model.channels[0].channel_id
    await directory.handle(inbox(voice, CALL_MEMBER_EVENT, "_@a:localhost_D", call, "$call"))
    before = everything(directory, first)
    joined_before = directory.joined_users()
    calls_before = directory.call_memberships([voice])
    reads = homeserver.reads

    evicted_all(directory, clock)
    assert directory.is_evicted(first) and directory.is_evicted(second)
    size = directory.footprint()
    assert size["compact_bytes"] == 0 and size["evictions"] == 2 and size["evicted_bytes"] > 0

    # Reads across every server answer without taking anything back into memory.
    owner = before["model"].state.owner
    assert sorted(directory.server_ids()) == sorted([first, second])
    assert directory.owner_of(first) == owner
    assert sorted(directory.rooms(first)) == before["rooms"]
    assert sorted(directory.room_kinds(first), key=str) == before["kinds"]
    assert [directory.room_kind(r) for r in before["rooms"]] == before["kind"]
    assert all(directory.server_of(r) == first for r in before["rooms"])
    assert directory.joined_users() == joined_before
    assert directory.call_memberships([voice]) == calls_before == [(voice, "_@a:localhost_D", call)]
    assert set(directory.states()) >= set(before["rooms"])
    assert all(room in directory.states() for room in before["rooms"])
    assert directory.servers_of(UserID("@nobody:localhost")) == []
    assert directory.is_evicted(first) and directory.is_evicted(second)

    # Read in full: taken back, the same as before, and never read again from the homeserver.
    assert everything(directory, first) == before
    # (`everything` lists the owner's servers: the copies share their owner, so both are back.)
    assert directory.is_loaded(first) and directory.footprint()["reloads"] == 2
    assert homeserver.reads == reads


async def test_a_users_servers_take_back_only_theirs(tmp_path: Path) -> None:
    directory, _, clock, (a, b, c) = await directory_of(
        small(), 3, budget_mib=0, evict_dir=str(tmp_path)
    )
    newcomer = "@newcomer:localhost"
    await directory.handle(inbox(b, "m.room.member", newcomer, {"membership": "join"}, "$j"))
    evicted_all(directory, clock)
    assert [s.server_id for s in directory.servers_of(UserID(newcomer))] == [b]
    assert directory.is_evicted(a) and directory.is_evicted(c) and not directory.is_evicted(b)


async def test_the_least_recently_used_compacted_servers_are_evicted_beyond_the_budget() -> None:
    directory, _, clock, servers = await directory_of(small(), 4, max_loaded=1)
    # Used in this order; then every one compacted, none evicted (the default budget).
    for server_id in servers:
        assert directory.get(server_id) is not None
        clock.now += 1
    clock.now += 61
    directory.compact_idle()
    assert directory.footprint()["compacted"] == 4
    one = directory.footprint()["compact_bytes"] / 4

    # A budget for two and a half of them: the two used longest ago go.
    directory.settings = DirectorySettings(1, 60, 2.5 * one / MIB)
    assert directory.evict_over_budget() == 2
    a, b, c, d = servers
    assert [directory.is_evicted(s) for s in servers] == [True, True, False, False]
    assert directory.footprint()["compact_bytes"] <= 2.5 * one

    # a is used again: taken back and held in full; when idle again, it is the most recently
    # used compacted server, and c, used longest ago, goes in its place.
    assert directory.get(a) is not None and directory.is_loaded(a)
    clock.now += 61
    directory.compact_idle()
    assert [directory.is_evicted(s) for s in servers] == [False, True, True, False]


async def test_a_busy_or_pinned_server_is_never_compacted_nor_evicted() -> None:
    directory, homeserver, clock, (a, b) = await directory_of(small(), 2, budget_mib=0)
    busy = {a}
    directory.busy = lambda server_id: server_id in busy
    clock.now += 61
    directory.compact_idle()
    assert directory.is_loaded(a) and directory.is_evicted(b)

    # Its work done, it goes too.
    busy.clear()
    directory.compact_idle()
    assert directory.is_evicted(a)

    # Being read from the homeserver (a refresh waiting for its answer): kept in full.
    homeserver.hold = asyncio.Event()
    reads = homeserver.reads
    refresh = asyncio.create_task(directory.refresh(a, directory.rooms(a)))
    for _ in range(1000):
        if homeserver.reads > reads:
            break
        await asyncio.sleep(0.001)
    assert homeserver.reads > reads
    clock.now += 61
    directory.compact_idle()
    assert directory.is_loaded(a)
    homeserver.hold.set()
    assert await refresh is not None
    clock.now += 61
    directory.compact_idle()
    assert directory.is_evicted(a)


async def test_an_event_for_an_evicted_server_takes_it_back_and_applies() -> None:
    directory, homeserver, clock, (server_id, other) = await directory_of(small(), 2, budget_mib=0)
    model = directory.get(server_id)
    assert model is not None
    channel = model.channels[1].channel_id
    space_name = directory.states()[server_id][("m.room.name", "")]
    evicted_all(directory, clock)
    reads = homeserver.reads

    # A rename by another client, and a newcomer's join, while evicted.
    renamed = {"name": "renamed by hand"}
    found = original_id(channel)
    assert found is not None
    held = next(e for e in homeserver.state(*found) if e["type"] == "m.room.name")
    await directory.handle(
        inbox(channel, "m.room.name", "", renamed, "$rename", replaces_state=held["event_id"])
    )
    assert directory.is_loaded(server_id) and directory.is_evicted(other)
    evicted_all(directory, clock)
    newcomer = "@newcomer:localhost"
    await directory.handle(
        inbox(server_id, "m.room.member", newcomer, {"membership": "join"}, "$join")
    )
    model = directory.get(server_id)
    assert model is not None and model.is_member(UserID(newcomer))
    assert next(c for c in model.channels if c.channel_id == channel).name == "renamed by hand"
    assert homeserver.reads == reads  # applied, not read again

    # An event that does not follow what the evicted server held is read again, as before.
    evicted_all(directory, clock)
    await directory.handle(
        inbox(server_id, "m.room.name", "", {"name": "X"}, "$fork", replaces_state="$other")
    )
    assert homeserver.reads == reads + 1
    assert directory.states()[server_id][("m.room.name", "")] == space_name


async def test_writes_on_an_evicted_server_are_kept() -> None:
    directory, _, clock, (server_id,) = await directory_of(small(), 1, budget_mib=0)
    model = directory.get(server_id)
    assert model is not None
    channel = model.channels[1].channel_id
    sent = {"kind": "text", "server_id": server_id, "topic": "renamed"}
    directory.record_sent(channel, CHANNEL_EVENT, "", sent, "$sent")
    directory.record_sent(channel, CHANNEL_EVENT, "", {**sent, "topic": "again"}, "$again")
    evicted_all(directory, clock)
    # What the bridge sent but the homeserver has not yet confirmed survives eviction.
    assert directory.superseded(channel, CHANNEL_EVENT, "", "$sent")
    evicted_all(directory, clock)
    await directory.handle(inbox(channel, CHANNEL_EVENT, "", sent, "$sent"))
    assert directory.states()[channel][(CHANNEL_EVENT, "")]["topic"] == "again"
    # A write to an evicted server takes it back first.
    evicted_all(directory, clock)
    directory.record_sent(server_id, "m.room.topic", "", {"topic": "t"}, "$t")
    assert directory.states()[server_id][("m.room.topic", "")] == {"topic": "t"}


async def test_forgetting_an_evicted_server_or_one_of_its_rooms() -> None:
    directory, _, clock, (a, b) = await directory_of(small(), 2, budget_mib=0)
    model = directory.get(b)
    assert model is not None
    gone = model.channels[-1].channel_id
    evicted_all(directory, clock)
    directory.forget_room(gone)
    assert gone not in directory.rooms(b) and gone not in directory.states()
    evicted_all(directory, clock)
    directory.forget_server(a)
    assert directory.server_ids() == [b] and directory.get(a) is None
    assert directory.footprint()["servers"] == 1
    assert all(directory.server_of(r) == b for r in directory.states())


async def test_a_read_answered_after_its_server_was_forgotten_does_not_bring_it_back() -> None:
    """A deleted server (its delete resumed after a crash, say) stays gone though a read of its
    rooms that began before the delete is answered after it."""
    directory, homeserver, _, (server,) = await directory_of(small(), 1)
    rooms = directory.rooms(server)
    homeserver.hold = asyncio.Event()
    reads = homeserver.reads

    def asked(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return homeserver.reads >= reads + count

        return check

    loading = asyncio.create_task(directory.load(server))
    await eventually(asked(1), deadline_s=5, interval_s=0.001, what="the space's read")
    refreshing = asyncio.create_task(directory.refresh(server, rooms))
    await eventually(asked(2), deadline_s=5, interval_s=0.001, what="the rooms' reads")
    directory.forget_server(server)
    homeserver.hold.set()
    assert await refreshing is None and await loading is None
    assert directory.server_ids() == [] and directory.get(server) is None
    assert not any(directory.server_of(r) for r in rooms) and not directory.states()
    # Loaded again on purpose, it is read afresh.
    homeserver.hold = None
    assert await directory.load(server) is not None
    assert directory.server_ids() == [server]


async def test_a_server_loaded_again_while_evicted_is_read_afresh() -> None:
    directory, homeserver, clock, (a,) = await directory_of(small(), 1, budget_mib=0)
    before = everything(directory, a)
    evicted_all(directory, clock)
    assert await directory.load(a) is not None
    assert everything(directory, a) == before
    assert directory.footprint()["servers"] == 1 and not directory.is_evicted(a)


def _deleted_files(marker: str) -> list[os.stat_result]:
    """The stat of every file this process holds open whose name contains `marker` and that
    has been unlinked."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if marker in target and target.endswith("(deleted)"):
            found.append(os.stat(f"/proc/self/fd/{fd}"))
    return found


async def test_the_evicted_servers_file_is_private_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    directory, _, clock, _ = await directory_of(small(), 2, budget_mib=0, evict_dir=str(tmp_path))
    assert _deleted_files(str(tmp_path)) == []  # nothing written before the first eviction
    evicted_all(directory, clock)
    assert os.listdir(tmp_path) == []  # unlinked once open: no name, no leftovers
    files = _deleted_files(str(tmp_path))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].st_mode) == 0o600
    directory.close()
    assert _deleted_files(str(tmp_path)) == []


def _traced(run: Any) -> int:
    """Bytes still allocated (tracemalloc) once `run()` has finished and garbage is gone."""
    gc.collect()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        kept = asyncio.run(run())
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept.close()
    return held - baseline


def test_memory_stays_flat_as_idle_servers_grow_beyond_the_budget() -> None:
    """Python's memory (tracemalloc) for 4 and for 16 idle servers of 300 members and 60
    channels, with a budget of one compacted server: flat, where compacted alone it grows by
    what each holds. (SQLite's own cache, outside Python's allocator, is bounded by SQLite.)"""
    homeserver = CapturedHomeserver(synthetic_server(members=300, channels=60))

    def idle(copies: int, budget_mib: float) -> Any:
        async def run() -> ServerDirectory:
            clock = Clock()
            settings = DirectorySettings(1, 60, budget_mib)
            directory = ServerDirectory(homeserver, homeserver.bot, settings, clock=clock)
            for n in range(1, copies + 1):
                await directory.load(RoomID(copy_id(homeserver.server_id, n)))
            clock.now += 61
            directory.compact_idle()
            return directory

        return run

    compacted = (_traced(idle(16, 1000)) - _traced(idle(4, 1000))) / 12
    one = 0.1  # MiB: about one such server compacted
    evicted = (_traced(idle(16, one)) - _traced(idle(4, one))) / 12
    assert compacted > 50_000, compacted  # what each idle server cost before eviction
    assert evicted < compacted / 20, (evicted, compacted)


UNREADABLE = RoomID("!unreadable:localhost")  # the homeserver answers 404 for it: never tracked
LINK = {"via": ["localhost"], "order": "000009"}


def linking_unreadable() -> dict[str, Any]:
    """`small()` whose space also links UNREADABLE (every copy links the same room)."""
    captured = small()
    space = captured["server_id"]
    events = json.loads(captured["rooms"][space])
    events.append(
        {
            "type": "m.space.child",
            "state_key": UNREADABLE,
            "content": LINK,
            "room_id": space,
            "sender": captured["bot"],
            "event_id": "$link",
        }
    )
    captured["rooms"][space] = json.dumps(events)
    return captured


async def test_a_link_to_a_room_no_server_tracks_is_found_without_taking_servers_back() -> None:
    """The bot joining a room (say, one it was just invited to) asks which server links it:
    answered from what each server keeps aside, never by taking every idle server back."""
    directory, _, clock, (a, b, c) = await directory_of(linking_unreadable(), 3, max_loaded=1)
    assert directory.server_of(UNREADABLE) is None
    one = directory.footprint()["compact_bytes"] / 2
    directory.settings = DirectorySettings(1, 60, 1.5 * one / MIB)
    assert directory.evict_over_budget() == 1
    assert directory.is_evicted(a) and not directory.is_loaded(b) and directory.is_loaded(c)
    expansions = directory.expansions

    found = directory.space_links(UNREADABLE)
    assert sorted(found) == sorted([(a, LINK), (b, LINK), (c, LINK)])
    assert directory.space_links(RoomID("!elsewhere:localhost")) == []
    assert directory.is_evicted(a) and not directory.is_loaded(b)
    assert directory.expansions == expansions and directory.footprint()["reloads"] == 0

    # Taken back and evicted again, the link is kept.
    assert directory.get(a) is not None
    directory.settings = DirectorySettings(1, 60, 0)
    clock.now += 61
    directory.compact_idle()
    assert sorted(directory.space_links(UNREADABLE)) == sorted(found)


class RefusingJoins(Homeserver):
    """Also answers the bot's joins: 403, as Synapse does for a room it was not invited to."""

    joins: list[str] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "POST" and path.startswith("/_matrix/client/v3/join/"):
            self.joins.append(unquote(path.rsplit("/", 1)[1]))
            raise MatrixRequestError(403, "M_FORBIDDEN", "not invited")
        return await super().request(method, path, **kwargs)


async def test_the_bot_joining_a_linked_room_takes_back_only_the_server_linking_it(
    tmp_path: Path,
) -> None:
    homeserver = RefusingJoins(linking_unreadable())
    clock = Clock()
    settings = DirectorySettings(1, 60, 0)
    directory = ServerDirectory(homeserver, homeserver.bot, settings, clock=clock)
    servers = [RoomID(copy_id(homeserver.server_id, n)) for n in (1, 2, 3)]
    for server_id in servers:
        assert await directory.load(server_id) is not None
    evicted_all(directory, clock)
    # The journal runs no operation here (the adoption is refused before any).
    db = await Database.open(f"sqlite:///{tmp_path / 'bridge.db'}")
    reconciler = Reconciler(
        matrix=homeserver,
        journal=OperationJournal(db, homeserver, homeserver.bot),
        rooms=RoomsReader(directory, bot=homeserver.bot, via="localhost"),
    )
    joined = {"membership": "join"}
    event = {
        "type": "m.room.member",
        "state_key": homeserver.bot,
        "content": joined,
        "room_id": UNREADABLE,
        "sender": homeserver.bot,
        "event_id": "$bot-joined",
    }
    await reconciler.handle(
        InboxEvent(
            0, "$bot-joined", UNREADABLE, "m.room.member", homeserver.bot, homeserver.bot, 0, event
        )
    )
    # The adoption was tried (and refused here): one server taken back, not all three.
    assert homeserver.joins == [UNREADABLE]
    assert directory.footprint()["reloads"] == 1
    assert sum(directory.is_evicted(s) for s in servers) == 2
    await db.close()


async def test_voice_and_video_channels_are_listed_without_taking_servers_back() -> None:
    captured = small()
    for room_id, text in captured["rooms"].items():
        events = json.loads(text)
        for event in events:
            if event["type"] == CHANNEL_EVENT and not event["content"].get("default"):
                event["content"] = {**event["content"], "kind": "voice"}
        captured["rooms"][room_id] = json.dumps(events)
    directory, _, clock, servers = await directory_of(captured, 2, budget_mib=0)
    held = directory.call_rooms()
    voice = set()
    for server_id in servers:
        model = directory.get(server_id)
        assert model is not None
        voice |= {channel.channel_id for channel in model.channels if not channel.default}
    assert held == voice and len(voice) == 2 * 2  # two voice channels in each copy
    evicted_all(directory, clock)
    assert directory.call_rooms() == held
    assert directory.footprint()["reloads"] == 0
