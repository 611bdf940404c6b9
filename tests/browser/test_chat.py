"""The chat client against the real stack: live send/edit/delete, history, XSS, other clients."""

from __future__ import annotations

import secrets

import nio
import pytest
from playwright.async_api import Browser, Page, expect

from tests.harness.api import create_server, eventually, join_server
from tests.harness.chat_steps import (
    LIVE_MS,
    message_with,
    new_page,
    open_as,
    open_channel,
    open_server_with,
    send,
    timed,
)
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'


async def test_one_sends_edits_and_deletes_the_other_sees_it_live(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    sid, _general = await open_server_with(page, stack, alice, bob, f"Live {secrets.token_hex(2)}")
    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, stack, bob)
        await open_channel(other, sid)

        text = f"hello **bob** {secrets.token_hex(3)}"
        shown = text.replace("**", "")
        await send(page, text)
        await expect(message_with(page, shown)).to_have_count(1)
        await timed(
            "message seen by the other user",
            lambda: expect(message_with(other, shown)).to_have_count(1, timeout=LIVE_MS),
        )
        await expect(message_with(other, shown).locator("strong")).to_have_text("bob")

        # Edit inline: Enter saves.
        mine = message_with(page, shown)
        await mine.hover()
        await mine.get_by_test_id("action-edit").click()
        editor = page.get_by_test_id("edit-input")
        await editor.fill("edited words")
        await editor.press("Enter")
        await expect(message_with(page, "edited words").get_by_test_id("edited")).to_be_visible()
        await timed(
            "edit seen by the other user",
            lambda: expect(
                message_with(other, "edited words").get_by_test_id("edited")
            ).to_be_visible(timeout=LIVE_MS),
        )
        await expect(message_with(other, shown)).to_have_count(0)

        # Esc cancels an edit.
        edited = message_with(page, "edited words")
        await edited.hover()
        await edited.get_by_test_id("action-edit").click()
        await page.get_by_test_id("edit-input").fill("never saved")
        await page.get_by_test_id("edit-input").press("Escape")
        await expect(page.get_by_test_id("edit-input")).to_have_count(0)
        await expect(message_with(page, "edited words")).to_have_count(1)

        # Delete with a confirmation.
        await edited.hover()
        await edited.get_by_test_id("action-delete").click()
        await page.get_by_test_id("confirm-ok").click()
        await expect(message_with(page, "edited words")).to_have_count(0)
        await timed(
            "deletion seen by the other user",
            lambda: expect(message_with(other, "edited words")).to_have_count(0, timeout=LIVE_MS),
        )
        # Bob may not delete Alice's messages: no delete action on hers.
        await send(page, "alice again")
        theirs = message_with(other, "alice again")
        await expect(theirs).to_have_count(1, timeout=LIVE_MS)
        await theirs.hover()
        await expect(theirs.get_by_test_id("action-delete")).to_have_count(0)
        await expect(theirs.get_by_test_id("action-edit")).to_have_count(0)
        assert problems == []
    finally:
        await context.close()


async def test_history_loads_more_when_scrolled_to_the_top(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "History")
    sid, general = server["server_id"], server["default_channel_id"]
    async with stack.nio_client(alice) as client:
        for i in range(120):
            answer = await client.room_send(
                general, "m.room.message", {"msgtype": "m.text", "body": f"history {i:03d}"}
            )
            assert isinstance(answer, nio.RoomSendResponse), answer

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect(message_with(page, "history 119")).to_be_visible()
    await expect(message_with(page, "history 000")).to_have_count(0)
    timeline = page.get_by_test_id("timeline")
    start = page.get_by_test_id("timeline-start")
    # Scroll to the top until the channel's start shows: the room's creation lies one page
    # beyond its first message.
    for _ in range(20):
        if await start.is_visible():
            break
        await timeline.evaluate("(el) => { el.scrollTop = 0; }")
        await page.wait_for_timeout(200)  # lets the scroll event fire; the loop has its own bound
    await expect(message_with(page, "history 000")).to_have_count(1)
    await expect(start).to_be_visible()
    bodies = await page.get_by_test_id("message-body").all_inner_texts()
    history = [b for b in bodies if b.startswith("history ")]
    assert history == [f"history {i:03d}" for i in range(120)], "lost, duplicated or out of order"


async def test_messages_from_another_client_render_and_nothing_runs(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, XSS)
    sid, general = server["server_id"], server["default_channel_id"]
    async with stack.nio_client(bob) as client:
        # Named before joining, so every member event of his carries the name at once (a later
        # rename reaches the rooms through a background task of Synapse's, slow under load).
        await client.set_displayname(XSS)
        await join_server(stack, sid, bob)
        await open_as(page, stack, alice)
        await open_channel(page, sid)
        for content in (
            {"msgtype": "m.text", "body": "plain from nio"},
            {
                "msgtype": "m.text",
                "body": "formatted from nio",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b>formatted</b> <i>from</i> <code>nio</code>"
                + XSS
                + '<script>window.__xss=2</script><a href="javascript:alert(1)">bad link</a>',
            },
            {"msgtype": "m.text", "body": XSS},
        ):
            answer = await client.room_send(general, "m.room.message", content)
            assert isinstance(answer, nio.RoomSendResponse), answer
        encrypted = await client.room_send(
            general,
            "m.room.encrypted",
            {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "session_id": "s"},
        )
        assert isinstance(encrypted, nio.RoomSendResponse), encrypted

    await expect(message_with(page, "plain from nio")).to_have_count(1, timeout=LIVE_MS)
    formatted = message_with(page, "formatted").get_by_test_id("message-body")
    await expect(formatted.locator("b")).to_have_text("formatted")
    await expect(formatted.locator("i")).to_have_text("from")
    await expect(formatted.locator("code")).to_have_text("nio")
    await expect(formatted.locator("img, script")).to_have_count(0)
    await expect(formatted.get_by_text("bad link")).to_be_visible()
    assert await formatted.locator("a").count() == 0
    await expect(message_with(page, XSS)).to_have_count(1)
    await expect(page.get_by_test_id("message-author").get_by_text(XSS).first).to_be_visible()
    await expect(page.get_by_text("end-to-end encrypted")).to_be_visible()
    await expect(page.get_by_test_id("server-name")).to_have_text(XSS)
    assert await page.evaluate("window.__xss") is None
    await page.screenshot(path=str(stack.root / "chat-xss.png"))


