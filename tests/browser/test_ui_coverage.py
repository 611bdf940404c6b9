"""The web UI's features that had no browser test of their own, each against the real stack:
typing indicators, the phone layout, the rail, badges, the member list, permission-dependent
controls, the composer, read markers and the theme."""

from __future__ import annotations

import re
from typing import Any

import nio
import pytest
from playwright.async_api import Browser, FilePayload, Locator, Page, ViewportSize, expect

from tests.harness.api import Api, create_server, eventually, join_as, join_server
from tests.harness.chat_steps import (
    LIVE_MS,
    channel,
    message_with,
    new_page,
    open_as,
    open_channel,
    send,
    timed,
)
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}


async def nio_send(stack: Stack, user: User, room_id: str, *bodies: str) -> None:
    # The module joins new members to the default channel in the background: join first, as
    # a client does (a no-op when already joined), so a loaded machine cannot race it.
    assert isinstance(await join_as(stack, user, room_id), nio.JoinResponse)
    async with stack.nio_client(user) as client:
        for body in bodies:
            answer = await client.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": body}
            )
            assert isinstance(answer, nio.RoomSendResponse), answer


async def hover_and_click(message: Locator, testid: str) -> None:
    """Click one of a message's hover actions. A message redrawn under a still mouse (a role
    colour or name arriving) loses :hover until the mouse moves, so hover again until shown."""
    action = message.get_by_test_id(testid)
    for _ in range(20):
        await message.hover(position={"x": 200, "y": 10})
        if await action.is_visible():
            break
        await message.page.mouse.move(0, 0)
    await action.click()


# --- Typing indicators -------------------------------------------------------------------------


async def test_typing_shows_live_on_the_other_side_and_goes_away(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Typing")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    async with stack.nio_client(alice) as client:
        assert isinstance(
            await client.set_displayname("Alice Typist"), nio.ProfileSetDisplayNameResponse
        )
    # Alice's member event lies far back in history: Bob's lazy-loading client has not seen it,
    # and must still name her by her display name.
    await nio_send(stack, bob, general, *(f"filler {i}" for i in range(40)))

    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, stack, bob)
        await open_channel(other, sid)
        await expect(message_with(other, "filler 39")).to_have_count(1)
        await open_as(page, stack, alice)
        await open_channel(page, sid)
        typing = other.get_by_test_id("typing")
        await expect(typing).to_have_text("")

        composer = page.get_by_test_id("composer")
        await composer.press_sequentially("hel")
        await timed(
            "typing seen by the other user",
            lambda: expect(typing).to_have_text("Alice Typist is typing…", timeout=LIVE_MS),
        )
        # Clearing the composer stops it at once (not after the server's timeout).
        await composer.fill("")
        await composer.dispatch_event("input")
        await timed(
            "stop seen by the other user",
            lambda: expect(typing).to_have_text("", timeout=LIVE_MS),
        )

        await composer.press_sequentially("hello there")
        await expect(typing).to_have_text("Alice Typist is typing…", timeout=LIVE_MS)
        await composer.press("Enter")
        await expect(message_with(other, "hello there")).to_have_count(1, timeout=LIVE_MS)
        await expect(typing).to_have_text("", timeout=LIVE_MS)
        # Her own typing never shows on her side.
        await expect(page.get_by_test_id("typing")).to_have_text("")
        assert problems == []
    finally:
        await context.close()


# --- Phone-sized viewport ----------------------------------------------------------------------


async def off_screen(page: Page, testid: str) -> bool:
    """Whether the element is out of sight: hidden, or wholly outside the viewport."""
    box = await page.get_by_test_id(testid).bounding_box()
    if box is None or not await page.get_by_test_id(testid).is_visible():
        return True
    width = await page.evaluate("innerWidth")
    return bool(box["x"] + box["width"] <= 0 or box["x"] >= width)


async def on_screen(page: Page, testid: str) -> bool:
    box = await page.get_by_test_id(testid).bounding_box()
    width = await page.evaluate("innerWidth")
    return (
        box is not None
        and await page.get_by_test_id(testid).is_visible()
        and box["x"] >= 0
        and box["x"] + box["width"] <= width
    )


