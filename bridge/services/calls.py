"""Clearing call memberships that outlived their expiry, so no ghost stays in a voice channel.

A client in a call refreshes its `org.matrix.msc3401.call.member` state before it expires
(web/static/js/calls/group.js: 45 s, refreshed every 15 s) and writes `{}` when it leaves. A tab
that crashes, loses its network or is closed before its goodbye leaves a membership behind: every
`interval_s` this sweeper finds the memberships in Guilds voice and video channels whose expiry
has passed and writes `{}` over them as the bot.

The bot may: in room versions up to 12 a state key starting with `_@` is not owned by that user
(only MSC3757's experimental room versions make it so), the bot is the rooms' creator (v12) or
has power 100, and the module lets the bot through and never refuses an empty membership.

A device is in one call at a time: when a device's membership arrives in one Guilds voice or
video channel, its older memberships in the others (a client that moved without a word, a tab
left behind) are emptied too, at once rather than at the next sweep. So are the memberships of
a user who leaves the channel's room, or is kicked or banned from it.

Expiry follows MatrixRTC as matrix-js-sdk 43 reads it: `created_ts` (or the event's
`origin_server_ts`) plus `expires` (ms); `expires_ts` only when `expires` is absent; four hours
when neither is given. Memberships are read in both state key shapes, `_@user:server_DEVICE`
(older Guilds) and `_@user:server_DEVICE_m.call` (matrix-js-sdk 43, Guilds now). Before
clearing, the current event is read again, so a refresh that raced the sweep is never undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.engine.inbox import InboxEvent
from bridge.engine.matrix import (
    HomeserverUnavailable,
    MatrixClient,
    MatrixRequestError,
    path_segment,
)
from bridge.readback.directory import ServerDirectory
from guilds.ids import RoomID
from guilds.vocabulary import CALL_MEMBER_EVENT

log = logging.getLogger(__name__)

DEFAULT_SWEEP_INTERVAL_S = 10.0
# MatrixRTC's expiry for a membership that does not say.
DEFAULT_EXPIRES_MS = 4 * 3600 * 1000
# Clocks differ a little between the browser that wrote `expires_ts` and this host.
CLOCK_SLACK_MS = 1_000


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def membership_expiry_ms(content: Mapping[str, Any], origin_server_ts: Any) -> float | None:
    """When a membership stops counting (ms since the epoch); None for an empty one (left)."""
    if not content:
        return None
    start = _number(content.get("created_ts"))
    if start is None:
        start = _number(origin_server_ts) or 0.0
    expires = _number(content.get("expires"))
    if expires is not None:
        return start + expires
    expires_ts = _number(content.get("expires_ts"))
    return expires_ts if expires_ts is not None else start + DEFAULT_EXPIRES_MS


def membership_device(
    content: Mapping[str, Any], sender: str, origin_server_ts: Any
) -> tuple[str, str, float] | None:
    """(user, device, when it joined) of a live membership; None for an empty one or one that
    names no device. The join time is `created_ts`, which refreshes keep, else the event's."""
    device = content.get("device_id") if content else None
    if not isinstance(device, str) or not device:
        return None
    created = _number(content.get("created_ts"))
    if created is None:
        created = _number(origin_server_ts) or 0.0
    return sender, device, created


@dataclass(frozen=True)
class _Membership:
    expiry: float
    # (user, device, joined at), when the membership names its device.
    device: tuple[str, str, float] | None


