"""The mesh's sending budget per peer (web/static/js/calls/group.js `videoEncoding`).

In a full mesh each participant encodes one stream per peer: the per-stream budget must shrink
as the call grows, so that what one participant sends in all stays near what a two-person
call costs. test_calls.py checks the budget is applied to live senders as people come and go.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

pytestmark = pytest.mark.browser

GROUP_JS = "/static/js/calls/group.js"


async def budgets(page: Page, web_only: str, screen: bool) -> list[dict[str, Any]]:
    await page.goto(f"{web_only}{GROUP_JS}")
    found: list[dict[str, Any]] = await page.evaluate(
        "async ([module, screen]) => { const { videoEncoding } = await import(module);"
        " return [1, 2, 3, 4, 5, 6, 7].map((n) => videoEncoding(n, { screen })); }",
        [GROUP_JS, screen],
    )
    return found


async def test_each_stream_gets_less_as_the_call_grows_and_the_total_stays_bounded(
    page: Page, web_only: str
) -> None:
    camera = await budgets(page, web_only, False)
    bitrates = [b["maxBitrate"] for b in camera]
    # Pixels per second of one stream, from the 640x360 camera the call asks for.
    work = [640 * 360 / b["scaleResolutionDownBy"] ** 2 * b["maxFramerate"] for b in camera]
    assert bitrates == sorted(bitrates, reverse=True) and bitrates[-1] < bitrates[0]
    assert work == sorted(work, reverse=True) and work[-1] <= work[0] / 4
    totals = [rate * peers for peers, rate in enumerate(bitrates, start=1)]
    # All the streams together stay within 1.5 Mbit/s, whatever the size (8 people: 7 peers).
    assert max(totals) <= 1_500_000, totals
    # Encoding work in all: at 8 people no more than twice a two-person call's.
    assert work[6] * 7 <= 2 * work[0], work


async def test_a_screen_share_keeps_its_resolution_and_gives_up_frame_rate(
    page: Page, web_only: str
) -> None:
    camera = await budgets(page, web_only, False)
    screen = await budgets(page, web_only, True)
    assert all(b["scaleResolutionDownBy"] == 1 for b in screen)
    assert all(
        s["maxFramerate"] <= min(c["maxFramerate"], 10) for s, c in zip(screen, camera, strict=True)
    )
