"""Browser steps for threads (views/threads-view.js): the side panel, a message in it, the thread
action of a message's menu, and a reply sent from the panel."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page, expect

from tests.harness.chat_steps import LIVE_MS


def panel(page: Page) -> Locator:
    return page.get_by_test_id("thread-panel")


def thread_message(page: Page, text: str) -> Locator:
    return (
        panel(page)
        .get_by_test_id("thread-message")
        .filter(has=page.get_by_test_id("message-body").get_by_text(text))
    )


async def thread_action(message: Locator) -> Locator:
    """The message's thread action from its hover menu, shown. A message redrawn under a still
    mouse (a name or colour arriving) loses :hover until the mouse moves: hover until shown."""
    action = message.get_by_test_id("action-thread")
    for _ in range(20):
        await message.hover(position={"x": 200, "y": 10})
        if await action.is_visible():
            break
        await message.page.mouse.move(0, 0)
    return action


async def reply_in_thread(page: Page, text: str) -> str:
    """Send `text` from the open thread panel; answers its event id once the server has it."""
    composer = panel(page).get_by_test_id("thread-composer")
    await composer.fill(text)
    await composer.press("Enter")
    sent = thread_message(page, text)
    await expect(sent).to_have_count(1)
    await expect(sent).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    event_id = await sent.get_attribute("data-event-id")
    assert event_id and event_id.startswith("$"), event_id
    return event_id
