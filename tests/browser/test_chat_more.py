"""The chat client's harder paths: reconnecting after a homeserver restart, uploads, replies,
reactions and unread badges, against the real stack."""

from __future__ import annotations

import base64
import re

import nio
import pytest
from playwright.async_api import FilePayload, Page, expect

from tests.harness.api import Api, create_server, join_as, join_server
from tests.harness.chat_steps import (
    LIVE_MS,
    channel,
    message_with,
    open_as,
    open_channel,
    open_server_with,
    send,
)
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

# A 2×2 PNG, so the upload is a real image the browser decodes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)


async def nio_send(stack: Stack, user: User, room_id: str, body: str) -> None:
    async with stack.nio_client(user) as client:
        answer = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body}
        )
        assert isinstance(answer, nio.RoomSendResponse), answer


async def test_reconnects_after_a_homeserver_restart_losing_and_repeating_nothing(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    sid, general = await open_server_with(page, stack, alice, bob, "Restart")
    await nio_send(stack, bob, general, "before the restart")
    await expect(message_with(page, "before the restart")).to_have_count(1, timeout=LIVE_MS)

    stack.homeserver.stop()
    try:
        await expect(page.get_by_test_id("connection-status")).to_be_visible(timeout=40_000)
        # Sent while the homeserver is away: kept, retried with the same txn id.
        await send(page, "sent while away")
        await expect(message_with(page, "sent while away")).to_have_count(1)
    finally:
        stack.homeserver.start()
    for i in range(3):
        await nio_send(stack, bob, general, f"after the restart {i}")
    for text in ["before the restart", "sent while away"] + [
        f"after the restart {i}" for i in range(3)
    ]:
        await expect(message_with(page, text)).to_have_count(1, timeout=30_000)
    await expect(page.get_by_test_id("connection-status")).to_be_hidden()
    await expect(message_with(page, "sent while away")).not_to_have_class("pending")
    # Once more after things settle: still exactly one of each, nothing doubled by a catch-up.
    await nio_send(stack, bob, general, "settled")
    await expect(message_with(page, "settled")).to_have_count(1, timeout=LIVE_MS)
    bodies = await page.get_by_test_id("message-body").all_inner_texts()
    assert len(bodies) == len(set(bodies)), bodies


async def test_uploads_replies_reactions_and_badges(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Files")
    sid = server["server_id"]
    status, other = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/channels", {"name": "random", "kind": "text"}
    )
    assert status == 201, other
    await join_server(stack, sid, bob)
    await open_as(page, stack, alice)
    await open_channel(page, sid)

    await page.get_by_test_id("file-input").set_input_files(
        [
            FilePayload(name="dot.png", mimeType="image/png", buffer=PNG),
            FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"some notes"),
        ]
    )
    image = page.get_by_test_id("message-image")
    await expect(image).to_have_count(1)
    await expect(image).to_have_attribute("src", re.compile("^blob:"))
    assert await image.evaluate("(img) => img.complete && img.naturalWidth") == 2
    await expect(page.get_by_test_id("message-file")).to_have_text("notes.txt")

    await send(page, "the original")
    original = message_with(page, "the original")
    await original.hover()
    await original.get_by_test_id("action-reply").click()
    await expect(page.get_by_test_id("reply-bar")).to_be_visible()
    await send(page, "my answer")
    answer = message_with(page, "my answer")
    await expect(answer.get_by_test_id("reply-preview")).to_contain_text("the original")

    await original.hover()
    await original.get_by_test_id("action-react").click()
    await page.locator('[data-testid="emoji-choice"][data-emoji="🎉"]').click()
    reaction = original.locator('[data-testid="reaction"][data-key="🎉"]')
    await expect(reaction.get_by_test_id("reaction-count")).to_have_text("1")
    await expect(reaction).to_have_attribute("aria-pressed", "true")
    await reaction.click()
    await expect(reaction).to_have_count(0)

    # A mention in another channel: a badge on that channel, gone once it is read.
    await channel(page, "random").click()
    await channel(page, "general").click()
    me = (await page.get_by_test_id("display-name").inner_text()).strip()
    assert isinstance(await join_as(stack, bob, other["channel_id"]), nio.JoinResponse)
    await nio_send(stack, bob, other["channel_id"], f"hey {me}, look")
    badge = channel(page, "random").get_by_test_id("channel-badge")
    await expect(badge).to_have_text("1", timeout=LIVE_MS)
    await channel(page, "random").click()
    await expect(message_with(page, "look")).to_have_count(1)
    await channel(page, "general").click()
    await expect(badge).to_have_count(0, timeout=LIVE_MS)
    await page.screenshot(path=str(stack.root / "chat-main.png"))
