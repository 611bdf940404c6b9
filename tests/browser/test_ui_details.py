"""The smaller things a new user met in the web UI (issue #18, observation 8), each against the
real stack: the Roles dialog, private channels, a new channel, channel names, images, avatars."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.harness.api import Api, create_server, join_server
from tests.harness.chat_steps import open_as, open_channel
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser


async def open_menu_entry(page: Page, entry: str) -> None:
    await page.get_by_test_id("server-menu-button").click()
    await page.get_by_test_id(f"menu-{entry}").click()


async def test_the_roles_dialog_never_shows_null(page: Page, stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Roles")
    await open_as(page, stack, alice)
    await open_channel(page, server["server_id"])
    await open_menu_entry(page, "openRoles")
    dialog = page.get_by_test_id("roles-dialog")
    items = dialog.get_by_test_id("role-item")
    await expect(items.first).to_be_visible()
    shown: list[str] = [await dialog.inner_text()]
    for i in range(await items.count()):
        await items.nth(i).click()
        await expect(dialog.get_by_test_id("role-name")).to_be_visible()
        shown.append(await dialog.inner_text())
        shown += [await v.input_value() for v in await dialog.locator("input, textarea").all()]
    await dialog.get_by_test_id("role-create").click()
    shown.append(await dialog.inner_text())
    for text in shown:
        assert "null" not in text and "undefined" not in text, text
