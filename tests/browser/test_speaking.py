"""The call panel's speaking detector, fed sounds made in the page (no homeserver needed).

Chromium's fake microphone, which the call tests use, beeps for about 35 ms twice a second: a
detector that samples a 10 ms window on each poll misses such sounds for as long as its polls
stay out of phase with them, so the detector must read every sample since its last poll.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

pytestmark = pytest.mark.browser

GROUP_JS = "/static/js/calls/group.js"

# Plays `bursts` tones of `burst_ms` every `period_ms` (gain `level`) into a MediaStream, watches
# it with a SpeakingMonitor, and returns the monitor's edges as [on, ms since the first tone].
RUN = """async ([module, burstMs, periodMs, bursts, level, tailMs]) => {
  const { SpeakingMonitor } = await import(module);
  const context = new AudioContext();
  await context.resume();
  const tone = context.createOscillator();
  tone.frequency.value = 440;
  const gain = context.createGain();
  gain.gain.value = 0;
  const out = context.createMediaStreamDestination();
  tone.connect(gain).connect(out);
  tone.start();
  const first = context.currentTime + 0.3;
  for (let i = 0; i < bursts; i++) {
    gain.gain.setValueAtTime(level, first + (i * periodMs) / 1000);
    gain.gain.setValueAtTime(0, first + (i * periodMs + burstMs) / 1000);
  }
  const edges = [];
  const monitor = new SpeakingMonitor((id, on) =>
    edges.push([on, (context.currentTime - first) * 1000]));
  monitor.watch("beeper", out.stream);
  const total = 300 + bursts * periodMs + tailMs;
  await new Promise((resolve) => setTimeout(resolve, total));
  monitor.stop();
  tone.stop();
  await context.close();
  return edges;
}"""


async def run(page: Page, web_only: str, *args: float) -> list[list[Any]]:
    # Any same-origin document can import the module; the script itself is one.
    await page.goto(f"{web_only}{GROUP_JS}")
    edges: list[list[Any]] = await page.evaluate(RUN, [GROUP_JS, *args])
    return edges


async def test_short_beeps_between_polls_are_heard(page: Page, web_only: str) -> None:
    # 20 ms beeps a second apart: each one lights the indicator, which goes off again in between
    # (the hold is shorter than the gap) and at the end.
    edges = await run(page, web_only, 20, 1000, 6, 0.5, 800)
    assert [on for on, _ in edges] == [True, False] * 6, edges
    # Lit within two polls of each beep.
    ons = [at for on, at in edges if on]
    assert all(0 <= at - 1000 * i < 400 for i, at in enumerate(ons)), edges


async def test_speech_holds_the_indicator_and_silence_never_lights_it(
    page: Page, web_only: str
) -> None:
    # Words 150 ms apart keep it on: one edge up, one down once the sound stops.
    edges = await run(page, web_only, 60, 150, 10, 0.5, 800)
    assert [on for on, _ in edges] == [True, False], edges
    # A sound far below speech (gain 0.005: RMS about 0.0035) is not speaking.
    assert await run(page, web_only, 200, 400, 4, 0.005, 300) == []
