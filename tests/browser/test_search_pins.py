"""Search and pinned messages (issue 18): the homeserver's `/search` from the channel header, in
one channel or the whole server, results opening their message; pins in `m.room.pinned_events`,
live between users, held to manage_messages by the homeserver, and shared with matrix-nio."""

from __future__ import annotations

import re
import secrets

import nio
import pytest
from playwright.async_api import Browser, Page, expect

from tests.harness.api import add_channel, create_server, join_server
from tests.harness.chat_steps import (
    LIVE_MS,
    message_with,
    new_page,
    open_as,
    open_channel,
    send,
)
from tests.harness.jssdk import run_scenario
from tests.harness.search_steps import (
    click_message_action,
    in_room,
    message_action,
    nio_pins,
    nio_send,
    nio_set_pins,
    open_pins,
    result_with,
    search,
)
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

LINKED = re.compile(r"\blinked\b")
# What waits on a write and the sync that brings it back, on a loaded machine.
SLOW_MS = LIVE_MS * 3


async def test_search_in_a_channel_and_the_server_finds_another_users_messages_and_opens_them(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    word = f"zebra{secrets.token_hex(3)}"
    server = await create_server(stack, alice, f"Search {word}")
    sid, general = server["server_id"], server["default_channel_id"]
    second = await add_channel(stack, alice, sid, f"second-{word[-4:]}")
    await join_server(stack, sid, bob)
    for room in (general, second):
        await in_room(stack, bob, room)
    # The first of bob's in #general lies beyond the history a channel opens with: opening it
    # from a result pages back to it.
    await nio_send(stack, bob, general, f"the oldest {word} in general")
    await nio_send(stack, bob, general, *(f"filler {i}" for i in range(45)))
    xss = f'<img src=x onerror="window.__xss=1"> {word} markup'
    await nio_send(stack, bob, general, xss)
    await nio_send(stack, bob, second, f"over in second {word}")

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect(message_with(page, "filler 44")).to_be_visible()
    await expect(message_with(page, f"the oldest {word}")).to_have_count(0)

    # This channel: bob's two messages there, newest first, not the one in #second.
    results = await search(page, word, "channel")
    await expect(results).to_have_count(2, timeout=SLOW_MS)
    await expect(page.get_by_test_id("search-status")).to_have_text("2 results")
    await expect(results.nth(0).get_by_test_id("search-result-text")).to_have_text(xss)
    await expect(results.nth(1).get_by_test_id("search-result-text")).to_contain_text("oldest")
    for i in range(2):
        await expect(results.nth(i).get_by_test_id("search-result-author")).to_have_text(
            bob.localpart
        )
        await expect(results.nth(i).get_by_test_id("search-result-channel")).to_have_text(
            "#general"
        )
    # The word is marked, and bob's markup is text: no element made of it, no script run.
    await expect(results.nth(0).get_by_test_id("search-hit")).to_have_text(word)
    await expect(page.get_by_test_id("search-panel").locator("img")).to_have_count(0)

    # The whole server: #second's message too.
    results = await search(page, word, "server")
    await expect(results).to_have_count(3, timeout=SLOW_MS)
    hit = result_with(page, f"over in second {word}")
    await expect(hit.get_by_test_id("search-result-channel")).to_have_text(f"#second-{word[-4:]}")

    # A result opens its channel at the message, marked, and the address names it.
    await hit.get_by_test_id("search-result-open").click()
    await expect(page.get_by_test_id("channel-title")).to_have_text(f"second-{word[-4:]}")
    opened = message_with(page, f"over in second {word}")
    await expect(opened).to_have_class(LINKED, timeout=SLOW_MS)
    await expect(page).to_have_url(re.compile(r"/message/"))

    # One older than #general's loaded history: its channel opens, paged back to it.
    await result_with(page, f"the oldest {word}").get_by_test_id("search-result-open").click()
    await expect(page.get_by_test_id("channel-title")).to_have_text("general")
    oldest = message_with(page, f"the oldest {word} in general")
    await expect(oldest).to_have_class(LINKED, timeout=SLOW_MS)
    await expect(oldest).to_be_in_viewport()

    # Nothing matching says so.
    results = await search(page, f"nothing{secrets.token_hex(4)}", "server")
    await expect(page.get_by_test_id("search-status")).to_contain_text("No messages match")
    await expect(results).to_have_count(0, timeout=SLOW_MS)
    assert await page.evaluate("() => window.__xss") is None


async def test_pins_show_live_to_others_and_only_moderators_may_pin(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"Pins {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await in_room(stack, bob, general)

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    for text in (f"first pin {tag}", f"second pin {tag}"):
        await send(page, text)
        await expect(message_with(page, text)).not_to_have_class(re.compile(r"\bpending\b"))

    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, stack, bob)
        await open_channel(other, sid)
        await expect(message_with(other, f"second pin {tag}")).to_have_count(1)
        # Bob's panel is open before anything is pinned: what follows arrives in it live.
        pins = await open_pins(other)
        await expect(other.get_by_test_id("pins-status")).to_contain_text("no pinned messages")

        first = message_with(page, f"first pin {tag}")
        await click_message_action(first, "action-pin")
        await expect(pins).to_have_count(1, timeout=LIVE_MS)
        await expect(pins.nth(0).get_by_test_id("pin-text")).to_have_text(f"first pin {tag}")
        await expect(pins.nth(0).get_by_test_id("pin-author")).to_have_text(alice.localpart)

        second = message_with(page, f"second pin {tag}")
        await click_message_action(second, "action-pin")
        # Newest pin first.
        await expect(pins).to_have_count(2, timeout=LIVE_MS)
        await expect(pins.get_by_test_id("pin-text")).to_have_text(
            [f"second pin {tag}", f"first pin {tag}"]
        )

        # Unpinned from the message's menu (it now offers Unpin): gone from bob's panel.
        await click_message_action(first, "action-unpin")
        await expect(pins).to_have_count(1, timeout=LIVE_MS)
        await expect(pins.get_by_test_id("pin-text")).to_have_text([f"second pin {tag}"])
        await expect(await message_action(first, "action-pin")).to_have_count(1)

        # Bob holds no manage_messages: no pin action, no unpin in the panel...
        theirs = message_with(other, f"first pin {tag}")
        await expect(await message_action(theirs, "action-pin")).to_have_count(0)
        await expect(await message_action(theirs, "action-unpin")).to_have_count(0)
        await expect(other.get_by_test_id("pin-unpin")).to_have_count(0)
        # ...and the homeserver refuses his raw write, whatever the client.
        event_id = await theirs.get_attribute("data-event-id")
        assert event_id
        refused = await nio_set_pins(stack, bob, general, [event_id])
        assert isinstance(refused, nio.ErrorResponse), refused
        assert refused.status_code == "M_FORBIDDEN", refused
        assert await nio_pins(stack, alice, general) == [
            await second.get_attribute("data-event-id")
        ]

        # A pin opens its message.
        await pins.nth(0).get_by_test_id("pin-open").click()
        await expect(other.get_by_test_id("pins-panel")).to_be_hidden()
        opened = message_with(other, f"second pin {tag}")
        await expect(opened).to_have_class(LINKED, timeout=SLOW_MS)

        # Alice unpins the last from the panel.
        await open_pins(page)
        await page.get_by_test_id("pin-unpin").click()
        await expect(page.get_by_test_id("pin")).to_have_count(0, timeout=LIVE_MS)
        await expect(page.get_by_test_id("pins-status")).to_contain_text("no pinned messages")
        assert await nio_pins(stack, alice, general) == []
        assert problems == []
    finally:
        await context.close()


async def test_pins_are_shared_with_another_matrix_client(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"Shared pins {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await in_room(stack, bob, general)
    older, newer = await nio_send(stack, bob, general, f"older {tag}", f"newer {tag}")

    # Pinned from matrix-nio (as Element writes it): shown in Guilds.
    assert not isinstance(await nio_set_pins(stack, alice, general, [older]), nio.ErrorResponse)
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect(message_with(page, f"newer {tag}")).to_have_count(1)
    pins = await open_pins(page)
    await expect(pins).to_have_count(1, timeout=SLOW_MS)
    await expect(pins.get_by_test_id("pin-text")).to_have_text([f"older {tag}"], timeout=SLOW_MS)
    await expect(pins.get_by_test_id("pin-author")).to_have_text([bob.localpart])

    # Pinned in Guilds: matrix-nio reads it, the newest pin last, the other client's kept.
    await page.get_by_test_id("pins-panel-close").click()
    await click_message_action(message_with(page, f"newer {tag}"), "action-pin")
    await expect(page.get_by_test_id("pins-panel")).to_be_hidden()
    pins = await open_pins(page)
    await expect(pins.get_by_test_id("pin-text")).to_have_text(
        [f"newer {tag}", f"older {tag}"], timeout=SLOW_MS
    )
    assert await nio_pins(stack, bob, general) == [older, newer]

    # Unpinned from matrix-nio: gone from Guilds' open panel.
    assert not isinstance(await nio_set_pins(stack, alice, general, [newer]), nio.ErrorResponse)
    await expect(pins.get_by_test_id("pin-text")).to_have_text([f"newer {tag}"], timeout=LIVE_MS)


async def test_more_results_page_on_with_the_homeservers_next_batch(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    word = f"quokka{secrets.token_hex(3)}"
    server = await create_server(stack, alice, f"Paging {word}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await in_room(stack, bob, general)
    # Synapse answers ten results a page: thirteen need a second one.
    await nio_send(stack, bob, general, *(f"{word} number {i:02d}" for i in range(13)))

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    results = await search(page, word, "channel")
    await expect(results).to_have_count(10, timeout=SLOW_MS)
    await expect(page.get_by_test_id("search-status")).to_have_text("13 results")
    more = page.get_by_test_id("search-more")
    await more.click()
    await expect(results).to_have_count(13, timeout=SLOW_MS)
    await expect(more).to_be_hidden()
    # Newest first across both pages, each message once.
    await expect(results.get_by_test_id("search-result-text")).to_have_text(
        [f"{word} number {i:02d}" for i in reversed(range(13))]
    )


async def test_pins_read_and_written_by_matrix_js_sdk_as_element_does(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"SDK pins {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await in_room(stack, bob, general)
    by_bob, for_sdk = await nio_send(stack, bob, general, f"from bob {tag}", f"for sdk {tag}")

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await click_message_action(message_with(page, f"from bob {tag}"), "action-pin")
    await expect(
        await message_action(message_with(page, f"from bob {tag}"), "action-unpin")
    ).to_have_count(1, timeout=SLOW_MS)
    pins = await open_pins(page)
    await expect(pins).to_have_count(1, timeout=SLOW_MS)

    # The SDK reads Guilds' pin; it offers pinning to the owner and not to a plain member,
    # from the power levels alone, as Element does.
    seen = (await run_scenario("pinned_events", stack, bob, room_id=general)).result
    assert seen == {"pinned": [by_bob], "may_pin": False, "refused": None}, seen
    # A pin from the SDK shows live in Guilds' open panel, newest first...
    made = (await run_scenario("pinned_events", stack, alice, room_id=general, pin=for_sdk)).result
    assert made == {"pinned": [by_bob], "may_pin": True, "refused": None}, made
    await expect(pins.get_by_test_id("pin-text")).to_have_text(
        [f"for sdk {tag}", f"from bob {tag}"], timeout=LIVE_MS
    )
    # ...and the member's own attempt through the SDK is refused by the homeserver.
    tried = (await run_scenario("pinned_events", stack, bob, room_id=general, pin=by_bob)).result
    assert tried["refused"] == "M_FORBIDDEN", tried
    assert await nio_pins(stack, alice, general) == [by_bob, for_sdk]
