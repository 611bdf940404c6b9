"""Deep links (issue 18, observation 7): the address names the server and channel open (and a
thread open beside it, and a message), a reload returns there, Back and Forward move between
channels and threads, and a link to a channel one cannot see says so and opens the server's
default channel."""

from __future__ import annotations

import asyncio
import re
import secrets
from urllib.parse import quote

import pytest
from playwright.async_api import Page, expect

from tests.harness.api import add_channel, create_server, join_server
from tests.harness.chat_steps import (
    LIVE_MS,
    channel,
    hold_first,
    message_with,
    open_as,
    open_channel,
    send,
)
from tests.harness.search_steps import click_message_action
from tests.harness.stack import Stack, User
from tests.harness.thread_steps import panel as thread_panel
from tests.harness.thread_steps import reply_in_thread, thread_message

pytestmark = pytest.mark.browser


def component(text: str) -> str:
    """As JavaScript's encodeURIComponent writes it."""
    return quote(text, safe="!*'()")


def route(sid: str, cid: str) -> str:
    return f"#/server/{component(sid)}/channel/{component(cid)}"


async def expect_open(page: Page, sid: str, cid: str, name: str) -> None:
    await expect(page.get_by_test_id("channel-title")).to_have_text(name)
    await expect(page).to_have_url(re.compile(re.escape(route(sid, cid)) + "$"))


