"""Guilds calls as matrix-js-sdk 43 sees them, and Element Call members as Guilds shows them.

matrix-js-sdk 43 (what Element Web and Element Call build on) runs bundled in its own Chromium
page (tests/harness/jssdk.py). Its `MatrixRTCSession` must list a Guilds participant with the
right intent and no warning, and 37.5 (in Node) must read it too. A member that joins the way
Element Call does (a LiveKit focus, which a Guilds mesh cannot reach) is shown in the Guilds UI
as "in the call from another app", never as a connection that stays "Connecting…".
"""

from __future__ import annotations

from typing import Any

import nio
import pytest
from playwright.async_api import Browser, Page, expect

from tests.harness.api import Api, create_server, join_server
from tests.harness.chat_steps import channel, new_page, open_as
from tests.harness.jssdk import Sdk43Page, run_scenario, start_sdk
from tests.harness.stack import Stack, User

pytestmark = pytest.mark.browser

LIVE_MS = 30_000
FOREIGN_LABEL = "In the call from another app"
# What Element Call names as its transport: a LiveKit SFU (never contacted in this test).
LIVEKIT = {"type": "livekit", "livekit_service_url": "https://livekit.invalid/sfu"}

# The room's MatrixRTC memberships as matrix-js-sdk 43 parses them, once `want` users are in
# (polled in the page until a deadline: Playwright does not await async predicates).
RTC_MEMBERS = """async ({room_id, want, deadline_ms}) => {
  const client = window.client;
  const end = Date.now() + deadline_ms;
  let rows = [];
  while (Date.now() < end) {
    const room = client.getRoom(room_id);
    if (room) {
      const session = client.matrixRTC.getRoomSession(room);
      rows = session.memberships.map((m) => ({
        user_id: m.userId ?? m.sender, device_id: m.deviceId, intent: m.callIntent ?? null,
        expired: m.isExpired(), expiry: m.getAbsoluteExpiry() ?? null,
        transport: m.getTransport(m)?.type ?? null,
      }));
      const users = new Set(rows.map((r) => r.user_id));
      if (want.every((u) => users.has(u))) {
        return {rows, consensus: session.getConsensusCallIntent() ?? null};
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {rows, consensus: null, timed_out: true};
}"""

# Joins the room's call the way Element Call does: matrix-js-sdk 43's own membership manager,
# a LiveKit transport, the intent of a voice call.
JOIN_LIKE_ELEMENT_CALL = """async ({room_id, transport}) => {
  const client = window.client;
  const room = client.getRoom(room_id);
  const session = client.matrixRTC.getRoomSession(room);
  session.joinRoomSession([{...transport, livekit_alias: room_id}], undefined,
                          {callIntent: "audio"});
}"""

# Every text a tile for `user` ever showed in the Guilds page, from now on.
WATCH_TILE_STATES = """(userId) => {
  window.seenStates = [];
  const record = () => {
    for (const tile of document.querySelectorAll('[data-testid="call-tile"]')) {
      if (tile.dataset.userId !== userId) continue;
      const text = tile.querySelector('[data-testid="peer-state"]')?.textContent ?? "";
      if (!window.seenStates.includes(text)) window.seenStates.push(text);
    }
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, characterData: true});
  record();
}"""


async def add_channel(stack: Stack, owner: User, sid: str, name: str, kind: str) -> str:
    status, answer = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/channels", {"name": name, "kind": kind}
    )
    assert status == 201, answer
    return str(answer["channel_id"])


async def rtc_members(page: Page, room_id: str, want: list[str]) -> dict[str, Any]:
    answer: dict[str, Any] = await page.evaluate(
        RTC_MEMBERS, {"room_id": room_id, "want": want, "deadline_ms": LIVE_MS}
    )
    assert not answer.get("timed_out"), f"matrix-js-sdk 43 never listed {want}: {answer}"
    return answer


async def test_matrixrtc_sessions_and_element_call_members(
    browser: Browser, page: Page, stack: Stack, alice: User, bob: User
) -> None:
    server = await create_server(stack, alice, "Interop")
    sid = server["server_id"]
    voice = await add_channel(stack, alice, sid, "talk", "voice")
    await join_server(stack, sid, bob)
    async with stack.nio_client(bob) as client:
        joined = await client.join(voice)
        assert isinstance(joined, nio.JoinResponse), joined

    # Alice joins the voice channel's call in the Guilds UI.
    await open_as(page, stack, alice)
    await page.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]').click()
    await channel(page, "talk").click()
    await expect(page.get_by_test_id("call-tiles")).to_be_visible(timeout=LIVE_MS)

    problems: list[str] = []
    warnings: list[str] = []
    sdk_context = await browser.new_context()
    try:
        sdk_page = await new_page(sdk_context, problems)
        sdk_page.on(
            "console", lambda m: warnings.append(m.text) if m.type in ("warning", "error") else None
        )
        async with Sdk43Page() as url:
            await start_sdk(sdk_page, url, stack, bob)
            # matrix-js-sdk 43 lists Alice, with the intent of a voice channel.
            seen = await rtc_members(sdk_page, voice, [alice.user_id])
            [row] = [r for r in seen["rows"] if r["user_id"] == alice.user_id]
            assert row["device_id"] == alice.device_id and row["intent"] == "audio", row
            assert row["expired"] is False and row["expiry"] is not None, row
            assert seen["consensus"] == "audio", seen
            assert not [w for w in warnings if "m.call.intent" in w], warnings
            # matrix-js-sdk 37.5 (Node) reads the same membership.
            old_sdk = await run_scenario("rtc_memberships", stack, bob, room_id=voice)
            [row] = [r for r in old_sdk.result if r["user_id"] == alice.user_id]
            assert row["device_id"] == alice.device_id and row["expired"] is False, row

            # Bob joins as Element Call would; Alice's page shows him as in another app.
            await page.evaluate(WATCH_TILE_STATES, bob.user_id)
            await sdk_page.evaluate(
                JOIN_LIKE_ELEMENT_CALL, {"room_id": voice, "transport": LIVEKIT}
            )
            bob_tile = page.locator(f'[data-testid="call-tile"][data-user-id="{bob.user_id}"]')
            await expect(bob_tile.get_by_test_id("peer-state")).to_have_text(
                FOREIGN_LABEL, timeout=LIVE_MS
            )
            person = page.locator(
                f'[data-channel-id="{voice}"] [data-testid="call-participant"]'
                f'[data-user-id="{bob.user_id}"]'
            )
            await expect(person).to_have_attribute("data-foreign", "true", timeout=LIVE_MS)
            await expect(person.get_by_test_id("call-participant-app")).to_have_text("other app")
            await expect(page.get_by_test_id("call-status")).to_contain_text("1 in another app")
            # Both are in the session as the SDK reads it; Bob's transport is LiveKit.
            seen = await rtc_members(sdk_page, voice, [alice.user_id, bob.user_id])
            [row] = [r for r in seen["rows"] if r["user_id"] == bob.user_id]
            assert row["transport"] == "livekit" and row["intent"] == "audio", row
            states = await page.evaluate("window.seenStates")
            assert states == [FOREIGN_LABEL], states
    finally:
        await sdk_context.close()
    assert problems == [], problems