async def test_tables_folds_and_colours_from_another_client_are_drawn(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    _sid, general = await open_server_with(page, stack, alice, bob, f"Rich {secrets.token_hex(2)}")
    async with stack.nio_client(bob) as client:
        # As Element's markdown and colour commands send them (a newline between a table's tags).
        answer = await client.room_send(
            general,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "scores | name | points | alice | 3 | Logs | line one | in red",
                "format": "org.matrix.custom.html",
                "formatted_body": "<p>scores</p>\n<table>\n<thead>\n<tr>\n<th>name</th>\n"
                "<th>points</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>alice</td>\n<td>3</td>\n"
                "</tr>\n</tbody>\n</table>\n"
                "<details><summary>Logs</summary><p>line one</p></details>"
                '<span data-mx-color="#e01b24" data-mx-bg-color="#2ec27e">in red</span> '
                '<span data-mx-color="url(https://evil.example/x)">no colour</span>',
            },
        )
        assert isinstance(answer, nio.RoomSendResponse), answer

    body = message_with(page, "scores").get_by_test_id("message-body")
    table = body.locator("table")
    await expect(table).to_have_count(1, timeout=LIVE_MS)
    await expect(table.locator("thead th")).to_have_text(["name", "points"])
    await expect(table.locator("tbody td")).to_have_text(["alice", "3"])
    details = body.locator("details")
    await expect(details.locator("summary")).to_have_text("Logs")
    await expect(details.locator("p")).to_be_hidden()
    await details.locator("summary").click()
    await expect(details.locator("p")).to_have_text("line one")
    await expect(details.locator("p")).to_be_visible()
    # The spec's colours, applied through the CSSOM: no CSP violation (the page fixture fails on
    # one) and the colours as sent.
    coloured = body.locator("span", has_text="in red")
    colours = await coloured.evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
    )
    assert colours == ["rgb(224, 27, 36)", "rgb(46, 194, 126)"], colours
    plain = body.locator("span", has_text="no colour")
    assert await plain.get_attribute("style") is None


async def test_spoilers_stay_hidden_until_clicked_from_and_to_other_clients(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    sid, general = await open_server_with(
        page, stack, alice, bob, f"Spoilers {secrets.token_hex(2)}"
    )
    async with stack.nio_client(bob) as client:
        # As Element sends one: the spec's span, its reason in the attribute.
        answer = await client.room_send(
            general,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "the end: Bruce is a ghost",
                "format": "org.matrix.custom.html",
                "formatted_body": 'the end: <span data-mx-spoiler="film">Bruce is a ghost</span>',
            },
        )
        assert isinstance(answer, nio.RoomSendResponse), answer

        body = message_with(page, "the end:").get_by_test_id("message-body")
        spoiler = body.locator(".spoiler")
        await expect(spoiler).to_have_attribute("data-spoiler", "hidden", timeout=LIVE_MS)
        await expect(spoiler.locator(".spoiler-reason")).to_have_text("(film)")
        content = spoiler.locator(".spoiler-content")
        hidden = await content.evaluate("e => getComputedStyle(e).color")
        assert hidden == "rgba(0, 0, 0, 0)", hidden
        await spoiler.click()
        await expect(spoiler).to_have_attribute("data-spoiler", "shown")
        assert await content.evaluate("e => getComputedStyle(e).color") != hidden
        await expect(content).to_have_text("Bruce is a ghost")

        # Typed the way Discord has it, it reaches another client as the spec's span.
        await send(page, "the twist: ||it was a sled||")
        mine = message_with(page, "the twist:").locator(".spoiler")
        await expect(mine).to_have_attribute("data-spoiler", "hidden")

        async def sent() -> dict[str, object] | None:
            history = await client.room_messages(general, limit=20)
            assert isinstance(history, nio.RoomMessagesResponse), history
            for event in history.chunk:
                if isinstance(event, nio.RoomMessageText) and "the twist" in event.body:
                    return event.source["content"]
            return None

        content_sent = await eventually(sent, what="alice's spoiler in bob's history")
        assert content_sent["formatted_body"] == (
            "the twist: <span data-mx-spoiler>it was a sled</span>"
        )

        # A reply's quote of a spoiler stays a spoiler (its plain body carries the words).
        reply = await client.room_send(
            general,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "no way",
                "m.relates_to": {"m.in_reply_to": {"event_id": answer.event_id}},
            },
        )
        assert isinstance(reply, nio.RoomSendResponse), reply
        quote = message_with(page, "no way").get_by_test_id("reply-preview")
        await expect(quote).to_contain_text("the end: [Spoiler: film]", timeout=LIVE_MS)
        await expect(quote).not_to_contain_text("ghost")
