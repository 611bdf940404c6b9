"""The management dialogs (web/static/js/manage) driving the real provisioning API in Chromium."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.harness.api import Api, create_server, eventually, join_server
from tests.harness.auth_steps import sign_up, stored_session
from tests.harness.manage_steps import manage_entries, open_dialog, png, sign_in_as
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.pwned=1>"


async def get_server(stack: Stack, user: User, server_id: str) -> dict[str, Any]:
    status, server = await Api(stack, user).call("GET", f"/servers/{server_id}")
    assert status == 200, server
    assert isinstance(server, dict)
    return server


async def member_roles(stack: Stack, user: User, server_id: str, user_id: str) -> list[str] | None:
    """The roles of `user_id` as the members list shows them, or None when not a member."""
    members: list[dict[str, Any]] = []
    page: str | None = None
    while True:
        path = f"/servers/{server_id}/members?limit=100" + (f"&from={page}" if page else "")
        status, answer = await Api(stack, user).call("GET", path)
        assert status == 200, answer
        members += answer["members"]
        page = answer.get("next")
        if not page:
            break
    for member in members:
        if member["user_id"] == user_id:
            return list(member["roles"])
    return None


async def test_create_server_with_an_icon(page: Page, stack: Stack, alice: User) -> None:
    await sign_in_as(page, stack, alice)
    await open_dialog(page, "openCreateServer")
    dialog = page.get_by_test_id("create-server-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_test_id("icon-input").set_input_files(
        {"name": "icon.png", "mimeType": "image/png", "buffer": png()}
    )
    await expect(dialog.locator(".icon-picker-preview img")).to_be_visible()
    await dialog.get_by_test_id("server-name").fill("Book club")
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_be_hidden()

    selected = await page.evaluate("window.selectedServer")
    assert await page.evaluate("window.refreshed") == [selected]
    server = await get_server(stack, alice, selected)
    assert server["name"] == "Book club"
    assert server["owner"] == alice.user_id
    assert isinstance(server["icon"], str) and server["icon"].startswith("mxc://")


async def test_create_server_shows_the_api_error_inline(
    page: Page, stack: Stack, alice: User
) -> None:
    await sign_in_as(page, stack, alice)
    await open_dialog(page, "openCreateServer")
    dialog = page.get_by_test_id("create-server-dialog")
    await dialog.get_by_test_id("server-name").fill("bad\u0007name")
    await dialog.get_by_test_id("server-name").press("Enter")
    error = dialog.get_by_test_id("dialog-error")
    await expect(error).to_be_visible()
    assert (await error.text_content() or "").strip(), "the API's error sentence is shown"
    await expect(dialog).to_be_visible()
    # Esc closes the dialog and nothing was created.
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    status, listing = await Api(stack, alice).call("GET", "/servers")
    assert status == 200 and listing["servers"] == []


async def test_settings_rename_and_topic(page: Page, stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Old name")
    await sign_in_as(page, stack, alice)
    await open_dialog(page, "openServerSettings", server["server_id"])
    dialog = page.get_by_test_id("server-settings-dialog")
    await dialog.get_by_test_id("server-name").fill("New name")
    await dialog.get_by_test_id("server-topic").fill("We read books")
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_be_hidden()
    after = await get_server(stack, alice, server["server_id"])
    assert (after["name"], after["topic"]) == ("New name", "We read books")


async def test_join_with_an_invite_code_from_the_create_dialog(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Joinable")
    status, invite = await Api(stack, alice).call(
        "POST", f"/servers/{server['server_id']}/invites", {}
    )
    assert status == 201, invite
    await sign_in_as(page, stack, bob)
    await open_dialog(page, "openCreateServer")
    dialog = page.get_by_test_id("create-server-dialog")
    await dialog.get_by_test_id("switch-to-join").click()
    await dialog.get_by_test_id("invite-input").fill(invite["url"])
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_be_hidden()
    assert await page.evaluate("window.selectedServer") == server["server_id"]
    assert (await get_server(stack, bob, server["server_id"]))["me"]["user_id"] == bob.user_id


async def test_invite_link_landing_page_join_exhausted_revoked_and_unknown(
    page: Page, stack: Stack, alice: User, browser: Browser
) -> None:
    server = await create_server(stack, alice, "Invite club")
    sid = server["server_id"]
    await sign_in_as(page, stack, alice)
    await open_dialog(page, "openInvitePeople", sid)
    dialog = page.get_by_test_id("invite-dialog")
    # A default link is made on opening; then one for a single use.
    await expect(dialog.get_by_test_id("invite-link")).to_have_value(re.compile("/invite/"))
    await dialog.get_by_test_id("invite-max-uses").select_option("1")
    await dialog.get_by_test_id("invite-expiry").select_option("3600")
    first_link = await dialog.get_by_test_id("invite-link").input_value()
    await dialog.get_by_test_id("invite-generate").click()
    await expect(dialog.get_by_test_id("invite-link")).not_to_have_value(first_link)
    link = await dialog.get_by_test_id("invite-link").input_value()
    code = link.rsplit("/", 1)[1]
    status, listed = await Api(stack, alice).call("GET", f"/servers/{sid}/invites")
    assert status == 200
    made = {i["code"]: i for i in listed["invites"]}[code]
    assert made["max_uses"] == 1 and made["expires_at"] is not None
    assert link == made["url"] and link.startswith(stack.web_url)
    await expect(dialog.get_by_test_id("invite-row")).to_have_count(2)

    # A second person, with no account yet, opens the link, signs up and joins.
    joiner = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        guest = await joiner.new_page()
        await guest.goto(link)
        await expect(guest.get_by_test_id("invite-server-name")).to_have_text("Invite club")
        await expect(guest.get_by_test_id("invite-member-count")).to_have_text("1 member")
        await guest.get_by_test_id("invite-accept").click()
        localpart = f"inv{secrets.token_hex(4)}"
        await sign_up(guest, localpart, secrets.token_urlsafe(12))
        await guest.wait_for_url(re.compile(r"/#(server=|/server/)"))
        assert code not in guest.url
        session = await stored_session(guest)
        assert session is not None
        assert session["accessToken"] not in guest.url
        newcomer = User(session["userId"], "", session["accessToken"], session["deviceId"])
        status, mine = await Api(stack, newcomer).call("GET", "/servers")
        assert status == 200 and sid in [s["server_id"] for s in mine["servers"]]

        # A third person finds the link used up.
        third = await browser.new_context()
        try:
            late = await third.new_page()
            await late.goto(link)
            await expect(late.get_by_test_id("invite-problem")).to_have_attribute(
                "data-kind", "exhausted"
            )
            await expect(late.get_by_test_id("invite-problem-title")).to_contain_text("used up")

            # Revoking the default link from the dialog: its page says so.
            default_code = first_link.rsplit("/", 1)[1]
            row = dialog.locator(f'[data-testid="invite-row"][data-code="{default_code}"]')
            await row.get_by_test_id("invite-revoke").click()
            await page.get_by_test_id("revoke-dialog").get_by_test_id("confirm-ok").click()
            await expect(row).to_have_count(0)
            status, listed = await Api(stack, alice).call("GET", f"/servers/{sid}/invites")
            assert {i["code"]: i for i in listed["invites"]}[default_code]["revoked"] is True
            await late.goto(first_link)
            await expect(late.get_by_test_id("invite-problem")).to_have_attribute(
                "data-kind", "revoked"
            )

            await late.goto(f"{stack.web_url}/invite/NoSuchCode123")
            await expect(late.get_by_test_id("invite-problem")).to_have_attribute(
                "data-kind", "unknown"
            )
        finally:
            await third.close()
    finally:
        await joiner.close()


async def test_signed_in_user_joins_from_the_landing_page_in_one_click(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "One click")
    # A server of bob's own that sorts first: the app would open it, not the one just joined.
    await create_server(stack, bob, "Elsewhere")
    status, invite = await Api(stack, alice).call(
        "POST", f"/servers/{server['server_id']}/invites", {"max_uses": 5}
    )
    assert status == 201
    await sign_in_as(page, stack, bob)
    await page.goto(invite["url"])
    await expect(page.get_by_test_id("invite-signed-in")).to_contain_text(bob.user_id)
    await page.get_by_test_id("invite-accept").click()
    await page.wait_for_url(re.compile(r"/#(server=|/server/)"))
    assert (await get_server(stack, bob, server["server_id"]))["me"]["user_id"] == bob.user_id
    # The app opens on the server just joined, and the address no longer carries it.
    await expect(page.get_by_test_id("server-name")).to_have_text("One click")
    assert "#server=" not in page.url


async def test_members_change_role_kick_and_ban(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Members")
    sid = server["server_id"]
    carol = await stack.register_user()
    dave = await stack.register_user()
    for user in (bob, carol, dave):
        await join_server(stack, sid, user)
    await sign_in_as(page, stack, alice)
    await open_dialog(page, "openMembers", sid)
    dialog = page.get_by_test_id("members-dialog")
    await expect(dialog.get_by_test_id("member-row")).to_have_count(4)
    owner_row = dialog.locator(f'[data-user-id="{alice.user_id}"]')
    await expect(owner_row.get_by_test_id("member-kick")).to_have_count(0)

    bob_row = dialog.locator(f'[data-user-id="{bob.user_id}"]')
    await bob_row.get_by_test_id("member-roles").click()
    await bob_row.locator('[data-testid="role-toggle"][data-role="moderator"]').check()
    # The chip beside bob's name, not the one labelling the toggle in the open panel.
    moderator_chip = bob_row.get_by_test_id("member-role-chips").locator(
        '[data-testid="role-chip"][data-role="moderator"]'
    )
    await expect(moderator_chip).to_be_visible()

    async def bob_is_moderator() -> bool:
        roles = await member_roles(stack, alice, sid, bob.user_id)
        return roles is not None and "moderator" in roles

    await eventually(bob_is_moderator, what="bob to hold the moderator role")

    carol_row = dialog.locator(f'[data-user-id="{carol.user_id}"]')
    await carol_row.get_by_test_id("member-kick").click()
    kick = page.get_by_test_id("kick-dialog")
    await kick.get_by_test_id("reason").fill("too loud")
    await kick.get_by_test_id("confirm-ok").click()
    await expect(kick).to_be_hidden()
    await expect(carol_row).to_have_count(0)
    assert await member_roles(stack, alice, sid, carol.user_id) is None

    dave_row = dialog.locator(f'[data-user-id="{dave.user_id}"]')
    await dave_row.get_by_test_id("member-ban").click()
    ban = page.get_by_test_id("ban-dialog")
    # Cancelling changes nothing.
    await ban.get_by_test_id("confirm-cancel").click()
    await expect(ban).to_be_hidden()
    assert await member_roles(stack, alice, sid, dave.user_id) is not None
    await dave_row.get_by_test_id("member-ban").click()
    await page.get_by_test_id("ban-dialog").get_by_test_id("confirm-ok").click()
    await expect(dave_row).to_have_count(0)
    assert await member_roles(stack, alice, sid, dave.user_id) is None
    status, _ = await Api(stack, dave).call("GET", f"/servers/{sid}")
    assert status == 404


async def test_roles_create_edit_delete(page: Page, stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Roles")
    sid = server["server_id"]
    await sign_in_as(page, stack, alice)
    await open_dialog(page, "openRoles", sid)
    dialog = page.get_by_test_id("roles-dialog")
    await dialog.get_by_test_id("role-create").click()
    await dialog.get_by_test_id("role-name").fill("Singers")
    await dialog.get_by_test_id("role-color").fill("#ff8800")
    await dialog.locator('[data-testid="perm-toggle"][data-perm="create_invites"]').check()
    await dialog.get_by_test_id("role-save").click()
    item = dialog.locator('[data-testid="role-item"]', has_text="Singers")
    await expect(item).to_be_visible()

    async def roles() -> dict[str, dict[str, Any]]:
        status, answer = await Api(stack, alice).call("GET", f"/servers/{sid}/roles")
        assert status == 200
        return {r["name"]: r for r in answer["roles"]}

    made = (await roles())["Singers"]
    assert made["color"] == "#ff8800"
    assert "create_invites" in made["permissions"]

    await expect(dialog.get_by_test_id("role-name")).to_have_value("Singers")
    await dialog.get_by_test_id("role-name").fill("Choir")
    await dialog.locator('[data-testid="perm-toggle"][data-perm="create_invites"]').uncheck()
    await dialog.get_by_test_id("role-save").click()
    await expect(dialog.locator('[data-testid="role-item"]', has_text="Choir")).to_be_visible()
    edited = (await roles())["Choir"]
    assert edited["role_id"] == made["role_id"]
    assert "create_invites" not in edited["permissions"]

    # Built-in roles cannot be deleted: no button.
    await dialog.locator('[data-testid="role-item"][data-role="moderator"]').click()
    await expect(dialog.get_by_test_id("role-delete")).to_have_count(0)
    await dialog.locator(f'[data-testid="role-item"][data-role="{made["role_id"]}"]').click()
    await dialog.get_by_test_id("role-delete").click()
    await page.get_by_test_id("role-delete-dialog").get_by_test_id("confirm-ok").click()
    await expect(dialog.locator(f'[data-role="{made["role_id"]}"]')).to_have_count(0)
    assert "Choir" not in await roles()


async def test_channels_and_categories(page: Page, stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Channels")
    sid = server["server_id"]
    status, role = await Api(stack, alice).call("POST", f"/servers/{sid}/roles", {"name": "VIP"})
    assert status == 201
    await sign_in_as(page, stack, alice)

    await open_dialog(page, "openCategoryEditor", sid)
    dialog = page.get_by_test_id("category-dialog")
    await dialog.get_by_test_id("category-name").fill("Lounges")
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_be_hidden()
    after = await get_server(stack, alice, sid)
    category = next(c for c in after["categories"] if c["name"] == "Lounges")

    await open_dialog(page, "openChannelEditor", sid)
    dialog = page.get_by_test_id("channel-dialog")
    await dialog.get_by_test_id("kind-voice").check()
    await dialog.get_by_test_id("channel-name").fill("VIP lounge")
    await dialog.get_by_test_id("channel-category").select_option(category["category_id"])
    await dialog.get_by_test_id("channel-private").check()
    await dialog.locator(f'[data-testid="gate-role"][data-role="{role["role_id"]}"]').check()
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_be_hidden()
    after = await get_server(stack, alice, sid)
    channel = next(c for c in after["channels"] if c["name"] == "VIP lounge")
    assert channel["kind"] == "voice"
    assert channel["category_id"] == category["category_id"]
    assert channel["allowed_roles"] == [role["role_id"]]

    await open_dialog(page, "openChannelEditor", sid, channel=channel["channel_id"])
    dialog = page.get_by_test_id("channel-dialog")
    await expect(dialog.get_by_test_id("channel-name")).to_have_value("VIP lounge")
    await dialog.get_by_test_id("channel-name").fill("Open lounge")
    await dialog.get_by_test_id("channel-private").uncheck()
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_be_hidden()
    after = await get_server(stack, alice, sid)
    edited = next(c for c in after["channels"] if c["channel_id"] == channel["channel_id"])
    assert (edited["name"], edited["allowed_roles"]) == ("Open lounge", None)

    # The default channel: no rename, no delete.
    await open_dialog(page, "openChannelEditor", sid, channel=after["default_channel_id"])
    dialog = page.get_by_test_id("channel-dialog")
    await expect(dialog.get_by_test_id("default-channel-note")).to_be_visible()
    await expect(dialog.get_by_test_id("channel-name")).to_be_disabled()
    await expect(dialog.get_by_test_id("channel-delete")).to_have_count(0)
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    await open_dialog(page, "openChannelEditor", sid, channel=channel["channel_id"])
    dialog = page.get_by_test_id("channel-dialog")
    await dialog.get_by_test_id("channel-delete").click()
    await page.get_by_test_id("channel-delete-dialog").get_by_test_id("confirm-ok").click()
    await expect(dialog).to_be_hidden()
    after = await get_server(stack, alice, sid)
    assert channel["channel_id"] not in [c["channel_id"] for c in after["channels"]]

    await open_dialog(page, "openCategoryEditor", sid, category=category["category_id"])
    dialog = page.get_by_test_id("category-dialog")
    await dialog.get_by_test_id("category-name").fill("Rooms")
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_be_hidden()
    after = await get_server(stack, alice, sid)
    assert [c["name"] for c in after["categories"]] == ["Rooms"]
    await open_dialog(page, "openCategoryEditor", sid, category=category["category_id"])
    await page.get_by_test_id("category-dialog").get_by_test_id("category-delete").click()
    await page.get_by_test_id("category-delete-dialog").get_by_test_id("confirm-ok").click()
    await expect(page.get_by_test_id("category-dialog")).to_be_hidden()
    assert (await get_server(stack, alice, sid))["categories"] == []


async def test_leave_and_delete_with_confirmations(
    page: Page, stack: Stack, alice: User, bob: User, browser: Browser
) -> None:
    server = await create_server(stack, alice, "Short lived")
    sid = server["server_id"]
    await join_server(stack, sid, bob)

    bob_context = await browser.new_context()
    try:
        bob_page = await bob_context.new_page()
        await sign_in_as(bob_page, stack, bob)
        await open_dialog(bob_page, "confirmLeave", sid)
        await bob_page.get_by_test_id("leave-dialog").get_by_test_id("confirm-ok").click()
        await expect(bob_page.get_by_test_id("leave-dialog")).to_be_hidden()
        assert await bob_page.evaluate("window.goneServer") == sid
        status, listing = await Api(stack, bob).call("GET", "/servers")
        assert status == 200 and sid not in [s["server_id"] for s in listing["servers"]]
    finally:
        await bob_context.close()

    await sign_in_as(page, stack, alice)
    await open_dialog(page, "confirmDelete", sid)
    dialog = page.get_by_test_id("delete-dialog")
    await dialog.get_by_test_id("delete-confirm-name").fill("wrong name")
    await dialog.get_by_test_id("confirm-ok").click()
    await expect(dialog.get_by_test_id("dialog-error")).to_contain_text("server name")
    assert (await get_server(stack, alice, sid))["name"] == "Short lived"
    await dialog.get_by_test_id("delete-confirm-name").fill("Short lived")
    await dialog.get_by_test_id("confirm-ok").click()
    await expect(dialog).to_be_hidden()
    status, _ = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert status == 404


async def test_controls_follow_permissions(
    page: Page, stack: Stack, alice: User, bob: User, browser: Browser
) -> None:
    server = await create_server(stack, alice, "Ranks")
    sid = server["server_id"]
    carol = await stack.register_user()
    for user in (bob, carol):
        await join_server(stack, sid, user)
    status, _ = await Api(stack, alice).call(
        "PUT", f"/servers/{sid}/members/{bob.user_id}/roles/moderator"
    )
    assert status == 200

    # A plain member: nothing to manage but leaving.
    await sign_in_as(page, stack, carol)
    assert await manage_entries(page, sid) == ["leave"]
    await open_dialog(page, "openMembers", sid)
    dialog = page.get_by_test_id("members-dialog")
    await expect(dialog.get_by_test_id("member-row")).to_have_count(3)
    for action in ("member-roles", "member-kick", "member-ban"):
        await expect(dialog.get_by_test_id(action)).to_have_count(0)

    # A moderator: invites, members (kick and ban, not roles), channels; no settings or roles.
    mod_context = await browser.new_context()
    try:
        mod = await mod_context.new_page()
        await sign_in_as(mod, stack, bob)
        assert await manage_entries(mod, sid) == [
            "invite",
            "members",
            "bans",
            "create-channel",
            "create-category",
            "leave",
        ]
        await open_dialog(mod, "openMembers", sid)
        dialog = mod.get_by_test_id("members-dialog")
        carol_row = dialog.locator(f'[data-user-id="{carol.user_id}"]')
        await expect(carol_row.get_by_test_id("member-kick")).to_be_visible()
        await expect(carol_row.get_by_test_id("member-ban")).to_be_visible()
        await expect(carol_row.get_by_test_id("member-roles")).to_have_count(0)
        owner_row = dialog.locator(f'[data-user-id="{alice.user_id}"]')
        await expect(owner_row.get_by_test_id("member-kick")).to_have_count(0)
        await expect(dialog.locator(f'[data-user-id="{bob.user_id}"] button')).to_have_count(0)
    finally:
        await mod_context.close()

    # The owner: everything, and delete instead of leave.
    owner = await browser.new_context()
    try:
        owner_page = await owner.new_page()
        await sign_in_as(owner_page, stack, alice)
        assert await manage_entries(owner_page, sid) == [
            "invite",
            "settings",
            "roles",
            "members",
            "bans",
            "create-channel",
            "create-category",
            "delete",
        ]
    finally:
        await owner.close()


async def test_names_from_the_network_show_literally(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, XSS)
    sid = server["server_id"]
    api = Api(stack, alice)
    status, role = await api.call("POST", f"/servers/{sid}/roles", {"name": XSS})
    assert status == 201, role
    status, channel = await api.call(
        "POST", f"/servers/{sid}/channels", {"name": XSS, "kind": "text", "topic": XSS}
    )
    assert status == 201, channel
    status, _ = await api.call("POST", f"/servers/{sid}/categories", {"name": XSS})
    assert status == 201
    await join_server(stack, sid, bob)
    status, _ = await api.call(
        "PUT", f"/servers/{sid}/members/{bob.user_id}/roles/{role['role_id']}"
    )
    assert status == 200
    await sign_in_as(page, stack, alice)

    dialogs = [
        ("openServerSettings", "server-settings-dialog", {}),
        ("openInvitePeople", "invite-dialog", {}),
        ("openMembers", "members-dialog", {}),
        ("openRoles", "roles-dialog", {}),
        ("openChannelEditor", "channel-dialog", {"channel": channel["channel_id"]}),
        ("openChannelEditor", "channel-dialog", {}),
        ("confirmLeave", "leave-dialog", {}),
        ("confirmDelete", "delete-dialog", {}),
    ]
    for name, testid, extra in dialogs:
        await open_dialog(page, name, sid, **extra)
        dialog = page.get_by_test_id(testid)
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text(XSS)
        assert await dialog.locator("img[src='x']").count() == 0
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
    assert await page.evaluate("window.pwned") is None

    invite_code = (await api.call("POST", f"/servers/{sid}/invites", {}))[1]["code"]
    await page.goto(f"{stack.web_url}/invite/{invite_code}")
    await expect(page.get_by_test_id("invite-server-name")).to_have_text(XSS)
    assert await page.locator("img[src='x']").count() == 0
    assert await page.evaluate("window.pwned") is None


async def test_dialogs_open_from_the_shell_menu_by_permission(
    page: Page, stack: Stack, alice: User, bob: User, browser: Browser
) -> None:
    server = await create_server(stack, alice, "Menus")
    sid = server["server_id"]
    await join_server(stack, sid, bob)
    await sign_in_as(page, stack, alice, in_app=True)
    await page.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]').click()
    await page.get_by_test_id("server-menu-button").click()
    await page.get_by_test_id("menu-openInvitePeople").click()
    dialog = page.get_by_test_id("invite-dialog")
    await expect(dialog.get_by_test_id("invite-link")).to_have_value(re.compile("/invite/"))
    status, listed = await Api(stack, alice).call("GET", f"/servers/{sid}/invites")
    assert status == 200 and len(listed["invites"]) == 1
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    member = await browser.new_context()
    try:
        bob_page = await member.new_page()
        await sign_in_as(bob_page, stack, bob, in_app=True)
        await bob_page.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]').click()
        await bob_page.get_by_test_id("server-menu-button").click()
        await expect(bob_page.get_by_test_id("menu-confirmLeave")).to_be_visible()
        for entry in (
            "openInvitePeople",
            "openServerSettings",
            "openRoles",
            "openMembers",
            "openBans",
        ):
            await expect(bob_page.get_by_test_id(f"menu-{entry}")).to_have_count(0)
    finally:
        await member.close()
