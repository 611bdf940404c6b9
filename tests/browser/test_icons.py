"""Icons are SVG, never emoji or symbol characters (issue #18, observation 8).

Many systems have no emoji font: a control drawn with an emoji character shows an empty box
there. This module's Chromium is made one of them (a fontconfig that rejects every emoji font,
tests/harness/chromium.py), and the test proves it first: an emoji draws the same pixels as a
character no font has. It then walks the views one after another in one page and reads the text
of every control and header; emoji may appear only in what people wrote (messages, reactions,
their previews in pins, search and threads) and in the reaction picker's choices. The source
itself holds none but those choices (tests/unit_js/no-emoji.test.mjs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Playwright, expect

from tests.harness.api import Api, create_server, join_server
from tests.harness.chat_steps import message_with, open_as, open_channel, send
from tests.harness.chromium import launch_chromium, without_emoji_fonts
from tests.harness.dm_steps import open_dm_from_member
from tests.harness.search_steps import click_message_action, open_pins, result_with, search
from tests.harness.stack import Stack, User
from tests.harness.thread_steps import panel, reply_in_thread, thread_action

pytestmark = pytest.mark.browser

# Emoji of the picker that only an emoji font draws. Not 1F600-1F64F: DejaVu Sans has those
# faces (in black and white), as it has a few dingbats like U+2764.
EMOJI_CODEPOINTS = ("1f389", "1f44d", "1f525", "1f680", "1f4cc")

# Draws an emoji, a code point no font has and a letter on a canvas: with no emoji font the
# emoji falls back to the same missing-glyph box, pixel for pixel; with one it is drawn in colour.
FALLBACK_JS = r"""
() => {
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 64;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const draw = (text) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = "48px sans-serif";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#000";
    ctx.fillText(text, 4, 4);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(",");
  };
  const missing = draw("\u{10FFFD}");
  return {
    emoji: ["\u{1F389}", "\u{1F44D}", "\u{1F680}"].map((e) => draw(e) === missing),
    letter: draw("A") === missing,
  };
}
"""


async def fc_list(env: dict[str, str], pattern: str) -> list[str]:
    """The font families fontconfig answers for `pattern` under `env`."""
    listed = await asyncio.create_subprocess_exec(
        "fc-list", pattern, "family", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await listed.communicate()
    assert listed.returncode == 0, pattern
    return sorted({line for line in out.decode().splitlines() if line})


@pytest_asyncio.fixture
async def browser(playwright: Playwright, tmp_path: Path) -> AsyncIterator[Browser]:
    """This module's own Chromium, with no emoji font (it replaces conftest.py's `browser`)."""
    env = without_emoji_fonts(tmp_path)
    assert await fc_list(env, ":"), "the fontconfig file lost the system's text fonts"
    for codepoint in EMOJI_CODEPOINTS:
        assert await fc_list(env, f":charset={codepoint}") == [], f"U+{codepoint} has a font"
    launched = await launch_chromium(playwright, env=env)
    yield launched
    await launched.close()


# Read in the page: the text of the controls and headers of what is shown now, the emoji or
# symbol characters found in them, and the size of every icon drawn. What people wrote is left
# out wherever it shows: a message, a reaction, the picker's choices, and a message's preview in
# a search result, a pin or the threads list (a header holds the search and pins panels).
SURVEY_JS = r"""
() => {
  const glyph = /[\p{Extended_Pictographic}\u2190-\u2bff\u00d7]/u;
  const written =
    '[data-testid="message-body"], [data-testid="reaction"], [data-testid="emoji-picker"], ' +
    '.summary-body, [data-testid="thread-list-root"], [data-testid="thread-list-latest"], ' +
    '[data-testid="thread-summary-latest"]';
  const ownText = (el) => {
    let text = "";
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.parentElement?.closest(written)) text += n.nodeValue;
    }
    return text;
  };
  const controls = document.querySelectorAll(
    'button, [role="button"], [role="menuitem"], [role="tab"], header, h1, h2, h3, label, ' +
    '.channel-icon, .content-icon, .channel-hero, .owner-mark, .default-mark, .file-icon, ' +
    '.call-muted, .system-notice-icon, .kind-glyph'
  );
  const found = [];
  for (const el of controls) {
    if (el.closest(written)) continue;
    if (!el.getClientRects().length) continue;
    const text = ownText(el);
    const label = el.getAttribute("aria-label") ?? "";
    for (const s of [text, label]) {
      const m = s.match(glyph);
      const testid = el.getAttribute("data-testid");
      if (m) found.push({ testid, tag: el.tagName, char: m[0], text: s.slice(0, 60) });
    }
  }
  const icons = [...document.querySelectorAll("svg.icon")]
    .filter((svg) => svg.getClientRects().length)
    .map((svg) => {
      const r = svg.getBoundingClientRect();
      const hidden = svg.getAttribute("aria-hidden");
      return { name: svg.dataset.icon, width: r.width, height: r.height, hidden };
    });
  return { found, icons };
}
"""


async def survey(page: Page, view: str, seen: set[str]) -> None:
    result: dict[str, Any] = await page.evaluate(SURVEY_JS)
    assert result["found"] == [], f"{view}: emoji or symbol characters in controls"
    assert result["icons"], f"{view}: no icon drawn"
    for drawn in result["icons"]:
        assert drawn["width"] > 0 and drawn["height"] > 0, (view, drawn)
        assert drawn["hidden"] == "true", (view, drawn)
        seen.add(drawn["name"])


async def test_the_main_views_draw_svg_icons_and_no_emoji_controls(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Icon test")
    sid = server["server_id"]
    api = Api(stack, alice)
    for name, kind, extra in (
        ("lounge", "voice", {}),
        ("stage", "video", {}),
        ("staff", "text", {"allowed_roles": ["moderator"]}),
    ):
        status, made = await api.call(
            "POST", f"/servers/{sid}/channels", {"name": name, "kind": kind, **extra}
        )
        assert status == 201, made
    await join_server(stack, sid, bob)
    # Someone banned, so the bans list draws a row and its button.
    carol = await stack.register_user()
    await join_server(stack, sid, carol)
    status, banned = await api.call(
        "POST", f"/servers/{sid}/members/{carol.user_id}/ban", {"reason": "spam"}
    )
    assert status == 204, banned

    seen: set[str] = set()
    await open_as(page, stack, alice)
    # The condition the survey stands on: an emoji here is the box of a missing glyph.
    drawn = await page.evaluate(FALLBACK_JS)
    assert drawn == {"emoji": [True, True, True], "letter": False}, drawn

    await open_channel(page, sid)
    await send(page, "hello 🎉 emoji in a message is fine")
    message = message_with(page, "hello")
    await expect(message).to_have_count(1)
    # The channel list (kinds, the private lock, the default star), header, members, composer.
    await expect(page.get_by_test_id("member")).to_have_count(2)
    # A message redrawn under a still mouse loses :hover until the mouse moves: hover again.
    for _ in range(20):
        await message.hover(position={"x": 200, "y": 10})
        if await message.get_by_test_id("action-edit").is_visible():
            break
        await page.mouse.move(0, 0)
    await expect(message.get_by_test_id("action-edit")).to_be_visible()
    await survey(page, "a channel", seen)

    await page.get_by_test_id("server-menu-button").click()
    await expect(page.get_by_test_id("server-menu")).to_be_visible()
    await survey(page, "the server menu", seen)
    await page.keyboard.press("Escape")

    await page.get_by_test_id("channel-edit").first.click()
    await expect(page.get_by_test_id("channel-dialog")).to_be_visible()
    await survey(page, "the channel editor", seen)
    await page.get_by_test_id("dialog-close").click()

    await page.get_by_test_id("emoji-button").click()
    await survey(page, "the emoji picker open", seen)
    await page.keyboard.press("Escape")

    # The management dialogs of the server menu, each with its rows drawn.
    for entry, dialog, row in (
        ("openMembers", "members-dialog", "member-row"),
        ("openBans", "bans-dialog", "ban-row"),
        ("openRoles", "roles-dialog", "role-item"),
        ("openInvitePeople", "invite-dialog", "invite-link"),
    ):
        await page.get_by_test_id("server-menu-button").click()
        await page.get_by_test_id(f"menu-{entry}").click()
        shown = page.get_by_test_id(dialog)
        await expect(shown.get_by_test_id(row).first).to_be_visible()
        await survey(page, f"the {dialog}", seen)
        await page.keyboard.press("Escape")
        await expect(shown).to_be_hidden()

    # The header's panels: search results, pins (with the message pinned), threads.
    await search(page, "hello")
    await expect(result_with(page, "hello")).to_have_count(1)
    await survey(page, "search results", seen)
    await page.get_by_test_id("search-panel-close").click()
    await click_message_action(message, "action-pin")
    await expect(await open_pins(page)).to_have_count(1)
    await survey(page, "the pins panel", seen)
    await page.get_by_test_id("pins-panel-close").click()
    await (await thread_action(message)).click()
    await expect(panel(page)).to_be_visible()
    await reply_in_thread(page, "a reply 🎉 in a thread")
    await survey(page, "a thread", seen)
    await page.get_by_test_id("threads-button").click()
    await expect(page.get_by_test_id("thread-list-item")).to_have_count(1)
    await survey(page, "the threads list", seen)
    await page.get_by_test_id("thread-list-close").click()

    # A voice channel: the call panel with its controls and tiles.
    await page.get_by_test_id("channel").filter(has_text="lounge").click()
    await expect(page.get_by_test_id("call-tiles")).to_be_visible(timeout=30_000)
    await survey(page, "a voice call", seen)
    await page.get_by_test_id("call-leave").click()

    # A direct conversation: its header with the call buttons.
    await page.get_by_test_id("channel").filter(has_text="general").click()
    await open_dm_from_member(page, bob.user_id)
    header = page.get_by_test_id("dm-header")
    await expect(header.get_by_test_id("dm-call-video")).to_be_visible()
    await expect(header.get_by_test_id("dm-call-voice")).to_be_visible()
    await survey(page, "a direct conversation", seen)

    await page.get_by_test_id("rail-home").click()
    await survey(page, "Home", seen)

    for name in (
        *("hash", "volume-2", "video", "lock", "star", "crown", "users", "log-out", "x"),
        *("search", "pin-off", "messages-square", "phone", "trash"),
    ):
        assert name in seen, f"the {name} icon was not drawn in any view: {sorted(seen)}"
