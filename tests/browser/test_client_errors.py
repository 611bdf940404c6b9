"""The browser client against a faked homeserver: every error the auth screen must explain.

The homeserver is played by `page.route`, so each answer (UIA challenges, 429s, refusals, a dead
network) is exact and fast; test_auth.py runs the same screens against a real Synapse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Page, Request, Route, expect

from tests.harness.auth_steps import sign_in, sign_up
from tests.harness.web_only import FAKE_HS

pytestmark = pytest.mark.browser

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
}
REGISTER = "/_matrix/client/v3/register"
LOGIN = "/_matrix/client/v3/login"
USER = "@alice:guilds.test"
SIGNED_IN = {"user_id": USER, "access_token": "syt_fake_abc", "device_id": "DEVICE1"}

Answer = tuple[int, dict[str, Any]]


@dataclass
class FakeHomeserver:
    """Answers requests by path; a list of answers is served in order, the last one repeated."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    seen: list[Request] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def on(self, path: str, *answers: Answer) -> FakeHomeserver:
        self.answers[path] = list(answers)
        return self

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.seen if r.url.split("?")[0].endswith(path)]

    async def handle(self, route: Route) -> None:
        request = route.request
        if request.method == "OPTIONS":
            await route.fulfill(status=204, headers=CORS)
            return
        self.seen.append(request)
        self.bodies.append(json.loads(request.post_data) if request.post_data else {})
        path = request.url[len(FAKE_HS) :].split("?")[0]
        queue = self.answers.get(path)
        if queue is None:
            status, body = 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}
        else:
            status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        await route.fulfill(
            status=status, headers=CORS, content_type="application/json", body=json.dumps(body)
        )


@pytest.fixture
async def hs(page: Page) -> FakeHomeserver:
    fake = FakeHomeserver()
    fake.on("/_matrix/client/v3/account/whoami", (200, {"user_id": USER, "device_id": "DEVICE1"}))
    fake.on(
        "/_matrix/client/v3/profile/%40alice%3Aguilds.test/displayname",
        (200, {"displayname": "Alice"}),
    )
    fake.on("/_matrix/client/v3/logout", (200, {}))
    await page.route(f"{FAKE_HS}/**", fake.handle)
    return fake


UIA_DUMMY: Answer = (401, {"session": "S1", "flows": [{"stages": ["m.login.dummy"]}], "params": {}})


async def test_sign_up_completes_the_dummy_stage_and_waits_out_a_429(
    page: Page, hs: FakeHomeserver, web_only: str
) -> None:
    hs.on(
        REGISTER,
        UIA_DUMMY,
        (429, {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 300}),
        (200, SIGNED_IN),
    )
    await page.goto(web_only)
    await sign_up(page, "alice", "correct horse")
    await expect(page.get_by_test_id("signed-in-as")).to_have_text(f"Signed in as {USER}")
    await expect(page.get_by_test_id("display-name")).to_have_text("Alice")

    first, challenge, retried = hs.bodies[:3]
    assert "auth" not in first
    assert first["username"] == "alice" and first["password"] == "correct horse"
    assert challenge["auth"] == {"type": "m.login.dummy", "session": "S1"}
    assert retried == challenge
    assert len(hs.calls(REGISTER)) == 3


async def test_sign_up_explains_stages_it_cannot_do(
    page: Page, hs: FakeHomeserver, web_only: str
) -> None:
    hs.on(
        REGISTER,
        (
            401,
            {
                "session": "S1",
                "flows": [{"stages": ["m.login.recaptcha", "m.login.terms"]}],
                "params": {},
            },
        ),
    )
    await page.goto(web_only)
    await sign_up(page, "alice", "correct horse")
    error = page.get_by_test_id("auth-error")
    await expect(error).to_contain_text("can't do yet")
    await expect(error).to_contain_text("m.login.recaptcha")
    assert len(hs.calls(REGISTER)) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            (403, {"errcode": "M_FORBIDDEN", "error": "Registration has been disabled"}),
            "Sign-up is closed",
        ),
        ((400, {"errcode": "M_USER_IN_USE", "error": "User ID already taken."}), "already taken"),
        (
            (400, {"errcode": "M_INVALID_USERNAME", "error": "User ID may not begin with _"}),
            "isn't allowed",
        ),
        (
            (400, {"errcode": "M_WEAK_PASSWORD", "error": "Password too short"}),
            "too weak: Password too short",
        ),
        (
            (
                429,
                {
                    "errcode": "M_LIMIT_EXCEEDED",
                    "error": "Too many requests",
                    "retry_after_ms": 60_000,
                },
            ),
            "Wait 60 seconds",
        ),
        ((502, {}), "ran into a problem (HTTP 502)"),
    ],
)
async def test_sign_up_refusals_read_as_sentences(
    page: Page, hs: FakeHomeserver, web_only: str, answer: Answer, message: str
) -> None:
    hs.on(REGISTER, answer)
    await page.goto(web_only)
    await sign_up(page, "alice", "correct horse")
    await expect(page.get_by_test_id("auth-error")).to_contain_text(message)
    # Nothing was stored, and the form is usable again.
    await expect(page.get_by_test_id("auth-submit")).to_be_enabled()
    assert await page.evaluate("localStorage.length") == 0


