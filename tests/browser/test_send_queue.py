"""Sending in a burst against the homeserver's real message rate limit: every message arrives,
in the order typed, in the sender's client and in another user's (issue 18, observation 1).

The limit is Synapse's own rate limiter answering 429 with `retry_after_ms`, set tighter than
its default (10 at once, then one every 5 s) so that the burst meets it sooner and drains in
seconds rather than half a minute: the queue's handling of a 429 is the same either way, and
the test checks that the homeserver did refuse some of the burst."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from tests.harness.api import create_server, join_server
from tests.harness.chat_steps import messages, new_page, open_as, open_channel
from tests.harness.stack import Stack, build_stack

pytestmark = pytest.mark.browser

BURST = 15
# The pace of someone typing short lines quickly: the input of the test, not a wait.
TYPING_GAP_S = 0.1
# 3 messages at once, then one a second: typed at TYPING_GAP_S, a dozen of the 15 meet a 429
# (typing would have to take 12 s to miss it) and the last arrives about 12 s after the first.
MESSAGE_LIMIT = {"per_second": 1, "burst_count": 3}
# Generous, since only the conditions are asserted.
ARRIVAL_TIMEOUT_MS = 90_000


@pytest_asyncio.fixture(scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A stack whose homeserver limits messages (`MESSAGE_LIMIT`), not raised as in other tests."""
    s = build_stack(
        "sqlite",
        tmp_path_factory.mktemp("send-limited"),
        homeserver_extra={"rc_message": MESSAGE_LIMIT},
    )
    try:
        s.http = aiohttp.ClientSession()
        s.start_guilds()
        yield s
    finally:
        await s.close()


async def bodies(page: Page) -> list[str]:
    return await messages(page).get_by_test_id("message-body").all_inner_texts()


async def test_a_burst_of_fifteen_arrives_whole_and_in_order(
    page: Page, browser: Browser, limited: Stack
) -> None:
    alice = await limited.register_user()
    bob = await limited.register_user()
    server = await create_server(limited, alice, f"Burst {secrets.token_hex(2)}")
    sid = server["server_id"]
    await join_server(limited, sid, bob)

    await open_as(page, limited, alice)
    await open_channel(page, sid)
    refused: list[str] = []
    page.on(
        "response",
        lambda r: refused.append(r.url) if r.status == 429 and "/send/" in r.url else None,
    )
    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, limited, bob)
        await open_channel(other, sid)

        tag = secrets.token_hex(2)
        typed = [f"burst {tag} {i}" for i in range(BURST)]
        composer = page.get_by_test_id("composer")
        for text in typed:
            await composer.fill(text)
            await composer.press("Enter")
            await asyncio.sleep(TYPING_GAP_S)

        # Local echo at once, in the order typed.
        mine = messages(page).filter(has_text=f"burst {tag} ")
        await expect(mine).to_have_count(BURST)
        assert [b for b in await bodies(page) if tag in b] == typed

        # Every one confirmed by the homeserver (no echo left), none "Not sent".
        await expect(page.locator('[data-testid="message"].pending')).to_have_count(
            0, timeout=ARRIVAL_TIMEOUT_MS
        )
        await expect(page.get_by_test_id("retry-send")).to_have_count(0)
        assert [b for b in await bodies(page) if tag in b] == typed
        # The burst did meet the limit: the homeserver refused some of it, and was waited out.
        assert refused, "no 429 from the homeserver: the burst never met its rate limit"

        theirs = messages(other).filter(has_text=f"burst {tag} ")
        await expect(theirs).to_have_count(BURST, timeout=ARRIVAL_TIMEOUT_MS)
        assert [b for b in await bodies(other) if tag in b] == typed
        assert problems == []
    finally:
        await context.close()