async def no_horizontal_overflow(page: Page) -> None:
    sizes = await page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert sizes[0] <= sizes[1], f"the page scrolls sideways: {sizes}"


async def test_phone_viewport_folds_the_sidebars_into_drawers(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Pocket")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    status, other = await Api(stack, alice).call(
        "POST", f"/servers/{sid}/channels", {"name": "random", "kind": "text"}
    )
    assert status == 201, other
    await nio_send(stack, bob, general, "a long line " + "without-any-break-" * 20)

    await page.set_viewport_size(PHONE)
    await open_as(page, stack, alice)
    await expect(page.get_by_test_id("composer")).to_be_visible()
    await expect(page.get_by_test_id("channel-title")).to_have_text("general")
    # Only the chat shows: the rail, the channels and the members are folded away.
    assert await off_screen(page, "server-rail")
    assert await off_screen(page, "sidebar")
    assert await off_screen(page, "member-list")
    assert await on_screen(page, "composer")
    await expect(message_with(page, "a long line")).to_be_visible()
    await no_horizontal_overflow(page)

    # The menu button opens the rail and the channel list as a drawer.
    toggle = page.get_by_test_id("nav-toggle")
    await expect(toggle).to_be_visible()
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_test_id("sidebar")).to_be_visible()

    async def drawer_open() -> bool:
        return await on_screen(page, "server-rail") and await on_screen(page, "sidebar")

    await eventually(drawer_open, deadline_s=5, what="the drawer to slide in")
    await no_horizontal_overflow(page)
    # Choosing a channel closes the drawer and shows that channel's chat.
    await channel(page, "random").click()
    await expect(page.get_by_test_id("channel-title")).to_have_text("random")
    await expect(toggle).to_have_attribute("aria-expanded", "false")

    async def drawer_closed() -> bool:
        return await off_screen(page, "server-rail") and await off_screen(page, "sidebar")

    await eventually(drawer_closed, deadline_s=5, what="the drawer to slide away")
    await expect(page.get_by_test_id("composer")).to_be_visible()
    await send(page, "from my phone")
    await expect(message_with(page, "from my phone")).to_have_count(1)

    # The scrim closes the drawer too.
    await toggle.click()
    await eventually(drawer_open, deadline_s=5, what="the drawer to slide in again")
    await page.get_by_test_id("scrim").click(position={"x": 370, "y": 400})
    await eventually(drawer_closed, deadline_s=5, what="the scrim to close the drawer")

    # The members button opens the member list as a drawer of its own.
    members_toggle = page.get_by_test_id("members-toggle")
    await expect(members_toggle).to_be_visible()
    await members_toggle.click()
    members = page.get_by_test_id("member-list")
    await expect(members).to_be_visible()
    await expect(members.locator(f'[data-user-id="{bob.user_id}"]')).to_be_visible()
    assert await on_screen(page, "member-list")
    await no_horizontal_overflow(page)
    await page.keyboard.press("Escape")
    await expect(members).to_be_hidden()
    await expect(members_toggle).to_have_attribute("aria-expanded", "false")
    await no_horizontal_overflow(page)


# --- Server rail: initials, tooltip, unread and mention badges per channel and per server -----


