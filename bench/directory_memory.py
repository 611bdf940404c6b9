"""Measures the memory of the bridge's in-memory model for N copies of one captured server.

Figure 6 captures the real server it populated (`capture`: every room the bridge's directory
tracks, with its `/state` as the homeserver answered it) into a JSON file, then runs

    python -m bench.directory_memory FILE --copies N

which loads N distinct copies of that server into a `bridge.directory.ServerDirectory` through
its normal path (`load`), reads each one as `GET /servers/{sid}` and the member list do (so the
model and the member order the bridge caches exist for every copy), and prints as JSON the
process's RSS before loading, after 1, 10, 100, 250, 500, 1000 and N copies, and the MiB each
copy costs. Every copy is held in full (as in use); with `--idle`, each is left idle before the
readings, as a server nobody uses (one server at most in full meanwhile): the directory compacts
it, and evicts the least recently used compacted ones from memory beyond
`--compacted-budget-mib` (the bridge's default unless given), so the readings show memory
growing with idle servers up to the budget and flat beyond it.

Each copy has its own room and event ids (`copy_id`); user ids are shared, as they are between
real servers. The stand-in homeserver decodes every answer afresh from text, as the real client
does, so no object is shared between copies.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from bench.common import log, rss_mb
from bridge.api.shapes import server_json
from bridge.engine.journal import OperationJournal
from bridge.engine.matrix import MatrixClient, MatrixRequestError
from bridge.engine.store import Database
from bridge.readback.directory import ServerDirectory
from bridge.readback.rooms import RoomsReader
from bridge.services.members import MAX_PAGE, Members
from bridge.services.servers import Servers
from guilds.config import DEFAULT_COMPACTED_BUDGET_MIB, DirectorySettings
from guilds.ids import RoomID, UserID
from guilds.model import BUILTIN_ROLES, Role
from guilds.vocabulary import CHANNEL_EVENT, ROLE_EVENT, ROLE_ROOM_TYPE, SERVER_EVENT

Captured = dict[str, Any]
MIB = 1024 * 1024

_STATE_PREFIX = "/_matrix/client/v3/rooms/"
_STATE_SUFFIX = "/state"
# A room or event id inside a JSON string, up to the closing quote; candidates only: each one
# is remapped only if it is an id of the captured server, so text that merely looks like an id
# (in a topic, say) stays as it is.
_ID_CANDIDATE = re.compile(r'[!$][^"\\\s]+')
_COPIED = re.compile(r"([!$])c(\d+)-(.+)")
# Where a `/state` answer names event ids, as `capture` writes it (json.dumps' separators).
_EVENT_ID = re.compile(r'"(?:event_id|replaces_state)": "([^"\\]+)"')
_EVENT_ID_ONLY = re.compile(r'"event_id": "([^"\\]+)"')


# -- capturing a real server --------------------------------------------------------------------
async def capture(matrix: MatrixClient, server_id: RoomID, bot: UserID) -> Captured:
    """The rooms the bridge's directory tracks for the server, each with its `/state` answer.

    The rooms are found by a real `ServerDirectory` (the space's children, the categories'
    children and the role rooms), then each room's state is fetched as the directory fetches
    it. Each answer is kept as JSON text, the form the stand-in serves it from.
    """
    directory = ServerDirectory(matrix, bot)
    if await directory.load(server_id) is None:
        raise RuntimeError(f"{server_id} is not a Guilds server the bot can read")
    rooms = {
        room_id: json.dumps(await matrix.get_state(room_id))
        for room_id in directory.rooms(server_id)
    }
    return {"server_id": server_id, "bot": bot, "rooms": rooms}


def unsettled(captured: Captured, *, join_all: bool) -> list[str]:
    """What in a captured server still shows Guilds at work on it; empty once it is settled.

    Settled: no invitation pending in any room, and every member of the space joined to the
    default channel and, with `join_all` (policy `join_channels: all`), to every channel open to
    the space's members (join rule `restricted` to the space). An idle server of a real
    homeserver is in that state; one still being joined is heavier, and its memory not that of
    an idle server.
    """
    states = {room: json.loads(text) for room, text in captured["rooms"].items()}
    space = captured["server_id"]

    def members(room: str, membership: str) -> set[str]:
        return {
            e["state_key"]
            for e in states[room]
            if e["type"] == "m.room.member" and e["content"].get("membership") == membership
        }

    def content(room: str, event_type: str) -> dict[str, Any]:
        for e in states[room]:
            if e["type"] == event_type and e.get("state_key", "") == "":
                found: dict[str, Any] = e["content"]
                return found
        return {}

    pending = [
        f"{room}: {len(invited)} invitations pending"
        for room in states
        if (invited := members(room, "invite"))
    ]
    in_space = members(space, "join") - {captured["bot"]}
    default = content(space, SERVER_EVENT).get("default_channel")
    for room in states:
        if room == space or not content(room, CHANNEL_EVENT):
            continue
        rules = content(room, "m.room.join_rules")
        open_to_space = rules.get("join_rule") == "restricted" and any(
            allow.get("room_id") == space for allow in rules.get("allow", [])
        )
        if room == default or (join_all and open_to_space):
            missing = in_space - members(room, "join")
            if missing:
                pending.append(f"{room}: {len(missing)} members of the space not joined")
    return pending


def state_fingerprint(captured: Captured) -> dict[str, frozenset[str]]:
    """Each room's current state event ids: equal in two captures when nothing changed between."""
    return {
        room: frozenset(_EVENT_ID_ONLY.findall(text)) for room, text in captured["rooms"].items()
    }


