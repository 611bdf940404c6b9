"""Steps of the search and pins browser tests: search from the header, the pins panel, and what
another Matrix client (matrix-nio) sends, pins and reads."""

from __future__ import annotations

from typing import Any

import nio
from playwright.async_api import Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.harness.api import eventually, join_as
from tests.harness.stack import Stack, User

PINNED = "m.room.pinned_events"


async def search(page: Page, text: str, scope: str = "channel") -> Locator:
    """Search from the header (`scope`: "channel" or "server"); answers the results list."""
    await page.get_by_test_id("search-scope").select_option(scope)
    box = page.get_by_test_id("search-input")
    await box.fill(text)
    await box.press("Enter")
    await expect(page.get_by_test_id("search-panel")).to_be_visible()
    return page.get_by_test_id("search-result")


def result_with(page: Page, text: str) -> Locator:
    return page.get_by_test_id("search-result").filter(
        has=page.get_by_test_id("search-result-text").get_by_text(text)
    )


async def open_pins(page: Page) -> Locator:
    """Open the header's pins panel; answers its entries."""
    panel = page.get_by_test_id("pins-panel")
    if not await panel.is_visible():
        await page.get_by_test_id("pins-button").click()
    await expect(panel).to_be_visible()
    return page.get_by_test_id("pin")


async def message_action(message: Locator, testid: str) -> Locator:
    """A message's hover-menu action (it may be absent: check its count)."""
    await message.hover()
    return message.get_by_test_id(testid)


async def click_message_action(message: Locator, testid: str, *, attempts: int = 5) -> None:
    """Hover a message and click an action of its menu, as a person would again if the line
    moved under the pointer: a notice or message arriving above it (a member's auto-join
    notice, say) shifts the timeline, the hover is lost and the menu hides mid-click."""
    for attempt in range(attempts):
        button = await message_action(message, testid)
        try:
            await button.click(timeout=3_000)
            return
        except PlaywrightTimeoutError:
            if attempt == attempts - 1:
                raise


async def in_room(stack: Stack, user: User, room_id: str) -> None:
    """`user` joined to `room_id`: by Guilds' own auto-join if it comes, else by a join."""

    async def joined() -> bool:
        async with stack.nio_client(user) as client:
            response = await client.room_get_state_event(room_id, "m.room.member", user.user_id)
        return (
            isinstance(response, nio.RoomGetStateEventResponse)
            and response.content.get("membership") == "join"
        )

    if await eventually(joined, deadline_s=10.0, interval_s=0.2):
        return
    assert isinstance(await join_as(stack, user, room_id), nio.JoinResponse)


async def nio_send(stack: Stack, user: User, room_id: str, *bodies: str) -> list[str]:
    """Send text messages as `user` from matrix-nio; answers their event ids."""
    ids = []
    async with stack.nio_client(user) as client:
        for body in bodies:
            sent = await client.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": body}
            )
            assert isinstance(sent, nio.RoomSendResponse), sent
            ids.append(sent.event_id)
    return ids


async def nio_pins(stack: Stack, user: User, room_id: str) -> list[str]:
    """The pinned ids as matrix-nio reads them (empty when the room has none)."""
    async with stack.nio_client(user) as client:
        response = await client.room_get_state_event(room_id, PINNED)
    if not isinstance(response, nio.RoomGetStateEventResponse):
        return []
    pinned = response.content.get("pinned", [])
    return [p for p in pinned if isinstance(p, str)]


async def nio_set_pins(stack: Stack, user: User, room_id: str, pinned: list[str]) -> Any:
    """Write the pinned list from matrix-nio; answers nio's response (an error too)."""
    async with stack.nio_client(user) as client:
        return await client.room_put_state(room_id, PINNED, {"pinned": pinned})
