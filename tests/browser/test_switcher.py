"""The quick switcher (Ctrl+K / ⌘+K) against the real stack: channels of every server (only
those the user can see), servers and members; arrow keys and Enter jump there or open the DM;
Esc closes."""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import Locator, Page, expect

from tests.harness.api import add_channel, create_server, join_server
from tests.harness.chat_steps import open_as, open_channel
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser


async def open_switcher(page: Page, keys: str = "Control+k") -> None:
    await page.keyboard.press(keys)
    dialog = page.get_by_test_id("switcher")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_have_attribute("role", "dialog")
    await expect(page.get_by_test_id("switcher-input")).to_be_focused()


async def search(page: Page, text: str) -> None:
    await page.get_by_test_id("switcher-input").fill(text)


def options(page: Page) -> Locator:
    return page.get_by_test_id("switcher-option")


async def expect_active(page: Page, index: int) -> None:
    """The option at `index` is the highlighted one, as a screen reader is told."""
    option = options(page).nth(index)
    await expect(option).to_have_attribute("aria-selected", "true")
    option_id = await option.get_attribute("id")
    assert option_id
    await expect(page.get_by_test_id("switcher-input")).to_have_attribute(
        "aria-activedescendant", option_id
    )


async def test_quick_switcher_jumps_to_channels_servers_and_opens_dms(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(2)
    alpha = await create_server(stack, alice, f"Alpha {tag}")
    bravo = await create_server(stack, alice, f"Bravo {tag}")
    a_sid, b_sid = alpha["server_id"], bravo["server_id"]
    plans = await add_channel(stack, alice, b_sid, f"release-plans-{tag}")
    await add_channel(stack, alice, a_sid, f"secret-{tag}", allowed_roles=["moderator"])
    await join_server(stack, a_sid, bob)

    await open_as(page, stack, alice)
    await open_channel(page, a_sid)

    # Ctrl+K opens; typing filters; Enter jumps to a channel of another server.
    await open_switcher(page)
    listbox = page.get_by_test_id("switcher-results")
    await expect(listbox).to_have_attribute("role", "listbox")
    await search(page, "release pl")
    await expect(options(page).first).to_have_attribute("data-id", plans)
    await expect(options(page).first).to_have_attribute("role", "option")
    await expect_active(page, 0)
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("switcher")).to_have_count(0)
    await expect(page.get_by_test_id("channel-title")).to_have_text(f"release-plans-{tag}")
    await expect(
        page.locator(f'[data-testid="rail-server"][data-server-id="{b_sid}"]')
    ).to_have_attribute("aria-current", "page")

    # Arrow keys: both servers have a "general"; the second one is the other server's.
    await open_switcher(page, "Meta+k")
    await search(page, "#general")
    await expect(options(page)).to_have_count(2)
    await expect_active(page, 0)
    await page.keyboard.press("ArrowDown")
    await expect_active(page, 1)
    await page.keyboard.press("ArrowDown")  # wraps around
    await expect_active(page, 0)
    await page.keyboard.press("ArrowUp")
    await expect_active(page, 1)
    second = await options(page).nth(1).get_attribute("data-id")
    assert second in {alpha["default_channel_id"], bravo["default_channel_id"]}
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("chat")).to_have_attribute("data-room-id", str(second))

    # A server by name (⌘+K as on a Mac).
    await open_switcher(page, "Meta+k")
    await search(page, f"alpha {tag}")
    await expect(options(page).first).to_have_attribute("data-kind", "server")
    await page.keyboard.press("Enter")
    await expect(
        page.locator(f'[data-testid="rail-server"][data-server-id="{a_sid}"]')
    ).to_have_attribute("aria-current", "page")

    # A member: Enter opens the DM with them, creating it.
    await open_switcher(page)
    await search(page, bob.user_id.split(":")[0].lstrip("@"))
    first = options(page).first
    await expect(first).to_have_attribute("data-kind", "user")
    await expect(first).to_have_attribute("data-id", bob.user_id)
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("dm-header")).to_have_attribute("data-user-id", bob.user_id)
    await expect(page.get_by_test_id("dm-chat")).to_be_visible()
    await expect(page.get_by_test_id("composer")).to_be_enabled()

    # Nothing matches; Esc closes.
    await open_switcher(page)
    await search(page, "zzqqxx-nothing")
    await expect(page.get_by_test_id("switcher-empty")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("switcher")).to_have_count(0)


async def test_quick_switcher_shows_only_channels_the_user_can_see(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    tag = secrets.token_hex(2)
    server = await create_server(stack, alice, f"Gated {tag}")
    sid = server["server_id"]
    await add_channel(stack, alice, sid, f"staff-only-{tag}", allowed_roles=["moderator"])
    open_one = await add_channel(stack, alice, sid, f"staff-lounge-{tag}")
    await join_server(stack, sid, bob)

    await open_as(page, stack, bob)
    await open_channel(page, sid)
    await open_switcher(page)
    await search(page, f"staff {tag}")
    await expect(options(page)).to_have_count(1)
    await expect(options(page).first).to_have_attribute("data-id", open_one)
    # Alice, the owner, is among the people; Bob himself is not.
    await search(page, "@")
    await expect(options(page).filter(has_text=alice.user_id.split(":")[0][1:])).to_have_count(1)
    await expect(
        page.locator(f'[data-testid="switcher-option"][data-id="{bob.user_id}"]')
    ).to_have_count(0)
    await page.keyboard.press("Escape")


async def test_switcher_ranking(page: Page, stack: Stack, alice: User) -> None:
    """The matching and ranking rules of switcher.js, on the module the client loads."""
    await open_as(page, stack, alice)
    result = await page.evaluate(
        """async () => {
          const s = await import("/static/js/views/switcher.js");
          const score = (q, t) => s.matchScore(q, t);
          const items = [
            { id: "1", kind: "channel", label: "general" },
            { id: "2", kind: "channel", label: "gen" },
            { id: "3", kind: "channel", label: "off-topic-general" },
            { id: "4", kind: "channel", label: "regenerate" },
            { id: "5", kind: "server", label: "Gamers' Nest" },
            { id: "6", kind: "user", label: "Genevieve", keywords: ["@gen:hs"] },
            { id: "7", kind: "channel", label: "café" },
          ];
          const ids = (q) => s.rankItems(items, q).map((i) => i.id);
          return {
            exact: score("gen", "gen"),
            prefix: score("gen", "general"),
            word: score("gen", "off-topic-general"),
            inside: score("gen", "regenerate"),
            fuzzy: score("gnrl", "general"),
            none: score("xyz", "general"),
            gen: ids("gen"),
            channelsOnly: ids("#gen"),
            peopleOnly: ids("@gen"),
            serversOnly: ids("*ga"),
            accents: ids("cafe"),
            empty: ids("").length,
          };
        }"""
    )
    assert (
        result["exact"] > result["prefix"] > result["word"] > result["inside"] > result["fuzzy"] > 0
    )
    assert result["none"] == 0
    # Exact, then prefixes (channel before person on a tie), word start, substring, subsequence.
    assert result["gen"][:5] == ["2", "1", "6", "3", "4"]
    assert result["channelsOnly"] == ["2", "1", "3", "4"]
    assert result["peopleOnly"] == ["6"]
    assert result["serversOnly"] == ["5"]
    assert result["accents"] == ["7"]
    assert result["empty"] == 7
