"""Two web clients in one channel ride out a homeserver restart: both show they are reconnecting,
both resume, and every message either sent shows exactly once in both."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.harness.api import create_server, join_server
from tests.harness.chat_steps import LIVE_MS, message_with, new_page, open_as, open_channel, send
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser


async def test_two_clients_resume_after_a_homeserver_restart(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Two clients")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        pages = {"alice": page, "bob": other}
        await open_as(page, stack, alice)
        await open_as(other, stack, bob)
        for p in pages.values():
            await open_channel(p, sid)
        await send(page, "alice before")
        await send(other, "bob before")
        for p in pages.values():
            for text in ("alice before", "bob before"):
                await expect(message_with(p, text)).to_have_count(1, timeout=LIVE_MS)

        stack.homeserver.stop()
        try:
            for p in pages.values():
                await expect(p.get_by_test_id("connection-status")).to_be_visible(timeout=40_000)
            # Sent during the outage: each client keeps it and retries it with the same txn id.
            await send(page, "alice during")
            await send(other, "bob during")
            await expect(message_with(page, "alice during")).to_have_count(1)
            await expect(message_with(other, "bob during")).to_have_count(1)
        finally:
            stack.homeserver.start()
        for p in pages.values():
            await expect(p.get_by_test_id("connection-status")).to_be_hidden(timeout=40_000)
        await send(page, "alice after")
        await send(other, "bob after")

        texts = [f"{who} {when}" for when in ("before", "during", "after") for who in pages]
        for p in pages.values():
            for text in texts:
                await expect(message_with(p, text)).to_have_count(1, timeout=30_000)
            # Each retried send is confirmed by the homeserver: nothing is left pending.
            await expect(p.locator('[data-testid="message"].pending')).to_have_count(
                0, timeout=30_000
            )
        # Once things settle, one more each way: still exactly one of each, in both clients.
        await send(other, "bob settled")
        for p in pages.values():
            await expect(message_with(p, "bob settled")).to_have_count(1, timeout=LIVE_MS)
            bodies = await p.get_by_test_id("message-body").all_inner_texts()
            assert sorted(bodies) == sorted([*texts, "bob settled"]), bodies
        assert problems == []
    finally:
        await context.close()