class CallSweeper:
    """Indexes call memberships as they arrive; clears the expired ones every `interval_s`, and
    a device's older membership in another channel as soon as it joins a new one."""

    def __init__(
        self,
        matrix: MatrixClient,
        directory: ServerDirectory,
        *,
        interval_s: float = DEFAULT_SWEEP_INTERVAL_S,
        clock_ms: Callable[[], float] = lambda: time.time() * 1000,
    ) -> None:
        self._matrix = matrix
        self._directory = directory
        self.interval_s = interval_s
        self._clock_ms = clock_ms
        # (room, state key) -> the membership; only non-empty memberships are here.
        self._live: dict[tuple[RoomID, str], _Membership] = {}
        # Memberships a newer one of the same device (in another room) replaces: (room, key) ->
        # when that newer one joined.
        self._superseded: dict[tuple[RoomID, str], float] = {}
        # Memberships of users no longer in the room (left, kicked, banned).
        self._departed: set[tuple[RoomID, str]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- keeping the index --------------------------------------------------------------------

    async def handle(self, event: InboxEvent) -> None:
        """Inbox handler for call membership events (registered for that type only)."""
        if event.state_key is None:
            return
        key = (RoomID(event.room_id), event.state_key)
        origin_ts = event.event.get("origin_server_ts")
        expiry = membership_expiry_ms(event.content, origin_ts)
        if expiry is None:
            self._live.pop(key, None)
            self._superseded.pop(key, None)
            self._departed.discard(key)
            return
        self._departed.discard(key)
        device = membership_device(event.content, event.sender, origin_ts)
        self._live[key] = _Membership(expiry, device)
        if device is not None and self._note_superseded(key, device):
            self._wake.set()

    async def handle_member(self, event: InboxEvent) -> None:
        """Inbox handler for room membership: a user out of a room is out of its call."""
        if event.content.get("membership") not in ("leave", "ban"):
            return
        room_id = RoomID(event.room_id)
        found = False
        for key, membership in self._live.items():
            if key[0] == room_id and membership.device and membership.device[0] == event.state_key:
                self._departed.add(key)
                found = True
        if found:
            self._wake.set()

    def _note_superseded(self, key: tuple[RoomID, str], device: tuple[str, str, float]) -> bool:
        """Mark which of this device's memberships in different rooms are older than another
        (either may have been indexed first); whether any was."""
        found = False
        for other_key, other in self._live.items():
            if other_key[0] == key[0] or other.device is None or other.device[:2] != device[:2]:
                continue
            if other.device[2] < device[2]:
                self._superseded[other_key] = device[2]
                found = True
            elif device[2] < other.device[2]:
                self._superseded[key] = other.device[2]
                found = True
        return found

    def _call_rooms(self) -> set[RoomID]:
        # Read without taking idle servers back (an indexed read for the evicted ones).
        return self._directory.call_rooms()

    async def _current(self, room_id: RoomID, state_key: str) -> Mapping[str, Any] | None:
        """The membership event as the homeserver holds it now, or None when there is none."""
        try:
            data = await self._matrix.request(
                "GET",
                f"/_matrix/client/v3/rooms/{path_segment(room_id)}/state/"
                f"{path_segment(CALL_MEMBER_EVENT)}/{path_segment(state_key)}",
                query={"format": "event"},
            )
        except MatrixRequestError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return data if isinstance(data, dict) else None

    # -- sweeping -------------------------------------------------------------------------------

    async def sweep_once(self) -> int:
        """One pass; answers how many memberships were cleared."""
        rooms = self._call_rooms()
        # Memberships the index has not seen arrive (held before the bridge started). Asked of
        # the directory as such: reading every call room's state would expand every server.
        for room_id, state_key, _ in self._directory.call_memberships(rooms):
            if (room_id, state_key) in self._live:
                continue
            event = await self._current(room_id, state_key)
            if event is None:
                continue
            found = self._read(event)
            if found is not None:
                self._live[(room_id, state_key)] = found
                if found.device is not None:
                    self._note_superseded((room_id, state_key), found.device)
        now = self._clock_ms()
        cleared = 0
        for (room_id, state_key), membership in list(self._live.items()):
            if room_id not in rooms:
                # Not (or no longer) a Guilds voice or video channel: not ours to clean.
                self._live.pop((room_id, state_key), None)
                self._superseded.pop((room_id, state_key), None)
                continue
            newer = self._superseded.get((room_id, state_key))
            departed = (room_id, state_key) in self._departed
            if newer is None and not departed and membership.expiry + CLOCK_SLACK_MS > now:
                continue
            if await self._clear_if_stale(room_id, state_key, now, newer, departed=departed):
                cleared += 1
        return cleared

    @staticmethod
    def _read(event: Mapping[str, Any]) -> _Membership | None:
        content = event.get("content") or {}
        origin_ts = event.get("origin_server_ts")
        expiry = membership_expiry_ms(content, origin_ts)
        if expiry is None:
            return None
        sender = event.get("sender")
        device = membership_device(content, sender, origin_ts) if isinstance(sender, str) else None
        return _Membership(expiry, device)

    async def _clear_if_stale(
        self,
        room_id: RoomID,
        state_key: str,
        now: float,
        newer: float | None,
        *,
        departed: bool = False,
    ) -> bool:
        """Empty a membership that is (still) expired, older than the same device's `newer`
        membership elsewhere, or `departed` (its user left the room); the event is read again
        first, so a refresh is never undone."""
        key = (room_id, state_key)
        self._superseded.pop(key, None)
        self._departed.discard(key)
        current = self._read(await self._current(room_id, state_key) or {})
        if current is None:
            self._live.pop(key, None)
            return False
        self._live[key] = current
        expired = current.expiry + CLOCK_SLACK_MS <= now
        moved = newer is not None and current.device is not None and current.device[2] < newer
        if not expired and not moved and not departed:
            return False
        event_id = await self._matrix.send_state(room_id, CALL_MEMBER_EVENT, state_key, {})
        self._directory.record_sent(room_id, CALL_MEMBER_EVENT, state_key, {}, event_id)
        self._live.pop(key, None)
        if departed:
            log.info("Cleared a call membership in %s: its user left the room", room_id)
        elif moved:
            log.info("Cleared a call membership in %s: its device joined another call", room_id)
        else:
            log.info(
                "Cleared an expired call membership in %s (expired %.0f s ago)",
                room_id,
                (now - current.expiry) / 1000,
            )
        return True

    # -- the periodic task ------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="guilds-call-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except (HomeserverUnavailable, MatrixRequestError) as exc:
                log.warning("Call membership sweep failed, retrying later: %s", exc)
            except Exception:
                log.exception("Call membership sweep failed")
            # Until the next sweep, or sooner when a device moved to another call.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
