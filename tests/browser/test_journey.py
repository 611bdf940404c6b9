"""The whole journey of issue #5, every step through the web UI of the real stack.

A signs up, creates a server, a role, a voice channel and a channel gated by that role, and a
single-use invite; B signs up from the invite link and joins; B sees the right channels, then
the gated one as soon as A gives B the role, and loses the server from the rail when A kicks B.
"""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.async_api import Browser, Page, expect

from tests.harness.auth_steps import sign_up
from tests.harness.chat_steps import LIVE_MS, channel, new_page
from tests.harness.stack import Stack

pytestmark = pytest.mark.browser

# Steps that wait on the bridge (server creation, role changes across channels) get longer.
SLOW_MS = 30_000


async def open_menu_entry(page: Page, entry: str) -> None:
    """Open the server header menu and choose one of its entries."""
    await page.get_by_test_id("server-menu-button").click()
    await page.get_by_test_id(f"menu-{entry}").click()


async def channel_names(page: Page) -> list[str]:
    return [n.strip() for n in await page.get_by_test_id("channel-name").all_inner_texts()]


async def test_sign_up_create_gate_invite_join_grant_and_kick(
    page: Page, browser: Browser, stack: Stack
) -> None:
    # --- A signs up and creates a server. --------------------------------------------------------
    owner_name = f"owner{secrets.token_hex(3)}"
    await page.goto(stack.web_url)
    await sign_up(page, owner_name, secrets.token_urlsafe(12))
    await expect(page.get_by_test_id("create-or-join")).to_be_visible()
    await page.get_by_test_id("add-server").click()
    create = page.get_by_test_id("create-server-dialog")
    server_name = f"Journey {secrets.token_hex(2)}"
    await create.get_by_test_id("server-name").fill(server_name)
    await create.get_by_test_id("dialog-submit").click()
    await expect(create).to_be_hidden(timeout=SLOW_MS)
    await expect(page.get_by_test_id("sidebar").get_by_test_id("server-name")).to_have_text(
        server_name
    )
    rail_server = page.get_by_test_id("rail-server")
    await expect(rail_server).to_have_count(1)
    sid = await rail_server.get_attribute("data-server-id")
    assert sid

    # --- A custom role, made in the roles dialog. -----------------------------------------------
    await open_menu_entry(page, "openRoles")
    roles = page.get_by_test_id("roles-dialog")
    await roles.get_by_test_id("role-create").click()
    await roles.get_by_test_id("role-name").fill("Insiders")
    await roles.get_by_test_id("role-color").fill("#e67e22")
    await roles.get_by_test_id("role-save").click()
    role_item = roles.locator('[data-testid="role-item"]', has_text="Insiders")
    await expect(role_item).to_be_visible()
    role_id = await role_item.get_attribute("data-role")
    assert role_id
    await page.keyboard.press("Escape")
    await expect(roles).to_be_hidden()

    # --- A voice channel, and a text channel gated by the role. ---------------------------------
    await open_menu_entry(page, "openChannelEditor")
    editor = page.get_by_test_id("channel-dialog")
    await editor.get_by_test_id("kind-voice").check()
    await editor.get_by_test_id("channel-name").fill("hangout")
    await editor.get_by_test_id("dialog-submit").click()
    await expect(editor).to_be_hidden()
    await expect(channel(page, "hangout")).to_have_attribute("data-kind", "voice")

    await open_menu_entry(page, "openChannelEditor")
    editor = page.get_by_test_id("channel-dialog")
    await editor.get_by_test_id("kind-text").check()
    await editor.get_by_test_id("channel-name").fill("insiders-only")
    await editor.get_by_test_id("channel-private").check()
    await editor.locator(f'[data-testid="gate-role"][data-role="{role_id}"]').check()
    await editor.get_by_test_id("dialog-submit").click()
    await expect(editor).to_be_hidden()
    await expect(channel(page, "insiders-only")).to_have_count(1)

    # --- An invite for one use. -----------------------------------------------------------------
    await open_menu_entry(page, "openInvitePeople")
    invites = page.get_by_test_id("invite-dialog")
    await expect(invites.get_by_test_id("invite-link")).to_have_value(re.compile("/invite/"))
    default_link = await invites.get_by_test_id("invite-link").input_value()
    await invites.get_by_test_id("invite-max-uses").select_option("1")
    await invites.get_by_test_id("invite-generate").click()
    await expect(invites.get_by_test_id("invite-link")).not_to_have_value(default_link)
    link = await invites.get_by_test_id("invite-link").input_value()
    assert link.startswith(f"{stack.web_url}/invite/")
    await page.keyboard.press("Escape")
    await expect(invites).to_be_hidden()

    # --- B opens the link in another browser, signs up there and joins. -------------------------
    problems: list[str] = []
    joiner = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        guest = await new_page(joiner, problems)
        await guest.goto(link)
        await expect(guest.get_by_test_id("invite-server-name")).to_have_text(server_name)
        await guest.get_by_test_id("invite-accept").click()
        guest_name = f"guest{secrets.token_hex(3)}"
        await sign_up(guest, guest_name, secrets.token_urlsafe(12))
        await expect(guest.get_by_test_id("home-view")).to_be_visible(timeout=SLOW_MS)
        await expect(guest.get_by_test_id("server-name")).to_have_text(server_name, timeout=SLOW_MS)
        guest_id = f"@{guest_name}:{stack.server_name}"

        # B sees general and the voice channel, not the gated one.
        await expect(channel(guest, "general")).to_have_count(1)
        await expect(channel(guest, "hangout")).to_have_count(1)
        await expect(channel(guest, "hangout")).to_have_attribute("data-kind", "voice")
        await expect(channel(guest, "insiders-only")).to_have_count(0)
        assert "insiders-only" not in await channel_names(guest)
        await expect(guest.get_by_test_id("composer")).to_be_enabled()

        # A third visitor finds the single-use link used up.
        late_context = await browser.new_context()
        try:
            late = await new_page(late_context, problems)
            await late.goto(link)
            await expect(late.get_by_test_id("invite-problem")).to_have_attribute(
                "data-kind", "exhausted"
            )
        finally:
            await late_context.close()

        # --- A gives B the role in the members dialog; B sees the gated channel, no reload. -----
        await open_menu_entry(page, "openMembers")
        members = page.get_by_test_id("members-dialog")
        guest_row = members.locator(f'[data-testid="member-row"][data-user-id="{guest_id}"]')
        await expect(guest_row).to_have_count(1, timeout=LIVE_MS)
        await guest_row.get_by_test_id("member-roles").click()
        await guest_row.locator(f'[data-testid="role-toggle"][data-role="{role_id}"]').check()
        await expect(
            guest_row.get_by_test_id("member-role-chips").locator(
                f'[data-testid="role-chip"][data-role="{role_id}"]'
            )
        ).to_be_visible(timeout=SLOW_MS)
        await expect(channel(guest, "insiders-only")).to_have_count(1, timeout=SLOW_MS)
        await channel(guest, "insiders-only").click()
        await expect(guest.get_by_test_id("channel-title")).to_have_text("insiders-only")
        await expect(guest.get_by_test_id("composer")).to_be_enabled(timeout=SLOW_MS)

        # --- A kicks B (confirmed); the server leaves B's rail live. ----------------------------
        await guest_row.get_by_test_id("member-kick").click()
        kick = page.get_by_test_id("kick-dialog")
        await expect(kick).to_be_visible()
        await kick.get_by_test_id("confirm-ok").click()
        await expect(kick).to_be_hidden()
        await expect(guest_row).to_have_count(0)
        await expect(
            guest.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]')
        ).to_have_count(0, timeout=SLOW_MS)
        await expect(guest.get_by_test_id("create-or-join")).to_be_visible()
        await expect(channel(guest, "general")).to_have_count(0)
        assert problems == []
    finally:
        await joiner.close()
