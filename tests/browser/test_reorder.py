"""Reordering the sidebar (issue 18): drag a channel within and across categories, drag a
category, move with Alt+Arrow keys; a second member sees it live, a reload keeps it, another
Matrix client (matrix-nio) reads the same order from `m.space.child`; a member without
manage_channels cannot drag, and a move the bridge refuses is undone with its reason."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import nio
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.harness.api import Api, create_server, grant, join_server
from tests.harness.chat_steps import LIVE_MS, hold_first, new_page, open_as, open_channel
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

SPACE_CHILD = "m.space.child"


def button(page: Page, channel_id: str) -> Locator:
    return page.locator(f'[data-testid="channel"][data-channel-id="{channel_id}"]')


def row(page: Page, channel_id: str) -> Locator:
    return page.locator(".channel-row").filter(has=button(page, channel_id))


def section(page: Page, category_id: str) -> Locator:
    return page.locator(f'section.category[data-category-id="{category_id}"]')


async def expect_channels(page: Page, category_id: str, ids: list[str]) -> None:
    names = section(page, category_id).get_by_test_id("channel")
    await expect(names).to_have_count(len(ids), timeout=LIVE_MS)
    for i, channel_id in enumerate(ids):
        await expect(names.nth(i)).to_have_attribute("data-channel-id", channel_id, timeout=LIVE_MS)


async def expect_categories(page: Page, ids: list[str]) -> None:
    sections = page.locator("section.category[data-category-id]:not([data-category-id=''])")
    await expect(sections).to_have_count(len(ids), timeout=LIVE_MS)
    for i, category_id in enumerate(ids):
        await expect(sections.nth(i)).to_have_attribute(
            "data-category-id", category_id, timeout=LIVE_MS
        )


async def drag_before(page: Page, source: Locator, target: Locator) -> None:
    """Drag `source` and drop it on the upper edge of `target` (before it)."""
    await source.drag_to(target, target_position={"x": 20, "y": 3})


async def ordered_children(client: nio.AsyncClient, parent: str) -> list[str]:
    """A space's children as the spec orders them: by `order` (printable ASCII, at most 50
    characters), those without one after; then by the link's timestamp, then by room id."""
    response = await client.room_get_state(parent)
    assert isinstance(response, nio.RoomGetStateResponse), response

    def key(event: dict[str, Any]) -> tuple[int, str, int, str]:
        order = event["content"].get("order")
        valid = (
            isinstance(order, str)
            and len(order) <= 50
            and all(0x20 <= ord(c) <= 0x7E for c in order)
        )
        return (
            0 if valid else 1,
            order if valid else "",
            event["origin_server_ts"],
            event["state_key"],
        )

    links = [e for e in response.events if e["type"] == SPACE_CHILD and e["content"].get("via")]
    return [e["state_key"] for e in sorted(links, key=key)]


async def made(stack: Stack, owner: User, sid: str, path: str, body: dict[str, Any]) -> str:
    status, answer = await Api(stack, owner).call("POST", f"/servers/{sid}/{path}", body)
    assert status == 201, answer
    return str(answer.get("channel_id") or answer["category_id"])


async def test_owner_drags_channels_and_categories_others_see_it_live_and_nio_reads_it(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Shelves")
    sid, general = server["server_id"], server["default_channel_id"]
    alpha = await made(stack, alice, sid, "categories", {"name": "Alpha"})
    beta = await made(stack, alice, sid, "categories", {"name": "Beta"})
    one, two, three = [
        await made(stack, alice, sid, "channels", {"name": n, "kind": "text", "category_id": alpha})
        for n in ("one", "two", "three")
    ]
    four = await made(
        stack, alice, sid, "channels", {"name": "four", "kind": "text", "category_id": beta}
    )
    await join_server(stack, sid, bob)

    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, stack, bob)
        await open_channel(other, sid)
        await expect_channels(other, alpha, [one, two, three])
        # Bob is a member: nothing of his sidebar can be dragged.
        await expect(other.locator('[draggable="true"]')).to_have_count(0)

        await open_as(page, stack, alice)
        await open_channel(page, sid)
        await expect_channels(page, alpha, [one, two, three])

        # 1. Within a category: three dropped before one.
        await drag_before(page, row(page, three), row(page, one))
        await expect_channels(page, alpha, [three, one, two])
        await expect_channels(other, alpha, [three, one, two])

        # 2. Across categories: two dropped before four in Beta.
        await drag_before(page, row(page, two), row(page, four))
        await expect_channels(page, beta, [two, four])
        await expect_channels(page, alpha, [three, one])
        await expect_channels(other, beta, [two, four])
        await expect_channels(other, alpha, [three, one])

        # 3. A category: Beta's header dropped before Alpha.
        await expect_categories(page, [alpha, beta])
        await drag_before(
            page, section(page, beta).locator(".category-header"), section(page, alpha)
        )
        await expect_categories(page, [beta, alpha])
        await expect_categories(other, [beta, alpha])

        # 4. The keyboard: Alt+ArrowUp on one (second in Alpha) makes it first; on Alpha's
        # name, Alt+ArrowUp puts the category back above Beta. Focus stays on what moved.
        await button(page, one).focus()
        await page.keyboard.press("Alt+ArrowUp")
        await expect_channels(page, alpha, [one, three])
        await expect(button(page, one)).to_be_focused()
        await expect(page.get_by_test_id("reorder-status")).to_contain_text("#one moved to Alpha")
        await section(page, alpha).locator(".category-name").focus()
        await page.keyboard.press("Alt+ArrowUp")
        await expect_categories(page, [alpha, beta])
        await expect_channels(other, alpha, [one, three])
        await expect_categories(other, [alpha, beta])
        await expect(page.get_by_test_id("reorder-error")).to_be_hidden()

        # A reload keeps all of it: it is what the bridge wrote, not what the page remembers.
        await page.reload()
        await open_channel(page, sid)
        await expect_categories(page, [alpha, beta])
        await expect_channels(page, alpha, [one, three])
        await expect_channels(page, beta, [two, four])
        await expect_channels(page, "", [general])
        assert problems == []
    finally:
        await context.close()

    # Another Matrix client reads the same order from the m.space.child events.
    async with stack.nio_client(bob) as client:
        assert await ordered_children(client, alpha) == [one, three]
        assert await ordered_children(client, beta) == [two, four]
        in_space = await ordered_children(client, sid)
        assert [room for room in in_space if room in (alpha, beta)] == [alpha, beta]


