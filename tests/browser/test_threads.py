"""Threads (issue 18: "threads (`m.thread`: open, read, reply, thread list) — readable in other
clients the same way"): a thread started from a message's menu, replied to and read by two
people live, listed, kept over a reload; a thread reply from matrix-nio shown in Guilds' panel,
and a Guilds thread reply read by matrix-js-sdk's own thread support as a reply in its thread."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any
from urllib.parse import quote

import nio
import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.harness.api import Api, create_server, eventually, join_server
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
from tests.harness.jssdk import run_scenario
from tests.harness.search_steps import click_message_action, result_with, search
from tests.harness.stack import Stack, User
from tests.harness.thread_steps import panel, reply_in_thread, thread_action, thread_message

pytestmark = pytest.mark.browser


async def thread_receipts(stack: Stack, user: User, room_id: str) -> list[dict[str, Any]]:
    """The room's read receipts as `user`'s /sync hands them out: {event_id, user_id, thread_id}."""
    assert stack.http is not None
    # Synapse answers the same /sync request from a cache for a while: each poll is made unique.
    nonce = f"guilds.test.nonce.{secrets.token_hex(4)}"
    sync_filter = {
        "room": {
            "rooms": [room_id],
            "timeline": {"limit": 0, "not_types": [nonce]},
            "state": {"types": []},
            "ephemeral": {"types": ["m.receipt"]},
        },
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    }
    async with stack.http.get(
        f"{stack.hs_url}/_matrix/client/v3/sync",
        params={"filter": json.dumps(sync_filter), "timeout": "0"},
        headers={"Authorization": f"Bearer {user.access_token}"},
    ) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
    found = []
    ephemeral = answer.get("rooms", {}).get("join", {}).get(room_id, {}).get("ephemeral", {})
    for event in ephemeral.get("events", []):
        for event_id, kinds in event.get("content", {}).items():
            for user_id, receipt in kinds.get("m.read", {}).items():
                thread_id = receipt.get("thread_id")
                found.append({"event_id": event_id, "user_id": user_id, "thread_id": thread_id})
    return found


async def test_a_thread_is_started_replied_to_and_read_by_two_people_listed_and_kept(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"Threads {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, stack, bob)
        await open_channel(other, sid)

        root_text = f"plans for saturday {tag}"
        await send(page, root_text)
        root = message_with(page, root_text)
        await expect(root).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
        root_id = await root.get_attribute("data-event-id")
        assert root_id and root_id.startswith("$")

        # Alice starts a thread from the message's menu: the panel opens on the root.
        start = await thread_action(root)
        await expect(start).to_have_attribute("aria-label", "Create thread")
        await click_message_action(root, "action-thread")
        await expect(panel(page)).to_be_visible()
        await expect(panel(page).get_by_test_id("thread-root")).to_contain_text(root_text)
        first_id = await reply_in_thread(page, f"first reply {tag}")
        # In the thread, not in the channel: the root says how many replies it has.
        await expect(message_with(page, f"first reply {tag}")).to_have_count(0)
        await expect(root.get_by_test_id("thread-summary-count")).to_have_text("1 reply")

        # Bob sees the count appear under the root live, and the reply nowhere in the channel.
        their_root = message_with(other, root_text)
        await timed(
            "thread summary seen by the other user",
            lambda: expect(their_root.get_by_test_id("thread-summary-count")).to_have_text(
                "1 reply", timeout=LIVE_MS
            ),
        )
        await expect(their_root.get_by_test_id("thread-summary-latest")).to_contain_text(
            f"first reply {tag}"
        )
        await expect(message_with(other, f"first reply {tag}")).to_have_count(0)
        # Unread for him (the homeserver's count for that thread), though the channel is open.
        await expect(their_root.get_by_test_id("thread-summary")).to_have_attribute(
            "data-unread", "true", timeout=LIVE_MS
        )

        # He opens the thread from the summary, reads the reply and answers.
        await their_root.get_by_test_id("thread-summary").click()
        await expect(thread_message(other, f"first reply {tag}")).to_have_count(1)
        await expect(panel(other).get_by_test_id("thread-root")).to_contain_text(root_text)
        second_id = await reply_in_thread(other, f"second reply {tag}")
        await timed(
            "thread reply seen in the other user's open panel",
            lambda: expect(thread_message(page, f"second reply {tag}")).to_have_count(
                1, timeout=LIVE_MS
            ),
        )
        await expect(root.get_by_test_id("thread-summary-count")).to_have_text(
            "2 replies", timeout=LIVE_MS
        )

        # Bob's reading was recorded as a receipt in the thread (thread_id), for every client.
        async def bob_read_in_thread() -> bool:
            receipts = await thread_receipts(stack, alice, general)
            return any(
                r["user_id"] == bob.user_id
                and r["thread_id"] == root_id
                and r["event_id"] in {first_id, second_id}
                for r in receipts
            )

        if not await eventually(bob_read_in_thread):
            receipts = await thread_receipts(stack, alice, general)
            mine = [r for r in receipts if r["user_id"] == bob.user_id]
            raise AssertionError(f"no receipt by bob in thread {root_id}: {mine}")

        # The channel's thread list: the thread, its count and its latest reply; one opens it.
        await panel(other).get_by_test_id("thread-close").click()
        await expect(panel(other)).to_have_count(0)
        await expect(their_root.get_by_test_id("thread-summary")).to_have_attribute(
            "data-unread", "false"
        )
        await other.get_by_test_id("threads-button").click()
        item = other.get_by_test_id("thread-list-item").filter(has_text=root_text)
        await expect(item).to_have_count(1)
        await expect(item.get_by_test_id("thread-list-count")).to_have_text("2 replies")
        await expect(item.get_by_test_id("thread-list-latest")).to_contain_text(
            f"second reply {tag}"
        )
        await item.click()
        await expect(thread_message(other, f"first reply {tag}")).to_have_count(1)
        await panel(other).get_by_test_id("thread-back").click()
        await expect(other.get_by_test_id("thread-list-item")).to_have_count(1)
        assert problems == []

        # After a reload the thread is still there: the server's count under the root, and
        # every reply, in order, when it is opened again.
        await page.reload()
        await expect(page.get_by_test_id("home-view")).to_be_visible()
        root = message_with(page, root_text)
        await expect(root.get_by_test_id("thread-summary-count")).to_have_text("2 replies")
        await expect(message_with(page, f"second reply {tag}")).to_have_count(0)
        await root.get_by_test_id("thread-summary").click()
        replies = panel(page).get_by_test_id("thread-replies").get_by_test_id("thread-message")
        await expect(replies).to_have_count(2)
        await expect(replies.nth(0)).to_contain_text(f"first reply {tag}")
        await expect(replies.nth(1)).to_contain_text(f"second reply {tag}")
    finally:
        await context.close()


async def test_threads_read_the_same_in_matrix_nio_and_matrix_js_sdk(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    sid, general = await open_server_with(page, stack, alice, bob, f"Thread interop {tag}")

    # Bob's client is matrix-nio: a root and a thread reply in the spec's raw shape.
    async with stack.nio_client(bob) as client:
        sent = await client.room_send(
            general, "m.room.message", {"msgtype": "m.text", "body": f"nio root {tag}"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
        root_id = sent.event_id
        sent = await client.room_send(
            general,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": f"nio thread reply {tag}",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root_id,
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": root_id},
                },
            },
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
        nio_reply_id = sent.event_id

    # Guilds shows it in the thread, not in the channel.
    root = message_with(page, f"nio root {tag}")
    await expect(root.get_by_test_id("thread-summary-count")).to_have_text(
        "1 reply", timeout=LIVE_MS
    )
    await expect(message_with(page, f"nio thread reply {tag}")).to_have_count(0)
    action = await thread_action(root)
    await expect(action).to_have_attribute("aria-label", "Open thread")
    await click_message_action(root, "action-thread")
    await expect(thread_message(page, f"nio thread reply {tag}")).to_have_count(1)
    guilds_reply_id = await reply_in_thread(page, f"guilds thread reply {tag}")

    # matrix-nio reads Guilds' reply as the spec writes it: in the thread, with the reply
    # fallback to the thread's latest event for clients that do not show threads.
    async with stack.nio_client(bob) as client:
        got = await client.room_get_event(general, guilds_reply_id)
        assert isinstance(got, nio.RoomGetEventResponse), got
        relation = got.event.source["content"]["m.relates_to"]
    assert relation == {
        "rel_type": "m.thread",
        "event_id": root_id,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": nio_reply_id},
    }

    # matrix-js-sdk's thread support puts both replies in the thread of the right root, and
    # neither in the room's main timeline.
    answer = await run_scenario("thread", stack, bob, room_id=general, root_id=root_id, replies=2)
    thread = answer.result
    assert thread["thread_id"] == root_id
    assert thread["root_is_thread_root"] is True
    by_id = {reply["event_id"]: reply for reply in thread["replies"]}
    assert set(by_id) == {nio_reply_id, guilds_reply_id}, thread
    assert by_id[guilds_reply_id]["body"] == f"guilds thread reply {tag}"
    assert by_id[guilds_reply_id]["sender"] == alice.user_id
    for reply in thread["replies"]:
        assert reply["thread_root_id"] == root_id, reply
        assert reply["in_main_timeline"] is False, reply


async def open_channel_read_only(page: Page, sid: str) -> None:
    """Open the server's default channel where the composer is disabled (no send_messages)."""
    await page.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]').click()
    composer = page.get_by_test_id("composer")
    await expect(composer).to_be_disabled(timeout=LIVE_MS)


