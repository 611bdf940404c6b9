"""Steps shared by the chat browser tests: open the client as a user, send, wait, measure."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from playwright.async_api import BrowserContext, Locator, Page, Route, expect

from tests.harness.api import create_server, join_server
from tests.harness.stack import Stack, User

# Live updates must show within this many milliseconds (measured and printed by the tests).
LIVE_MS = 5_000


async def hold_first(page: Page, pattern: str, method: str) -> asyncio.Future[Route]:
    """Hold the page's first `method` request to `pattern` (a `page.route` glob); every other
    request goes on. The future gives the held route, to `continue_()` when the test is ready."""
    held: asyncio.Future[Route] = asyncio.get_running_loop().create_future()

    async def hold(route: Route) -> None:
        if route.request.method == method and not held.done():
            held.set_result(route)
        else:
            await route.continue_()

    await page.route(pattern, hold)
    return held


async def open_as(page: Page, stack: Stack, user: User) -> None:
    """Open the web UI already signed in as `user` (the session a sign-in would have stored)."""
    await page.goto(f"{stack.web_url}/static/favicon.svg")
    session = {
        "userId": user.user_id,
        "accessToken": user.access_token,
        "deviceId": user.device_id,
        "homeserverUrl": stack.hs_url,
    }
    await page.evaluate("(s) => localStorage.setItem('guilds.session.v1', s)", json.dumps(session))
    await page.goto(stack.web_url)
    await expect(page.get_by_test_id("home-view")).to_be_visible()


async def open_server_with(
    page: Page, stack: Stack, owner: User, member: User, name: str
) -> tuple[str, str]:
    """A new server of `owner`'s named `name`, with `member` in it, open in its first channel on
    `owner`'s page; answers the server's id and that channel's."""
    server = await create_server(stack, owner, name)
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, member)
    await open_as(page, stack, owner)
    await open_channel(page, sid)
    return sid, general


async def open_channel(page: Page, server_id: str, channel_name: str | None = None) -> None:
    await page.locator(f'[data-testid="rail-server"][data-server-id="{server_id}"]').click()
    if channel_name is not None:
        await channel(page, channel_name).click()
    await expect(page.get_by_test_id("composer")).to_be_visible()
    await expect(page.get_by_test_id("composer")).to_be_enabled()


def channel(page: Page, name: str) -> Locator:
    return page.get_by_test_id("channel").filter(
        has=page.get_by_test_id("channel-name").get_by_text(name, exact=True)
    )


def messages(page: Page) -> Locator:
    return page.get_by_test_id("message")


def message_with(page: Page, text: str) -> Locator:
    return messages(page).filter(has=page.get_by_test_id("message-body").get_by_text(text))


async def send(page: Page, text: str) -> None:
    composer = page.get_by_test_id("composer")
    await composer.fill(text)
    await composer.press("Enter")


async def timed(what: str, check: Any) -> float:
    """Run an expect-style coroutine factory, print and return how long it took in ms."""
    started = time.monotonic()
    await check()
    elapsed = (time.monotonic() - started) * 1000
    print(f"{what}: {elapsed:.0f} ms")
    return elapsed


async def new_page(context: BrowserContext, problems: list[str]) -> Page:
    """A second page in its own context, failing the test on page errors and CSP violations."""
    page = await context.new_page()
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(e.message))
    return page