# -- a synthetic server -------------------------------------------------------------------------
def synthetic_server(members: int, channels: int, seed: int = 0) -> Captured:
    """A server of `members` members and `channels` text channels in `capture`'s form, shaped
    like the real one fig6 builds: everyone joined to the space and the default channel, the
    other channels holding the bot and the owner; Synapse-like random event ids (room version
    12: 43 characters of base64), which no compression can shrink."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)

    def opaque(sigil: str) -> str:
        return sigil + base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")

    bot, owner = "@guilds:localhost", "@owner:localhost"
    users = [owner] + [
        f"@bench-{i:05d}-{rng.randrange(16**6):06x}:localhost" for i in range(members - 1)
    ]
    space = opaque("!")
    channel_ids = [opaque("!") for _ in range(channels)]
    admins = opaque("!")
    admin, _, member_role = BUILTIN_ROLES

    def event(room: str, event_type: str, content: dict[str, Any], key: str = "") -> dict[str, Any]:
        return {
            "type": event_type,
            "state_key": key,
            "content": content,
            "room_id": room,
            "sender": bot,
            "event_id": opaque("$"),
            "origin_server_ts": 1_700_000_000_000 + rng.randrange(10**9),
        }

    def room(room_id: str, kind: str | None, joined: list[str]) -> list[dict[str, Any]]:
        create: dict[str, Any] = {"room_version": "12"}
        if kind is not None:
            create["type"] = kind
        return [
            event(room_id, "m.room.create", create),
            event(room_id, "m.room.power_levels", {"users": {bot: 100}, "users_default": 0}),
            event(room_id, "m.room.history_visibility", {"history_visibility": "shared"}),
            *(
                event(room_id, "m.room.member", {"membership": "join", "displayname": u[1:12]}, u)
                for u in [bot, *joined]
            ),
        ]

    restricted = {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": space}],
    }
    rooms = {
        space: [
            *room(space, "m.space", users),
            event(space, "m.room.name", {"name": "Synthetic"}),
            event(space, "m.room.join_rules", {"join_rule": "invite"}),
            event(space, SERVER_EVENT, {"owner": owner, "default_channel": channel_ids[0]}),
            event(
                space, ROLE_EVENT, Role(**{**admin.__dict__, "room_id": admins}).content(), "admin"
            ),
            event(space, ROLE_EVENT, member_role.content(), "member"),
            *(
                event(space, "m.space.child", {"via": ["localhost"], "order": f"{i:06d}"}, c)
                for i, c in enumerate(channel_ids)
            ),
        ],
        admins: room(admins, ROLE_ROOM_TYPE, [owner]),
    }
    for i, channel in enumerate(channel_ids):
        rooms[channel] = [
            *room(channel, None, users if i == 0 else [owner]),
            event(channel, "m.room.name", {"name": f"channel-{i}"}),
            event(channel, CHANNEL_EVENT, {"kind": "text", "server_id": space, "default": i == 0}),
            event(channel, "m.room.join_rules", restricted),
            event(channel, "m.space.parent", {"via": ["localhost"], "canonical": True}, space),
        ]
    return {"server_id": space, "bot": bot, "rooms": {r: json.dumps(e) for r, e in rooms.items()}}


# -- copies of it -------------------------------------------------------------------------------
def copy_id(original: str, copy: int) -> str:
    """The id a room or event of the captured server has in copy `copy` (1, 2, …)."""
    return f"{original[0]}c{copy}-{original[1:]}"


def original_id(copied: str) -> tuple[str, int] | None:
    """The captured id and the copy number behind a `copy_id`; None for any other id."""
    match = _COPIED.fullmatch(copied)
    return (match[1] + match[3], int(match[2])) if match else None


class CapturedHomeserver(MatrixClient):
    """Answers `GET …/rooms/{room}/state` for every copy of a captured server; nothing else.

    It holds the answers as text only, and remaps and decodes one on each request, so every
    copy gets objects of its own, as from the real client. Holding no decoded event matters:
    the memory of decoded events freed before the "before" reading would stay in the process
    (Python returns an arena to the system only once it is wholly free) and the first copies
    would fill it without growing the RSS.
    """

    def __init__(self, captured: Captured) -> None:
        super().__init__("http://captured.invalid", "unused")
        self.server_id = RoomID(captured["server_id"])
        self.bot = UserID(captured["bot"])
        self._texts: dict[str, str] = captured["rooms"]
        self.state_events = sum(len(json.loads(text)) for text in self._texts.values())
        self._ids = set(self._texts)
        for text in self._texts.values():
            self._ids.update(_EVENT_ID.findall(text))

    @property
    def rooms(self) -> int:
        return len(self._texts)

    def state(self, room_id: str, copy: int) -> list[dict[str, Any]]:
        """The captured state of `room_id` as copy `copy` has it."""

        def remap(match: re.Match[str]) -> str:
            found = match[0]
            return copy_id(found, copy) if found in self._ids else found

        events: list[dict[str, Any]] = json.loads(_ID_CANDIDATE.sub(remap, self._texts[room_id]))
        return events

    async def request(self, method: str, path: str, **_: Any) -> Any:
        if method != "GET" or not (path.startswith(_STATE_PREFIX) and path.endswith(_STATE_SUFFIX)):
            raise NotImplementedError(f"the captured homeserver answers no {method} {path}")
        found = original_id(unquote(path[len(_STATE_PREFIX) : -len(_STATE_SUFFIX)]))
        if found is None or found[0] not in self._texts:
            # As Synapse answers for a room the bot is not in; the directory skips it.
            raise MatrixRequestError(404, "M_NOT_FOUND", "not a room of the captured server")
        return self.state(*found)


class BridgeModel:
    """The parts of the bridge that hold servers in memory, wired as `bridge.runtime` does."""

    def __init__(
        self,
        homeserver: MatrixClient,
        db: Database,
        bot: UserID,
        server_name: str,
        settings: DirectorySettings,
        clock: Callable[[], float],
    ) -> None:
        self.directory = ServerDirectory(homeserver, bot, settings, clock)
        journal = OperationJournal(db, homeserver, bot)
        self.servers = Servers(
            matrix=homeserver,
            journal=journal,
            rooms=RoomsReader(self.directory, bot=bot, via=server_name),
            db=db,
        )
        self.members = Members(servers=self.servers)

    async def serve(self, server_id: RoomID) -> None:
        """Load a server, then read it as `GET /servers/{sid}` and the member list do."""
        loaded = await self.directory.load(server_id)
        if loaded is None:
            raise RuntimeError(f"{server_id} did not load as a Guilds server")
        owner = loaded.state.owner
        server_json(self.servers.visible(server_id, owner), owner)
        start: str | None = None
        while True:
            page = self.members.page(server_id, owner, MAX_PAGE, start)
            if page.next is None:
                return
            start = page.next


def rss_now() -> float:
    """This process's RSS in MiB, once the garbage of the last step is collected."""
    gc.collect()
    return rss_mb(os.getpid())


