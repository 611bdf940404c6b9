"""Servers evicted from the bridge's memory: compacted servers written out to a private file.

Compaction (bridge/readback/compact.py) shrinks an idle server about sixteenfold, but each one
still costs memory, so memory grew with the number of idle servers. Beyond the directory's
budget for compacted servers (`directory.compacted_budget_mib`), the least recently used are
written here, whole, and nothing of them stays in memory: the directory answers the reads made
across every server (who is a member where, what a room is, which server a room belongs to) from
this file's indexes, and takes a server back into memory when it is next used.

The file is a cache of this process's, never shared, never read at a restart (the bridge reads
every server from the homeserver at start-up): a SQLite database created 0600 in a private
directory and unlinked once open, so the space comes back when the process ends, however it
ends. Its rollback journal is kept in memory, so nothing else is ever written beside it. The
standard library's sqlite3 is synchronous: each look-up is an indexed read of a local file,
well under a millisecond, which the directory's synchronous reads can afford.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from typing import Any

from bridge.readback.compact import Compacted
from guilds.ids import RoomID, UserID
from guilds.rules import RoomKind
from guilds.vocabulary import ChannelKind

_SCHEMA = """
CREATE TABLE servers (
    server_id TEXT PRIMARY KEY,
    blob BLOB NOT NULL,
    readable INTEGER NOT NULL,
    owner TEXT,
    members TEXT NOT NULL,
    joined_elsewhere TEXT NOT NULL,
    owner_joined INTEGER NOT NULL,
    kinds TEXT NOT NULL,
    kept TEXT NOT NULL,
    calls TEXT NOT NULL,
    size INTEGER NOT NULL
);
-- Every tracked room of an evicted server, in the directory's order (rowid).
CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    kind TEXT,
    -- Of a channel: text, voice or video (`call_rooms`).
    channel_kind TEXT
);
CREATE INDEX rooms_of_server ON rooms (server_id);
-- The members of each readable evicted server (`Server.is_member`, the owner included).
CREATE TABLE members (
    user_id TEXT NOT NULL,
    server_id TEXT NOT NULL,
    PRIMARY KEY (user_id, server_id)
) WITHOUT ROWID;
CREATE INDEX members_of_server ON members (server_id);
-- `Compacted.links`: the space's links to rooms the server does not track.
CREATE TABLE links (
    room_id TEXT NOT NULL,
    server_id TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX links_to_room ON links (room_id);
CREATE INDEX links_of_server ON links (server_id);
"""


def _private_database(folder: str | None) -> sqlite3.Connection:
    """A new SQLite database in a fresh 0700 directory under `folder` (the system's temporary
    directory by default), its file created 0600, then unlinked with its directory."""
    where = tempfile.mkdtemp(prefix="guilds-evicted-", dir=folder)
    path = os.path.join(where, "servers.sqlite")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        # check_same_thread: the directory lives in one event loop, but a test's or a tool's
        # loop may run in another thread than the one that built it.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # The journal in memory: no file beside the database, which must stay alone in the
        # directory removed below.
        connection.execute("PRAGMA journal_mode = MEMORY")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executescript(_SCHEMA)
    finally:
        # Open files outlive their names: the database stays usable until it is closed.
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(where)
    return connection


class EvictedServers:
    """Compacted servers written out of memory, and the indexes the directory reads them by.

    The database is created at the first eviction (a bridge that never evicts writes nothing).
    """

    def __init__(self, folder: str | None = None) -> None:
        self._folder = folder
        self._db: sqlite3.Connection | None = None
        # Kept here, not counted in the file: the one number read at every compaction.
        self.count = 0

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = _private_database(self._folder)
        return self._db

    def _rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        if self._db is None:
            return []
        return self._db.execute(query, args).fetchall()

    # -- in and out ----------------------------------------------------------------------------

    def put(self, server_id: RoomID, compact: Compacted, rooms: Iterable[RoomID]) -> None:
        """Write a compacted server and its tracked rooms out (all or nothing)."""
        db = self._connection()
        kind_of = {room: (kind, channel) for room, kind, channel in compact.kinds}
        members = [u for u in compact.members.split("\n") if u] if compact.readable else []
        with db:
            db.execute("BEGIN")
            db.execute(
                "INSERT INTO servers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    server_id,
                    compact.blob,
                    compact.readable,
                    compact.owner,
                    compact.members,
                    compact.joined_elsewhere,
                    compact.owner_joined,
                    json.dumps([[r, k.value, c.value if c else None] for r, k, c in compact.kinds]),
                    json.dumps([[t, k, content] for (t, k), content in compact.kept.items()]),
                    json.dumps([list(call) for call in compact.calls]),
                    compact.size(),
                ),
            )
            db.executemany(
                "INSERT INTO rooms VALUES (?, ?, ?, ?)",
                [(room, server_id, *kind_of.get(room, (None, None))) for room in rooms],
            )
            db.executemany(
                "INSERT INTO members VALUES (?, ?)", [(user, server_id) for user in members]
            )
            db.executemany(
                "INSERT INTO links VALUES (?, ?, ?)",
                [(room, server_id, json.dumps(content)) for room, content in compact.links],
            )
        self.count += 1

    def take(self, server_id: RoomID) -> tuple[Compacted, list[RoomID]] | None:
        """Read an evicted server back, and remove it from the file; None: not evicted."""
        found = self._rows(
            "SELECT blob, readable, owner, members, joined_elsewhere, owner_joined, kinds, kept,"
            " calls FROM servers WHERE server_id = ?",
            server_id,
        )
        if not found:
            return None
        blob, readable, owner, members, elsewhere, owner_joined, kinds, kept, calls = found[0]
        compact = Compacted(
            blob=blob,
            readable=bool(readable),
            owner=UserID(owner) if owner is not None else None,
            members=members,
            joined_elsewhere=elsewhere,
            owner_joined=bool(owner_joined),
            kinds=tuple(
                (RoomID(r), RoomKind(k), ChannelKind(c) if c is not None else None)
                for r, k, c in json.loads(kinds)
            ),
            kept={(t, k): content for t, k, content in json.loads(kept)},
            calls=tuple((RoomID(r), k, content) for r, k, content in json.loads(calls)),
            links=tuple(
                (RoomID(room), json.loads(content))
                for room, content in self._rows(
                    "SELECT room_id, content FROM links WHERE server_id = ? ORDER BY rowid",
                    server_id,
                )
            ),
        )
        rooms = self.rooms(server_id)
        self.forget(server_id)
        return compact, rooms

    def forget(self, server_id: RoomID) -> None:
        if self._db is None:
            return
        with self._db as db:
            db.execute("BEGIN")
            gone = db.execute("DELETE FROM servers WHERE server_id = ?", (server_id,)).rowcount
            db.execute("DELETE FROM rooms WHERE server_id = ?", (server_id,))
            db.execute("DELETE FROM members WHERE server_id = ?", (server_id,))
            db.execute("DELETE FROM links WHERE server_id = ?", (server_id,))
        self.count -= gone

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            self.count = 0

    # -- reads across every server -------------------------------------------------------------

    def holds(self, server_id: RoomID) -> bool:
        return bool(self._rows("SELECT 1 FROM servers WHERE server_id = ?", server_id))

    def server_ids(self) -> list[RoomID]:
        return [RoomID(row[0]) for row in self._rows("SELECT server_id FROM servers")]

    def server_of(self, room_id: RoomID) -> RoomID | None:
        found = self._rows("SELECT server_id FROM rooms WHERE room_id = ?", room_id)
        return RoomID(found[0][0]) if found else None

    def rooms(self, server_id: RoomID) -> list[RoomID]:
        rows = self._rows("SELECT room_id FROM rooms WHERE server_id = ? ORDER BY rowid", server_id)
        return [RoomID(row[0]) for row in rows]

    def all_rooms(self) -> list[RoomID]:
        return [RoomID(row[0]) for row in self._rows("SELECT room_id FROM rooms")]

    def servers_with(self, user_id: UserID) -> list[RoomID]:
        """The evicted servers `user_id` is a member of."""
        rows = self._rows("SELECT server_id FROM members WHERE user_id = ?", user_id)
        return [RoomID(row[0]) for row in rows]

    def owner(self, server_id: RoomID) -> UserID | None:
        """The owner of an evicted server (None: not evicted, or unreadable)."""
        rows = self._rows("SELECT owner, readable FROM servers WHERE server_id = ?", server_id)
        return UserID(rows[0][0]) if rows and rows[0][1] and rows[0][0] is not None else None

    def kept(self, server_id: RoomID, event_type: str, state_key: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT kept FROM servers WHERE server_id = ?", server_id)
        if not rows:
            return None
        found = [c for t, k, c in json.loads(rows[0][0]) if (t, k) == (event_type, state_key)]
        return found[0] if found else None

    def kinds(self, server_id: RoomID) -> list[tuple[RoomID, RoomKind, ChannelKind | None]]:
        rows = self._rows("SELECT kinds FROM servers WHERE server_id = ?", server_id)
        if not rows:
            return []
        return [
            (RoomID(r), RoomKind(k), ChannelKind(c) if c is not None else None)
            for r, k, c in json.loads(rows[0][0])
        ]

    def kind(self, room_id: RoomID) -> RoomKind | None:
        rows = self._rows("SELECT kind FROM rooms WHERE room_id = ?", room_id)
        return RoomKind(rows[0][0]) if rows and rows[0][0] is not None else None

    def links(self, room_id: RoomID) -> list[tuple[RoomID, dict[str, Any]]]:
        """(server, content) of every evicted server's space link to `room_id`, an untracked
        room."""
        rows = self._rows("SELECT server_id, content FROM links WHERE room_id = ?", room_id)
        return [(RoomID(server_id), json.loads(content)) for server_id, content in rows]

    def call_rooms(self) -> list[RoomID]:
        """Every voice and video channel of the evicted servers."""
        calls = [kind.value for kind in ChannelKind if kind.has_calls]
        marks = ", ".join("?" for _ in calls)
        rows = self._rows(f"SELECT room_id FROM rooms WHERE channel_kind IN ({marks})", *calls)  # noqa: S608
        return [RoomID(row[0]) for row in rows]

    def joined_users(self) -> set[UserID]:
        """Every user joined to some room of an evicted server (as `ServerDirectory`'s)."""
        users: set[UserID] = set()
        for members, elsewhere, owner, owner_joined in self._rows(
            "SELECT members, joined_elsewhere, owner, owner_joined FROM servers"
        ):
            held = {UserID(u) for text in (members, elsewhere) for u in text.split("\n") if u}
            if owner is not None and not owner_joined:
                # A member whether joined or not; joined to no room here.
                held.discard(UserID(owner))
            users |= held
        return users

    def calls(self, room_ids: set[RoomID]) -> list[tuple[RoomID, str, dict[str, Any]]]:
        """Call memberships with content in these rooms (few servers have any)."""
        found: list[tuple[RoomID, str, dict[str, Any]]] = []
        for (calls,) in self._rows("SELECT calls FROM servers WHERE calls <> '[]'"):
            found.extend(
                (RoomID(r), k, content) for r, k, content in json.loads(calls) if r in room_ids
            )
        return found

    def size(self) -> tuple[int, int]:
        """(bytes the evicted servers held in memory when compacted, bytes of the file)."""
        if self._db is None:
            return 0, 0
        held = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM servers").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        page = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int(held), int((pages - free) * page)
