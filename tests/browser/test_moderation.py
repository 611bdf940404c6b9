"""Moderation as the web UI shows it (issue 18, observations 4 and 6): the ban list with unban,
the message a removed member sees, join and leave notices, and unread channels never opened."""

from __future__ import annotations

import nio
import pytest
from playwright.async_api import Page, expect

from tests.harness.api import Api, create_server, eventually, join_server, outcome
from tests.harness.manage_steps import open_dialog, sign_in_as
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser


async def test_the_ban_list_shows_a_ban_and_unban_lets_them_back(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Banned")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    api = Api(stack, alice)
    status, _ = await api.call(
        "POST", f"/servers/{sid}/members/{bob.user_id}/ban", {"reason": "<b>spam</b>"}
    )
    assert status == 204

    await sign_in_as(page, stack, alice)
    await open_dialog(page, "openBans", sid)
    dialog = page.get_by_test_id("bans-dialog")
    row = dialog.locator(f'[data-testid="ban-row"][data-user-id="{bob.user_id}"]')
    await expect(row.get_by_test_id("ban-user")).to_have_text(bob.user_id)
    # The reason is the moderator's text, shown as text.
    await expect(row.get_by_test_id("ban-reason")).to_have_text("Reason: <b>spam</b>")
    await row.get_by_test_id("ban-lift").click()
    await page.get_by_test_id("unban-dialog").get_by_test_id("confirm-ok").click()
    await expect(row).to_have_count(0)
    await expect(dialog.get_by_test_id("bans-empty")).to_be_visible()
    assert await api.call("GET", f"/servers/{sid}/bans") == (200, {"bans": []})

    # Back in through an invite link, as anyone.
    status, invite = await api.call("POST", f"/servers/{sid}/invites", {})
    status, invite = await outcome(stack, alice, status, invite)
    assert status == 201, invite
    status, redeemed = await Api(stack, bob).call("POST", f"/invites/{invite['code']}/redeem")
    assert status == 200, redeemed
    async with stack.nio_client(bob) as client:
        assert isinstance(await client.join(sid), nio.JoinResponse)

    async def member_again() -> bool:
        return (await Api(stack, bob).call("GET", f"/servers/{sid}"))[0] == 200

    await eventually(member_again, what="bob a member again")


async def test_the_ban_list_is_for_those_who_may_lift_bans(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Closed list")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    await sign_in_as(page, stack, bob)
    await open_dialog(page, "openBans", sid)
    dialog = page.get_by_test_id("bans-dialog")
    await expect(dialog.get_by_test_id("dialog-error")).to_contain_text("ban_members")
    await expect(dialog.get_by_test_id("ban-row")).to_have_count(0)