async def test_wrong_password_says_so(page: Page, hs: FakeHomeserver, web_only: str) -> None:
    hs.on(LOGIN, (403, {"errcode": "M_FORBIDDEN", "error": "Invalid username or password"}))
    await page.goto(web_only)
    await sign_in(page, "alice", "wrong")
    await expect(page.get_by_test_id("auth-error")).to_have_text("Wrong username or password.")
    assert hs.bodies[-1] == {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "wrong",
        "initial_device_display_name": "Guilds web",
    }


async def test_unreachable_homeserver_is_named(page: Page, web_only: str) -> None:
    await page.route(f"{FAKE_HS}/**", lambda route: route.abort("connectionrefused"))
    await page.goto(web_only)
    await sign_in(page, "alice", "pw")
    await expect(page.get_by_test_id("auth-error")).to_contain_text(
        f"Can't reach the homeserver at {FAKE_HS}"
    )


async def test_form_checks_before_asking_the_server(
    page: Page, hs: FakeHomeserver, web_only: str
) -> None:
    await page.goto(web_only)
    await sign_up(page, "alice", "one password", confirm="another")
    await expect(page.get_by_test_id("auth-error")).to_have_text("The passwords don't match.")
    await sign_up(page, "Alice Smith", "correct horse")
    await expect(page.get_by_test_id("auth-error")).to_contain_text("isn't allowed")
    assert hs.seen == []


async def test_token_goes_in_the_header_never_the_url(
    page: Page, hs: FakeHomeserver, web_only: str
) -> None:
    hs.on(LOGIN, (200, SIGNED_IN))
    await page.goto(web_only)
    await sign_in(page, "alice", "pw")
    await expect(page.get_by_test_id("display-name")).to_have_text("Alice")
    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("auth-screen")).to_be_visible()

    authed = [r for r in hs.seen if not r.url.endswith(LOGIN)]
    assert {r.url.split("/_matrix/client/v3")[1].split("/")[1] for r in authed} >= {
        "account",
        "logout",
    }
    for request in hs.seen:
        assert "syt_fake_abc" not in request.url
        assert "access_token" not in request.url
    for request in authed:
        assert await request.header_value("authorization") == "Bearer syt_fake_abc"
    assert await page.evaluate("localStorage.length") == 0


async def test_a_stored_session_that_ended_goes_back_to_sign_in(
    page: Page, hs: FakeHomeserver, web_only: str
) -> None:
    hs.on(
        "/_matrix/client/v3/account/whoami",
        (401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown token", "soft_logout": False}),
    )
    await page.goto(web_only)
    await page.evaluate(
        """(hs) => localStorage.setItem("guilds.session.v1", JSON.stringify({
            userId: "@alice:guilds.test", accessToken: "syt_old", deviceId: "D",
            homeserverUrl: hs}))""",
        FAKE_HS,
    )
    await page.reload()
    await expect(page.get_by_test_id("auth-notice")).to_have_text(
        "Your session has ended. Sign in again."
    )
    assert await page.evaluate("localStorage.length") == 0


async def test_unknown_page_is_a_styled_404(page: Page, web_only: str) -> None:
    response = await page.goto(f"{web_only}/nowhere")
    assert response is not None and response.status == 404
    await expect(page.get_by_test_id("not-found")).to_contain_text("Nothing here")
    await expect(page.get_by_role("link", name=re.compile("Go to Guilds"))).to_be_visible()