async def test_a_member_cannot_drag_and_a_refused_move_is_undone_with_its_reason(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Guarded shelves")
    sid, general = server["server_id"], server["default_channel_id"]
    first = await made(stack, alice, sid, "channels", {"name": "first", "kind": "text"})
    second = await made(stack, alice, sid, "channels", {"name": "second", "kind": "text"})
    await join_server(stack, sid, bob)

    # A member: no handle to drag, a drag does nothing, the keys do nothing, the API refuses.
    await open_as(page, stack, bob)
    await open_channel(page, sid)
    await expect_channels(page, "", [general, first, second])
    await expect(page.locator('[draggable="true"]')).to_have_count(0)
    await drag_before(page, row(page, second), row(page, general))
    await button(page, second).focus()
    await page.keyboard.press("Alt+ArrowUp")
    status, error = await Api(stack, bob).call(
        "PATCH", f"/servers/{sid}/channels/{second}", {"order": 0}
    )
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    assert "manage_channels" in error["error"]
    await expect_channels(page, "", [general, first, second])
    await expect(page.get_by_test_id("reorder-error")).to_be_hidden()

    # A moderator may; the move shows at once. The bridge checks at its turn: his role is
    # taken away while his request is on its way, so it refuses it, and the page undoes the
    # move and says why.
    await grant(stack, sid, alice, bob, "moderator")
    await page.reload()
    await open_channel(page, sid)
    await expect(row(page, second)).to_have_attribute("draggable", "true", timeout=LIVE_MS)
    held = await hold_first(page, "**/_guilds/v1/servers/*/channels/*", "PATCH")
    await drag_before(page, row(page, second), row(page, first))
    await expect_channels(page, "", [general, second, first])  # shown at once
    route = await asyncio.wait_for(held, timeout=LIVE_MS / 1000)
    status, _ = await Api(stack, alice).call(
        "DELETE", f"/servers/{sid}/members/{bob.user_id}/roles/moderator"
    )
    assert status == 200
    await route.continue_()
    error_box = page.get_by_test_id("reorder-error")
    await expect(error_box).to_be_visible(timeout=LIVE_MS)
    await expect(error_box).to_contain_text("Could not move #second")
    await expect(error_box).to_contain_text("manage_channels")
    await expect_channels(page, "", [general, first, second])
    await expect(page.locator('[draggable="true"]')).to_have_count(0, timeout=LIVE_MS)
    await page.unroute("**/_guilds/v1/servers/*/channels/*")
    read = await Api(stack, alice).call("GET", f"/servers/{sid}")
    top = sorted(
        (c for c in read[1]["channels"] if c["category_id"] is None), key=lambda c: c["order"]
    )
    assert [c["channel_id"] for c in top] == [general, first, second]


async def test_a_channel_dropped_among_another_kind_lands_inside_its_own_and_the_line_says_so(
    page: Page, stack: Stack, alice: User
) -> None:
    # The sidebar shows text before voice (as Discord does): a voice channel dropped above the
    # text channels lands first among the voice ones, and the drop line shows that while dragging.
    server = await create_server(stack, alice, "Kinds")
    sid, general = server["server_id"], server["default_channel_id"]
    lounge = await made(stack, alice, sid, "channels", {"name": "lounge", "kind": "voice"})
    talk = await made(stack, alice, sid, "channels", {"name": "talk", "kind": "voice"})
    notes = await made(stack, alice, sid, "channels", {"name": "notes", "kind": "text"})
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect_channels(page, "", [general, notes, lounge, talk])

    await row(page, talk).hover()
    await page.mouse.down()
    box = await row(page, general).bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + 20, box["y"] + 10, steps=5)
    await page.mouse.move(box["x"] + 20, box["y"] + 3, steps=2)
    await expect(row(page, lounge)).to_have_class(re.compile(r"\bdrop-before\b"))
    await expect(row(page, general)).not_to_have_class(re.compile(r"\bdrop-"))
    await page.mouse.up()
    await expect_channels(page, "", [general, notes, talk, lounge])
    await expect(page.locator(".drop-before, .drop-after, .drop-into")).to_have_count(0)

    # Read back: what the bridge wrote, and the same order of each kind for matrix-nio.
    await page.reload()
    await open_channel(page, sid)
    await expect_channels(page, "", [general, notes, talk, lounge])
    async with stack.nio_client(alice) as client:
        in_space = await ordered_children(client, sid)
    assert [room for room in in_space if room in (talk, lounge)] == [talk, lounge]
    assert [room for room in in_space if room in (general, notes)] == [general, notes]


