"""Direct conversations in the web UI against the real stack: opened from a member's name or a
message author, one room per pair of users recorded in both users' `m.direct`, shared across
servers, live both ways, and DMs created by another Matrix client."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any
from urllib.parse import quote

import nio
import pytest
from playwright.async_api import Browser, Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.harness.api import create_server, eventually, join_server
from tests.harness.chat_steps import LIVE_MS, message_with, new_page, open_as, open_channel, send
from tests.harness.dm_steps import (
    dm_item,
    dm_room_shown,
    open_dm_from_member,
    open_profile_of_member,
)
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser


async def direct_of(stack: Stack, user: User) -> dict[str, list[str]]:
    """The user's `m.direct` account data, read by a plain matrix-nio client ({} when unset)."""
    async with stack.nio_client(user) as client:
        answer = await client.list_direct_rooms()
        if isinstance(answer, nio.DirectRoomsErrorResponse):
            assert answer.status_code == "M_NOT_FOUND", answer
            return {}
        assert isinstance(answer, nio.DirectRoomsResponse), answer
        return dict(answer.rooms)


async def nio_set_direct(client: nio.AsyncClient, user: User, content: dict[str, Any]) -> None:
    """matrix-nio has no call for global account data: the raw request, as Element sends it."""
    response = await client.send(
        "PUT",
        f"/_matrix/client/v3/user/{quote(user.user_id)}/account_data/m.direct",
        json.dumps(content),
        headers={
            "Authorization": f"Bearer {user.access_token}",
            "Content-Type": "application/json",
        },
    )
    assert response.status == 200, await response.text()


async def message_action(message: Locator, testid: str) -> None:
    """Click one of a message's hover actions. They show while the pointer is over the message,
    and a new message or the reply bar can move it away between hover and click: hover again."""
    for _ in range(5):
        await message.hover()
        try:
            await message.get_by_test_id(testid).click(timeout=3_000)
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError(f"the {testid} action never became clickable")


