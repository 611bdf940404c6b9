"""`guilds doctor [--server ID] [--repair]`: every server's Matrix state against its model.

For each server (or the one named), every room is compared with what the server's model derives
— power levels, role-room memberships, the owner, the space tree, join rules, bans — and each
difference printed as `room  what: expected …, actual …`. `--repair` carries out the repairs
(as journaled operations) and compares again.

As `guilds apply` does: with `guilds serve` running, the running bridge does it (asked on its
appservice listener with the hs_token), so its directory and its server turns are the ones
used. Without one, the bridge runs here without serving HTTP: its store and homeserver client
from guilds.yaml, every server read afresh from the homeserver.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from bridge.readback.convergence import DoctorReport
from guilds.config import GuildsConfig
from guildsctl.apply import _listener_url


class DoctorError(Exception):
    """The check could not be made; the message says why."""


async def _ask_running_bridge(
    config: GuildsConfig, server: str | None, repair: bool
) -> dict[str, Any] | None:
    """The running bridge's report, or None when no bridge listens there."""
    from bridge.api.admin import DOCTOR_PATH

    url = _listener_url(config) + DOCTOR_PATH
    headers = {"Authorization": f"Bearer {config.appservice.registration.hs_token}"}
    params = {"repair": "1" if repair else "0"}
    if server is not None:
        params["server"] = server
    timeout = aiohttp.ClientTimeout(total=600, connect=2)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, params=params, headers=headers) as answer,
        ):
            data = await answer.json(content_type=None)
            if answer.status != 200:
                raise DoctorError(f"the running bridge answered {answer.status}: {data}")
            return dict(data)
    except aiohttp.ClientConnectorError:
        return None


async def _doctor_here(config: GuildsConfig, server: str | None, repair: bool) -> DoctorReport:
    from bridge.engine.matrix import HomeserverUnavailable
    from bridge.runtime import Bridge

    bridge = Bridge(config)
    await bridge.open()
    try:
        try:
            await bridge.matrix.wait_until_reachable(30.0)
        except HomeserverUnavailable as exc:
            url = config.homeserver.url
            raise DoctorError(f"the homeserver at {url} is not reachable") from exc
        await bridge.load_servers()
        return await bridge.doctor(server, repair=repair, serving=False)
    finally:
        await bridge.close()


async def run_doctor(
    config: GuildsConfig, *, server: str | None, repair: bool
) -> tuple[DoctorReport, str]:
    """The report, from the running bridge or from a bridge run here, and which it was."""
    data = await _ask_running_bridge(config, server, repair)
    if data is not None:
        return DoctorReport.from_json(data), "by the running bridge"
    return await _doctor_here(config, server, repair), "here (no bridge running)"
