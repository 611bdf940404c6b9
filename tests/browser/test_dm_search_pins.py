"""Search and pins in a direct conversation (issue 18), as in a channel: the header's search box
asks the homeserver's `/search` for that DM's room only, and a result marks its message; pins are
the DM's own `m.room.pinned_events`, which both people may change (a DM Guilds makes gives them
the same power), live between them and read the same by matrix-js-sdk (Element's way)."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.harness.api import create_server, join_server
from tests.harness.chat_steps import LIVE_MS, message_with, new_page, open_as, open_channel, send
from tests.harness.dm_steps import dm_item, dm_room_shown, open_dm_from_member
from tests.harness.jssdk import run_scenario
from tests.harness.search_steps import (
    click_message_action,
    in_room,
    message_action,
    nio_pins,
    nio_send,
)
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

LINKED = re.compile(r"\blinked\b")
SLOW_MS = LIVE_MS * 3


def dm_header(page: Page) -> Locator:
    """The DM's header: its search box and pins (the channels' own stay in the page, hidden)."""
    return page.get_by_test_id("dm-header")


async def search_here(page: Page, text: str) -> Locator:
    box = dm_header(page).get_by_test_id("search-input")
    await box.fill(text)
    await box.press("Enter")
    await expect(dm_header(page).get_by_test_id("search-panel")).to_be_visible()
    return dm_header(page).get_by_test_id("search-result")


def result_in_dm(page: Page, text: str) -> Locator:
    return (
        dm_header(page)
        .get_by_test_id("search-result")
        .filter(has=page.get_by_test_id("search-result-text").get_by_text(text))
    )


async def open_dm_pins(page: Page) -> Locator:
    panel = dm_header(page).get_by_test_id("pins-panel")
    if not await panel.is_visible():
        await dm_header(page).get_by_test_id("pins-button").click()
    await expect(panel).to_be_visible()
    return panel.get_by_test_id("pin")


async def test_a_dm_is_searched_alone_and_both_people_pin_in_it(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(3)
    server = await create_server(stack, alice, f"DM tools {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await in_room(stack, bob, general)
    # The same words in a channel both are in: a DM's search must not find them.
    await nio_send(stack, bob, general, f"walnut in the channel {tag}")

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    room_id = await open_dm_from_member(page, bob.user_id)
    await send(page, f"walnut cake recipe {tag}")
    mine = message_with(page, f"walnut cake recipe {tag}")
    await expect(mine).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    mine_id = await mine.get_attribute("data-event-id")

    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, stack, bob)
        await other.get_by_test_id("rail-home").click()
        await expect(dm_item(other, alice.user_id)).to_be_visible(timeout=LIVE_MS)
        await other.get_by_test_id("dm-list").get_by_test_id("dm-accept").click()
        assert await dm_room_shown(other, alice.user_id) == room_id
        await send(other, f"walnut or pecan {tag}")
        theirs = message_with(page, f"walnut or pecan {tag}")
        await expect(theirs).to_have_count(1, timeout=LIVE_MS)
        # Older than what the DM shows at first: a result may have to page back to it.
        await nio_send(stack, bob, room_id, *(f"filler {n} {tag}" for n in range(45)))
        await expect(message_with(page, f"filler 44 {tag}")).to_have_count(1, timeout=SLOW_MS)

        # Search, in the DM's header: this conversation only, no scope to choose.
        await expect(dm_header(page).get_by_test_id("search-input")).to_be_visible()
        await expect(dm_header(page).get_by_test_id("search-scope")).to_be_hidden()
        results = await search_here(page, f"walnut {tag}")
        await expect(results).to_have_count(2, timeout=SLOW_MS)
        await expect(dm_header(page).get_by_test_id("search-status")).to_have_text("2 results")
        await expect(result_in_dm(page, f"walnut in the channel {tag}")).to_have_count(0)
        # A result opens its message in the DM, marked.
        results = await search_here(page, f"pecan {tag}")
        await expect(results).to_have_count(1, timeout=SLOW_MS)
        found = result_in_dm(page, f"walnut or pecan {tag}")
        await found.get_by_test_id("search-result-open").click()
        await expect(message_with(page, f"walnut or pecan {tag}")).to_have_class(
            LINKED, timeout=SLOW_MS
        )

        # Pins: Bob, the one invited, may pin as well as Alice; each sees the other's live.
        alice_pins = await open_dm_pins(page)
        await expect(dm_header(page).get_by_test_id("pins-status")).to_contain_text(
            "no pinned messages"
        )
        await click_message_action(message_with(other, f"walnut cake recipe {tag}"), "action-pin")
        await expect(alice_pins.get_by_test_id("pin-text")).to_have_text(
            [f"walnut cake recipe {tag}"], timeout=LIVE_MS
        )
        bob_pins = await open_dm_pins(other)
        await expect(bob_pins).to_have_count(1, timeout=LIVE_MS)
        await click_message_action(message_with(page, f"walnut or pecan {tag}"), "action-pin")
        await expect(bob_pins.get_by_test_id("pin-text")).to_have_text(
            [f"walnut or pecan {tag}", f"walnut cake recipe {tag}"], timeout=LIVE_MS
        )
        pecan_id = await message_with(page, f"walnut or pecan {tag}").get_attribute("data-event-id")
        assert await nio_pins(stack, alice, room_id) == [mine_id, pecan_id]
        # Another client reads those pins. (matrix-js-sdk 37.5 predates room version 12, where
        # both people of a DM are its creators: its own may_pin says no to them, so it is not
        # asserted; the homeserver's acceptance of both people's pins above is the rule.)
        for user in (alice, bob):
            seen = (await run_scenario("pinned_events", stack, user, room_id=room_id)).result
            assert seen["pinned"] == [mine_id, pecan_id], seen
        # Alice unpins from her panel: gone from Bob's, and his menu offers Pin again.
        alice_pins = await open_dm_pins(page)
        await (
            alice_pins.filter(has_text=f"walnut cake recipe {tag}")
            .get_by_test_id("pin-unpin")
            .click()
        )
        await expect(bob_pins.get_by_test_id("pin-text")).to_have_text(
            [f"walnut or pecan {tag}"], timeout=LIVE_MS
        )
        await dm_header(other).get_by_test_id("pins-panel-close").click()
        await expect(
            await message_action(message_with(other, f"walnut cake recipe {tag}"), "action-pin")
        ).to_have_count(1, timeout=LIVE_MS)
        # A pin opens its message in the DM, marked.
        pins = await open_dm_pins(other)
        await pins.get_by_test_id("pin-open").click()
        await expect(message_with(other, f"walnut or pecan {tag}")).to_have_class(
            LINKED, timeout=SLOW_MS
        )
        assert problems == []
    finally:
        await context.close()
