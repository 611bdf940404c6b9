"""What the web UI's SFU transport (calls/janus.js) counts on from Janus when its tokens run out
(a bridge too slow to renew them): a keepalive with an expired token is refused with code 403,
which makes the page ask for new credentials at once, and a session whose keepalives Janus did
not take is ended with a `timeout` event on its WebSocket, on which the page joins again
(tests/unit_js/janus.test.mjs checks the page's side)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bridge.services.sfu import sign_token
from guildsctl.synapse import stop
from tests.harness.sfu import PLUGIN, JanusRefused, janus_session, start_test_janus

TOKEN_LIFETIME_S = 2
SESSION_TIMEOUT_S = 4


async def test_an_expired_token_is_refused_403_and_the_session_then_timed_out(
    tmp_path: Path,
) -> None:
    (tmp_path / "logs").mkdir()
    proc, janus = start_test_janus(tmp_path, session_timeout_s=SESSION_TIMEOUT_S)
    try:
        token = sign_token(janus.token_secret, "janus", (PLUGIN,), TOKEN_LIFETIME_S, time.time())
        async with janus_session(janus.ws_url, token) as session:
            await session.attach()
            await asyncio.sleep(TOKEN_LIFETIME_S + 1.5)
            with pytest.raises(JanusRefused) as refused:
                await session.request({"janus": "keepalive"})
            assert refused.value.answer["error"]["code"] == 403, refused.value.answer

            deadline = time.monotonic() + SESSION_TIMEOUT_S + 10
            seen = []
            while time.monotonic() < deadline:
                event = await session.next_event(wait_s=deadline - time.monotonic())
                seen.append(event)
                if event.get("janus") == "timeout":
                    assert event.get("session_id") == session.session_id, event
                    break
            else:
                raise AssertionError(f"no timeout event; saw {seen}")
    finally:
        stop(proc)
