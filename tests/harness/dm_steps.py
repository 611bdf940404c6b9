"""Steps for direct conversations (views/dms.js): a DM made as Element makes one, opening it
from the Home list or from a member's profile, the DM shown, and its entry in the Home list."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import nio
from playwright.async_api import Page, expect

from tests.harness.chat_steps import LIVE_MS, open_as
from tests.harness.stack import Stack, User


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


async def put_direct(stack: Stack, user: User, content: dict[str, list[str]]) -> None:
    assert stack.http is not None
    url = f"{stack.hs_url}/_matrix/client/v3/user/{quote(user.user_id)}/account_data/m.direct"
    headers = {"Authorization": f"Bearer {user.access_token}"}
    async with stack.http.put(url, json=content, headers=headers) as response:
        assert response.status == 200, await response.text()


async def make_dm(stack: Stack, a: User, b: User) -> str:
    """A DM as Element makes one: is_direct + invite, joined, in both users' m.direct."""
    async with stack.nio_client(a) as client:
        created = await client.room_create(
            is_direct=True, preset=nio.RoomPreset.trusted_private_chat, invite=[b.user_id]
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
    async with stack.nio_client(b) as client:
        joined = await client.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
    await put_direct(stack, a, {b.user_id: [room_id]})
    await put_direct(stack, b, {a.user_id: [room_id]})
    return room_id


async def open_dm(page: Page, stack: Stack, me: User, other: User, room_id: str) -> None:
    await open_as(page, stack, me)
    await page.get_by_test_id("rail-home").click()
    entry = page.get_by_test_id("dm-list").locator(
        f'[data-testid="dm-item"][data-user-id="{other.user_id}"]'
    )
    await expect(entry).to_be_visible(timeout=LIVE_MS)
    await entry.click()
    header = page.get_by_test_id("dm-header")
    await expect(header).to_have_attribute("data-room-id", room_id, timeout=LIVE_MS)
    await expect(header.get_by_test_id("dm-call-video")).to_be_visible()