async def test_the_address_follows_channels_survives_a_reload_and_back_and_forward(
    page: Page, stack: Stack, alice: User
) -> None:
    tag = secrets.token_hex(2)
    server = await create_server(stack, alice, f"Links {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    second = await add_channel(stack, alice, sid, f"second-{tag}")
    third = await add_channel(stack, alice, sid, f"third-{tag}")

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect_open(page, sid, general, "general")
    await channel(page, f"second-{tag}").click()
    await expect_open(page, sid, second, f"second-{tag}")
    await send(page, f"in second {tag}")
    await expect(message_with(page, f"in second {tag}")).to_have_count(1)
    await channel(page, f"third-{tag}").click()
    await expect_open(page, sid, third, f"third-{tag}")

    # Back and Forward move between the channels opened, in order.
    await page.go_back()
    await expect_open(page, sid, second, f"second-{tag}")
    await expect(message_with(page, f"in second {tag}")).to_have_count(1)
    await page.go_back()
    await expect_open(page, sid, general, "general")
    await page.go_forward()
    await expect_open(page, sid, second, f"second-{tag}")

    # A reload returns to the channel the address names, not to #general.
    await page.reload()
    await expect(page.get_by_test_id("home-view")).to_be_visible()
    await expect_open(page, sid, second, f"second-{tag}")
    await expect(message_with(page, f"in second {tag}")).to_have_count(1)
    await expect(page.get_by_test_id("route-notice")).to_be_hidden()


async def test_a_link_to_a_message_opens_its_channel_with_the_message_marked(
    page: Page, stack: Stack, alice: User
) -> None:
    tag = secrets.token_hex(2)
    server = await create_server(stack, alice, f"Message link {tag}")
    sid = server["server_id"]
    second = await add_channel(stack, alice, sid, f"second-{tag}")
    await open_as(page, stack, alice)
    await open_channel(page, sid, f"second-{tag}")
    for text in (f"linked {tag}", f"after {tag}"):
        await send(page, text)
    linked = message_with(page, f"linked {tag}")
    await expect(linked).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    event_id = await linked.get_attribute("data-event-id")
    assert event_id and event_id.startswith("$")
    await expect(linked).not_to_have_class(re.compile(r"\blinked\b"))

    # Opened from elsewhere, on #general's server: the message's channel opens, the message marked.
    await channel(page, "general").click()
    link = f"{route(sid, second)}/message/{component(event_id)}"
    await page.goto("about:blank")
    await page.goto(f"{stack.web_url}/{link}")
    await expect(page.get_by_test_id("channel-title")).to_have_text(f"second-{tag}")
    await expect(message_with(page, f"linked {tag}")).to_have_class(re.compile(r"\blinked\b"))
    await expect(message_with(page, f"after {tag}")).not_to_have_class(re.compile(r"\blinked\b"))
    await expect(page).to_have_url(re.compile(re.escape(link) + "$"))

    # Moving on drops the message from the address.
    await channel(page, "general").click()
    await expect(page).to_have_url(
        re.compile(re.escape(route(sid, server["default_channel_id"])) + "$")
    )


async def test_a_link_opens_its_channel_and_one_to_a_hidden_channel_says_so(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(2)
    server = await create_server(stack, alice, f"Hidden {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    lounge = await add_channel(stack, alice, sid, f"lounge-{tag}")
    staff = await add_channel(stack, alice, sid, f"staff-{tag}", allowed_roles=["moderator"])

    await open_as(page, stack, bob)
    # A link followed from elsewhere (a fresh page load) opens that channel directly.
    await page.goto("about:blank")
    await page.goto(f"{stack.web_url}/{route(sid, lounge)}")
    await expect_open(page, sid, lounge, f"lounge-{tag}")
    await expect(page.get_by_test_id("route-notice")).to_be_hidden()

    # A channel bob may not see: said plainly, and the server's default channel opens instead.
    await page.goto("about:blank")
    await page.goto(f"{stack.web_url}/{route(sid, staff)}")
    notice = page.get_by_test_id("route-notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("cannot see")
    await expect(notice).to_contain_text("#general")
    await expect_open(page, sid, general, "general")
    await expect(channel(page, f"staff-{tag}")).to_have_count(0)

    # The next channel bob opens himself ends the notice.
    await channel(page, f"lounge-{tag}").click()
    await expect_open(page, sid, lounge, f"lounge-{tag}")
    await expect(notice).to_be_hidden()

    # A server bob is not a member of: said too, and his own server opens.
    elsewhere = await create_server(stack, alice, f"Not bob's {tag}")
    await page.goto("about:blank")
    await page.goto(
        f"{stack.web_url}/{route(elsewhere['server_id'], elsewhere['default_channel_id'])}"
    )
    await expect(notice).to_contain_text("not a member")
    await expect(page.get_by_test_id("server-name")).to_have_text(f"Hidden {tag}")
    await expect(page).not_to_have_url(re.compile(re.escape(component(elsewhere["server_id"]))))


async def test_a_thread_and_a_message_in_it_are_in_the_address_reload_and_back_and_forward(
    page: Page, stack: Stack, alice: User
) -> None:
    tag = secrets.token_hex(2)
    server = await create_server(stack, alice, f"Thread links {tag}")
    sid, general = server["server_id"], server["default_channel_id"]
    second = await add_channel(stack, alice, sid, f"second-{tag}")
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect_open(page, sid, general, "general")
    await send(page, f"root {tag}")
    root = message_with(page, f"root {tag}")
    await expect(root).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    root_id = await root.get_attribute("data-event-id")
    assert root_id and root_id.startswith("$")
    thread_route = f"{route(sid, general)}/thread/{component(root_id)}"

    # Opening the thread names it in the address; its replies keep the address.
    await click_message_action(root, "action-thread")
    await expect(thread_panel(page)).to_be_visible()
    await expect(page).to_have_url(re.compile(re.escape(thread_route) + "$"))
    first = await reply_in_thread(page, f"first in thread {tag}")
    await reply_in_thread(page, f"second in thread {tag}")
    await expect(page).to_have_url(re.compile(re.escape(thread_route) + "$"))

    # Closing it is a move: Back opens the thread again, Forward closes it.
    await thread_panel(page).get_by_test_id("thread-close").click()
    await expect(thread_panel(page)).to_have_count(0)
    await expect(page).to_have_url(re.compile(re.escape(route(sid, general)) + "$"))
    await page.go_back()
    await expect(thread_panel(page)).to_have_attribute("data-root-id", root_id)
    await expect(page).to_have_url(re.compile(re.escape(thread_route) + "$"))
    await page.go_forward()
    await expect(thread_panel(page)).to_have_count(0)
    await expect_open(page, sid, general, "general")
    await page.go_back()
    await expect(thread_panel(page)).to_have_attribute("data-root-id", root_id)

    # A reload opens the channel with the thread beside it, every reply loaded.
    await page.reload()
    await expect(page.get_by_test_id("home-view")).to_be_visible()
    await expect(page.get_by_test_id("channel-title")).to_have_text("general")
    await expect(thread_panel(page).get_by_test_id("thread-root")).to_contain_text(f"root {tag}")
    await expect(thread_message(page, f"first in thread {tag}")).to_have_count(1)
    await expect(thread_message(page, f"second in thread {tag}")).to_have_count(1)
    await expect(page).to_have_url(re.compile(re.escape(thread_route) + "$"))

    # Another channel drops the thread from the address; Back brings both back.
    await channel(page, f"second-{tag}").click()
    await expect_open(page, sid, second, f"second-{tag}")
    await expect(thread_panel(page)).to_have_count(0)
    await page.go_back()
    await expect(page.get_by_test_id("channel-title")).to_have_text("general")
    await expect(thread_panel(page)).to_have_attribute("data-root-id", root_id)

    # A link to a message in the thread, followed from elsewhere: the channel, the thread, and
    # that reply marked.
    link = f"{thread_route}/message/{component(first)}"
    await page.goto("about:blank")
    await page.goto(f"{stack.web_url}/{link}")
    await expect(page.get_by_test_id("channel-title")).to_have_text("general")
    await expect(thread_message(page, f"first in thread {tag}")).to_have_class(
        re.compile(r"\blinked\b")
    )
    await expect(thread_message(page, f"second in thread {tag}")).not_to_have_class(
        re.compile(r"\blinked\b")
    )
    await expect(page).to_have_url(re.compile(re.escape(link) + "$"))
    await expect(page.get_by_test_id("route-notice")).to_be_hidden()


async def test_home_chosen_while_the_servers_load_is_not_replaced_by_the_first_server(
    page: Page, stack: Stack, alice: User
) -> None:
    # The first load opens the first server, unless the person already chose: a click on Home
    # before the server list came used to be undone by it (a second browser of a DM test
    # found itself in a server, its invitation out of sight).
    server = await create_server(stack, alice, f"First {secrets.token_hex(2)}")
    held = await hold_first(page, "**/_guilds/v1/servers", "GET")
    await open_as(page, stack, alice)
    listing = await asyncio.wait_for(held, timeout=30)
    await page.get_by_test_id("rail-home").click()
    await listing.continue_()
    rail = page.locator(f'[data-testid="rail-server"][data-server-id="{server["server_id"]}"]')
    await expect(rail).to_be_visible()
    await expect(page.get_by_test_id("dm-list")).to_be_visible()
    await expect(page.get_by_test_id("channel-title")).to_have_text("Home")
    await expect(rail).not_to_have_attribute("aria-current", "page")
    await page.unroute("**/_guilds/v1/servers")
    # The rail still opens the server, and Home again after it.
    await rail.click()
    await expect(page.get_by_test_id("channel-title")).to_have_text("general")
    await page.get_by_test_id("rail-home").click()
    await expect(page.get_by_test_id("dm-list")).to_be_visible()
