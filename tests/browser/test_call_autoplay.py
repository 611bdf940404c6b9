"""A voice channel's sound under real autoplay policies, not the tests' `no-user-gesture-required`.

Chromium's own default policy (sound only in a page the person has interacted with) does not
apply to a media element playing a `MediaStream`: measured on Chromium 156, a page nobody ever
touched plays a remote WebRTC track while a WAV file is refused. A voice channel is joined by a
click anyway (the sidebar is the only way in: a reload or a deep link never rejoins a call), so
under the default policy the first joiner hears the second without any further click.

A stricter policy, Chromium's `user-gesture-required`, asks for a gesture at the moment play()
is called. The first joiner's play() comes when the second joiner's sound arrives, seconds after
their own click: it is refused, the panel asks for a click (`call-sound-blocked`), and that click
plays the sound.

Every Playwright action on a page, even a locator's check or an evaluate, runs as a user gesture
(Chromium's `userGesture: true`), which counts as a click for five seconds. So between the first
joiner's click and the refusal, that page is only read through CDP's `Runtime.evaluate`, which
grants nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Playwright, expect

from tests.harness.api import create_server, eventually, join_server
from tests.harness.call_steps import (
    LIVE_MS,
    add_channel,
    all_hear,
    joined,
    new_call_page,
    open_in_server,
)
from tests.harness.chat_steps import channel
from tests.harness.chromium import launch_chromium
from tests.harness.dm_steps import make_dm, open_dm
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

SOUND_BLOCKED_TEXT = "Your browser is holding the call's sound back: click to hear it"
# The same for a 1:1 call, whose other side plays from the panel's remote video element.
DIRECT_SOUND_STATE = """(() => {
  const video = document.querySelector('[data-testid="direct-call-remote-video"]');
  if (!video?.srcObject?.getAudioTracks().length) return null;
  const prompt = document.querySelector(
    '[data-testid="direct-call-panel"] [data-testid="call-sound-blocked"]',
  );
  return { paused: video.paused, prompt: Boolean(prompt && !prompt.hidden) };
})()"""
# The page's own sound of the other participant, once their audio track is on its element:
# whether the element plays and whether the panel asks for a click.
SOUND_STATE = """(() => {
  const audio = document.querySelector(
    '[data-testid="call-tile"]:not(.self) [data-testid="call-audio"]',
  );
  if (!audio?.srcObject?.getAudioTracks().length) return null;
  const prompt = document.querySelector('[data-testid="call-sound-blocked"]');
  return { paused: audio.paused, prompt: Boolean(prompt && !prompt.hidden) };
})()"""


@pytest_asyncio.fixture
async def default_policy(playwright: Playwright) -> AsyncIterator[Browser]:
    """Chromium with its own autoplay policy, as people run it."""
    browser = await launch_chromium(playwright, autoplay_policy=None)
    yield browser
    await browser.close()


@pytest_asyncio.fixture
async def gesture_policy(playwright: Playwright) -> AsyncIterator[Browser]:
    """Chromium that plays sound only when play() is called during a gesture."""
    browser = await launch_chromium(playwright, autoplay_policy="user-gesture-required")
    yield browser
    await browser.close()


async def quietly(context: BrowserContext, page: Page, expression: str) -> Any:
    """The value of `expression` in the page, read without the user gesture Playwright's own
    evaluations carry."""
    cdp = await context.new_cdp_session(page)
    try:
        answer = await cdp.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
    finally:
        await cdp.detach()
    assert "exceptionDetails" not in answer, answer
    return answer["result"].get("value")


async def gesture_expired(context: BrowserContext, page: Page) -> None:
    """Wait until the page's last gesture (a click, or a Playwright step) no longer counts."""

    async def expired() -> bool:
        return await quietly(context, page, "navigator.userActivation.isActive") is False

    await eventually(expired, 15, 0.25, what="the page's user activation to expire")


async def voice_pair(stack: Stack) -> tuple[User, User, str]:
    """Two members of a new server with a voice channel "lounge"; the first sorts first."""
    first = await stack.register_user(f"a_first_{secrets.token_hex(3)}")
    second = await stack.register_user(f"z_second_{secrets.token_hex(3)}")
    server = await create_server(stack, first, "Sound")
    sid = server["server_id"]
    await add_channel(stack, first, sid, "lounge", "voice")
    await join_server(stack, sid, second)
    return first, second, sid


