"""Stored XSS through the shell's own strings is inert, and the strict CSP stops inline script,
in Chromium against the real stack."""

from __future__ import annotations

import pytest
from playwright.async_api import FilePayload, Page, expect

from tests.harness.api import Api, create_server, eventually, join_server
from tests.harness.chat_steps import LIVE_MS, channel, open_as, open_channel
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.__xss=1>"
FILE_NAME = f"{XSS}.txt"


async def assert_inert(page: Page) -> None:
    """Nothing the strings carried became an element or ran."""
    assert await page.locator("img[src='x']").count() == 0
    assert await page.evaluate("typeof window.__xss") == "undefined"


async def test_channel_role_and_file_names_show_literally_in_the_shell(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Escapes")
    sid = server["server_id"]
    api = Api(stack, alice)
    status, hostile = await api.call(
        "POST", f"/servers/{sid}/channels", {"name": XSS, "kind": "text", "topic": XSS}
    )
    assert status == 201, hostile
    # A colour is only ever #rrggbb: anything else is refused before it reaches a style.
    status, refused = await api.call(
        "POST",
        f"/servers/{sid}/roles",
        {"name": "styled", "color": "red;background:url(javascript:window.__xss=1)"},
    )
    assert status == 400 and refused["errcode"] == "M_INVALID_PARAM", refused
    status, role = await api.call(
        "POST", f"/servers/{sid}/roles", {"name": XSS, "color": "#12ab34", "power": 10}
    )
    assert status == 201, role
    await join_server(stack, sid, bob)
    status, _ = await api.call(
        "PUT", f"/servers/{sid}/members/{bob.user_id}/roles/{role['role_id']}"
    )
    assert status == 200

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    # The channel's name in the sidebar, its name and topic in the header.
    await expect(channel(page, XSS)).to_have_count(1)
    await channel(page, XSS).click()
    await expect(page.get_by_test_id("channel-title")).to_have_text(XSS)
    await expect(page.get_by_test_id("channel-topic")).to_have_text(XSS)
    await expect(page.get_by_test_id("composer")).to_be_enabled()

    # The role's name heads its group in the member list; its colour paints bob's name.
    members = page.get_by_test_id("member-list")
    if not await members.is_visible():
        await page.get_by_test_id("members-toggle").click()
    await expect(members.locator(".member-group").filter(has_text=XSS)).to_have_text(
        f"{XSS} — 1", timeout=LIVE_MS
    )
    bob_name = members.locator(f'[data-testid="member"][data-user-id="{bob.user_id}"] .member-name')
    await expect(bob_name).to_have_css("color", "rgb(18, 171, 52)", timeout=LIVE_MS)

    # An attachment whose file name is markup: shown as text while uploading and in the timeline.
    await page.get_by_test_id("file-input").set_input_files(
        [FilePayload(name=FILE_NAME, mimeType="text/plain", buffer=b"harmless")]
    )
    await expect(page.get_by_test_id("message-file")).to_have_text(FILE_NAME, timeout=LIVE_MS)
    await assert_inert(page)

    # The invite landing page names the server; a hostile server name stays text there too.
    status, _ = await api.call("PATCH", f"/servers/{sid}", {"name": XSS})
    assert status == 200
    status, invite = await api.call("POST", f"/servers/{sid}/invites", {})
    assert status == 201, invite
    await page.goto(f"{stack.web_url}/invite/{invite['code']}")
    await expect(page.get_by_test_id("invite-server-name")).to_have_text(XSS)
    await assert_inert(page)


INJECT_JS = """
() => new Promise((resolve) => {
  const seen = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    seen.push(e.violatedDirective);
  });
  const script = document.createElement("script");
  script.textContent = "window.__xss = 'inline script';";
  document.body.append(script);
  const button = document.createElement("button");
  button.setAttribute("onclick", "window.__xss = 'inline handler'");
  button.setAttribute("data-testid", "injected");
  document.body.append(button);
  button.click();
  // Violation events are dispatched asynchronously: give them a few frames.
  let frames = 0;
  const wait = () =>
    seen.length >= 2 || ++frames > 120 ? resolve(seen) : requestAnimationFrame(wait);
  requestAnimationFrame(wait);
})
"""


async def test_injected_inline_script_does_not_run(
    page: Page, stack: Stack, alice: User, csp_violations: list[str]
) -> None:
    await open_as(page, stack, alice)
    seen = await page.evaluate(INJECT_JS)
    assert await page.evaluate("typeof window.__xss") == "undefined"
    # Both refusals are reported: the inline <script> and the inline event handler.
    assert len(seen) == 2, seen
    assert all(directive.startswith("script-src") for directive in seen), seen

    async def reported() -> bool:
        return len(csp_violations) >= 2

    assert await eventually(reported, deadline_s=10), csp_violations
    assert all("Content Security Policy" in text for text in csp_violations), csp_violations
    # The app itself still works under the same policy.
    await expect(page.get_by_test_id("home-view")).to_be_visible()
