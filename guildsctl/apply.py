"""`guilds apply [--dry-run]`: reconcile the servers guilds.yaml declares, and say what changed.

With `guilds serve` running, the running bridge does it (asked on its appservice listener with
the hs_token), so one process acts and its directory sees what it made. Without one, the bridge
runs here without serving HTTP: its store and homeserver client from guilds.yaml, the servers
read into its directory, the same lease `guilds serve` takes at start-up held meanwhile.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from guilds.config import GuildsConfig

log = logging.getLogger(__name__)

# How long to wait for the lease another `guilds apply` (or a starting `guilds serve`) holds.
LEASE_WAIT_S = 30.0


class ApplyError(Exception):
    """Applying could not be done; the message says why."""


def _listener_url(config: GuildsConfig) -> str:
    host = config.appservice.listen.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.appservice.listen.port}"


async def _ask_running_bridge(config: GuildsConfig, dry_run: bool) -> dict[str, Any] | None:
    """The running bridge's report, or None when no bridge listens there."""
    from bridge.api.admin import APPLY_PATH

    url = _listener_url(config) + APPLY_PATH
    headers = {"Authorization": f"Bearer {config.appservice.registration.hs_token}"}
    timeout = aiohttp.ClientTimeout(total=600, connect=2)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, params={"dry_run": "1" if dry_run else "0"}, headers=headers) as answer,
        ):
            data = await answer.json(content_type=None)
            if answer.status != 200:
                raise ApplyError(f"the running bridge answered {answer.status}: {data}")
            return dict(data)
    except aiohttp.ClientConnectorError:
        return None


async def _apply_here(config: GuildsConfig, dry_run: bool) -> dict[str, Any]:
    from bridge.engine.lease import LeaseBusy
    from bridge.engine.matrix import HomeserverUnavailable
    from bridge.runtime import Bridge

    bridge = Bridge(config)
    await bridge.open()
    try:
        try:
            await bridge.matrix.wait_until_reachable(30.0)
        except HomeserverUnavailable as exc:
            raise ApplyError(f"the homeserver at {config.homeserver.url} is not reachable") from exc
        await bridge.load_servers()
        try:
            report = await bridge.apply_declared(dry_run=dry_run, wait_s=LEASE_WAIT_S)
        except LeaseBusy as exc:
            raise ApplyError(f"another process is applying the declared servers ({exc})") from exc
        return report.to_json()
    finally:
        await bridge.close()


async def apply(config: GuildsConfig, *, dry_run: bool) -> list[str]:
    """The report's lines, from the running bridge or from a bridge run here."""
    from bridge.services.declared import Report

    if not config.servers:
        return ["guilds.yaml declares no servers: nothing to apply"]
    data = await _ask_running_bridge(config, dry_run)
    where = "by the running bridge"
    if data is None:
        data = await _apply_here(config, dry_run)
        where = "here (no bridge running)"
    report = Report.from_json(data)
    head = "Plan (dry run, nothing done)" if report.dry_run else f"Applied {where}"
    return [f"{head}:", *report.lines()]
