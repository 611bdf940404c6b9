"""Voice channels in Chromium with fake media: everyone hears everyone, measured from the page.

Chromium's fake microphone beeps; each page checks, for every other participant, that the
`<audio>` element of their tile plays (not paused, data to play, time advancing) and that the
audio it receives from them is being played out: the inbound-rtp `totalAudioEnergy` in
`getStats()` grows. Bytes received alone are not hearing (TESTING.md): a first joiner once got
audio whose element never played. The first joiner is checked hearing the later ones.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests.harness.api import create_server, eventually, join_server
from tests.harness.call_steps import GROUP_JS, add_channel, joined, open_in_server
from tests.harness.chat_steps import channel, new_page
from tests.harness.stack import Stack

pytestmark = pytest.mark.browser

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


async def test_in_a_voice_channel_everyone_hears_everyone_the_first_joiner_too(
    browser: Browser, stack: Stack
) -> None:
    # The first joiner sorts between the others: it answers the second (who places that call)
    # and places the call to the third, so both roles are heard from the first joiner's seat.
    first = await stack.register_user(f"m_first_{secrets.token_hex(3)}")
    second = await stack.register_user(f"a_second_{secrets.token_hex(3)}")
    third = await stack.register_user(f"z_third_{secrets.token_hex(3)}")
    server = await create_server(stack, first, "Voices")
    sid = server["server_id"]
    await add_channel(stack, first, sid, "lounge", "voice")
    for user in (second, third):
        await join_server(stack, sid, user)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (first, second, third):
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(60_000)
            contexts.append(context)
            page = await new_page(context, problems)
            pages.append(page)
            await open_in_server(page, stack, user, sid)

        # The first joiner is alone for a while, then the second comes: they hear each other.
        await channel(pages[0], "lounge").click()
        await joined(pages[0])
        await channel(pages[1], "lounge").click()
        await joined(pages[1])
        await hears(pages[0], "first", {second.user_id})
        await hears(pages[1], "second", {first.user_id})

        # The third comes: all three hear both others.
        await channel(pages[2], "lounge").click()
        await joined(pages[2])
        users = [first, second, third]
        for name, page, user in zip(("first", "second", "third"), pages, users, strict=True):
            await hears(page, name, {u.user_id for u in users} - {user.user_id})
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []
