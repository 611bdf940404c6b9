"""Signing up, in and out through the web UI against a real Synapse and `guilds serve`."""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import Page, Request, expect

from tests.harness.auth_steps import sign_in, sign_up, stored_session
from tests.harness.stack import Stack

pytestmark = pytest.mark.browser


async def whoami_status(stack: Stack, token: str) -> int:
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.hs_url}/_matrix/client/v3/account/whoami",
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return response.status


async def test_sign_up_reload_sign_out_and_sign_in_again(page: Page, stack: Stack) -> None:
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    localpart = f"web{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    user_id = f"@{localpart}:{stack.server_name}"

    await page.goto(stack.web_url)
    await expect(page.get_by_test_id("auth-homeserver")).to_have_text(stack.hs_url)
    await sign_up(page, localpart, password)
    await expect(page.get_by_test_id("signed-in-as")).to_have_text(f"Signed in as {user_id}")
    # Synapse gives a new account its localpart as display name.
    await expect(page.get_by_test_id("display-name")).to_have_text(localpart)
    session = await stored_session(page)
    assert session is not None and session["userId"] == user_id
    token = session["accessToken"]
    assert await whoami_status(stack, token) == 200

    await page.reload()
    await expect(page.get_by_test_id("signed-in-as")).to_have_text(f"Signed in as {user_id}")
    await expect(page.get_by_test_id("display-name")).to_have_text(localpart)
    assert token not in page.url

    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("auth-screen")).to_be_visible()
    await expect(page.get_by_test_id("auth-notice")).to_be_hidden()
    assert await stored_session(page) is None
    assert await whoami_status(stack, token) == 401, "sign-out must end the session on the server"

    await page.reload()
    await expect(page.get_by_test_id("auth-screen")).to_be_visible()
    await sign_in(page, localpart, password)
    await expect(page.get_by_test_id("signed-in-as")).to_have_text(f"Signed in as {user_id}")
    second = await stored_session(page)
    assert second is not None and second["accessToken"] != token

    for request in requests:
        for secret in (token, second["accessToken"]):
            assert secret not in request.url, (
                f"a token went into a URL: {request.method} {request.url}"
            )


async def test_wrong_password_and_taken_name_read_clearly(page: Page, stack: Stack) -> None:
    existing = await stack.register_user()
    await page.goto(stack.web_url)

    await sign_in(page, existing.localpart, existing.password + "x")
    await expect(page.get_by_test_id("auth-error")).to_have_text("Wrong username or password.")
    assert await stored_session(page) is None

    await sign_up(page, existing.localpart, secrets.token_urlsafe(12))
    await expect(page.get_by_test_id("auth-error")).to_have_text(
        "That username is already taken. Try another one."
    )
    assert await stored_session(page) is None

    # A full user id works for signing in, as people copy it from elsewhere.
    await sign_in(page, existing.user_id, existing.password)
    await expect(page.get_by_test_id("signed-in-as")).to_have_text(
        f"Signed in as {existing.user_id}"
    )