async def test_under_chromiums_own_policy_the_first_joiner_hears_the_second_without_a_click(
    default_policy: Browser, stack: Stack
) -> None:
    first, second, sid = await voice_pair(stack)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    try:
        pages = [await new_call_page(default_policy, contexts, problems) for _ in range(2)]
        for page, user in zip(pages, (first, second), strict=True):
            await open_in_server(page, stack, user, sid)
        await channel(pages[0], "lounge").click()
        await joined(pages[0])
        # The first joiner's click is long past when the second joiner's sound comes.
        await gesture_expired(contexts[0], pages[0])
        await channel(pages[1], "lounge").click()
        await joined(pages[1])
        started = time.monotonic()
        # Measuring is read-only: no pointer or key event reaches the pages, so nothing here
        # could start a refused element.
        await all_hear((pages[0], "first", {second.user_id}), (pages[1], "second", {first.user_id}))
        print(f"both hear each other {time.monotonic() - started:.1f} s after the second joined")
        for page in pages:
            await expect(page.get_by_test_id("call-sound-blocked")).to_be_hidden()
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


async def test_sound_the_browser_holds_back_is_asked_for_and_one_click_plays_it(
    gesture_policy: Browser, browser: Browser, stack: Stack
) -> None:
    first, second, sid = await voice_pair(stack)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    try:
        # Only the first joiner's browser holds sound back; the second's plays it.
        listener = await new_call_page(gesture_policy, contexts, problems)
        other = await new_call_page(browser, contexts, problems)
        await open_in_server(listener, stack, first, sid)
        await open_in_server(other, stack, second, sid)
        await channel(listener, "lounge").click()
        await joined(listener)
        await gesture_expired(contexts[0], listener)
        await channel(other, "lounge").click()
        await joined(other)

        # The second joiner's sound reaches the first, whose browser refuses to play it.
        async def sound_arrived() -> dict[str, bool] | None:
            state: dict[str, bool] | None = await quietly(contexts[0], listener, SOUND_STATE)
            return state

        state = await eventually(
            sound_arrived, LIVE_MS / 1000, 0.25, what="the second joiner's audio on the first's"
        )
        assert state == {"paused": True, "prompt": True}, state

        prompt = listener.get_by_test_id("call-sound-blocked")
        await expect(prompt).to_have_text(SOUND_BLOCKED_TEXT)
        await expect(prompt).to_have_role("button")
        await prompt.click()
        await expect(prompt).to_be_hidden()
        await all_hear((listener, "first", {second.user_id}), (other, "second", {first.user_id}))
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


async def test_a_callers_browser_holding_the_answer_back_asks_and_one_click_plays_it(
    gesture_policy: Browser, browser: Browser, stack: Stack
) -> None:
    """A 1:1 call: the caller's click is long past when the other side answers, so a browser
    that wants a gesture at play() refuses their sound; the call panel asks, as a channel's does."""
    caller, callee = await stack.register_user(), await stack.register_user()
    room_id = await make_dm(stack, caller, callee)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    try:
        calling = await new_call_page(gesture_policy, contexts, problems)
        answering = await new_call_page(browser, contexts, problems)
        await open_dm(calling, stack, caller, callee, room_id)
        await open_dm(answering, stack, callee, caller, room_id)
        await calling.get_by_test_id("dm-header").get_by_test_id("dm-call-voice").click()
        ringing = answering.get_by_test_id("incoming-call")
        await expect(ringing).to_be_visible(timeout=LIVE_MS)
        await gesture_expired(contexts[0], calling)
        await ringing.get_by_test_id("call-accept").click()

        async def sound_arrived() -> dict[str, bool] | None:
            state: dict[str, bool] | None = await quietly(contexts[0], calling, DIRECT_SOUND_STATE)
            return state

        state = await eventually(sound_arrived, LIVE_MS / 1000, 0.25, what="the answer's audio")
        assert state == {"paused": True, "prompt": True}, state

        prompt = calling.get_by_test_id("direct-call-panel").get_by_test_id("call-sound-blocked")
        await expect(prompt).to_have_text(SOUND_BLOCKED_TEXT)
        await prompt.click()
        await expect(prompt).to_be_hidden()
        playing = await quietly(contexts[0], calling, DIRECT_SOUND_STATE)
        assert playing == {"paused": False, "prompt": False}, playing
        await calling.get_by_test_id("direct-call-hangup").click()
        await expect(answering.get_by_test_id("direct-call-panel")).to_have_attribute(
            "data-state", "ended", timeout=LIVE_MS
        )
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []
