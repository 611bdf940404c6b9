"""The smaller things a new user met in the web UI (issue #18, observation 8), each against the
real stack: the Roles dialog, private channels, a new channel, channel names, images, avatars."""

from __future__ import annotations

import re

import aiohttp
import nio
import pytest
from playwright.async_api import Browser, BrowserContext, FilePayload, Page, expect

from tests.harness.api import Api, create_server, eventually, join_server
from tests.harness.call_steps import new_call_page
from tests.harness.chat_steps import channel, open_as, open_channel, send
from tests.harness.manage_steps import png
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser


async def open_menu_entry(page: Page, entry: str) -> None:
    await page.get_by_test_id("server-menu-button").click()
    await page.get_by_test_id(f"menu-{entry}").click()


async def test_the_roles_dialog_never_shows_null(page: Page, stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Roles")
    await open_as(page, stack, alice)
    await open_channel(page, server["server_id"])
    await open_menu_entry(page, "openRoles")
    dialog = page.get_by_test_id("roles-dialog")
    items = dialog.get_by_test_id("role-item")
    await expect(items.first).to_be_visible()
    shown: list[str] = [await dialog.inner_text()]
    for i in range(await items.count()):
        await items.nth(i).click()
        await expect(dialog.get_by_test_id("role-name")).to_be_visible()
        shown.append(await dialog.inner_text())
        shown += [await v.input_value() for v in await dialog.locator("input, textarea").all()]
    await dialog.get_by_test_id("role-create").click()
    shown.append(await dialog.inner_text())
    for text in shown:
        assert "null" not in text and "undefined" not in text, text


async def test_a_new_channel_opens_named_like_discord(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Naming")
    sid = server["server_id"]
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await open_menu_entry(page, "openChannelEditor")
    editor = page.get_by_test_id("channel-dialog")
    name = editor.get_by_test_id("channel-name")
    # Typed as a person types: the space turns into a dash at once.
    await name.press_sequentially("Book Club ")
    await expect(name).to_have_value("book-club-")
    await editor.get_by_test_id("dialog-submit").click()
    await expect(editor).to_be_hidden()
    # The channel is made with the tidy name and opened.
    await expect(page.get_by_test_id("channel-title")).to_have_text("book-club", timeout=15_000)
    selected = page.locator('[data-testid="channel"][aria-current="page"]')
    await expect(selected.get_by_test_id("channel-name")).to_have_text("book-club")
    status, answer = await Api(stack, alice).call("GET", f"/servers/{sid}")
    assert status == 200
    assert "book-club" in [c["name"] for c in answer["channels"]]

    # A voice channel keeps its name as typed, as in Discord.
    await open_menu_entry(page, "openChannelEditor")
    await editor.get_by_test_id("kind-voice").check()
    await name.fill("Chill Lounge")
    await editor.get_by_test_id("dialog-submit").click()
    await expect(editor).to_be_hidden()
    await expect(page.get_by_test_id("channel-title")).to_have_text("Chill Lounge", timeout=15_000)


async def test_a_private_channel_shows_a_lock(page: Page, stack: Stack, alice: User) -> None:
    server = await create_server(stack, alice, "Locks")
    sid = server["server_id"]
    status, made = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/channels", {"name": "staff", "kind": "text", "allowed_roles": []}
    )
    assert status == 201, made
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    staff = page.locator(f'[data-testid="channel"][data-channel-id="{made["channel_id"]}"]')
    general = page.locator(
        f'[data-testid="channel"][data-channel-id="{server["default_channel_id"]}"]'
    )
    await expect(staff.locator('svg[data-icon="lock"]')).to_have_count(1)
    await expect(staff).to_contain_text("(private)")
    await expect(general.locator('svg[data-icon="lock"]')).to_have_count(0)


async def test_an_image_opens_larger_and_esc_closes_it(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Pictures")
    await open_as(page, stack, alice)
    await open_channel(page, server["server_id"])
    picture = png(800, 600, (30, 120, 200))
    await page.get_by_test_id("file-input").set_input_files(
        [FilePayload(name="sky.png", mimeType="image/png", buffer=picture)]
    )
    image = page.get_by_test_id("message-image")
    await expect(image).to_have_attribute("src", re.compile("^blob:"))
    await page.get_by_test_id("message-image-open").click()
    lightbox = page.get_by_test_id("lightbox")
    await expect(lightbox).to_be_visible()
    large = lightbox.get_by_test_id("lightbox-image")
    await expect(large).to_have_attribute("src", re.compile("^blob:"))
    assert await large.evaluate("(img) => img.complete && img.naturalWidth") == 800
    shown = await large.bounding_box()
    thumb = await image.bounding_box()
    assert shown and thumb and shown["width"] > thumb["width"], (shown, thumb)
    await page.keyboard.press("Escape")
    await expect(lightbox).to_have_count(0)

    # By keyboard too, and the close button closes it.
    await page.get_by_test_id("message-image-open").focus()
    await page.keyboard.press("Enter")
    await expect(lightbox).to_be_visible()
    await lightbox.get_by_test_id("lightbox-close").click()
    await expect(lightbox).to_have_count(0)


async def set_avatar(stack: Stack, user: User, picture: bytes) -> str:
    """Upload `picture` and make it `user`'s avatar, as any Matrix client does; its mxc URI."""
    headers = {"Authorization": f"Bearer {user.access_token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(
            f"{stack.hs_url}/_matrix/media/v3/upload?filename=me.png",
            data=picture,
            headers={"Content-Type": "image/png"},
        ) as response:
            assert response.status == 200, await response.text()
            mxc = str((await response.json())["content_uri"])
        async with http.put(
            f"{stack.hs_url}/_matrix/client/v3/profile/{user.user_id}/avatar_url",
            json={"avatar_url": mxc},
        ) as response:
            assert response.status == 200, await response.text()
    return mxc


AVATAR_JS = """
(userId) => [...document.querySelectorAll('[data-avatar-of]')]
  .filter((el) => el.getAttribute('data-avatar-of') === userId && el.getClientRects().length)
  .map((el) => ({
    where: el.closest('[data-testid]')?.getAttribute('data-testid') ?? '',
    hue: [...el.classList].find((c) => c.startsWith('hue-')) ?? '',
    text: el.querySelector('img') ? '' : el.textContent,
    image: Boolean(el.querySelector('img')?.src?.startsWith('blob:')),
  }))
"""


async def test_one_avatar_everywhere(page: Page, stack: Stack, alice: User, bob: User) -> None:
    await set_avatar(stack, alice, png(32, 32, (200, 60, 60)))
    server = await create_server(stack, alice, "Faces")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    async with stack.nio_client(bob) as client:
        await client.join(general)
        sent = await client.room_send(
            general, "m.room.message", {"msgtype": "m.text", "body": "hi"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await send(page, "hello from alice")
    await expect(page.get_by_test_id("member")).to_have_count(2)
    await open_menu_entry(page, "openMembers")
    await expect(page.get_by_test_id("member-row")).to_have_count(2)

    async def avatars(user: User, places: int) -> list[dict[str, object]]:
        seen: list[dict[str, object]] = []

        async def drawn() -> bool:
            nonlocal seen
            seen = await page.evaluate(AVATAR_JS, user.user_id)
            return len(seen) >= places and all(a["image"] for a in seen) == bool(user is alice)

        await eventually(drawn, 15.0, 0.25, what=f"{user.user_id}'s avatars")
        return seen

    # Alice: her picture in the user panel, the member list, her message and the dialog.
    mine = await avatars(alice, 4)
    assert all(a["image"] for a in mine), mine
    # Bob, without a picture: the same initials on the same colour wherever he is shown.
    his = await avatars(bob, 3)
    assert len({(a["hue"], a["text"]) for a in his}) == 1, his


async def test_a_call_of_two_says_two_and_its_tiles_fill_the_panel(
    browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Calls")
    sid = server["server_id"]
    status, made = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/channels", {"name": "lounge", "kind": "voice"}
    )
    assert status == 201, made
    await join_server(stack, sid, bob)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (alice, bob):
            page = await new_call_page(browser, contexts, problems)
            pages.append(page)
            await open_as(page, stack, user)
            await open_channel(page, sid)
            await channel(page, "lounge").click()
            await expect(page.get_by_test_id("call-tiles")).to_be_visible()
        alice_page = pages[0]
        # Two people, both connected: "2 in the call", never "1 of 1 connected".
        await expect(alice_page.get_by_test_id("call-status")).to_have_text(
            "2 in the call", timeout=90_000
        )
        await expect(alice_page.get_by_test_id("call-tile")).to_have_count(2)
        # In the call's own channel the tiles take the room there is: two 16:9 tiles side by
        # side, each far wider than the old 200 × 110.
        panel = await alice_page.get_by_test_id("call-panel").bounding_box()
        tiles = [await t.bounding_box() for t in await alice_page.get_by_test_id("call-tile").all()]
        assert panel and all(tiles), (panel, tiles)
        for tile in tiles:
            assert tile and tile["width"] >= 300 and tile["height"] >= 160, tiles
            assert abs(tile["width"] / tile["height"] - 16 / 9) < 0.05, tiles
        assert sum(t["width"] for t in tiles if t) >= 0.6 * panel["width"], (panel, tiles)
        # Another channel open beside the call: the panel is a strip above its chat.
        await channel(alice_page, "general").click()
        await expect(alice_page.get_by_test_id("composer")).to_be_visible()
        strip = await alice_page.get_by_test_id("call-panel").bounding_box()
        assert strip and strip["height"] < 0.5 * 800, strip
    finally:
        for context in contexts:
            await context.close()
    assert problems == []


async def test_the_invite_page_shows_the_server_icon_to_a_visitor(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Painted")
    sid = server["server_id"]
    icon = await set_avatar(stack, alice, png(40, 40, (240, 178, 50)))
    api = Api(stack, alice)
    status, changed = await api.call("PATCH", f"/servers/{sid}", {"icon": icon})
    assert status == 200, changed
    status, invite = await api.call("POST", f"/servers/{sid}/invites", {})
    assert status == 201, invite
    code = invite["code"]

    # Nobody signed in on this page: no token to fetch media with.
    await page.goto(invite["url"])
    preview = page.get_by_test_id("invite-preview")
    await expect(preview).to_be_visible()
    image = preview.get_by_test_id("invite-icon")
    await expect(image).to_be_visible()
    assert await image.evaluate("(img) => img.complete && img.naturalWidth") > 0

    # The API answers the image to anyone with a usable code, and nothing once it is revoked.
    assert stack.http is not None
    icon_url = f"{stack.web_url}/_guilds/v1/invites/{code}/icon"
    async with stack.http.get(icon_url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert (await response.read()).startswith(b"\x89PNG")
    status, _ = await api.call("DELETE", f"/servers/{sid}/invites/{code}")
    assert status == 204
    async with stack.http.get(icon_url) as response:
        assert response.status == 404
