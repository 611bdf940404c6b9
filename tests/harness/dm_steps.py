"""Browser steps for direct conversations (views/dms.js): opening one from a member's profile,
the DM shown, and its entry in the Home list."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect


async def open_profile_of_member(page: Page, user_id: str) -> None:
    member = page.locator(f'[data-testid="member"][data-user-id="{user_id}"]')
    await member.get_by_test_id("member-name").click()
    await expect(page.get_by_test_id("profile-card")).to_be_visible()


async def open_dm_from_member(page: Page, user_id: str) -> str:
    """Click the member's name, then "Message"; answers the DM's room id once its chat shows."""
    await open_profile_of_member(page, user_id)
    await page.get_by_test_id("profile-message").click()
    return await dm_room_shown(page, user_id)


async def dm_room_shown(page: Page, user_id: str) -> str:
    header = page.get_by_test_id("dm-header")
    await expect(header).to_have_attribute("data-user-id", user_id)
    chat = page.get_by_test_id("dm-chat")
    await expect(chat).to_be_visible()
    await expect(page.get_by_test_id("composer")).to_be_enabled()
    room_id = await chat.get_attribute("data-room-id")
    assert room_id and room_id.startswith("!"), room_id
    return room_id


def dm_item(page: Page, user_id: str) -> Any:
    return page.get_by_test_id("dm-list").locator(
        f'[data-testid="dm-item"][data-user-id="{user_id}"]'
    )
