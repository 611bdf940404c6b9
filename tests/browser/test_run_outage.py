"""Under `guilds run`, Synapse killed: the page stays, says the connection is lost, and recovers.

Observation (issue 16): killing Synapse under `make run` took the bridge and the web UI down
with it, so the page had nothing to come back to. Now `guilds run` starts Synapse again while the
web UI keeps serving (tests/integration/test_run.py checks the processes and the API).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.harness.launcher import Launcher, get_json, launched, pids_of, sign_up

pytestmark = pytest.mark.browser


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    yield from launched(tmp_path)


async def test_the_outage_banner_shows_while_synapse_is_restarted(
    page: Page, launcher: Launcher
) -> None:
    launcher.start()
    url = await asyncio.to_thread(launcher.wait_for_url)
    launcher.follow()
    _, well_known = await asyncio.to_thread(get_json, f"{url}/.well-known/matrix/client")
    hs = well_known["m.homeserver"]["base_url"]
    account = await asyncio.to_thread(sign_up, hs, "watcher", "correct horse battery")

    # Signed in as a sign-in would have left it.
    await page.goto(f"{url}/static/favicon.svg")
    session = {
        "userId": account["user_id"],
        "accessToken": account["access_token"],
        "deviceId": account["device_id"],
        "homeserverUrl": hs,
    }
    await page.evaluate("(s) => localStorage.setItem('guilds.session.v1', s)", json.dumps(session))
    await page.goto(url)
    await expect(page.get_by_test_id("home-view")).to_be_visible()
    banner = page.get_by_test_id("connection-status")
    await expect(banner).to_be_hidden()

    [synapse] = pids_of(launcher.state, "synapse.app.homeserver")
    os.kill(synapse, signal.SIGKILL)
    await expect(banner).to_be_visible(timeout=40_000)
    await expect(banner).to_have_text("Connection lost — reconnecting…")
    await asyncio.to_thread(launcher.wait_for_output, "Synapse started again", 90)
    await expect(banner).to_be_hidden(timeout=60_000)
    # Still the same page, signed in: nothing was reloaded, nobody was signed out.
    await expect(page.get_by_test_id("home-view")).to_be_visible()

    assert await asyncio.to_thread(launcher.interrupt) == 0
