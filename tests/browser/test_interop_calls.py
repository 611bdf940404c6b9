"""Guilds calls as matrix-js-sdk 43 sees them, and Element Call members as Guilds shows them.

matrix-js-sdk 43 (what Element Web and Element Call build on) runs bundled in its own Chromium
page (tests/harness/jssdk.py). Its `MatrixRTCSession` must list a Guilds participant with the
right intent, its end where Guilds means it (`expires` a duration from `created_ts`, equal to
`expires_ts`), and the page must log no warning or error about any call member (a few unrelated
lines are listed, each with its reason); 37.5 (in Node) must read it too. A member that joins
the way Element Call does (a LiveKit focus, which a Guilds mesh cannot reach) is shown in the
Guilds UI as "in the call from another app", never as a connection that stays "Connecting…".
"""

from __future__ import annotations

import re
import time
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
      const events = room.currentState.getStateEvents("org.matrix.msc3401.call.member");
      rows = session.memberships.map((m) => ({
        user_id: m.userId ?? m.sender, device_id: m.deviceId, intent: m.callIntent ?? null,
        expired: m.isExpired(), expiry: m.getAbsoluteExpiry() ?? null, read_at: Date.now(),
        transport: m.getTransport(m)?.type ?? null,
        content: events.find((e) => e.getId() === m.eventId)?.getContent() ?? null,
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


# MatrixRTC's default lifetime of a membership: `expires` is a duration well below it, where an
# absolute time (ms since 1970) would be some ten million times above.
FOUR_HOURS_MS = 4 * 3600_000
# A Guilds membership ends 45 s after its latest refresh, every 15 s (docs/CALLS.md, "Expiry"):
# read at any moment, its end is less than this far ahead.
EXPIRY_AHEAD_MS = 60_000

# What matrix-js-sdk 43's page logs that says nothing about a call member's membership, each a
# regular expression for one whole line ("type: text <where>"), as narrow as the line allows.
# Anything else it logs, a warning or an error, fails the test.
NOT_FOUND = (
    r"error: Failed to load resource: the server responded with a status of 404 \(Not Found\)"
)
LOCAL = r"<http://127\.0\.0\.1:\d+"  # the test page's or the homeserver's address
UNRELATED_SDK_LINES = (
    # The SDK's test page has no icon (the page is tests/harness/jssdk.py's, not Guilds').
    rf"{NOT_FOUND} {LOCAL}/favicon\.ico>",
    # The SDK looks for SFU transports; Guilds serves none on purpose (docs/CALLS.md, "SFU
    # foci"; tests/integration/test_rtc_foci.py), and Synapse answers 404.
    rf"{NOT_FOUND} {LOCAL}/_matrix/client/unstable/org\.matrix\.msc4143/rtc/transports>",
    # Bob's account push rules lack two rules newer than Synapse's defaults; the SDK adds them
    # in memory (its first sync, before it reads any call).
    r"warning: Adding default global override push rule"
    rf" \.org\.matrix\.msc3786\.rule\.room\.server_acl {LOCAL}/sdk\.js>",
    r"warning: Adding default global underride push rule"
    rf" \.org\.matrix\.msc3914\.rule\.room\.call {LOCAL}/sdk\.js>",
)


def unexplained(logged: list[str]) -> list[str]:
    """The warnings and errors of `logged` that no entry of UNRELATED_SDK_LINES explains."""
    return [line for line in logged if not any(re.fullmatch(p, line) for p in UNRELATED_SDK_LINES)]


def expires_as_matrixrtc_reads_it(row: dict[str, Any]) -> None:
    """The Guilds membership's `expires` is a duration from its `created_ts`, `expires_ts` that
    same moment, and matrix-js-sdk 43 reads its end there: less than a minute ahead, as Guilds
    means it, not hours or decades away."""
    content = row["content"]
    assert content is not None, row
    expires, created = content["expires"], content["created_ts"]
    assert isinstance(expires, int) and 0 < expires <= FOUR_HOURS_MS, content
    assert content["expires_ts"] == created + expires, content
    assert row["expiry"] == created + expires, row
    assert 0 < row["expiry"] - row["read_at"] <= EXPIRY_AHEAD_MS, row


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
    # Every warning and error matrix-js-sdk 43's page logs, from before it reads the call.
    logged: list[str] = []
    sdk_context = await browser.new_context()
    try:
        sdk_page = await new_page(sdk_context, problems)
        sdk_page.on(
            "console",
            lambda m: (
                logged.append(f"{m.type}: {m.text} <{m.location.get('url', '')}>")
                if m.type in ("warning", "error")
                else None
            ),
        )
        async with Sdk43Page() as url:
            await start_sdk(sdk_page, url, stack, bob)
            # matrix-js-sdk 43 lists Alice, with the intent of a voice channel.
            seen = await rtc_members(sdk_page, voice, [alice.user_id])
            [row] = [r for r in seen["rows"] if r["user_id"] == alice.user_id]
            assert row["device_id"] == alice.device_id and row["intent"] == "audio", row
            assert row["expired"] is False and row["expiry"] is not None, row
            assert seen["consensus"] == "audio", seen
            expires_as_matrixrtc_reads_it(row)
            assert unexplained(logged) == [], logged
            # matrix-js-sdk 37.5 (Node) reads the same membership.
            old_sdk = await run_scenario("rtc_memberships", stack, bob, room_id=voice)
            [row] = [r for r in old_sdk.result if r["user_id"] == alice.user_id]
            assert row["device_id"] == alice.device_id and row["expired"] is False, row
            # ... and its end as 43 does, less than a minute ahead (this machine's clock).
            assert 0 < row["expiry"] - time.time() * 1000 <= EXPIRY_AHEAD_MS, row

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
            print("matrix-js-sdk 43 logged:", *logged, sep="\n  ")
            assert unexplained(logged) == [], logged
    finally:
        await sdk_context.close()
    assert problems == [], problems
