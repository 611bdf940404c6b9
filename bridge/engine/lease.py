"""A named lease in the bridge's database: one process at a time does what it guards.

`guilds apply` and `guilds serve` (at start-up) both reconcile the declared servers; two of them
at once would each see a channel missing and create it twice. Each takes the lease first. A
holder renews it while it works; one that died without releasing it loses it when it lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable

from bridge.engine.store import Database

log = logging.getLogger(__name__)

LEASE_S = 60.0
RENEW_EVERY_S = 15.0


class LeaseBusy(Exception):
    """Another process holds the lease."""

    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f"{holder} holds the {name} lease")
        self.holder = holder


def holder_id() -> str:
    """Who holds a lease, readable in an error: host, process id, and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    def __init__(
        self,
        db: Database,
        name: str,
        *,
        holder: str | None = None,
        lease_s: float = LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.name = name
        self.holder = holder or holder_id()
        self.lease_s = lease_s
        self._clock = clock

    def _ms(self, seconds: float = 0.0) -> int:
        return int((self._clock() + seconds) * 1000)

    async def try_acquire(self) -> str | None:
        """Take or renew the lease; None when held by us now, else who holds it."""
        now, until = self._ms(), self._ms(self.lease_s)
        async with self.db.transaction() as tx:
            # One statement on both backends: insert, or take over only a lapsed (or our own)
            # lease; whoever holds it afterwards is read back in the same transaction.
            await tx.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at"
                " WHERE leases.expires_at < ? OR leases.holder = excluded.holder",
                self.name,
                self.holder,
                until,
                now,
            )
            row = await tx.fetchone("SELECT holder FROM leases WHERE name = ?", self.name)
        holder = None if row is None else str(row["holder"])
        return None if holder == self.holder else (holder or "nobody")

    async def release(self) -> None:
        await self.db.execute(
            "DELETE FROM leases WHERE name = ? AND holder = ?", self.name, self.holder
        )

    @contextlib.asynccontextmanager
    async def held(self, *, wait_s: float = 0.0, poll_s: float = 0.5) -> AsyncIterator[None]:
        """Hold the lease for the block, renewed meanwhile; LeaseBusy if not had in `wait_s`."""
        deadline = time.monotonic() + wait_s
        while True:
            other = await self.try_acquire()
            if other is None:
                break
            if time.monotonic() >= deadline:
                raise LeaseBusy(self.name, other)
            await asyncio.sleep(poll_s)
        renewing = asyncio.create_task(self._renew(), name=f"guilds-lease-{self.name}")
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.release()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(min(RENEW_EVERY_S, self.lease_s / 4))
            other = await self.try_acquire()
            if other is not None:
                log.warning("Lost the %s lease to %s", self.name, other)
                return