async def test_dm_opened_from_a_member_name_live_both_ways_one_room_in_m_direct(
    page: Page, browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    first = await create_server(stack, alice, f"First {secrets.token_hex(2)}")
    await join_server(stack, first["server_id"], bob)
    second = await create_server(stack, bob, f"Second {secrets.token_hex(2)}")
    await join_server(stack, second["server_id"], alice)

    await open_as(page, stack, alice)
    await open_channel(page, first["server_id"])
    # Her own entry has no "Message" button.
    await open_profile_of_member(page, alice.user_id)
    await expect(page.get_by_test_id("profile-message")).to_have_count(0)
    await page.keyboard.press("Escape")
    room_id = await open_dm_from_member(page, bob.user_id)
    await expect(page.get_by_test_id("dm-title")).not_to_be_empty()
    await send(page, "hello bob, in private")
    await expect(message_with(page, "hello bob, in private")).to_have_count(1)

    problems: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = await new_page(context, problems)
        await open_as(other, stack, bob)
        # The invitation shows in the rail, and in the Home view's DM list with Accept.
        rail_dm = other.locator(f'[data-testid="rail-dm"][data-room-id="{room_id}"]')
        await expect(rail_dm).to_be_visible(timeout=LIVE_MS)
        await other.get_by_test_id("rail-home").click()
        invite = dm_item(other, alice.user_id)
        await expect(invite).to_be_visible()
        await other.get_by_test_id("dm-list").get_by_test_id("dm-accept").click()
        assert await dm_room_shown(other, alice.user_id) == room_id
        await expect(message_with(other, "hello bob, in private")).to_have_count(1, timeout=LIVE_MS)

        # Both ways, live, no reload.
        await send(other, "hi alice, got it")
        await expect(message_with(page, "hi alice, got it")).to_have_count(1, timeout=LIVE_MS)
        await send(page, "see you in the second server")
        await expect(message_with(other, "see you in the second server")).to_have_count(
            1, timeout=LIVE_MS
        )

        # Both users' m.direct name the one room, as another Matrix client reads it.
        async def both_recorded() -> bool:
            mine, theirs = await direct_of(stack, alice), await direct_of(stack, bob)
            return mine.get(bob.user_id) == [room_id] and theirs.get(alice.user_id) == [room_id]

        await eventually(both_recorded, what="the DM in both users' m.direct")

        # Opening it again from the second server (shared by both) reuses the room.
        await open_channel(page, second["server_id"])
        assert await open_dm_from_member(page, bob.user_id) == room_id
        await open_channel(other, second["server_id"])
        assert await open_dm_from_member(other, alice.user_id) == room_id

        # From a message author's name in a channel, too.
        await open_channel(page, first["server_id"])
        await send(page, "a channel message")
        await open_channel(other, first["server_id"])
        author = message_with(other, "a channel message").get_by_test_id("message-author")
        await author.click()
        await other.get_by_test_id("profile-message").click()
        assert await dm_room_shown(other, alice.user_id) == room_id

        # A new message while Alice is in a server: a badge on Bob's DM in her rail.
        await send(other, "ping from bob")
        rail_dm = page.locator(f'[data-testid="rail-dm"][data-room-id="{room_id}"]')
        await expect(rail_dm.get_by_test_id("rail-dm-badge")).to_have_text(
            re.compile(r"^[1-9]\d*$"), timeout=LIVE_MS
        )
        await page.get_by_test_id("rail-home").click()
        await expect(dm_item(page, bob.user_id).get_by_test_id("dm-badge")).to_be_visible()
        await rail_dm.click()
        await expect(message_with(page, "ping from bob")).to_have_count(1)
        await expect(page.locator('[data-testid="rail-dm"]')).to_have_count(0)

        assert await direct_of(stack, alice) == {bob.user_id: [room_id]}
        assert await direct_of(stack, bob) == {alice.user_id: [room_id]}
        assert problems == []
    finally:
        await context.close()


async def test_dm_created_by_another_client_shows_and_works(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    # Element's way: a room created with is_direct and the invite, then m.direct written.
    async with stack.nio_client(alice) as client:
        created = await client.room_create(
            is_direct=True, preset=nio.RoomPreset.trusted_private_chat, invite=[bob.user_id]
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await nio_set_direct(client, alice, {bob.user_id: [room_id]})
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from nio"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent

    await open_as(page, stack, bob)
    await page.get_by_test_id("rail-home").click()
    entry = dm_item(page, alice.user_id)
    await expect(entry).to_be_visible(timeout=LIVE_MS)
    await entry.click()
    await expect(page.get_by_test_id("dm-invite")).to_be_visible()
    await page.get_by_test_id("dm-invite").get_by_test_id("dm-accept").click()
    assert await dm_room_shown(page, alice.user_id) == room_id
    await expect(message_with(page, "hello from nio")).to_have_count(1, timeout=LIVE_MS)
    # The channels' chat features: a reply (with its preview), a reaction, an edit of one's own.
    theirs = message_with(page, "hello from nio")
    await theirs.hover()
    await expect(theirs.get_by_test_id("action-edit")).to_have_count(0)
    await expect(theirs.get_by_test_id("action-delete")).to_have_count(0)
    await message_action(theirs, "action-reply")
    await expect(page.get_by_test_id("reply-bar")).to_be_visible()
    await send(page, "hello nio, from the web")
    mine = message_with(page, "hello nio, from the web")
    await expect(mine.get_by_test_id("reply-preview")).to_contain_text("hello from nio")
    await message_action(theirs, "action-react")
    await page.locator('[data-testid="emoji-choice"][data-emoji="👍"]').click()
    await expect(theirs.get_by_test_id("reaction-count")).to_have_text("1")
    await message_action(mine, "action-edit")
    await page.get_by_test_id("edit-input").fill("hello nio, from the web (edited here)")
    await page.get_by_test_id("edit-input").press("Enter")
    await expect(message_with(page, "(edited here)").get_by_test_id("edited")).to_be_visible()

    async with stack.nio_client(alice) as client:

        async def reply_seen() -> bool:
            answer = await client.room_messages(room_id, start="", limit=20)
            assert isinstance(answer, nio.RoomMessagesResponse), answer
            return any(
                e.sender == bob.user_id
                and e.source["content"].get("m.relates_to", {}).get("m.in_reply_to")
                for e in answer.chunk
                if isinstance(e, nio.RoomMessageText)
                and e.body.startswith("hello nio, from the web")
            )

        await eventually(reply_seen, what="the web reply in the nio client's room")
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "nio again"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
    await expect(message_with(page, "nio again")).to_have_count(1, timeout=LIVE_MS)

    # Accepting recorded it in Bob's m.direct; Alice's was left as her client wrote it.
    async def recorded() -> bool:
        return (await direct_of(stack, bob)).get(alice.user_id) == [room_id]

    await eventually(recorded, what="the accepted DM in bob's m.direct")
    assert await direct_of(stack, alice) == {bob.user_id: [room_id]}


async def test_declining_a_dm_invitation(page: Page, stack: Stack, alice: User, bob: User) -> None:
    async with stack.nio_client(alice) as client:
        created = await client.room_create(
            is_direct=True, preset=nio.RoomPreset.trusted_private_chat, invite=[bob.user_id]
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
    await open_as(page, stack, bob)
    await page.get_by_test_id("rail-home").click()
    entry = dm_item(page, alice.user_id)
    await expect(entry).to_be_visible(timeout=LIVE_MS)
    await page.get_by_test_id("dm-list").get_by_test_id("dm-decline").click()
    await expect(entry).to_have_count(0)
    await expect(page.get_by_test_id("dm-empty")).to_be_visible()

    async with stack.nio_client(alice) as client:

        async def bob_left() -> bool:
            state = await client.room_get_state_event(room_id, "m.room.member", bob.user_id)
            return getattr(state, "content", {}).get("membership") == "leave"

        await eventually(bob_left, what="bob's decline to reach the room")
    assert await direct_of(stack, bob) == {}


async def test_m_direct_merging_rules(page: Page, stack: Stack, alice: User) -> None:
    """The pure rules of dms.js, run in Chromium on the module the client loads."""
    await open_as(page, stack, alice)
    result = await page.evaluate(
        """async () => {
          const m = await import("/static/js/dms.js");
          const a = "@a:hs", b = "@b:hs";
          const out = {};
          // Another client's entries (even malformed ones) survive a merge untouched.
          const theirs = { [a]: ["!one:hs"], "@weird": "not a list" };
          out.added = m.withDirectRoom(theirs, b, "!two:hs");
          out.again = m.withDirectRoom(out.added.content, b, "!two:hs");
          // A room is a DM with one person: marking it for b takes it off a's list.
          out.moved = m.withDirectRoom({ [a]: ["!one:hs", "!x:hs"] }, b, "!x:hs");
          out.movedLast = m.withDirectRoom({ [a]: ["!x:hs"] }, b, "!x:hs");
          out.fromNothing = m.withDirectRoom(null, a, "!one:hs");
          out.normalized = m.normalizeDirect(
            { [a]: ["!1", "!1", 5, "x"], nope: ["!2"], [b]: "!3" },
          );
          out.partners = [...m.partnersByRoom({ [a]: ["!1"], [b]: ["!2", "!1"] })];
          const c = (roomId, mine, theirs, lastActive = 0) =>
            ({ roomId, mine, theirs, lastActive });
          const pick = (...candidates) => m.chooseDmRoom(candidates);
          out.choose = {
            bothJoinedFirst: pick(c("!inv", "join", "invite", 9), c("!both", "join", "join", 1)),
            latestAmongEquals: pick(c("!old", "join", "join", 1), c("!new", "join", "join", 5)),
            leftIsNoDm: pick(c("!left", "join", "leave", 9), c("!ban", "join", "ban", 9)),
            joinedFirst: pick(c("!invited", "invite", "join"), c("!mine", "join", "invite")),
            inviteWhenAlone: pick(c("!invited", "invite", "join")),
            none: pick(),
          };
          const member = (stateKey, content, sender = a) =>
            ({ type: "m.room.member", state_key: stateKey, sender, content });
          out.invite = m.inviteInfo([member(b, { membership: "invite", is_direct: true })], b);
          out.notInvited = m.inviteInfo([member(a, { membership: "join" })], b);
          return out;
        }"""
    )
    a, b = "@a:hs", "@b:hs"
    assert result["added"] == {
        "content": {a: ["!one:hs"], "@weird": "not a list", b: ["!two:hs"]},
        "changed": True,
    }
    assert result["again"]["changed"] is False
    assert result["moved"] == {"content": {a: ["!one:hs"], b: ["!x:hs"]}, "changed": True}
    assert result["movedLast"] == {"content": {b: ["!x:hs"]}, "changed": True}
    assert result["fromNothing"] == {"content": {a: ["!one:hs"]}, "changed": True}
    assert result["normalized"] == {a: ["!1"]}
    assert result["partners"] == [["!1", a], ["!2", b]]
    assert result["choose"] == {
        "bothJoinedFirst": "!both",
        "latestAmongEquals": "!new",
        "leftIsNoDm": None,
        "joinedFirst": "!mine",
        "inviteWhenAlone": "!invited",
        "none": None,
    }
    assert result["invite"] == {"sender": a, "isDirect": True}
    assert result["notInvited"] is None


async def test_dm_joined_by_another_client_of_the_same_user_shows_live(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    await open_as(page, stack, bob)
    await page.get_by_test_id("rail-home").click()
    await expect(page.get_by_test_id("dm-empty")).to_be_visible()
    async with stack.nio_client(alice) as client:
        created = await client.room_create(
            is_direct=True, preset=nio.RoomPreset.trusted_private_chat, invite=[bob.user_id]
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "from alice's client"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
    await expect(dm_item(page, alice.user_id)).to_be_visible(timeout=LIVE_MS)
    # Bob accepts on another device, and that client writes his m.direct after joining: the
    # list follows both changes without a reload.
    async with stack.nio_client(bob) as client:
        joined = await client.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        await expect(page.get_by_test_id("dm-accept")).to_have_count(0, timeout=LIVE_MS)
        await nio_set_direct(client, bob, {alice.user_id: [room_id]})
    entry = dm_item(page, alice.user_id)
    await expect(entry).to_be_visible(timeout=LIVE_MS)
    await entry.click()
    assert await dm_room_shown(page, alice.user_id) == room_id
    await expect(message_with(page, "from alice's client")).to_have_count(1)


async def test_an_encrypted_dm_is_read_only_here(
    page: Page, stack: Stack, alice: User, bob: User
) -> None:
    """Element encrypts DMs by default. This client has no keys: it shows the DM and says why it
    cannot write there, instead of sending plaintext into an end-to-end encrypted room."""
    async with stack.nio_client(alice) as client:
        created = await client.room_create(
            is_direct=True,
            preset=nio.RoomPreset.trusted_private_chat,
            invite=[bob.user_id],
            initial_state=[
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
    await open_as(page, stack, bob)
    await page.get_by_test_id("rail-home").click()
    await dm_item(page, alice.user_id).click()
    await page.get_by_test_id("dm-invite").get_by_test_id("dm-accept").click()
    chat = page.get_by_test_id("dm-chat")
    await expect(chat).to_have_attribute("data-room-id", room_id)
    composer = page.get_by_test_id("composer")
    await expect(composer).to_be_disabled()
    await expect(composer).to_have_attribute("placeholder", re.compile("end-to-end encrypted"))
