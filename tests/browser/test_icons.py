"""Icons are SVG, never emoji or symbol characters (issue #18, observation 8).

This machine's Chromium has no emoji font (the tests' Debian image installs none), as many
systems do: a control drawn with an emoji character shows an empty box there. The test walks the
main views and reads the text of every control and header; emoji may appear only in what people
wrote (messages, reactions) and in the reaction picker's choices.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.harness.api import Api, create_server, join_server
from tests.harness.chat_steps import message_with, open_as, open_channel, send
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

# Read in the page: the text of the controls and headers of what is shown now, the emoji or
# symbol characters found in them, and the size of every icon drawn.
SURVEY_JS = r"""
() => {
  const glyph = /[\p{Extended_Pictographic}\u2190-\u2bff\u00d7]/u;
  const controls = document.querySelectorAll(
    'button, [role="button"], [role="menuitem"], [role="tab"], header, h1, h2, h3, label, ' +
    '.channel-icon, .content-icon, .channel-hero, .owner-mark, .default-mark, .file-icon, ' +
    '.call-muted, .system-notice-icon, .kind-glyph'
  );
  const found = [];
  for (const el of controls) {
    const written =
      '[data-testid="message-body"], [data-testid="reaction"], [data-testid="emoji-picker"]';
    if (el.closest(written)) continue;
    if (!el.getClientRects().length) continue;
    const text = el.textContent ?? "";
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

    seen: set[str] = set()
    await open_as(page, stack, alice)
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

    # A voice channel: the call panel with its controls and tiles.
    await page.get_by_test_id("channel").filter(has_text="lounge").click()
    await expect(page.get_by_test_id("call-tiles")).to_be_visible(timeout=30_000)
    await survey(page, "a voice call", seen)
    await page.get_by_test_id("call-leave").click()

    await page.get_by_test_id("rail-home").click()
    await survey(page, "Home", seen)

    for name in ("hash", "volume-2", "video", "lock", "star", "crown", "users", "log-out", "x"):
        assert name in seen, f"the {name} icon was not drawn in any view: {sorted(seen)}"