def filesystem_of(path: str) -> str:
    """The type of the file system holding `path` (`tmpfs`: the evicted file is memory too), from
    /proc/self/mounts; "unknown" where there is none."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    best, kind = "", "unknown"
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def steps_for(copies: int) -> list[int]:
    return sorted({step for step in (1, 10, 100, 250, 500, 1000, copies) if step <= copies})


async def measure(
    homeserver: CapturedHomeserver,
    copies: int,
    *,
    idle: bool = False,
    budget_mib: float = DEFAULT_COMPACTED_BUDGET_MIB,
    evict_dir: str | None = DirectorySettings.evict_dir,
) -> dict[str, Any]:
    """With `idle`, every copy is left idle before each reading: the directory compacts it
    (one server at most is held in full meanwhile) and evicts compacted ones beyond
    `budget_mib` to a file in `evict_dir` (default: where the bridge puts it by default,
    `directory.evict_dir`); without, every copy is held in full."""
    if copies < 1:
        raise ValueError("copies must be at least 1")
    now = [0.0]
    server_id = homeserver.server_id
    steps = steps_for(copies)
    with tempfile.TemporaryDirectory(prefix="guilds-model-") as tmp:
        settings = DirectorySettings(
            max_loaded_servers=1 if idle else copies,
            compacted_budget_mib=budget_mib,
            evict_dir=evict_dir,
        )
        # The journal and Servers need a database to exist; loading and reading never touch it.
        db = await Database.open(f"sqlite:///{Path(tmp) / 'bridge.db'}")
        try:
            # Room ids carry no server name from room version 12 on; the bot's id always does.
            server_name = homeserver.bot.split(":", 1)[1]
            bridge = BridgeModel(
                homeserver, db, homeserver.bot, server_name, settings, lambda: now[0]
            )
            rss = {"before": rss_now()}
            started = time.monotonic()
            loaded = 0
            for step in steps:
                while loaded < step:
                    loaded += 1
                    await bridge.serve(RoomID(copy_id(server_id, loaded)))
                if idle:
                    now[0] += settings.idle_s + 1
                    bridge.directory.compact_idle()
                rss[str(step)] = rss_now()
                log(f"  {step} of {copies} copies loaded: {rss[str(step)] - rss['before']:.1f} MiB")
            seconds = time.monotonic() - started
            size = bridge.directory.footprint()
            evicted = bridge.directory.is_evicted(RoomID(copy_id(server_id, 1)))
            first = bridge.directory.get(RoomID(copy_id(server_id, 1)))
            assert first is not None
            tracked = [bridge.directory.rooms(s) for s in bridge.directory.server_ids()]
        finally:
            await db.close()
    return {
        "copies": copies,
        "rooms_per_copy": homeserver.rooms,
        "state_events_per_copy": homeserver.state_events,
        "channels_per_copy": len(first.channels),
        "members_per_copy": len(first.members),
        "servers_loaded": len(tracked),
        "rooms_tracked": sum(len(rooms) for rooms in tracked),
        "rss_mb": rss,
        "model_mb": {str(step): rss[str(step)] - rss["before"] for step in steps},
        "per_copy_mb": (rss[str(copies)] - rss["before"]) / copies,
        # What each copy cost between two readings: the same from step to step when linear.
        "per_copy_mb_between": {
            f"{a}-{b}": (rss[str(b)] - rss[str(a)]) / (b - a)
            for a, b in zip(steps, steps[1:], strict=False)
        },
        "load_s": seconds,
        "idle": idle,
        "compacted_budget_mib": budget_mib,
        "servers_held_in_full": size["loaded"],
        "servers_compacted": size["compacted"],
        "servers_evicted": size["evicted"],
        "first_copy_was_evicted": evicted,
        # What the directory itself counts for a compacted copy, in memory or evicted (exact,
        # not RSS), and the size of the evicted copies' file (disk, not memory).
        "compacted_mb_per_copy": (size["compact_bytes"] + size["evicted_compact_bytes"])
        / max(1, size["compacted"] + size["evicted"])
        / MIB,
        "evicted_file_mb": size["evicted_bytes"] / MIB,
        # Where that file was, and on what: on a tmpfs it is memory, not disk.
        "evict_dir": evict_dir or tempfile.gettempdir(),
        "evict_dir_filesystem": filesystem_of(evict_dir or tempfile.gettempdir()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.directory_memory", description=__doc__)
    parser.add_argument("file", type=Path, help="a server captured by fig6 (JSON)")
    parser.add_argument("--copies", type=int, default=100, help="how many copies to load")
    parser.add_argument(
        "--idle",
        action="store_true",
        help="leave every copy idle (compacted, or evicted beyond the budget) before measuring",
    )
    parser.add_argument(
        "--compacted-budget-mib",
        type=float,
        default=DEFAULT_COMPACTED_BUDGET_MIB,
        help="directory.compacted_budget_mib (default: the bridge's own default)",
    )
    parser.add_argument(
        "--evict-dir",
        default=DirectorySettings.evict_dir,
        help="directory.evict_dir: where the evicted servers' file is made (default: the "
        "bridge's own default, the system's temporary directory; not a tmpfs, which is memory)",
    )
    args = parser.parse_args()
    homeserver = CapturedHomeserver(json.loads(args.file.read_text()))
    report = asyncio.run(
        measure(
            homeserver,
            args.copies,
            idle=args.idle,
            budget_mib=args.compacted_budget_mib,
            evict_dir=args.evict_dir,
        )
    )
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