async def center(locator: Locator, dy: float = 0.0) -> tuple[float, float]:
    box = await locator.bounding_box()
    assert box is not None
    return box["x"] + min(40.0, box["width"] / 2), box["y"] + box["height"] / 2 + dy


async def touch_drag(
    cdp: Any, start: tuple[float, float], end: tuple[float, float], *, hold_s: float
) -> None:
    """A finger put down at `start`, held `hold_s`, moved to `end` in small steps and lifted: the
    touch events a phone's screen sends (the page sees them as pointer events of type touch)."""

    async def touch(kind: str, x: float, y: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1}]
        await cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    await touch("touchStart", *start)
    await asyncio.sleep(hold_s)
    steps = 12
    for i in range(1, steps + 1):
        x = start[0] + (end[0] - start[0]) * i / steps
        y = start[1] + (end[1] - start[1]) * i / steps
        await touch("touchMove", x, y)
        await asyncio.sleep(0.02)
    await touch("touchEnd", *end)


async def test_a_finger_reorders_channels_and_categories_in_the_phone_layout(
    browser: Browser, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Pocket shelves")
    sid = server["server_id"]
    alpha = await made(stack, alice, sid, "categories", {"name": "Alpha"})
    beta = await made(stack, alice, sid, "categories", {"name": "Beta"})
    one, two, three = [
        await made(stack, alice, sid, "channels", {"name": n, "kind": "text", "category_id": alpha})
        for n in ("one", "two", "three")
    ]
    problems: list[str] = []
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    try:
        page = await new_page(context, problems)
        cdp = await context.new_cdp_session(page)
        await open_as(page, stack, alice)
        # The phone's menu: the rail and the channel list, as a drawer over the chat.
        toggle = page.get_by_test_id("nav-toggle")
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await page.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]').click()
        await expect(page.get_by_test_id("channel-title")).to_have_text("general")
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await expect_channels(page, alpha, [one, two, three])
        await expect(row(page, three)).to_be_in_viewport()

        # A finger moving at once scrolls, as always: nothing is picked up or moved.
        start = await center(row(page, three))
        await touch_drag(cdp, start, await center(row(page, one), -8), hold_s=0.0)
        await expect(page.locator(".dragging")).to_have_count(0)
        await asyncio.sleep(0.5)
        await expect_channels(page, alpha, [one, two, three])

        # Held still, the row is picked up; dropped on one's upper half, it lands before it.
        start = await center(row(page, three))
        await touch_drag(cdp, start, await center(row(page, one), -6), hold_s=0.7)
        await expect_channels(page, alpha, [three, one, two])
        # The lift opened no channel, and the drawer stays for the next move.
        await expect(page.get_by_test_id("channel-title")).to_have_text("general")
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await expect(page.locator(".dragging")).to_have_count(0)

        # A category by its header: Beta held and dropped on Alpha's upper half.
        await expect_categories(page, [alpha, beta])
        header = section(page, beta).locator(".category-header")
        await touch_drag(
            cdp, await center(header), await center(section(page, alpha), -12), hold_s=0.7
        )
        await expect_categories(page, [beta, alpha])
        await expect(page.get_by_test_id("reorder-error")).to_be_hidden()

        # A short tap still opens a channel.
        await button(page, two).tap()
        await expect(page.get_by_test_id("channel-title")).to_have_text("two")
        assert problems == []
    finally:
        await context.close()

    # What the bridge wrote, as another client reads it.
    async with stack.nio_client(alice) as client:
        assert await ordered_children(client, alpha) == [three, one, two]
        in_space = await ordered_children(client, sid)
        assert [room for room in in_space if room in (alpha, beta)] == [beta, alpha]