async def test_a_member_who_may_not_send_reads_threads_but_cannot_reply_in_them(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"Quiet threads {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    async with stack.nio_client(alice) as client:
        sent = await client.room_send(
            general, "m.room.message", {"msgtype": "m.text", "body": f"announcement {tag}"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
        root_id = sent.event_id
        sent = await client.room_send(
            general,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": f"details in the thread {tag}",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root_id,
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": root_id},
                },
            },
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
        sent = await client.room_send(
            general, "m.room.message", {"msgtype": "m.text", "body": f"no thread here {tag}"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
    status, _ = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/roles/member", {"permissions": ["connect", "video"]}
    )
    assert status == 200

    await open_as(page, stack, bob)
    await open_channel_read_only(page, sid)
    # He reads the thread; its composer says why he cannot answer.
    root = message_with(page, f"announcement {tag}")
    action = await thread_action(root)
    await expect(action).to_have_attribute("aria-label", "Open thread")
    await click_message_action(root, "action-thread")
    await expect(thread_message(page, f"details in the thread {tag}")).to_have_count(1)
    composer = panel(page).get_by_test_id("thread-composer")
    await expect(composer).to_be_disabled()
    await expect(composer).to_have_attribute("placeholder", re.compile("permission"))
    # On a phone the panel covers the channel, and closing it brings the channel back.
    await page.set_viewport_size({"width": 390, "height": 844})
    box = await panel(page).bounding_box()
    assert box is not None and box["x"] <= 1 and box["width"] >= 380, box
    await panel(page).get_by_test_id("thread-close").click()
    await expect(panel(page)).to_have_count(0)
    await expect(message_with(page, f"announcement {tag}")).to_be_visible()
    await page.set_viewport_size({"width": 1280, "height": 800})
    # No thread can be started from a message by someone who may not send.
    plain = message_with(page, f"no thread here {tag}")
    await plain.hover()
    await expect(plain.get_by_test_id("action-reply")).to_have_count(0)
    await expect(plain.get_by_test_id("action-thread")).to_have_count(0)

    # The homeserver refuses his thread reply from any client: a thread reply is a message.
    async with stack.nio_client(bob) as client:
        refused = await client.room_send(
            general,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "sneaking in",
                "m.relates_to": {"rel_type": "m.thread", "event_id": root_id},
            },
        )
    assert isinstance(refused, nio.RoomSendError), refused
    assert refused.status_code == "M_FORBIDDEN", refused


async def test_the_thread_composer_mentions_as_the_channels_does_and_others_read_it(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"Thread mentions {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect(page.get_by_test_id("member")).to_have_count(2, timeout=LIVE_MS)
    await send(page, f"thread root {tag}")
    root = message_with(page, f"thread root {tag}")
    await expect(root).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    await click_message_action(root, "action-thread")

    # The @ autocomplete of the thread's composer offers the channel's members and @room; Enter
    # takes the selected member, it does not send.
    composer = panel(page).get_by_test_id("thread-composer")
    localpart = bob.user_id[1:].split(":")[0]
    await composer.press_sequentially(f"ask @{localpart[:4]}")
    option = panel(page).locator(f'[data-testid="mention-option"][data-value="{bob.user_id}"]')
    await expect(option).to_be_visible()
    for _ in range(10):
        if await option.get_attribute("aria-selected") == "true":
            break
        await composer.press("ArrowDown")
    await composer.press("Enter")
    await expect(panel(page).get_by_test_id("mention-autocomplete")).to_be_hidden()
    replies = panel(page).get_by_test_id("thread-replies").get_by_test_id("thread-message")
    await expect(replies).to_have_count(0)
    picked = await composer.input_value()
    assert picked.startswith("ask @") and picked.endswith(" "), picked
    bob_name = picked[len("ask @") : -1]
    await composer.press_sequentially("about the venue")
    await composer.press("Enter")
    sent = thread_message(page, "about the venue")
    await expect(sent).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    pill = sent.get_by_test_id("mention-pill")
    await expect(pill).to_have_text(f"@{bob_name}")
    await expect(pill).to_have_attribute("data-user-id", bob.user_id)
    reply_id = await sent.get_attribute("data-event-id")
    assert reply_id and reply_id.startswith("$")

    # Another client reads a thread reply with intentional mentions and a matrix.to pill, and no
    # mention of the fallback's sender (the fallback is no reply to them).
    async with stack.nio_client(bob) as client:
        got = await client.room_get_event(general, reply_id)
        assert isinstance(got, nio.RoomGetEventResponse), got
        content = got.event.source["content"]
    assert content["m.mentions"] == {"user_ids": [bob.user_id]}
    assert (
        f'<a href="https://matrix.to/#/{bob.user_id}">@{bob_name}</a>' in content["formatted_body"]
    )
    assert content["m.relates_to"]["rel_type"] == "m.thread"
    assert content["m.relates_to"]["event_id"] == await root.get_attribute("data-event-id")
    # matrix-js-sdk's push processor (Element's) highlights it for Bob.
    actions = await run_scenario(
        "mention_actions", stack, bob, room_id=general, event_ids=[reply_id]
    )
    assert actions.result == {reply_id: {"notify": True, "highlight": True}}

    # Bob's thread reply mentioning Alice is highlighted in her thread panel, as in the channel;
    # her own reply is not.
    async with stack.nio_client(bob) as client:
        mention = await client.room_send(
            general,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": f"{alice.localpart}: the venue is booked",
                "m.mentions": {"user_ids": [alice.user_id]},
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": content["m.relates_to"]["event_id"],
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": reply_id},
                },
            },
        )
        assert isinstance(mention, nio.RoomSendResponse), mention
    mentioning = thread_message(page, "the venue is booked")
    await expect(mentioning).to_have_class(re.compile(r"\bmentioned\b"), timeout=LIVE_MS)
    await expect(sent).not_to_have_class(re.compile(r"\bmentioned\b"))


async def test_a_reply_the_sync_brings_before_its_send_answers_is_shown_once(
    page: Page, stack: Stack, alice: User
) -> None:
    """The homeserver's answer to the reply's PUT is held until the sync has brought the reply
    (seen under load in a full run): the panel shows it once, sent, not beside its local echo."""
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"Thread echo {tag}")
    await open_as(page, stack, alice)
    await open_channel(page, server["server_id"])
    await send(page, f"echo root {tag}")
    root = message_with(page, f"echo root {tag}")
    await expect(root).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    await click_message_action(root, "action-thread")

    synced, answered = asyncio.Event(), asyncio.Event()
    held: list[Route] = []

    async def hold_answer(route: Route) -> None:
        held.append(route)
        response = await route.fetch()
        await synced.wait()
        await route.fulfill(response=response)
        answered.set()

    await page.route(re.compile(r"/send/m\.room\.message/"), hold_answer)
    composer = panel(page).get_by_test_id("thread-composer")
    await composer.fill(f"early echo {tag}")
    await composer.press("Enter")
    replies = panel(page).get_by_test_id("thread-replies").get_by_test_id("thread-message")
    reply = thread_message(page, f"early echo {tag}")
    # The sync's copy carries an event id; the send's answer is still held.
    await expect(reply.and_(page.locator('[data-event-id^="$"]'))).to_have_count(1, timeout=LIVE_MS)
    assert len(held) == 1
    await expect(replies).to_have_count(1)
    await expect(reply).not_to_have_class(re.compile(r"\bpending\b"))
    synced.set()
    await asyncio.wait_for(answered.wait(), LIVE_MS / 1000)
    await expect(replies).to_have_count(1)
    await expect(reply).not_to_have_class(re.compile(r"\bpending\b"))


