"""The admin's choices in guilds.yaml reach the web UI: server templates, the default theme."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.harness.api import Api
from tests.harness.manage_steps import open_dialog, sign_in_as
from tests.harness.stack import TEMPLATED, Stack

pytestmark = pytest.mark.browser


@pytest.fixture
def templated(stack: Stack) -> Stack:
    return stack


# On SQLite, like every browser test (tests/browser/conftest.py), with the admin's templates: the
# stack is shared with the API's template tests (tests/integration/test_templates.py).
@pytest.mark.parametrize("stack", [TEMPLATED], indirect=True, scope="session")
async def test_the_create_dialog_offers_the_admins_templates(page: Page, templated: Stack) -> None:
    owner = await templated.register_user()
    await sign_in_as(page, templated, owner)
    await open_dialog(page, "openCreateServer")
    dialog = page.get_by_test_id("create-server-dialog")
    choice = dialog.get_by_test_id("server-template")
    await expect(choice).to_be_visible()
    await expect(choice.locator("option")).to_have_count(2)
    await expect(choice).to_have_value("default")
    await choice.select_option("community")
    await dialog.get_by_test_id("server-name").fill("From a template")
    await dialog.get_by_test_id("dialog-submit").click()
    # The dialog closes once every room of the template exists: more than expect's default 5 s
    # on a busy machine (seen twice here while other suites ran).
    await expect(dialog).to_be_hidden(timeout=30_000)

    status, listed = await Api(templated, owner).call("GET", "/servers")
    assert status == 200
    sid = next(s["server_id"] for s in listed["servers"] if s["name"] == "From a template")
    status, server = await Api(templated, owner).call("GET", f"/servers/{sid}")
    assert status == 200
    names = {c["name"] for c in server["channels"]}
    # The template's channels, not only general.
    assert {"rules", "staff-room", "Lounge", "VIP lounge"} <= names
    assert {"staff", "vip"} <= {r["role_id"] for r in server["roles"]}


async def test_the_create_dialog_hides_a_choice_of_one(page: Page, stack: Stack) -> None:
    owner = await stack.register_user()
    await sign_in_as(page, stack, owner)
    await open_dialog(page, "openCreateServer")
    dialog = page.get_by_test_id("create-server-dialog")
    await expect(dialog.get_by_test_id("server-name")).to_be_visible()
    # Only the built-in default: nothing to choose, the field stays hidden.
    await page.wait_for_load_state("networkidle")
    await expect(dialog.get_by_test_id("server-template")).to_be_hidden()


async def test_without_a_choice_of_ones_own_the_admins_default_theme_applies(
    page: Page, stack: Stack
) -> None:
    await page.goto(stack.web_url)
    theme = await page.evaluate(
        """async () => {
          localStorage.removeItem('guilds.theme');
          document.querySelector('meta[name="guilds-default-theme"]').content = 'light';
          const { applyStoredTheme } = await import('/static/js/theme.js');
          applyStoredTheme();
          const admins = document.documentElement.dataset.theme;
          localStorage.setItem('guilds.theme', 'dark');
          applyStoredTheme();
          const own = document.documentElement.dataset.theme;
          localStorage.removeItem('guilds.theme');
          return [admins, own];
        }"""
    )
    assert theme == ["light", "dark"]
