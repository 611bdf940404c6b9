"""Voice and video channels in Chromium with fake media (issue #6, group calls in a full mesh).

Three people in three browser contexts join one video channel and each receives audio and video
from both others (getStats per peer); a matrix-nio client reads the three memberships from room
state; one leaves; one loses its connection and its membership is gone soon after (its delayed
leave, else its expiry and the bridge's sweep). A voice channel carries no video even when the
page asks for a camera. A channel whose call holds eight memberships tells the ninth person it is
full and writes nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import nio
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from guilds.vocabulary import CALL_MEMBER_EVENT
from tests.harness.api import Api, create_server, eventually, join_server
from tests.harness.call_steps import (
    GROUP_JS,
    LIVE_MS,
    TEST_TIMING,
    add_channel,
    call_members,
    call_stats,
    joined,
    member_key,
    new_call_page,
    open_in_server,
    wait_for_media,
)
from tests.harness.chat_steps import channel, message_with, new_page, send
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser


async def sending_budgets(page: Page) -> dict[str, Any]:
    """Per peer user id: the maxBitrate our video sender to them was given."""
    return {s["userId"]: s["videoMaxBitrate"] for s in await call_stats(page)}


async def expect_budget(page: Page, peers: int) -> None:
    """Every video sender of the page holds the budget of a call with `peers` peers."""
    wanted = await page.evaluate(
        f"async (n) => (await import('{GROUP_JS}')).videoEncoding(n).maxBitrate", peers
    )
    budgets: dict[str, Any] = {}

    async def applied() -> bool:
        nonlocal budgets
        budgets = await sending_budgets(page)
        return len(budgets) == peers and set(budgets.values()) == {wanted}

    try:
        await eventually(applied, 30.0, 0.5, what=f"the {peers}-peer video budget")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; wanted {wanted}, senders have {budgets}") from None


async def test_three_people_in_a_video_channel_mesh_leave_and_expiry(
    browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    carol = await stack.register_user()
    server = await create_server(stack, alice, "Calls")
    sid = server["server_id"]
    video_id = await add_channel(stack, alice, sid, "hangout", "video")
    for user in (bob, carol):
        await join_server(stack, sid, user)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (alice, bob, carol):
            page = await new_call_page(browser, contexts, problems)
            pages.append(page)
            await open_in_server(page, stack, user, sid)
        for page in pages:
            await channel(page, "hangout").click()
            await joined(page)

        users = {alice.user_id, bob.user_id, carol.user_id}
        for page, user in zip(pages, (alice, bob, carol), strict=True):
            stats = await wait_for_media(page, users - {user.user_id}, video=True)
            print(user.user_id, stats)
            assert all(s["state"] == "connected" for s in stats), stats
            # Three tiles (self + two), each peer shown connected.
            await expect(page.get_by_test_id("call-tile")).to_have_count(3, timeout=LIVE_MS)
            await expect(
                page.get_by_test_id("peer-state").filter(has_text="Connected")
            ).to_have_count(2, timeout=LIVE_MS)
            # The sidebar lists the three, live from room state.
            people = page.locator(
                f'[data-testid="call-participants"][data-channel-id="{video_id}"] '
                '[data-testid="call-participant"]'
            )
            await expect(people).to_have_count(3, timeout=LIVE_MS)
            # Each stream gets the budget of a mesh of two peers.
            await expect_budget(page, 2)

        # Any Matrix client sees the three memberships, in the MatrixRTC shape.
        members = await call_members(stack, alice, video_id)
        live = {k: c for k, c in members.items() if c}
        assert set(live) == {member_key(u) for u in (alice, bob, carol)}, members
        for content in live.values():
            assert content["application"] == "m.call" and content["scope"] == "m.room"
            assert content["call_id"] == "" and content["foci_preferred"] == []
            assert content["expires"] > 0 and content["created_ts"] > 0
            assert isinstance(content["membershipID"], str) and content["device_id"]
            assert content["m.call.intent"] == "video"

        # Carol leaves: the others' tiles and the room state follow.
        await pages[2].get_by_test_id("call-leave").click()
        await expect(pages[2].get_by_test_id("call-panel")).to_be_hidden()
        for page in pages[:2]:
            await expect(page.get_by_test_id("call-tile")).to_have_count(2, timeout=LIVE_MS)
            await expect(
                page.locator(f'[data-channel-id="{video_id}"] [data-testid="call-participant"]')
            ).to_have_count(2, timeout=LIVE_MS)
        carol_key = member_key(carol)
        assert (await call_members(stack, alice, video_id))[carol_key] == {}
        # One peer left: the stream to it gets the larger budget back.
        for page in pages[:2]:
            await expect_budget(page, 1)

        # Bob loses his connection, then his tab is gone: no goodbye reaches the homeserver.
        # His membership outlives him only until his delayed leave goes out (or, without
        # delayed events, until its expiry, when the bridge clears it).
        bob_key = member_key(bob)
        await contexts[1].set_offline(True)
        started = asyncio.get_running_loop().time()

        async def bob_gone() -> bool:
            return not (await call_members(stack, alice, video_id)).get(bob_key)

        assert await eventually(bob_gone, 90.0, 0.5, what="bob's membership cleared")
        took = asyncio.get_running_loop().time() - started
        print(f"bob's membership cleared {took:.1f} s after he went offline")
        await contexts[1].close()
        await expect(pages[0].get_by_test_id("call-tile")).to_have_count(1, timeout=LIVE_MS)
        await expect(
            pages[0].locator(f'[data-channel-id="{video_id}"] [data-testid="call-participant"]')
        ).to_have_count(1, timeout=LIVE_MS)
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


async def test_a_voice_channel_carries_no_video_even_when_asked(
    browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Voice")
    sid = server["server_id"]
    voice_id = await add_channel(stack, alice, sid, "lounge", "voice")
    await join_server(stack, sid, bob)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    # A delayed leave an hour ahead: only the goodbye on closing the tab (below) can empty it.
    timing = {**TEST_TIMING, "leaveDelayMs": 3_600_000}
    try:
        for user in (alice, bob):
            context = await browser.new_context()
            context.set_default_timeout(60_000)
            contexts.append(context)
            page = await new_page(context, problems)
            pages.append(page)
            await open_in_server(page, stack, user, sid, timing=timing)
            await channel(page, "lounge").click()
            await joined(page)
        await wait_for_media(pages[0], {bob.user_id}, video=False)
        await wait_for_media(pages[1], {alice.user_id}, video=False)
        # The camera and screen buttons are not offered in a voice channel...
        await expect(pages[0].get_by_test_id("call-camera")).to_be_hidden()
        # ...and asking the engine directly is refused.
        refusal = await pages[0].evaluate(
            f"async () => {{ const c = (await import('{GROUP_JS}')).currentCall();"
            " try { await c.setCamera(true); return 'accepted'; } catch (e) { return e.message; } }"
        )
        assert refusal == "Voice channels carry no video.", refusal
        await asyncio.sleep(2)
        for page in pages:
            stats = await call_stats(page)
            assert stats and all(
                s["videoTracksSent"] == 0
                and s["videoBytesSent"] == 0
                and s["videoFramesDecoded"] == 0
                for s in stats
            ), stats
            sdp_has_video = await page.evaluate(
                f"async () => [...(await import('{GROUP_JS}')).currentCall().peers.values()]"
                ".some((p) => /m=video [1-9]/.test(p.pc.localDescription.sdp)"
                " || p.pc.getSenders().some((s) => s.track && s.track.kind === 'video'))"
            )
            assert sdp_has_video is False
        members = await call_members(stack, alice, voice_id)
        assert len([c for c in members.values() if c]) == 2

        # Closing the tab says goodbye at once (fetch keepalive on pagehide): with bob's
        # membership now valid for an hour, and his delayed leave an hour ahead, nothing else
        # could clear it within the deadline.
        bob_key = member_key(bob)
        await pages[1].evaluate(
            f"async () => (await import('{GROUP_JS}')).setCallTiming({{expiresMs: 3600000}})"
        )

        async def long_lived() -> bool:
            content = (await call_members(stack, alice, voice_id)).get(bob_key) or {}
            return content.get("expires_ts", 0) > time.time() * 1000 + 600_000

        assert await eventually(long_lived, 20.0, 0.5, what="bob's hour-long membership")
        await pages[1].close(run_before_unload=True)

        async def bob_left() -> bool:
            return (await call_members(stack, alice, voice_id)).get(bob_key) == {}

        assert await eventually(bob_left, 20.0, 0.5, what="bob's goodbye on closing the tab")
        await expect(pages[0].get_by_test_id("call-tile")).to_have_count(1, timeout=LIVE_MS)
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


async def test_the_ninth_person_is_told_the_channel_is_full(
    page: Page, stack: Stack, alice: User
) -> None:
    server = await create_server(stack, alice, "Crowded")
    sid = server["server_id"]
    voice_id = await add_channel(stack, alice, sid, "stage", "voice")
    crowd = [await stack.register_user() for _ in range(8)]

    async def enter(user: User) -> None:
        await join_server(stack, sid, user)
        async with stack.nio_client(user) as client:
            joined = await client.join(voice_id)
            assert isinstance(joined, nio.JoinResponse), joined
            content = {
                "application": "m.call",
                "call_id": "",
                "scope": "m.room",
                "device_id": user.device_id,
                "focus_active": {"type": "mesh"},
                "foci_preferred": [],
                "membershipID": f"crowd-{user.device_id}",
                "expires": 3_600_000,
            }
            # The key shape Guilds wrote before matrix-js-sdk 43's: still read as a member.
            put = await client.room_put_state(
                voice_id, CALL_MEMBER_EVENT, content, f"_{user.user_id}_{user.device_id}"
            )
            assert isinstance(put, nio.RoomPutStateResponse), put

    await asyncio.gather(*(enter(user) for user in crowd))
    await open_in_server(page, stack, alice, sid)
    # Alice sees the eight in the sidebar without joining the call.
    people = page.locator(f'[data-channel-id="{voice_id}"] [data-testid="call-participant"]')
    await expect(people).to_have_count(8, timeout=LIVE_MS)
    await channel(page, "stage").click()
    await expect(page.get_by_test_id("call-error")).to_contain_text("stage is full")
    await expect(page.get_by_test_id("call-tiles")).to_be_hidden()
    members = await call_members(stack, alice, voice_id)
    assert member_key(alice) not in members
    assert len([c for c in members.values() if c]) == 8


async def test_controls_permissions_speaking_and_chat_during_a_call(
    browser: Browser, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Studio")
    sid = server["server_id"]
    await add_channel(stack, alice, sid, "hangout", "video")
    # Members may talk but not show video: bob (a plain member) gets no camera.
    status, role = await Api(stack, alice).call(
        "PATCH", f"/servers/{sid}/roles/member", {"permissions": ["send_messages", "connect"]}
    )
    assert status == 200, role
    await join_server(stack, sid, bob)
    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (alice, bob):
            page = await new_call_page(browser, contexts, problems)
            pages.append(page)
            await open_in_server(page, stack, user, sid)
            await channel(page, "hangout").click()
            await joined(page)
        alice_page, bob_page = pages
        # Alice (owner) sends video; bob only audio, his camera button disabled.
        await wait_for_media(bob_page, {alice.user_id}, video=True)
        await wait_for_media(alice_page, {bob.user_id}, video=False)
        await expect(bob_page.get_by_test_id("call-camera")).to_be_disabled()
        await expect(alice_page.get_by_test_id("call-camera")).to_be_enabled()
        assert all(s["videoTracksSent"] == 0 for s in await call_stats(bob_page))

        # Speaking indicators: the fake microphone beeps; bob's page shows alice speaking.
        alice_tile = bob_page.locator(f'[data-testid="call-tile"][data-user-id="{alice.user_id}"]')
        await expect(alice_tile).to_have_class(re.compile(r"\bspeaking\b"), timeout=20_000)

        # Mute: bob sees alice muted; deafen silences alice's speakers.
        await alice_page.get_by_test_id("call-mute").click()
        await expect(alice_tile.get_by_test_id("tile-muted")).to_be_visible()
        await alice_page.get_by_test_id("call-mute").click()
        await expect(alice_tile.get_by_test_id("tile-muted")).to_be_hidden()
        await alice_page.get_by_test_id("call-deafen").click()
        muted = await alice_page.evaluate(
            "() => [...document.querySelectorAll('[data-testid=call-audio]')].map((a) => a.muted)"
        )
        assert muted == [True], muted
        await alice_page.get_by_test_id("call-deafen").click()

        # Camera off: no video leaves alice; screen share: video flows again, from the screen.
        await alice_page.get_by_test_id("call-camera").click()
        await expect(alice_page.get_by_test_id("call-camera")).to_have_attribute(
            "aria-pressed", "false"
        )
        assert all(s["videoTracksSent"] == 0 for s in await call_stats(alice_page))
        await alice_page.get_by_test_id("call-screen").click()
        await expect(alice_page.get_by_test_id("call-screen")).to_have_attribute(
            "aria-pressed", "true"
        )
        before = (await call_stats(bob_page))[0]["videoFramesDecoded"]

        async def screen_frames() -> bool:
            stats = await call_stats(bob_page)
            return bool(stats) and stats[0]["videoFramesDecoded"] > before

        assert await eventually(screen_frames, 30.0, 0.5, what="screen frames at bob")

        # The call stays while alice reads and writes in a text channel.
        await channel(alice_page, "general").click()
        await expect(alice_page.get_by_test_id("composer")).to_be_enabled()
        await send(alice_page, "talking and typing")
        await expect(message_with(alice_page, "talking and typing")).to_have_count(1)
        await expect(alice_page.get_by_test_id("call-panel")).to_be_visible()
        assert [s["state"] for s in await call_stats(alice_page)] == ["connected"]
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []
