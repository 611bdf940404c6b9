"""Clearing call memberships that outlived their expiry, so no ghost stays in a voice channel.

A client in a call refreshes its `org.matrix.msc3401.call.member` state before it expires
(web/static/js/calls/group.js: 45 s, refreshed every 15 s) and writes `{}` when it leaves. A tab
that crashes, loses its network or is closed before its goodbye leaves a membership behind: every
`interval_s` this sweeper finds the memberships in Guilds voice and video channels whose expiry
has passed and writes `{}` over them as the bot.

The bot may: in room versions up to 12 a state key starting with `_@` is not owned by that user
(only MSC3757's experimental room versions make it so), the bot is the rooms' creator (v12) or
has power 100, and the module lets the bot through and never refuses an empty membership.

Expiry follows MatrixRTC as matrix-js-sdk 43 reads it: `created_ts` (or the event's
`origin_server_ts`) plus `expires` (ms); `expires_ts` only when `expires` is absent; four hours
when neither is given. Memberships are read in both state key shapes, `_@user:server_DEVICE`
(older Guilds) and `_@user:server_DEVICE_m.call` (matrix-js-sdk 43, Guilds now). Before
clearing, the current event is read again, so a refresh that raced the sweep is never undone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
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


class CallSweeper:
    """Indexes call memberships as they arrive; clears the expired ones every `interval_s`."""

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
        # (room, state key) -> expiry in ms; only non-empty memberships are here.
        self._expiry: dict[tuple[RoomID, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    # -- keeping the index --------------------------------------------------------------------

    async def handle(self, event: InboxEvent) -> None:
        """Inbox handler for call membership events (registered for that type only)."""
        if event.state_key is None:
            return
        key = (RoomID(event.room_id), event.state_key)
        expiry = membership_expiry_ms(event.content, event.event.get("origin_server_ts"))
        if expiry is None:
            self._expiry.pop(key, None)
        else:
            self._expiry[key] = expiry

    def _call_rooms(self) -> set[RoomID]:
        rooms: set[RoomID] = set()
        for server_id in self._directory.server_ids():
            for room_id, _, kind in self._directory.room_kinds(server_id):
                if kind is not None and kind.has_calls:
                    rooms.add(room_id)
        return rooms

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
            if (room_id, state_key) in self._expiry:
                continue
            event = await self._current(room_id, state_key)
            if event is None:
                continue
            expiry = membership_expiry_ms(event.get("content") or {}, event.get("origin_server_ts"))
            if expiry is not None:
                self._expiry[(room_id, state_key)] = expiry
        now = self._clock_ms()
        cleared = 0
        for (room_id, state_key), expiry in list(self._expiry.items()):
            if room_id not in rooms:
                # Not (or no longer) a Guilds voice or video channel: not ours to clean.
                self._expiry.pop((room_id, state_key), None)
                continue
            if expiry + CLOCK_SLACK_MS > now:
                continue
            if await self._clear_if_expired(room_id, state_key, now):
                cleared += 1
        return cleared

    async def _clear_if_expired(self, room_id: RoomID, state_key: str, now: float) -> bool:
        event = await self._current(room_id, state_key)
        content = (event or {}).get("content") or {}
        expiry = membership_expiry_ms(content, (event or {}).get("origin_server_ts"))
        if expiry is None:
            self._expiry.pop((room_id, state_key), None)
            return False
        if expiry + CLOCK_SLACK_MS > now:
            # Refreshed since we last looked.
            self._expiry[(room_id, state_key)] = expiry
            return False
        event_id = await self._matrix.send_state(room_id, CALL_MEMBER_EVENT, state_key, {})
        self._directory.record_sent(room_id, CALL_MEMBER_EVENT, state_key, {}, event_id)
        self._expiry.pop((room_id, state_key), None)
        log.info(
            "Cleared an expired call membership in %s (expired %.0f s ago)",
            room_id,
            (now - expiry) / 1000,
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
            await asyncio.sleep(self.interval_s)
