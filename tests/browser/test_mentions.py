"""Mentions, mute and presence in the web UI (issue #18, observation 5), two users for real.

Alice mentions Bob by the @ autocomplete (a member, then a role); the message carries
`m.mentions` and a matrix.to pill, which matrix-nio reads and matrix-js-sdk's push processor
highlights; Bob's tab, hidden, shows the mention badge, raises a desktop notification
(permission granted in his browser context) and highlights the message. Muting the channel, then
the server, by push rules stops both, and the homeserver itself stops counting (what other
clients read). A matrix-nio message with `m.mentions` is highlighted in Guilds, and one naming
Bob without listing him is not. Presence dots follow what a matrix-nio client sets.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nio
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, expect

from tests.harness.api import (
    Api,
    add_channel,
    create_server,
    eventually,
    grant,
    join_as,
    join_server,
)
from tests.harness.chat_steps import LIVE_MS, channel, message_with, new_page, open_as, open_channel
from tests.harness.jssdk import run_scenario
from tests.harness.stack import Stack, User, build_stack

pytestmark = pytest.mark.browser

# Records each desktop notification the page makes (the real one is still made), and lets the
# test say the tab is hidden: headless Chromium reports every page visible and focused.
SPY_NOTIFICATIONS = """
(() => {
  window.__notifications = [];
  window.__notificationObjects = [];
  const Real = window.Notification;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: options?.body ?? "" });
      window.__notificationObjects.push(this);
    }
  }
  window.Notification = Recorded;
  window.__hide = () => {
    Object.defineProperty(document, "hidden", { get: () => true, configurable: true });
    document.hasFocus = () => false;
  };
  // Back in view: the page reads the newest messages (read markers), as on a real focus.
  window.__show = () => {
    delete document.hidden;
    delete document.hasFocus;
    window.dispatchEvent(new Event("focus"));
  };
})();
"""

NO_GLYPHS_JS = r"""
(selector) => {
  const glyph = /[\p{Extended_Pictographic}\u2190-\u2bff\u00d7]/u;
  return [...document.querySelectorAll(selector)]
    .flatMap((el) => [el.textContent ?? "", el.getAttribute("aria-label") ?? "", el.title ?? ""])
    .filter((s) => glyph.test(s));
}
"""


async def notifications(page: Page) -> list[dict[str, str]]:
    result: list[dict[str, str]] = await page.evaluate("window.__notifications")
    return result


async def nio_event(stack: Stack, user: User, room_id: str, body: str) -> dict[str, Any]:
    """The newest event of the room whose body contains `body`, as matrix-nio reads it."""

    async def find() -> dict[str, Any] | None:
        async with stack.nio_client(user) as client:
            answer = await client.room_messages(room_id, start="", limit=20)
            assert isinstance(answer, nio.RoomMessagesResponse), answer
            for event in answer.chunk:
                if isinstance(event, nio.RoomMessageText) and body in event.body:
                    return dict(event.source)
        return None

    found: dict[str, Any] = await eventually(find, what=f"{body!r} in matrix-nio")
    return found


async def highlight_count(stack: Stack, user: User, room_id: str, body: str) -> int:
    """The homeserver's highlight count for the user in a room, read by matrix-nio from the sync
    that brings the message `body` (so the count includes it). One client syncs on from its first
    sync: Synapse answers a repeated initial sync from a cache for a while."""
    async with stack.nio_client(user) as client:

        async def counted() -> tuple[int] | None:
            answer = await client.sync(timeout=1000, full_state=False)
            assert isinstance(answer, nio.SyncResponse), answer
            room = answer.rooms.join.get(room_id)
            if room is None or not any(
                isinstance(e, nio.RoomMessageText) and body in e.body for e in room.timeline.events
            ):
                return None
            return (int(room.unread_notifications.highlight_count or 0),)

        (count,) = await eventually(counted, what=f"{body!r} in matrix-nio's sync")
        return count


def rail_badge(page: Page, server_id: str) -> Locator:
    return page.locator(
        f'[data-testid="rail-server"][data-server-id="{server_id}"]'
    ).get_by_test_id("server-badge")


async def pick_mention(page: Page, typed: str, value: str) -> None:
    composer = page.get_by_test_id("composer")
    await composer.press_sequentially(typed)
    option = page.locator(f'[data-testid="mention-option"][data-value="{value}"]')
    await expect(option).to_be_visible()
    # Arrow to it, as one would: Enter takes the selected option, not the message.
    for _ in range(10):
        if await option.get_attribute("aria-selected") == "true":
            break
        await composer.press("ArrowDown")
    await composer.press("Enter")
    await expect(page.get_by_test_id("mention-autocomplete")).to_be_hidden()


async def test_mentions_autocomplete_pills_badges_notifications_and_mute(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Mentions")
    sid, general = server["server_id"], server["default_channel_id"]
    random = await add_channel(stack, alice, sid, "random")
    await join_server(stack, sid, bob)
    await join_as(stack, bob, random)
    status, role = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/roles", {"name": "Reviewers", "color": "#e67e22"}
    )
    assert status == 201, role
    await grant(stack, sid, alice, bob, role["role_id"])

    problems: list[str] = []
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800}, permissions=["notifications"]
    )
    try:
        other = await new_page(context, problems)
        await other.add_init_script(SPY_NOTIFICATIONS)
        await open_as(other, stack, bob)
        await open_channel(other, sid, "general")
        await expect(other.get_by_test_id("member")).to_have_count(2, timeout=LIVE_MS)
        bob_name = (await other.get_by_test_id("display-name").inner_text()).strip()
        await other.evaluate("window.__hide()")

        await open_as(page, stack, alice)
        await open_channel(page, sid, "random")
        await expect(page.get_by_test_id("member")).to_have_count(2, timeout=LIVE_MS)

        # @room is offered to those whose power reaches the room's notifications.room: the
        # owner, not a plain member (whose @room the module would refuse anyway).
        await page.get_by_test_id("composer").press_sequentially("@roo")
        await expect(
            page.locator('[data-testid="mention-option"][data-kind="room"]')
        ).to_be_visible()
        await page.get_by_test_id("composer").fill("")
        await other.get_by_test_id("composer").press_sequentially("@")
        await expect(other.get_by_test_id("mention-option").first).to_be_visible()
        await other.get_by_test_id("composer").press_sequentially("roo")
        await expect(
            other.locator('[data-testid="mention-option"][data-kind="room"]')
        ).to_have_count(0)
        await other.get_by_test_id("composer").fill("")

        # A member, picked from the autocomplete by name.
        await pick_mention(page, "hey @" + bob_name[:3].lower(), bob.user_id)
        composer = page.get_by_test_id("composer")
        await expect(composer).to_have_value(f"hey @{bob_name} ")
        glyphs = await page.evaluate(NO_GLYPHS_JS, '[data-testid="channel-mute"], .mention-popup')
        assert glyphs == []
        await composer.press_sequentially("please review")
        await composer.press("Enter")
        sent = message_with(page, "please review")
        await expect(sent.get_by_test_id("mention-pill")).to_have_text(f"@{bob_name}")

        # What another client reads: intentional mentions, and a matrix.to pill.
        first = event = await nio_event(stack, bob, random, "please review")
        content = event["content"]
        assert content["m.mentions"] == {"user_ids": [bob.user_id]}
        assert (
            f'<a href="https://matrix.to/#/{bob.user_id}">@{bob_name}</a>'
            in content["formatted_body"]
        )

        # Bob, in #general with his tab hidden: a badge on #random and on the server, and a
        # desktop notification; the message is highlighted when he opens it.
        await expect(channel(other, "random").get_by_test_id("channel-badge")).to_have_text(
            "1", timeout=LIVE_MS
        )
        await expect(rail_badge(other, sid)).to_have_text("1")
        assert await eventually(lambda: _notified(other, "please review"), what="the notification")
        [note] = await notifications(other)
        assert "#random" in note["title"] and note["body"] == f"hey @{bob_name} please review"
        # Clicking the notification opens the channel of the mention.
        await other.evaluate("window.__show()")
        await other.evaluate("window.__notificationObjects[0].dispatchEvent(new Event('click'))")
        await expect(channel(other, "random")).to_have_attribute("aria-current", "page")
        mention = message_with(other, "please review")
        await expect(mention).to_have_class(re.compile(r"\bmentioned\b"))
        pill = mention.get_by_test_id("mention-pill")
        await expect(pill).to_have_attribute("data-user-id", bob.user_id)
        await expect(pill).to_have_class(re.compile(r"\bme\b"))

        # A role: its holders are in m.mentions, and Guilds draws the role's pill.
        await pick_mention(page, "@rev", role["role_id"])
        await composer.press_sequentially("meeting at noon")
        await composer.press("Enter")
        event = await nio_event(stack, bob, random, "meeting at noon")
        assert event["content"]["m.mentions"] == {"user_ids": [bob.user_id]}
        assert event["content"]["chat.guilds.role_mentions"] == [role["role_id"]]
        # matrix-js-sdk's push processor (Element's) highlights both for Bob, from m.mentions.
        actions = await run_scenario(
            "mention_actions",
            stack,
            bob,
            room_id=random,
            event_ids=[first["event_id"], event["event_id"]],
        )
        assert actions.result == {
            first["event_id"]: {"notify": True, "highlight": True},
            event["event_id"]: {"notify": True, "highlight": True},
        }
        role_message = message_with(other, "meeting at noon")
        await expect(role_message).to_have_class(re.compile(r"\bmentioned\b"))
        await expect(role_message.get_by_test_id("mention-pill")).to_have_attribute(
            "data-role-id", role["role_id"]
        )

        # Bob mutes #random: Element's push rule, so the homeserver counts nothing there.
        mute = other.get_by_test_id("channel-mute")
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "true", timeout=LIVE_MS)
        await expect(channel(other, "random").get_by_test_id("channel-muted")).to_be_visible()
        await channel(other, "general").click()
        await other.evaluate("window.__hide()")
        await send_mention(page, bob.user_id, "muted ping", "random")
        # A mention in #general after it: once that one has arrived, the muted one had too.
        await send_mention(page, bob.user_id, "open ping", "general")
        assert await eventually(
            lambda: _notified(other, "open ping"), what="the #general notification"
        )
        assert not [n for n in await notifications(other) if "muted ping" in n["body"]]
        await expect(channel(other, "random").get_by_test_id("channel-badge")).to_have_count(0)
        assert await highlight_count(stack, bob, random, "muted ping") == 0
        # Unmuted, #general counts its mention (read next, so the server's count starts afresh).
        assert await highlight_count(stack, bob, general, "open ping") == 1
        await other.evaluate("window.__show()")

        # The whole server muted from its menu: every channel, and no notification.
        await other.get_by_test_id("server-menu-button").click()
        await other.get_by_test_id("menu-mute-server").click()
        await expect(channel(other, "general").get_by_test_id("channel-muted")).to_be_visible(
            timeout=LIVE_MS
        )
        await other.evaluate("window.__hide()")
        before = len(await notifications(other))
        await send_mention(page, bob.user_id, "server muted ping", "general")
        await expect(message_with(other, "server muted ping")).to_have_count(1, timeout=LIVE_MS)
        assert len(await notifications(other)) == before
        await expect(rail_badge(other, sid)).to_have_count(0)
        assert await highlight_count(stack, bob, general, "server muted ping") == 0

        # A channel made after the server was muted is muted too, once Bob's client sees it.
        later = await add_channel(stack, alice, sid, "later")
        await join_as(stack, bob, later)
        await expect(channel(other, "later").get_by_test_id("channel-muted")).to_be_visible(
            timeout=LIVE_MS
        )
        # Unmuted from the same menu: every channel again, the push rules gone.
        await other.get_by_test_id("server-menu-button").click()
        await other.get_by_test_id("menu-unmute-server").click()
        await expect(other.get_by_test_id("channel-muted")).to_have_count(0, timeout=LIVE_MS)
        assert problems == []
    finally:
        await context.close()


async def _notified(page: Page, text: str) -> bool:
    return any(text in n["body"] for n in await notifications(page))


async def send_mention(page: Page, user_id: str, text: str, channel_name: str) -> None:
    """Alice mentions the user by the autocomplete in a channel and waits for the echo to land."""
    await channel(page, channel_name).click()
    await pick_mention(page, "@" + user_id[1:4], user_id)
    composer = page.get_by_test_id("composer")
    await composer.press_sequentially(text)
    await composer.press("Enter")
    await expect(message_with(page, text)).not_to_have_class(re.compile(r"\bpending\b"))


async def test_matrix_nio_mentions_are_highlighted_and_presence_dots_follow(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Interop")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    me = (await page.get_by_test_id("display-name").inner_text()).strip()

    async with stack.nio_client(bob) as client:
        for content in (
            # Listed in m.mentions: a mention, though the body does not name her.
            {
                "msgtype": "m.text",
                "body": "look at this",
                "m.mentions": {"user_ids": [alice.user_id]},
            },
            # Named in the body but not listed: the sender did not mean it, no mention.
            {"msgtype": "m.text", "body": f"{me} wrote that", "m.mentions": {}},
        ):
            answer = await client.room_send(general, "m.room.message", content)
            assert isinstance(answer, nio.RoomSendResponse), answer
    await expect(message_with(page, "look at this")).to_have_class(
        re.compile(r"\bmentioned\b"), timeout=LIVE_MS
    )
    await expect(message_with(page, f"{me} wrote that")).to_have_count(1)
    await expect(message_with(page, f"{me} wrote that")).not_to_have_class(
        re.compile(r"\bmentioned\b")
    )

    # Presence: Alice syncs as online; Bob's dot follows what his matrix-nio client sets.
    await expect(page.get_by_test_id("member-list")).to_have_attribute("data-presence", "on")
    mine = page.locator(f'[data-testid="member"][data-user-id="{alice.user_id}"]')
    await expect(mine.get_by_test_id("presence-dot")).to_have_attribute(
        "data-presence", "online", timeout=LIVE_MS
    )
    bobs = page.locator(f'[data-testid="member"][data-user-id="{bob.user_id}"]').get_by_test_id(
        "presence-dot"
    )
    for state in ("online", "unavailable", "offline"):
        await set_presence(stack, bob, state)
        await expect(bobs).to_have_attribute("data-presence", state, timeout=LIVE_MS)
    glyphs = await page.evaluate(NO_GLYPHS_JS, '[data-testid="presence-dot"]')
    assert glyphs == []


async def set_presence(stack: Stack, user: User, state: str) -> None:
    """Set presence with matrix-nio, waiting out the homeserver's presence rate limit."""

    async def done() -> bool:
        async with stack.nio_client(user) as client:
            answer = await client.set_presence(state)
            return isinstance(answer, nio.PresenceSetResponse)

    assert await eventually(done, deadline_s=30, interval_s=1, what=f"presence {state}")


