"""`guilds serve` waits out a homeserver that rate-limits its start-up, instead of exiting.

Observation (issue 16): `guilds serve` exited with `BridgeStartupError … 429 M_LIMIT_EXCEEDED`
when Synapse rate-limited the bot's `/register` during a burst of sign-ups. Synapse limits
`/register` by client address before it looks at the appservice token, so the registration's
`rate_limited: false` does not exempt it. Here a real Synapse with a small `rc_registration`
is brought to its limit by sign-ups from 127.0.0.1, and then the bridge starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from tests.harness.api import Api
from tests.harness.stack import Stack, build_stack

# Two sign-ups fill the bucket; it then lets one through every 10 s, longer than guilds serve
# takes to reach its /register even on a loaded machine.
RC_REGISTRATION = {"per_second": 0.1, "burst_count": 2}


@pytest_asyncio.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Stack]:
    stack = build_stack("sqlite", tmp_path, homeserver_extra={"rc_registration": RC_REGISTRATION})
    stack.http = aiohttp.ClientSession()
    try:
        yield stack
    finally:
        await stack.close()


async def sign_up(stack: Stack, username: str) -> int:
    """Open registration as a client does; the final status (429 once limited)."""
    assert stack.http is not None
    url = f"{stack.hs_url}/_matrix/client/v3/register"
    body: dict[str, object] = {"username": username, "password": "correct horse battery"}
    async with stack.http.post(url, json=body) as first:
        session = (await first.json()).get("session")
        if first.status != 401:
            return first.status
    body["auth"] = {"type": "m.login.dummy", "session": session}
    async with stack.http.post(url, json=body) as second:
        return second.status


async def test_a_rate_limited_bot_registration_is_waited_out(limited: Stack) -> None:
    assert [await sign_up(limited, f"burst{n}") for n in range(2)] == [200, 200]
    # The bot's /register now gets 429 as well, as during a burst of sign-ups.
    assert await sign_up(limited, "burst2") == 429

    limited.start_guilds()  # raises if guilds serve exits or does not get ready

    assert limited.guilds_proc is not None and limited.guilds_proc.poll() is None
    log = limited.guilds_log.read_text(encoding="utf-8")
    assert "BridgeStartupError" not in log
    waits = [line for line in log.splitlines() if "429 M_LIMIT_EXCEEDED" in line]
    assert waits, log[-3000:]
    assert all(f"Setting up the bot {limited.bot_user_id}" in w for w in waits), waits
    assert all("trying again in" in w for w in waits), waits
    assert "Bridge connected" in log
    # Ready for real: the API answers an authenticated call that reaches Synapse.
    # (A creation that outlives the stack's short answer bound is followed to its end.)
    user = await limited.register_user()
    status, created = await Api(limited, user).call("POST", "/servers", {"name": "After the burst"})
    assert status == 201, created
