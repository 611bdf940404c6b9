"""Steps shared by the call browser tests: a channel, a page in a server, joining, measuring."""

from __future__ import annotations

import asyncio
from typing import Any

import nio
from playwright.async_api import Browser, BrowserContext, Page, expect

from guilds.vocabulary import CALL_MEMBER_EVENT
from tests.harness.api import Api, eventually
from tests.harness.chat_steps import new_page, open_as
from tests.harness.stack import Stack, User

GROUP_JS = "/static/js/calls/group.js"
# Short membership timing for the tests (production: see docs/CALLS.md).
TEST_TIMING = {"expiresMs": 15_000, "refreshMs": 4_000}
# A small, slow camera: three pages decoding two streams each on a shared 2-core machine.
TEST_CAMERA = {"width": 160, "height": 120, "frameRate": 10}
MEDIA_DEADLINE_S = 90.0
# Live updates (sidebar, tiles) under a loaded machine: a refresh or a sync may lag.
LIVE_MS = 30_000


async def add_channel(stack: Stack, owner: User, sid: str, name: str, kind: str) -> str:
    status, answer = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/channels", {"name": name, "kind": kind}
    )
    assert status == 201, answer
    return str(answer["channel_id"])


def member_key(user: User) -> str:
    """The state key of a user's call membership, as matrix-js-sdk 43 (and Guilds) write it."""
    return f"_{user.user_id}_{user.device_id}_m.call"


async def call_members(stack: Stack, user: User, room_id: str) -> dict[str, dict[str, Any]]:
    """State key → content of every call membership in the room, as a plain Matrix client sees
    it (empty contents included)."""
    async with stack.nio_client(user) as client:
        response = await client.room_get_state(room_id)
        assert isinstance(response, nio.RoomGetStateResponse), response
        return {
            e["state_key"]: e["content"] for e in response.events if e["type"] == CALL_MEMBER_EVENT
        }


async def open_in_server(
    page: Page, stack: Stack, user: User, sid: str, timing: dict[str, int] | None = None
) -> None:
    await open_as(page, stack, user)
    await page.evaluate(
        f"async ([t, v]) => {{ const m = await import('{GROUP_JS}'); m.setCallTiming(t);"
        " m.setCameraConstraints(v); }",
        [TEST_TIMING if timing is None else timing, TEST_CAMERA],
    )
    await page.locator(f'[data-testid="rail-server"][data-server-id="{sid}"]').click()


async def joined(page: Page) -> None:
    """The call panel shows the call's tiles (not a refusal)."""
    await expect(page.get_by_test_id("call-panel")).to_be_visible()
    tiles = page.get_by_test_id("call-tiles")
    try:
        await expect(tiles).to_be_visible(timeout=30_000)
    except AssertionError:
        error = await page.get_by_test_id("call-error").text_content()
        raise AssertionError(f"not in the call; the panel says: {error!r}") from None


async def call_stats(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate(
        f"async () => {{ const c = (await import('{GROUP_JS}')).currentCall();"
        " return c ? await c.stats() : []; }"
    )
    return result


async def wait_for_media(page: Page, others: set[str], *, video: bool) -> list[dict[str, Any]]:
    """Poll getStats until every other participant's audio (and video) arrives in this page."""
    latest: list[dict[str, Any]] = []

    async def flowing() -> bool:
        nonlocal latest
        latest = await call_stats(page)
        per_user = {s["userId"]: s for s in latest}
        return set(per_user) == others and all(
            s["audioBytesReceived"] > 0 and (not video or s["videoFramesDecoded"] > 0)
            for s in per_user.values()
        )

    try:
        await eventually(flowing, MEDIA_DEADLINE_S, 0.5, what="media from every peer")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last stats: {latest}") from None
    return latest


async def new_call_page(
    browser: Browser, contexts: list[BrowserContext], problems: list[str]
) -> Page:
    """A page for one participant, in a browser context of its own (added to `contexts`, which
    the caller closes), 1280×800, with the 60 s timeout a call's steps need; what goes wrong in
    it is noted in `problems`."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(60_000)
    contexts.append(context)
    return await new_page(context, problems)


HEARING_DEADLINE_S = 90.0

# Per other participant (user id): what this page plays of them over `ms` milliseconds.
LISTEN = """async ([module, ms]) => {
  const call = (await import(module)).currentCall();
  if (!call) return {};
  async function sample() {
    const out = {};
    for (const [id, peer] of call.peers) {
      let energy = 0;
      let bytes = 0;
      if (peer.pc) {
        (await peer.pc.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "audio") {
            energy += s.totalAudioEnergy ?? 0;
            bytes += s.bytesReceived ?? 0;
          }
        });
      }
      const tile = [...document.querySelectorAll('[data-testid="call-tile"]')]
        .find((el) => el.dataset.peer === id);
      const audio = tile?.querySelector('[data-testid="call-audio"]') ?? null;
      out[peer.userId] = {
        energy,
        bytes,
        element: Boolean(audio),
        paused: audio ? audio.paused : true,
        readyState: audio ? audio.readyState : 0,
        time: audio ? audio.currentTime : 0,
        tracks: audio?.srcObject ? audio.srcObject.getAudioTracks().length : 0,
      };
    }
    return out;
  }
  const before = await sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = await sample();
  for (const [user, entry] of Object.entries(after)) {
    entry.energyGained = entry.energy - (before[user]?.energy ?? 0);
    entry.timeGained = entry.time - (before[user]?.time ?? 0);
  }
  return after;
}"""


def heard(entry: dict[str, Any]) -> bool:
    return bool(
        entry["element"]
        and not entry["paused"]
        and entry["readyState"] >= 2
        and entry["timeGained"] > 0.5
        and entry["energyGained"] > 0
    )


async def hears(page: Page, who: str, others: set[str]) -> dict[str, Any]:
    """Wait until this page plays audio from every one of `others`; fail naming who not."""
    latest: dict[str, Any] = {}

    async def everyone() -> bool:
        nonlocal latest
        latest = await page.evaluate(LISTEN, [GROUP_JS, 2000])
        return set(latest) == others and all(heard(latest[u]) for u in others)

    try:
        await eventually(everyone, HEARING_DEADLINE_S, 0.5, what=f"{who} hearing {others}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last measured: {latest}") from None
    print(who, "hears", latest)
    return latest


async def all_hear(*listeners: tuple[Page, str, set[str]]) -> None:
    """`hears` for several pages at once (page, who, others): their measuring windows overlap
    instead of following one another, and each page must still hear every one of its others."""
    await asyncio.gather(*(hears(page, who, others) for page, who, others in listeners))
