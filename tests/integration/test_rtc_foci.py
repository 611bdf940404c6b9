"""No MatrixRTC focus is advertised while Guilds has no SFU that other clients can use.

Issue 17, observation 3: `org.matrix.msc4143.rtc_foci` (in `/.well-known/matrix/client`) and
Synapse's `/rtc/transports` are advertised only once an SFU clients can use is configured
(docs/CALLS.md, "SFU foci"). Without an SFU, Guilds' calls run on a full mesh, which needs
neither: an entry naming an SFU that is not there would send Element Call to a focus it cannot
reach. With Guilds' Janus configured, its clients find it through the bridge, and Element Call
(which uses only LiveKit foci) cannot use it: advertising it would be as wrong. Checked on a
running stack without an SFU and on one with Janus (whose Synapse settings are those
`guilds run` writes), and in the configuration Guilds ships for production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.api import Api, create_server, join_as
from tests.harness.sfu import StackWithSfu
from tests.harness.stack import SFU, Stack, User

REPO = Path(__file__).resolve().parents[2]
FOCI_KEY = "org.matrix.msc4143.rtc_foci"
TRANSPORTS = "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports"
SHIPPED_SYNAPSE_CONFIGS = [
    REPO / "config" / "homeserver-guilds.yaml",
    REPO / "docker" / "synapse" / "homeserver-guilds.yaml",
]


async def get(stack: Stack, url: str, token: str | None = None) -> tuple[int, Any]:
    assert stack.http is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with stack.http.get(url, headers=headers) as response:
        text = await response.text()
        if response.content_type != "application/json":
            return response.status, None
        return response.status, (await response.json()) if text else None


async def sfu_credentials(stack: Stack, owner: User) -> tuple[int, Any]:
    """The bridge's answer to a channel call's request for SFU credentials: whether the stack
    really has the SFU it is meant to have."""
    server = await create_server(stack, owner, "Foci")
    path = f"/servers/{server['server_id']}/channels"
    status, channel = await Api(stack, owner).call("POST", path, {"name": "talk", "kind": "voice"})
    assert status == 201, channel
    # In the channel's room first, as the web UI is before it joins a call.
    await join_as(stack, owner, channel["channel_id"])
    return await Api(stack, owner).call(
        "POST", f"{path}/{channel['channel_id']}/sfu", {"device_id": owner.device_id}
    )


# Discovery does not depend on the database: SQLite alone, without an SFU and with Janus.
@pytest.mark.parametrize("stack", ["sqlite", SFU], indirect=True, scope="session")
async def test_no_rtc_focus_is_advertised_without_an_sfu_or_with_janus(
    stack: Stack, alice: User
) -> None:
    # Each stack is what it is meant to be: calls through Janus on one, on the mesh on the other.
    status, credentials = await sfu_credentials(stack, alice)
    if isinstance(stack, StackWithSfu):
        assert status == 200 and credentials["focus"]["type"] == "org.guilds.janus", credentials
    else:
        assert credentials["errcode"] == "GUILDS_NO_SFU", (status, credentials)
    # The web UI's origin answers client discovery: the homeserver, nothing about calls.
    status, well_known = await get(stack, f"{stack.web_url}/.well-known/matrix/client")
    assert status == 200, well_known
    assert set(well_known) == {"m.homeserver"}, well_known
    # Synapse's own discovery, where it serves one, carries no focus either.
    status, synapse_known = await get(stack, f"{stack.hs_url}/.well-known/matrix/client")
    assert status == 404 or FOCI_KEY not in (synapse_known or {}), synapse_known
    # /rtc/transports is not served (404 M_UNRECOGNIZED), or lists nothing.
    status, transports = await get(stack, f"{stack.hs_url}{TRANSPORTS}", alice.access_token)
    assert status == 404 or not (transports or {}).get("rtc_transports"), (status, transports)


def test_the_shipped_synapse_configuration_enables_no_rtc_transports() -> None:
    # Synapse 1.163 serves /rtc/transports with `experimental_features.msc4143_enabled` and
    # lists `matrix_rtc.transports` there.
    for path in SHIPPED_SYNAPSE_CONFIGS:
        config = yaml.safe_load(path.read_text())
        assert "matrix_rtc" not in config, path
        assert not (config.get("experimental_features") or {}).get("msc4143_enabled"), path
        assert FOCI_KEY not in path.read_text(), path
