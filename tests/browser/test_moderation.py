"""Moderation as the web UI shows it (issue 18, observations 4 and 6): the ban list with unban,
the message a removed member sees, join and leave notices, and unread channels never opened."""

from __future__ import annotations

import re

import nio
import pytest
from playwright.async_api import Page, expect

from tests.harness.api import (
    Api,
    add_channel,
    create_server,
    eventually,
    join_server,
    joined_rooms,
    outcome,
)
from tests.harness.chat_steps import channel, open_as, open_channel
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


async def test_a_kicked_member_is_told_why_at_once(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Loud <Club>")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    await open_as(page, stack, bob)
    await open_channel(page, sid)
    status, answer = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/members/{bob.user_id}/kick", {"reason": "too <i>loud</i>"}
    )
    status, answer = await outcome(stack, alice, status, answer)
    assert status == 204, answer
    notice = page.get_by_test_id("removal-notice")
    await expect(notice.get_by_test_id("removal-notice-text")).to_have_text(
        "You were removed from Loud <Club>: too <i>loud</i>"
    )
    await expect(
        page.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]')
    ).to_have_count(0)
    await notice.get_by_test_id("removal-notice-dismiss").click()
    await expect(notice).to_have_count(0)


async def test_a_ban_tells_the_member_they_were_banned(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Strict")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    await open_as(page, stack, bob)
    await open_channel(page, sid)
    status, answer = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/members/{bob.user_id}/ban", {"reason": "spam"}
    )
    status, answer = await outcome(stack, alice, status, answer)
    assert status == 204, answer
    await expect(page.get_by_test_id("removal-notice-text")).to_have_text(
        "You were banned from Strict: spam"
    )


async def test_join_leave_and_kick_notices_show_in_the_channel(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Notices")
    sid = server["server_id"]
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    carol = await stack.register_user()
    async with stack.nio_client(carol) as client:
        await client.set_displayname("<b>Carol</b>")
    await join_server(stack, sid, carol)
    notices = page.get_by_test_id("member-notice-text")
    await expect(notices.filter(has_text="<b>Carol</b> joined.")).to_have_count(1)
    status, answer = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/members/{carol.user_id}/kick", {"reason": "bye"}
    )
    status, answer = await outcome(stack, alice, status, answer)
    assert status == 204, answer
    await expect(notices.filter(has_text="<b>Carol</b> was kicked: bye")).to_have_count(1)
    # Names are text: nothing from the network became markup.
    assert await page.locator("[data-testid=member-notice] b").count() == 0

    # A member who leaves the server on their own leaves its channels: "left.", not "kicked".
    dave = await stack.register_user()
    async with stack.nio_client(dave) as client:
        await client.set_displayname("Dave")
    await join_server(stack, sid, dave)
    await expect(notices.filter(has_text="Dave joined.")).to_have_count(1)
    status, answer = await Api(stack, dave).call("POST", f"/servers/{sid}/leave")
    assert status == 204, answer
    await expect(notices.filter(has_text="Dave left.")).to_have_count(1)
    await expect(notices.filter(has_text="Dave was kicked")).to_have_count(0)


async def test_a_channel_never_opened_shows_unread_and_mentions(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    """Members are in every channel they may enter, so a channel bob never opened still
    counts what is posted there: bold when unread, a badge for a mention."""
    server = await create_server(stack, alice, "Busy")
    sid = server["server_id"]
    news = await add_channel(stack, alice, sid, "news")
    async with stack.nio_client(alice) as client:
        assert isinstance(await client.join(news), nio.JoinResponse)
    await join_server(stack, sid, bob)

    async def in_news() -> bool:
        return news in await joined_rooms(stack, bob)

    await eventually(in_news, deadline_s=30, what="bob joined to #news by Guilds")
    await open_as(page, stack, bob)
    await open_channel(page, sid)
    news_item = channel(page, "news")
    await expect(news_item).not_to_have_class(re.compile(r"\bunread\b"))
    async with stack.nio_client(alice) as client:
        sent = await client.room_send(news, "m.room.message", {"msgtype": "m.text", "body": "hi"})
        assert isinstance(sent, nio.RoomSendResponse), sent
    await expect(news_item).to_have_class(re.compile(r"\bunread\b"))
    async with stack.nio_client(alice) as client:
        sent = await client.room_send(
            news,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": f"{bob.user_id} look",
                "m.mentions": {"user_ids": [bob.user_id]},
            },
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
    await expect(news_item.get_by_test_id("channel-badge")).to_have_text("1")
