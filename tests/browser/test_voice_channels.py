"""Voice channels in Chromium with fake media: everyone hears everyone, measured from the page.

Chromium's fake microphone beeps; each page checks, for every other participant, that the
`<audio>` element of their tile plays (not paused, data to play, time advancing) and that the
audio it receives from them is being played out: the inbound-rtp `totalAudioEnergy` in
`getStats()` grows. Bytes received alone are not hearing (TESTING.md): a first joiner once got
audio whose element never played. The first joiner is checked hearing the later ones.

Who is in a channel: a browser that dies without leaving (a crashed tab) is gone from the others'
sidebar within seconds, by its own delayed leave (MSC4140) that the homeserver sends; a device is
in one channel at a time, even when a second channel is clicked before the first call is set up,
or when a second tab of the same session joins elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from urllib.parse import quote

import nio
import pytest
from playwright.async_api import Browser, BrowserContext, Error, Locator, Page, Route, expect

from tests.harness.api import create_server, join_server
from tests.harness.call_steps import (
    LIVE_MS,
    TEST_TIMING,
    add_channel,
    all_hear,
    call_members,
    hears,
    joined,
    member_key,
    new_call_page,
    open_in_server,
)
from tests.harness.chat_steps import channel, new_page
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

# How long a browser closed without leaving may stay listed: its delayed leave goes out 10 s
# after its last push-back (docs/CALLS.md), plus room for a loaded machine's sync.
GHOST_BOUND_S = 20.0
# A membership refreshed every 1.5 s rather than TEST_TIMING's 4 s: a call left behind shows
# itself by refreshing within a few periods, and the test waits three of them, twice.
QUICK_REFRESH = {**TEST_TIMING, "refreshMs": 1_500}


async def test_in_a_voice_channel_everyone_hears_everyone_the_first_joiner_too(
    browser: Browser, stack: Stack
) -> None:
    # The first joiner sorts between the others: it answers the second (who places that call)
    # and places the call to the third, so both roles are heard from the first joiner's seat.
    first = await stack.register_user(f"m_first_{secrets.token_hex(3)}")
    second = await stack.register_user(f"a_second_{secrets.token_hex(3)}")
    third = await stack.register_user(f"z_third_{secrets.token_hex(3)}")
    server = await create_server(stack, first, "Voices")
    sid = server["server_id"]
    await add_channel(stack, first, sid, "lounge", "voice")
    for user in (second, third):
        await join_server(stack, sid, user)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (first, second, third):
            page = await new_call_page(browser, contexts, problems)
            pages.append(page)
            await open_in_server(page, stack, user, sid)

        # The first joiner is alone for a while, then the second comes: they hear each other.
        await channel(pages[0], "lounge").click()
        await joined(pages[0])
        await channel(pages[1], "lounge").click()
        await joined(pages[1])
        await all_hear((pages[0], "first", {second.user_id}), (pages[1], "second", {first.user_id}))

        # The third comes: all three hear both others.
        await channel(pages[2], "lounge").click()
        await joined(pages[2])
        users = [first, second, third]
        await all_hear(
            *(
                (page, name, {u.user_id for u in users} - {user.user_id})
                for name, page, user in zip(("first", "second", "third"), pages, users, strict=True)
            )
        )
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


def occupants(page: Page, channel_id: str) -> Locator:
    """The people the sidebar lists under a voice channel."""
    return page.locator(
        f'[data-testid="call-participants"][data-channel-id="{channel_id}"] '
        '[data-testid="call-participant"]'
    )


async def test_a_browser_closed_without_leaving_leaves_the_channel_within_seconds(
    browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Ghosts")
    sid = server["server_id"]
    voice_id = await add_channel(stack, alice, sid, "lounge", "voice")
    await join_server(stack, sid, bob)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (alice, bob):
            page = await new_call_page(browser, contexts, problems)
            pages.append(page)
            # Production timing: the bound below is what people see.
            await open_in_server(page, stack, user, sid, timing={})
            await channel(page, "lounge").click()
            await joined(page)
        await hears(pages[0], "alice", {bob.user_id})
        await expect(occupants(pages[0], voice_id)).to_have_count(2, timeout=LIVE_MS)

        # Bob's tab dies without a word (a crash, a killed browser): no leave, no pagehide.
        cdp = await contexts[1].new_cdp_session(pages[1])
        started = time.monotonic()
        # The crash takes the page with it: CDP never answers.
        with contextlib.suppress(Error, TimeoutError):
            await asyncio.wait_for(cdp.send("Page.crash"), 5)
        await contexts[1].close()
        await expect(occupants(pages[0], voice_id)).to_have_count(1, timeout=GHOST_BOUND_S * 1000)
        await expect(pages[0].get_by_test_id("call-tile")).to_have_count(1, timeout=5_000)
        print(
            f"bob left alice's sidebar {time.monotonic() - started:.1f} s after his browser closed"
        )
        # Emptied by bob's own delayed leave, which the homeserver sent for him.
        async with stack.nio_client(alice) as client:
            state = await client.room_get_state(voice_id)
            assert isinstance(state, nio.RoomGetStateResponse), state
        [left] = [e for e in state.events if e["state_key"] == member_key(bob)]
        assert left["content"] == {} and left["sender"] == bob.user_id, left
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


async def test_a_device_is_in_one_channel_at_a_time(
    browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Rooms")
    sid = server["server_id"]
    one = await add_channel(stack, alice, sid, "one", "voice")
    two = await add_channel(stack, alice, sid, "two", "voice")
    await join_server(stack, sid, bob)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    try:
        watcher_context = await browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(watcher_context)
        watcher = await new_page(watcher_context, problems)
        await open_in_server(watcher, stack, alice, sid)
        bob_context = await browser.new_context(viewport={"width": 1280, "height": 800})
        bob_context.set_default_timeout(60_000)
        contexts.append(bob_context)
        first_tab = await new_page(bob_context, problems)
        await open_in_server(first_tab, stack, bob, sid, timing=QUICK_REFRESH)

        # Bob clicks one channel and, before that call is set up, the other. Should his page
        # still have to join the room of "one" first, that join is slow: the later click must
        # win whichever finishes last.
        async def slow_join(route: Route) -> None:
            await asyncio.sleep(2)
            await route.continue_()

        await first_tab.route(
            lambda url: "/join/" in url and quote(one, safe="") in url.replace("!", "%21"),
            slow_join,
        )
        await channel(first_tab, "one").click()
        await channel(first_tab, "two").click()
        await joined(first_tab)
        await expect(first_tab.get_by_test_id("call-title")).to_have_text("Voice · two")
        await expect(occupants(watcher, two)).to_have_count(1, timeout=LIVE_MS)
        await expect(occupants(watcher, one)).to_have_count(0, timeout=LIVE_MS)
        # And it stays so: no call left behind keeps refreshing a membership in "one".
        await asyncio.sleep(3 * QUICK_REFRESH["refreshMs"] / 1000)
        assert not (await call_members(stack, alice, one)).get(member_key(bob))
        await expect(occupants(watcher, one)).to_have_count(0)

        # A second tab of the same session (the same device) joins "one": the first tab's call
        # ends, and bob is listed in "one" only.
        second_tab = await new_page(bob_context, problems)
        await open_in_server(second_tab, stack, bob, sid, timing=QUICK_REFRESH)
        await channel(second_tab, "one").click()
        await joined(second_tab)
        await expect(occupants(watcher, one)).to_have_count(1, timeout=LIVE_MS)
        await expect(occupants(watcher, two)).to_have_count(0, timeout=LIVE_MS)
        await expect(first_tab.get_by_test_id("call-tiles")).to_be_hidden(timeout=LIVE_MS)
        await asyncio.sleep(3 * QUICK_REFRESH["refreshMs"] / 1000)
        members = await call_members(stack, alice, two)
        assert not members.get(member_key(bob)), members
        assert (await call_members(stack, alice, one)).get(member_key(bob))
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []
