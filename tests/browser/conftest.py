"""Playwright fixtures: one headless Debian Chromium per session, a fresh context per test.

A failing test leaves a screenshot in `test-artifacts/`. Any uncaught page error or CSP
violation fails the test too: the client must run clean under the strict policy.

The UI does not care which database Synapse keeps, so browser tests run on the SQLite `stack`
only (the integration tests cover both backends). A browser test about storage says so with its
own mark, e.g. `@pytest.mark.parametrize("stack", BACKENDS, indirect=True, scope="session")`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    async_playwright,
)

from tests.harness.chromium import CHROMIUM, launch_chromium
from tests.harness.web_only import make_config
from web.app import create_app

DEFAULT_TIMEOUT_MS = 15_000
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`stack` on SQLite alone, unless the test parametrizes it itself (see the docstring)."""
    if "stack" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "stack" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return
    # Read by pytest's own parametrization, which then leaves the fixture's params aside.
    metafunc.definition.add_marker(
        pytest.mark.parametrize("stack", ["sqlite"], indirect=True, scope="session")
    )


def has_failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest_asyncio.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as p:
        yield p


def chromium_installed() -> bool:
    return CHROMIUM.exists()


@pytest_asyncio.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    if not chromium_installed():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (or `make test`)")
    browser = await launch_chromium(playwright)
    yield browser
    await browser.close()


@pytest_asyncio.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile per test: no cookies, no localStorage carried over."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield context
    await context.close()


@pytest_asyncio.fixture
async def page(context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    page = await context.new_page()
    problems: list[str] = []
    # A test that provokes violations on purpose asks for `csp_violations` and checks them.
    expected: list[str] | None = (
        request.getfixturevalue("csp_violations")
        if "csp_violations" in request.fixturenames
        else None
    )

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            if expected is not None:
                expected.append(message.text)
            else:
                problems.append(f"CSP violation: {message.text}")

    def on_page_error(error: Error) -> None:
        problems.append(f"uncaught error in the page: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    yield page
    if has_failed(request):
        await save_screenshot(page, request)
    elif problems:
        await save_screenshot(page, request)
        pytest.fail("\n".join(problems))


@pytest.fixture
def csp_violations() -> list[str]:
    """The CSP violations Chromium reports for `page`; asking for it stops them failing the test
    (page errors still do), for the test that injects inline script to prove the policy holds."""
    return []


async def save_screenshot(page: Page, request: pytest.FixtureRequest) -> None:
    folder = request.config.rootpath / "test-artifacts"
    folder.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid).strip("_")
    try:
        await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    except Error as exc:  # the page may already be gone; the test's own failure matters more
        print(f"no screenshot for {request.node.nodeid}: {exc}")


# --- The web UI alone, for tests that fake the homeserver with page.route -------------------


@pytest_asyncio.fixture
async def web_only(tmp_path: Path) -> AsyncIterator[str]:
    """The web UI served on its own, naming FAKE_HS as its homeserver; yields its origin."""
    server = TestServer(create_app(make_config(tmp_path)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