async def test_rail_initials_tooltip_and_unread_badges(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    club = await create_server(stack, alice, "Book Club")
    other = await create_server(stack, alice, "Other Place")
    for server in (club, other):
        await join_server(stack, server["server_id"], bob)
    status, random = await Api(stack, alice).call(
        "POST", f"/servers/{club['server_id']}/channels", {"name": "random", "kind": "text"}
    )
    assert status == 201, random
    await open_as(page, stack, alice)
    await open_channel(page, club["server_id"])

    # A server without an icon shows its initials; hovering names it in a tooltip.
    icon = page.locator(f'[data-testid="rail-server"][data-server-id="{club["server_id"]}"]')
    await expect(icon.locator(".rail-icon")).to_have_text("BC")
    tooltip = icon.get_by_role("tooltip")
    await page.mouse.move(640, 400)
    await expect(tooltip).to_be_hidden()
    await icon.hover()
    await expect(tooltip).to_be_visible()
    await expect(tooltip).to_have_text("Book Club")
    assert await icon.get_attribute("aria-current") == "page"

    # A plain message in another channel (joined when first opened): that channel turns
    # unread, with no mention badge.
    await channel(page, "random").click()
    await expect(page.get_by_test_id("composer")).to_be_enabled()
    await channel(page, "general").click()
    assert isinstance(await join_as(stack, bob, random["channel_id"]), nio.JoinResponse)
    await nio_send(stack, bob, random["channel_id"], "nothing for anyone in particular")
    await expect(channel(page, "random")).to_have_class(re.compile(r"\bunread\b"), timeout=LIVE_MS)
    await expect(channel(page, "random").get_by_test_id("channel-badge")).to_have_count(0)

    # A mention in the other server: a badge on its rail icon, counting mentions.
    me = (await page.get_by_test_id("display-name").inner_text()).strip()
    other_icon = page.locator(f'[data-testid="rail-server"][data-server-id="{other["server_id"]}"]')
    await nio_send(stack, bob, other["default_channel_id"], f"{me}, are you there?")
    await expect(other_icon.get_by_test_id("server-badge")).to_have_text("1", timeout=LIVE_MS)
    await expect(other_icon).to_have_class(re.compile(r"\bunread\b"))
    await nio_send(stack, bob, other["default_channel_id"], f"{me}!!")
    await expect(other_icon.get_by_test_id("server-badge")).to_have_text("2", timeout=LIVE_MS)

    # Reading it there clears the server's badge; the channel's unread mark goes once read too.
    await other_icon.click()
    await expect(message_with(page, "are you there?")).to_have_count(1)
    await expect(other_icon.get_by_test_id("server-badge")).to_have_count(0, timeout=LIVE_MS)
    await icon.click()
    await channel(page, "random").click()
    await expect(message_with(page, "nothing for anyone")).to_have_count(1)
    await channel(page, "general").click()
    await expect(channel(page, "random")).not_to_have_class(
        re.compile(r"\bunread\b"), timeout=LIVE_MS
    )


# --- The member list: grouped and sorted by role, names in the role's colour ---------------------


async def test_member_list_sorted_by_role_with_colours(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Ranked")
    sid = server["server_id"]
    api = Api(stack, alice)
    status, elders = await api.call(
        "POST", f"/servers/{sid}/roles", {"name": "Elders", "color": "#aa5500"}
    )
    assert status == 201, elders
    carol = await stack.register_user()
    dave = await stack.register_user()
    for user in (bob, carol, dave):
        await join_server(stack, sid, user)
    for user, role in ((bob, "moderator"), (carol, elders["role_id"])):
        status, answer = await api.call(
            "PUT", f"/servers/{sid}/members/{user.user_id}/roles/{role}"
        )
        assert status == 200, answer

    await open_as(page, stack, alice)
    await open_channel(page, sid)
    members = page.get_by_test_id("member-list")
    await expect(members.get_by_test_id("member")).to_have_count(4, timeout=LIVE_MS)
    # Most senior role first; everyone without a role last, under "Members".
    await expect(members.locator(".member-group")).to_have_text(
        ["Admin — 1", "Moderator — 1", "Elders — 1", "Members — 1"]
    )
    order = [
        await m.get_attribute("data-user-id") for m in await members.get_by_test_id("member").all()
    ]
    assert order == [alice.user_id, bob.user_id, carol.user_id, dave.user_id]

    def name_of(user: User) -> Any:
        return members.locator(f'[data-user-id="{user.user_id}"] .member-name')

    await expect(name_of(alice)).to_have_css("color", "rgb(231, 76, 60)")  # admin #e74c3c
    await expect(name_of(bob)).to_have_css("color", "rgb(52, 152, 219)")  # moderator #3498db
    await expect(name_of(carol)).to_have_css("color", "rgb(170, 85, 0)")  # Elders #aa5500
    await expect(members.locator(f'[data-user-id="{alice.user_id}"] .owner-mark')).to_be_visible()
    # The author's name in the chat takes the same colour.
    await nio_send(stack, carol, server["default_channel_id"], "elder words")
    author = message_with(page, "elder words").get_by_test_id("message-author")
    await expect(author).to_have_css("color", "rgb(170, 85, 0)", timeout=LIVE_MS)

    # A role change reorders the list live.
    status, _ = await api.call("PUT", f"/servers/{sid}/members/{dave.user_id}/roles/moderator")
    assert status == 200
    await expect(members.locator(".member-group")).to_have_text(
        ["Admin — 1", "Moderator — 2", "Elders — 1"], timeout=LIVE_MS
    )


# --- Controls that depend on the viewer's roles ------------------------------------------------


async def test_controls_in_the_shell_follow_each_role(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Duties")
    sid, general = server["server_id"], server["default_channel_id"]
    api = Api(stack, alice)
    status, other = await api.call(
        "POST", f"/servers/{sid}/channels", {"name": "notes", "kind": "text"}
    )
    assert status == 201, other
    carol = await stack.register_user()
    for user in (bob, carol):
        await join_server(stack, sid, user)
    status, _ = await api.call("PUT", f"/servers/{sid}/members/{bob.user_id}/roles/moderator")
    assert status == 200
    await nio_send(stack, alice, general, "the owner speaks")

    async def menu_entries(p: Page) -> list[str]:
        await p.get_by_test_id("server-menu-button").click()
        menu = p.get_by_test_id("server-menu")
        await expect(menu).to_be_visible()
        ids = [
            str(await item.get_attribute("data-testid"))
            for item in await menu.locator("[data-testid^='menu-']").all()
        ]
        await p.keyboard.press("Escape")
        await expect(menu).to_be_hidden()
        return ids

    problems: list[str] = []
    contexts = []
    try:
        # A plain member: mute and leave only; no gear on channels; no delete on another's message.
        contexts.append(await browser.new_context(viewport={"width": 1280, "height": 800}))
        member = await new_page(contexts[-1], problems)
        await open_as(member, stack, carol)
        await open_channel(member, sid)
        assert await menu_entries(member) == ["menu-mute-server", "menu-confirmLeave"]
        await expect(member.get_by_test_id("channel-edit")).to_have_count(0)
        await expect(member.get_by_test_id("category-edit")).to_have_count(0)
        theirs = message_with(member, "the owner speaks")
        await expect(theirs.get_by_test_id("action-reply")).to_have_count(1)
        await expect(theirs.get_by_test_id("action-delete")).to_have_count(0)
        await expect(member.get_by_test_id("composer")).to_be_enabled()
        # (Opened once, so joined: a rename reaches only those in the channel's room.)
        await channel(member, "notes").click()
        await expect(member.get_by_test_id("composer")).to_be_enabled()
        await channel(member, "general").click()

        # A moderator: invites, members, bans and channels; a gear on channels; deletes anyone's
        # message.
        contexts.append(await browser.new_context(viewport={"width": 1280, "height": 800}))
        moderator = await new_page(contexts[-1], problems)
        await open_as(moderator, stack, bob)
        await open_channel(moderator, sid)
        assert await menu_entries(moderator) == [
            "menu-openInvitePeople",
            "menu-openMembers",
            "menu-openBans",
            "menu-openChannelEditor",
            "menu-openCategoryEditor",
            "menu-mute-server",
            "menu-confirmLeave",
        ]
        # The default channel is marked, and its editor refuses a rename.
        await expect(
            channel(moderator, "general").get_by_test_id("default-channel")
        ).to_be_visible()
        await expect(channel(moderator, "notes").get_by_test_id("default-channel")).to_have_count(0)
        row = moderator.locator(".channel-row").filter(has=channel(moderator, "general"))
        await row.hover()
        await row.get_by_test_id("channel-edit").click()
        editor = moderator.get_by_test_id("channel-dialog")
        await expect(editor.get_by_test_id("default-channel-note")).to_be_visible()
        await expect(editor.get_by_test_id("channel-name")).to_be_disabled()
        await expect(editor.get_by_test_id("channel-delete")).to_have_count(0)
        await moderator.keyboard.press("Escape")
        await expect(editor).to_be_hidden()
        # Another channel's gear edits it: renamed, and everyone's sidebar follows live.
        row = moderator.locator(".channel-row").filter(has=channel(moderator, "notes"))
        await row.hover()
        await row.get_by_test_id("channel-edit").click()
        await expect(editor.get_by_test_id("channel-name")).to_be_enabled()
        await editor.get_by_test_id("channel-name").fill("minutes")
        await editor.get_by_test_id("dialog-submit").click()
        await expect(editor).to_be_hidden()
        await expect(channel(member, "minutes")).to_have_count(1, timeout=LIVE_MS)

        owners = message_with(moderator, "the owner speaks")
        await hover_and_click(owners, "action-delete")
        await moderator.get_by_test_id("confirm-ok").click()
        await expect(owners).to_have_count(0)
        await expect(message_with(member, "the owner speaks")).to_have_count(0, timeout=LIVE_MS)

        # The owner: everything, delete instead of leave, gears on categories too.
        status, _ = await api.call("POST", f"/servers/{sid}/categories", {"name": "Archive"})
        assert status == 201
        await open_as(page, stack, alice)
        await open_channel(page, sid)
        assert await menu_entries(page) == [
            "menu-openInvitePeople",
            "menu-openServerSettings",
            "menu-openRoles",
            "menu-openMembers",
            "menu-openBans",
            "menu-openChannelEditor",
            "menu-openCategoryEditor",
            "menu-mute-server",
            "menu-confirmDelete",
        ]
        await expect(page.get_by_test_id("category-edit")).to_have_count(1, timeout=LIVE_MS)

        # Members lose send_messages: their composer says so; the moderator keeps theirs.
        status, _ = await api.call(
            "PATCH", f"/servers/{sid}/roles/member", {"permissions": ["connect", "video"]}
        )
        assert status == 200
        await member.reload()
        await expect(member.get_by_test_id("composer")).to_be_disabled(timeout=LIVE_MS)
        await expect(member.get_by_test_id("composer")).to_have_attribute(
            "placeholder", re.compile("permission")
        )
        await moderator.reload()
        await expect(moderator.get_by_test_id("composer")).to_be_enabled(timeout=LIVE_MS)
        assert problems == []
    finally:
        for context in contexts:
            await context.close()


# --- The composer: Shift+Enter, markdown-lite sent as formatted_body, the emoji picker ---------


async def test_composer_new_lines_markdown_and_emoji(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Prose")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    composer = page.get_by_test_id("composer")
    await composer.press_sequentially("first line")
    await composer.press("Shift+Enter")
    await composer.press_sequentially("**bold** *italic* `code` https://example.org/x")
    await expect(message_with(page, "first line")).to_have_count(0)
    assert await composer.input_value() == (
        "first line\n**bold** *italic* `code` https://example.org/x"
    )
    await composer.press("Enter")
    sent = message_with(page, "first line")
    await expect(sent).to_have_count(1)
    body = sent.get_by_test_id("message-body")
    assert (await body.inner_text()).startswith("first line\nbold italic code")
    await expect(body.locator("strong")).to_have_text("bold")
    await expect(body.locator("em")).to_have_text("italic")
    await expect(body.locator("code")).to_have_text("code")
    await expect(body.locator("a")).to_have_attribute("href", "https://example.org/x")
    await expect(composer).to_have_value("")

    # What went over the wire: a plain body and the formatted_body other clients show (read
    # once the homeserver has it: until then the page shows its local echo).
    await expect(sent).not_to_have_class(re.compile(r"\bpending\b"), timeout=LIVE_MS)
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.hs_url}/_matrix/client/v3/rooms/{general}/messages",
        params={"dir": "b", "limit": "20"},
        headers={"Authorization": f"Bearer {alice.access_token}"},
    ) as response:
        assert response.status == 200
        chunk = (await response.json())["chunk"]
    content = next(
        e["content"] for e in chunk if "first line" in e.get("content", {}).get("body", "")
    )
    assert content["body"].startswith("first line\n**bold**")
    assert content["format"] == "org.matrix.custom.html"
    html = content["formatted_body"]
    for part in ("<strong>bold</strong>", "<em>italic</em>", "<code>code</code>", "<br"):
        assert part in html, html

    # The emoji picker puts its choice at the cursor.
    await composer.fill("party ")
    await page.get_by_test_id("emoji-button").click()
    await page.locator('[data-testid="emoji-choice"][data-emoji="🎉"]').click()
    await expect(composer).to_have_value("party 🎉")
    await expect(composer).to_be_focused()
    await composer.press("Enter")
    await expect(message_with(page, "party 🎉")).to_have_count(1)


# --- Upload progress ---------------------------------------------------------------------------


async def test_upload_shows_a_progress_bar_until_the_file_is_sent(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Uploads")
    await open_as(page, stack, alice)
    await open_channel(page, server["server_id"])
    release: list[Any] = []

    async def hold(route: Any) -> None:
        # Held until the test has seen the bar, so the check does not race a fast upload.
        release.append(route)

    await page.route("**/_matrix/media/v3/upload**", hold)
    await page.get_by_test_id("file-input").set_input_files(
        [FilePayload(name="big.bin", mimeType="application/octet-stream", buffer=b"x" * 300_000)]
    )
    row = page.get_by_test_id("upload")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("big.bin")
    bar = row.get_by_test_id("upload-progress")
    await expect(bar).to_be_visible()
    assert await bar.evaluate("(b) => b.max") == 1
    await eventually(lambda: _truthy(release), deadline_s=10, what="the upload request")
    await release[0].continue_()
    await expect(page.get_by_test_id("message-file")).to_have_text("big.bin", timeout=LIVE_MS)
    await expect(row).to_have_count(0)


async def _truthy(items: list[Any]) -> bool:
    return bool(items)


# --- Read markers ------------------------------------------------------------------------------


async def test_reading_a_channel_moves_the_read_markers_on_the_homeserver(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Markers")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    assert isinstance(await join_as(stack, bob, general), nio.JoinResponse)
    async with stack.nio_client(bob) as client:
        answer = await client.room_send(
            general, "m.room.message", {"msgtype": "m.text", "body": "read me"}
        )
        assert isinstance(answer, nio.RoomSendResponse), answer
    last = answer.event_id
    assert stack.http is not None

    async def fully_read() -> str | None:
        assert stack.http is not None
        async with stack.http.get(
            f"{stack.hs_url}/_matrix/client/v3/user/{alice.user_id}/rooms/{general}"
            "/account_data/m.fully_read",
            headers={"Authorization": f"Bearer {alice.access_token}"},
        ) as response:
            if response.status != 200:
                return None
            return str((await response.json())["event_id"])

    assert await fully_read() != last
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    await expect(message_with(page, "read me")).to_have_count(1)

    async def marked() -> bool:
        return await fully_read() == last

    await eventually(marked, deadline_s=15, what="m.fully_read to reach the last message")
    # The private read receipt too: the homeserver counts nothing unread for alice.
    async with stack.nio_client(alice) as client:
        synced = await client.sync(timeout=0)
        assert isinstance(synced, nio.SyncResponse), synced
        room = synced.rooms.join[general]
        assert room.unread_notifications.notification_count == 0


# --- Theme ---------------------------------------------------------------------------------------


async def test_theme_toggle_persists_across_reloads(page: Page, stack: Stack, alice: User) -> None:
    await open_as(page, stack, alice)
    root = page.locator("html")
    await expect(root).to_have_attribute("data-theme", "dark")
    toggle = page.get_by_test_id("theme-toggle")
    await expect(toggle).to_have_attribute("aria-label", "Switch to the light theme")
    dark_bg = await page.locator(".content").evaluate(
        "(el) => getComputedStyle(el).backgroundColor"
    )
    await toggle.click()
    await expect(root).to_have_attribute("data-theme", "light")
    await expect(page.locator(".content")).to_have_css("background-color", "rgb(255, 255, 255)")
    assert dark_bg != "rgb(255, 255, 255)"
    await page.reload()
    await expect(page.get_by_test_id("home-view")).to_be_visible()
    await expect(root).to_have_attribute("data-theme", "light")
    await expect(page.get_by_test_id("theme-toggle")).to_have_attribute(
        "aria-label", "Switch to the dark theme"
    )
    await page.get_by_test_id("theme-toggle").click()
    await page.reload()
    await expect(root).to_have_attribute("data-theme", "dark")


# --- The sidebar: channels grouped by category, then by kind, each in its order -----------------


async def test_sidebar_groups_channels_by_category_and_kind(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Sorted")
    sid = server["server_id"]
    api = Api(stack, alice)
    first = await api.call("POST", f"/servers/{sid}/categories", {"name": "First floor"})
    second = await api.call("POST", f"/servers/{sid}/categories", {"name": "Second floor"})
    assert first[0] == 201 and second[0] == 201
    for name, kind, category in (
        ("cinema", "video", first[1]["category_id"]),
        ("lounge", "voice", first[1]["category_id"]),
        ("desk", "text", first[1]["category_id"]),
        ("library", "text", first[1]["category_id"]),
        ("attic", "voice", second[1]["category_id"]),
        ("notice-board", "text", None),
    ):
        body = {"name": name, "kind": kind} | ({"category_id": category} if category else {})
        status, made = await api.call("POST", f"/servers/{sid}/channels", body)
        assert status == 201, made
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    categories = page.get_by_test_id("category")
    await expect(categories).to_have_count(3)
    await expect(page.get_by_test_id("category-name")).to_have_text(["First floor", "Second floor"])
    top, one, two = (categories.nth(i).get_by_test_id("channel-name") for i in range(3))
    await expect(top).to_have_text(["general", "notice-board"])
    # Text, then voice, then video; within a kind, in the order they were made.
    await expect(one).to_have_text(["desk", "library", "lounge", "cinema"])
    await expect(two).to_have_text(["attic"])
    icons = categories.nth(1).locator(".channel-icon svg.icon:not(.channel-lock)")
    kinds = [await icon.get_attribute("data-icon") for icon in await icons.all()]
    assert kinds == ["hash", "hash", "volume-2", "video"]


async def test_the_sidebar_keeps_its_buttons_when_an_update_changes_nothing_in_it(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    # Every sync update draws the sidebar again; swapping its buttons each time would lose a
    # click made between press and release. Unchanged, the same elements must stay.
    server = await create_server(stack, alice, "Steady")
    sid, general = server["server_id"], server["default_channel_id"]
    await join_server(stack, sid, bob)
    await open_as(page, stack, alice)
    await open_channel(page, sid)
    button = page.get_by_test_id("channel").filter(has_text="general")
    await button.evaluate("el => { el.dataset.marked = 'yes'; }")
    await nio_send(stack, bob, general, "one", "two", "three")
    await expect(message_with(page, "three")).to_have_count(1, timeout=LIVE_MS)
    await expect(page.locator('[data-testid="channel"][data-marked="yes"]')).to_have_count(0)
    # data-marked is an attribute: the next drawing differs from it, so it was replaced. Mark
    # it with a property instead, which comparing nodes cannot see.
    await button.evaluate("el => { el.steady = true; }")
    await nio_send(stack, bob, general, "four", "five")
    await expect(message_with(page, "five")).to_have_count(1, timeout=LIVE_MS)
    assert await button.evaluate("el => el.steady === true")
    # A real change is still drawn: a new channel appears, and a rename shows.
    api = Api(stack, alice)
    status, _ = await api.call(
        "POST", f"/servers/{sid}/channels", {"name": "fresh", "kind": "text"}
    )
    assert status == 201
    await expect(channel(page, "fresh")).to_be_visible(timeout=LIVE_MS)


# --- The create-or-join screen: joining with a pasted invite link -------------------------------


async def test_a_newcomer_joins_by_pasting_an_invite_on_the_welcome_screen(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Paste to join")
    status, invite = await Api(stack, alice).call(
        "POST", f"/servers/{server['server_id']}/invites", {}
    )
    assert status == 201, invite
    await open_as(page, stack, bob)
    welcome = page.get_by_test_id("create-or-join")
    await expect(welcome).to_be_visible()
    await welcome.get_by_test_id("join-code").fill("not a code!")
    await welcome.get_by_test_id("join-submit").click()
    await expect(welcome.get_by_test_id("join-error")).to_have_text(
        "Enter a valid invite link or code."
    )
    await welcome.get_by_test_id("join-code").fill(invite["url"])
    await welcome.get_by_test_id("join-submit").click()
    # The join is answered once the homeserver made it and the bridge saw it: not a live update.
    await expect(page.get_by_test_id("server-name")).to_have_text(
        "Paste to join", timeout=3 * LIVE_MS
    )
    await expect(page.get_by_test_id("rail-server")).to_have_count(1)
    await expect(page.get_by_test_id("composer")).to_be_enabled(timeout=LIVE_MS)
