"""What a person does on the auth screen, as steps shared by the browser tests."""

from __future__ import annotations

from playwright.async_api import Page


async def sign_up(page: Page, username: str, password: str, confirm: str | None = None) -> None:
    await page.get_by_test_id("tab-sign-up").click()
    await page.get_by_test_id("username").fill(username)
    await page.get_by_test_id("password").fill(password)
    await page.get_by_test_id("password-confirm").fill(password if confirm is None else confirm)
    await page.get_by_test_id("auth-submit").click()


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.get_by_test_id("tab-sign-in").click()
    await page.get_by_test_id("username").fill(username)
    await page.get_by_test_id("password").fill(password)
    await page.get_by_test_id("auth-submit").click()


async def stored_session(page: Page) -> dict[str, str] | None:
    return await page.evaluate("JSON.parse(localStorage.getItem('guilds.session.v1'))")