@pytest_asyncio.fixture(scope="module")
async def presence_off(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A stack whose homeserver has presence disabled (Synapse `presence.enabled: false`)."""
    s = build_stack(
        "sqlite",
        tmp_path_factory.mktemp("presence-off"),
        homeserver_extra={"presence": {"enabled": False}},
    )
    try:
        s.http = aiohttp.ClientSession()
        s.start_guilds()
        yield s
    finally:
        await s.close()


async def test_no_presence_dots_when_the_homeserver_has_presence_disabled(
    page: Page, presence_off: Stack
) -> None:
    alice = await presence_off.register_user()
    bob = await presence_off.register_user()
    server = await create_server(presence_off, alice, "Quiet")
    await join_server(presence_off, server["server_id"], bob)
    await set_presence(presence_off, bob, "online")
    await open_as(page, presence_off, alice)
    await open_channel(page, server["server_id"])
    await expect(page.get_by_test_id("member")).to_have_count(2, timeout=LIVE_MS)
    await expect(page.get_by_test_id("member-list")).to_have_attribute(
        "data-presence", "off", timeout=LIVE_MS
    )
    # Not everyone drawn offline: no dot at all, as the homeserver keeps no presence.
    await expect(page.get_by_test_id("presence-dot")).to_have_count(0)