async def test_a_search_result_in_a_thread_opens_its_thread_with_the_reply_marked(
    page: Page, stack: Stack, alice: User
) -> None:
    tag = secrets.token_hex(3)
    word = f"needle{tag}"
    server = await create_server(stack, alice, f"Thread search {tag}")
    sid = server["server_id"]
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await send(page, f"root {tag}")
    root = message_with(page, f"root {tag}")
    await expect(root).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    root_id = await root.get_attribute("data-event-id")
    assert root_id and root_id.startswith("$"), root_id
    await click_message_action(root, "action-thread")
    reply_id = await reply_in_thread(page, f"the {word} is in the thread")
    await reply_in_thread(page, f"another reply {tag}")
    await panel(page).get_by_test_id("thread-close").click()
    await expect(panel(page)).to_have_count(0)

    # Found by the homeserver's /search; opening it opens the thread beside the channel, the
    # reply marked there, and the address names both (as a link to it would).
    results = await search(page, word)
    await expect(results).to_have_count(1, timeout=LIVE_MS * 3)
    await result_with(page, word).get_by_test_id("search-result-open").click()
    await expect(panel(page)).to_have_attribute("data-root-id", root_id)
    found = thread_message(page, f"the {word} is in the thread")
    await expect(found).to_have_class(re.compile(r"\blinked\b"))
    await expect(thread_message(page, f"another reply {tag}")).not_to_have_class(
        re.compile(r"\blinked\b")
    )
    await expect(page).to_have_url(
        re.compile(
            re.escape(f"/thread/{quote(root_id, safe='')}/message/{quote(reply_id, safe='')}") + "$"
        )
    )
