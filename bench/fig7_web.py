"""Figure 7: the web UI against a matrix-nio client on the same stack, in the same run.

(a) First render: from the navigation to the web UI (a fresh browser context: nothing cached, a
    fresh device, so that no response cache of Synapse answers) until the first 50 messages of
    a channel are in the DOM and a frame has been drawn with them, timed in the page from its
    navigation start (MutationObserver installed before any script runs, then the next
    requestAnimationFrame). Baseline, interleaved A B A B …: a matrix-nio client (also a fresh
    device) making the same protocol requests a client needs for the same 50 messages: the
    initial /sync with the web UI's own filter, then /messages backwards until it holds 50.
    The ratio is therefore what the browser adds on top of the homeserver round trips: loading
    the page and its modules, whoami/profile, the provisioning API, and rendering.

(b) Live delivery: one browser sends (composer, Enter); a second browser (the reader) and a
    matrix-nio client (the same reader on another device, long-polling /sync at the same time)
    receive the same message. Per message: the reader's display time (message node in the DOM,
    then the next animation frame) minus the nio client's receipt time (its /sync answer parsed),
    both on the machine's wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

import nio
from playwright.async_api import Browser, Page, async_playwright, expect

from bench.browser import launch_chromium, new_context, new_device, store_session, watch_errors
from bench.common import (
    Comparison,
    Figure,
    Target,
    bench_stack,
    fmt,
    interleaved,
    log,
    parse_args,
    spread,
    summarize,
)
from tests.harness.api import create_server, join_server
from tests.harness.stack import Stack, User

WANT = 50  # messages on screen for "first render"
FIRST_RENDER_TARGET_MS = 1500.0
DISPLAY_TARGET_MS = 100.0
# The web UI's own /sync filter (web/static/js/sync.js SYNC_FILTER) and history page size.
SYNC_FILTER: dict[str, Any] = {
    "room": {
        "state": {"lazy_load_members": True},
        "timeline": {"limit": 30, "lazy_load_members": True},
    },
    "presence": {"not_types": ["*"]},
}
PAGE_SIZE = 40
DEADLINE_MS = 30_000

# Installed before any of the page's scripts: when do WANT message nodes first exist, and when
# is the next frame drawn? Times are performance.now(), i.e. ms since the navigation started.
RENDER_PROBE = """
(() => {
  const want = __WANT__;
  const marks = { first: null, target: null, paint: null, count: 0 };
  window.__benchRender = marks;
  const selector = 'li[data-testid="message"]:not([data-event-id=""])';
  const observer = new MutationObserver(() => {
    const n = document.querySelectorAll(selector).length;
    marks.count = n;
    if (n > 0 && marks.first === null) marks.first = performance.now();
    if (n >= want && marks.target === null) {
      marks.target = performance.now();
      observer.disconnect();
      requestAnimationFrame(() => { marks.paint = performance.now(); });
    }
  });
  observer.observe(document, { childList: true, subtree: true });
})();
""".replace("__WANT__", str(WANT))

# Installed in the reader's page for (b): the wall-clock time each bench message is first in the
# DOM, and the next frame after it.
DELIVERY_PROBE = """
(pattern) => {
  const re = new RegExp(pattern);
  const seen = {};
  window.__benchSeen = seen;
  const observer = new MutationObserver((records) => {
    const now = Date.now();
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (!(node instanceof HTMLElement) || node.dataset.testid !== "message") continue;
        if (!node.dataset.eventId) continue;
        const body = node.querySelector('[data-testid="message-body"]');
        const match = re.exec(body ? body.textContent : "");
        if (!match || seen[match[0]]) continue;
        const entry = { dom: now, paint: null };
        seen[match[0]] = entry;
        requestAnimationFrame(() => { entry.paint = Date.now(); });
      }
    }
  });
  observer.observe(document.body, { childList: true, subtree: true });
}
"""

# Installed in the sender's page for (b): when Enter went down, and when each PUT /send answered.
SEND_PROBE = """
() => {
  const sends = [];
  window.__benchSends = sends;
  window.__benchKeys = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name.includes("/send/m.room.message/")) {
        const t0 = performance.timeOrigin;
        sends.push({ start: t0 + e.startTime, end: t0 + e.responseEnd });
      }
    }
  }).observe({ type: "resource" });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter") window.__benchKeys.push(Date.now());
  }, true);
}
"""

WAIT_RENDER = """
async (deadline) => {
  const end = performance.now() + deadline;
  for (;;) {
    const m = window.__benchRender;
    if (m && m.paint !== null) return m;
    if (performance.now() > end) return m ?? null;
    await new Promise((r) => setTimeout(r, 20));
  }
}
"""


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--messages",
        type=int,
        default=None,
        help="messages for the live-delivery part (default 20, --quick 6)",
    )
    parser.add_argument(
        "--height",
        type=int,
        default=1600,
        help="browser viewport height in px for the first render (the client pages back until "
        "the timeline fills the view; 50 short messages fill about 1600 px)",
    )


class Scene:
    """The stack, one Guilds server, its busy channel, and the people in it."""

    def __init__(self, stack: Stack, server: dict[str, Any], alice: User, bob: User) -> None:
        self.stack = stack
        self.server = server
        self.sid: str = server["server_id"]
        self.room_id: str = server["default_channel_id"]
        self.alice = alice
        self.bob = bob


async def build_scene(stack: Stack, prefill: int) -> Scene:
    alice = await stack.register_user()
    bob = await stack.register_user()
    carol = await stack.register_user()
    server = await create_server(stack, alice, f"Bench {secrets.token_hex(2)}")
    scene = Scene(stack, server, alice, bob)
    for user in (bob, carol):
        await join_server(stack, scene.sid, user)
        async with stack.nio_client(user) as client:
            joined = await client.join(scene.room_id)
            if not isinstance(joined, nio.JoinResponse):
                raise RuntimeError(f"{user.user_id} could not join the channel: {joined}")
    # Two people talking in runs, of varied length, as a channel looks.
    rng = random.Random(7)  # noqa: S311 - made-up chat, not secrets
    async with stack.nio_client(alice) as a, stack.nio_client(carol) as c:
        sent = 0
        while sent < prefill:
            sender = a if (sent // 3) % 2 == 0 else c
            words = " ".join(rng.choice(LOREM) for _ in range(rng.randint(3, 25)))
            response = await sender.room_send(
                scene.room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": f"history {sent}: {words}"},
            )
            if not isinstance(response, nio.RoomSendResponse):
                raise RuntimeError(f"prefill failed: {response}")
            sent += 1
    return scene


LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua guild channel voice role invite server"
).split()


# -- (a) first render ---------------------------------------------------------------------------
async def web_first_render(browser: Browser, scene: Scene, height: int) -> dict[str, float]:
    device = await new_device(scene.stack, scene.bob)
    context = await new_context(browser, height=height)
    problems: list[str] = []
    try:
        page = await context.new_page()
        watch_errors(page, problems)
        await store_session(page, scene.stack, device)
        await context.add_init_script(RENDER_PROBE)
        await page.goto(f"{scene.stack.web_url}/#server={scene.sid}", wait_until="commit")
        marks = await page.evaluate(WAIT_RENDER, DEADLINE_MS)
        if not marks or marks.get("paint") is None:
            raise RuntimeError(
                f"the web UI never showed {WANT} messages (it showed "
                f"{(marks or {}).get('count')}); problems: {problems}"
            )
        if problems:
            raise RuntimeError(f"the page was not clean: {problems}")
        return {
            "first_50_ms": float(marks["paint"]),
            "first_message_ms": float(marks["first"]),
        }
    finally:
        await context.close()


async def nio_first_render(scene: Scene) -> dict[str, float]:
    device = await new_device(scene.stack, scene.bob)
    started = time.perf_counter()
    client = nio.AsyncClient(scene.stack.hs_url, device.user_id, device_id=device.device_id)
    client.restore_login(device.user_id, device.device_id, device.access_token)
    try:
        response = await client.sync(timeout=0, sync_filter=SYNC_FILTER)
        if not isinstance(response, nio.SyncResponse):
            raise RuntimeError(f"initial sync failed: {response}")
        room = response.rooms.join[scene.room_id]
        held = [e for e in room.timeline.events if isinstance(e, nio.RoomMessage)]
        first_ms = (time.perf_counter() - started) * 1000
        token = room.timeline.prev_batch
        while len(held) < WANT and token:
            page = await client.room_messages(
                scene.room_id,
                start=token,
                limit=PAGE_SIZE,
                message_filter={"lazy_load_members": True},
            )
            if not isinstance(page, nio.RoomMessagesResponse):
                raise RuntimeError(f"/messages failed: {page}")
            held += [e for e in page.chunk if isinstance(e, nio.RoomMessage)]
            if not page.chunk or not page.end:
                break
            token = page.end
        if len(held) < WANT:
            raise RuntimeError(f"the channel holds only {len(held)} messages")
        return {
            "first_50_ms": (time.perf_counter() - started) * 1000,
            "first_message_ms": first_ms,
        }
    finally:
        await client.close()


# -- (b) live delivery --------------------------------------------------------------------------
async def open_chat(browser: Browser, scene: Scene, user: User, problems: list[str]) -> Page:
    context = await new_context(browser)
    page = await context.new_page()
    watch_errors(page, problems)
    device = await new_device(scene.stack, user)
    await store_session(page, scene.stack, device)
    await page.goto(f"{scene.stack.web_url}/#server={scene.sid}")
    composer = page.get_by_test_id("composer")
    await expect(composer).to_be_enabled(timeout=30_000)
    await expect(
        page.locator(f'[data-testid="chat"][data-room-id="{scene.room_id}"]')
    ).to_be_visible()
    return page


async def nio_listener(
    client: nio.AsyncClient, room_id: str, pattern: re.Pattern[str], seen: dict[str, float]
) -> None:
    """Long-poll /sync as a plain Matrix client does; note when each bench message arrives."""
    while True:
        response = await client.sync(timeout=30_000, sync_filter=SYNC_FILTER)
        now = time.time() * 1000
        if not isinstance(response, nio.SyncResponse):
            await asyncio.sleep(0.2)
            continue
        room = response.rooms.join.get(room_id)
        for event in room.timeline.events if room else []:
            match = pattern.search(getattr(event, "body", "") or "")
            if match:
                seen.setdefault(match.group(0), now)


async def live_delivery(browser: Browser, scene: Scene, count: int) -> dict[str, list[float]]:
    tag = secrets.token_hex(3)
    pattern = re.compile(rf"bench7-{tag}-\d+")
    problems: list[str] = []
    sender = await open_chat(browser, scene, scene.alice, problems)
    reader = await open_chat(browser, scene, scene.bob, problems)
    await reader.evaluate(DELIVERY_PROBE, pattern.pattern)
    await sender.evaluate(SEND_PROBE)
    device = await new_device(scene.stack, scene.bob)
    client = nio.AsyncClient(scene.stack.hs_url, device.user_id, device_id=device.device_id)
    client.restore_login(device.user_id, device.device_id, device.access_token)
    nio_seen: dict[str, float] = {}
    out: dict[str, list[float]] = {
        "shown_minus_nio_ms": [],
        "dom_minus_nio_ms": [],
        "web_ms": [],
        "nio_ms": [],
        "put_ms": [],
        "put_to_nio_ms": [],
    }
    listener: asyncio.Task[None] | None = None
    try:
        first = await client.sync(timeout=0, sync_filter=SYNC_FILTER)
        if not isinstance(first, nio.SyncResponse):
            raise RuntimeError(f"initial sync failed: {first}")
        listener = asyncio.create_task(nio_listener(client, scene.room_id, pattern, nio_seen))
        composer = sender.get_by_test_id("composer")
        rng = random.Random(8)  # noqa: S311 - a pace, not a secret
        for index in range(count):
            key = f"bench7-{tag}-{index}"
            await composer.fill(f"{key} {' '.join(rng.choice(LOREM) for _ in range(6))}")
            await composer.press("Enter")
            shown = await wait_shown(reader, key, nio_seen)
            web_paint, web_dom, nio_at = shown["paint"], shown["dom"], nio_seen[key]
            sent, put = await sender_times(sender, index)
            out["put_ms"].append(put["end"] - put["start"])
            out["put_to_nio_ms"].append(nio_at - put["end"])
            out["shown_minus_nio_ms"].append(web_paint - nio_at)
            out["dom_minus_nio_ms"].append(web_dom - nio_at)
            out["web_ms"].append(web_paint - sent)
            out["nio_ms"].append(nio_at - sent)
            log(
                f"  message {index + 1}/{count}: PUT {put['end'] - put['start']:.0f} ms, "
                f"nio {nio_at - sent:.0f} ms, "
                f"web {web_paint - sent:.0f} ms, shown − nio {web_paint - nio_at:+.0f} ms"
            )
            # Let typing notices and read markers settle, at an irregular pace.
            await asyncio.sleep(rng.uniform(0.3, 0.7))
        if problems:
            raise RuntimeError(f"a page was not clean: {problems}")
    finally:
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await client.close()
        await sender.context.close()
        await reader.context.close()
    return out


async def sender_times(sender: Page, index: int) -> tuple[float, dict[str, float]]:
    """When Enter went down for message `index`, and its PUT /send (start, answer)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        keys, sends = await sender.evaluate("() => [window.__benchKeys, window.__benchSends]")
        if len(keys) > index and len(sends) > index:
            return float(keys[index]), {k: float(v) for k, v in sends[index].items()}
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the sender's PUT /send of message {index} was not seen")


async def wait_shown(reader: Page, key: str, nio_seen: Mapping[str, float]) -> dict[str, float]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        entry = await reader.evaluate("(k) => window.__benchSeen[k] ?? null", key)
        if entry and entry.get("paint") is not None and key in nio_seen:
            return {"dom": float(entry["dom"]), "paint": float(entry["paint"])}
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{key} was not received by both readers within 15 s")


# -- the figure ---------------------------------------------------------------------------------
async def main(args: argparse.Namespace) -> Figure:
    count = args.messages or (6 if args.quick else 20)
    figure = Figure(
        "fig7_web",
        "Web UI: first render of a channel, live delivery to a second browser",
        ["measure", "web UI (A)", "matrix-nio (B)", "ratio A/B", "target", "verdict"],
        params={
            "first_render_messages": WANT,
            "viewport": f"1280x{args.height}",
            "prefilled_messages": WANT + 20,
            "live_messages": count,
        },
    )
    async with bench_stack(args.backend) as stack:
        log("fig7: building a server with a busy channel")
        scene = await build_scene(stack, WANT + 20)
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                log(f"fig7 (a): first render, {args.pairs} interleaved pairs")
                render = await interleaved(
                    lambda: web_first_render(browser, scene, args.height),
                    lambda: nio_first_render(scene),
                    pairs=args.pairs,
                    a_label="web UI",
                    b_label="matrix-nio",
                    alternate=True,
                    log=log,
                )
                log(f"fig7 (b): live delivery of {count} messages")
                live = await live_delivery(browser, scene, count)
            finally:
                await browser.close()

    first = render["first_50_ms"]
    first_summary = summarize(first.a)
    met_first = None if args.quick else first_summary["median"] <= FIRST_RENDER_TARGET_MS
    figure.rows.append(
        [
            f"navigation → first {WANT} messages drawn, ms",
            spread(first_summary, 4),
            spread(summarize(first.b), 4),
            spread(summarize(first.ratios)),
            f"A median ≤ {FIRST_RENDER_TARGET_MS:.0f} ms",
            verdict(met_first),
        ]
    )
    one = render["first_message_ms"]
    figure.rows.append(
        [
            "navigation → first message drawn, ms",
            spread(summarize(one.a), 4),
            spread(summarize(one.b), 4),
            spread(summarize(one.ratios)),
            "",
            "",
        ]
    )
    delivery = Comparison("send → received, ms", a=live["web_ms"], b=live["nio_ms"])
    web_s, nio_s = summarize(delivery.a), summarize(delivery.b)
    figure.rows.append(
        [
            "Enter → shown (A) / received (B), ms: p50 · p95",
            f"{fmt(web_s['p50'])} · {fmt(web_s['p95'])}",
            f"{fmt(nio_s['p50'])} · {fmt(nio_s['p95'])}",
            spread(summarize(delivery.ratios)),
            "",
            "",
        ]
    )
    put, put_nio = summarize(live["put_ms"]), summarize(live["put_to_nio_ms"])
    figure.rows.append(
        [
            "of which: the sender's PUT /send, ms: p50 · p95",
            f"{fmt(put['p50'])} · {fmt(put['p95'])}",
            f"then to nio receipt {fmt(put_nio['p50'])} · {fmt(put_nio['p95'])}",
            "",
            "",
            "",
        ]
    )
    diff = summarize(live["shown_minus_nio_ms"])
    dom = summarize(live["dom_minus_nio_ms"])
    met_live = None if args.quick else diff["p95"] <= DISPLAY_TARGET_MS
    figure.rows.append(
        [
            "shown in browser − nio receipt, ms: p50 · p95 [min–max]",
            f"{fmt(diff['p50'])} · {fmt(diff['p95'])} [{fmt(diff['min'])}–{fmt(diff['max'])}]",
            "0 (reference)",
            "",
            f"p95 ≤ {DISPLAY_TARGET_MS:.0f} ms",
            verdict(met_live),
        ]
    )
    figure.rows.append(
        [
            "in the DOM − nio receipt, ms: p50 · p95",
            f"{fmt(dom['p50'])} · {fmt(dom['p95'])}",
            "0 (reference)",
            "",
            "",
            "",
        ]
    )
    figure.targets += [
        Target(
            "first render",
            f"median ≤ {FIRST_RENDER_TARGET_MS:.0f} ms",
            f"median {fmt(first_summary['median'], 4)} ms, max {fmt(first_summary['max'], 4)} ms",
            met_first,
        ),
        Target(
            "display vs matrix-nio",
            f"p95 of (shown − nio receipt) ≤ {DISPLAY_TARGET_MS:.0f} ms",
            f"p50 {fmt(diff['p50'])} ms, p95 {fmt(diff['p95'])} ms over {diff['n']} messages",
            met_live,
        ),
    ]
    figure.results = {
        "first_render": render.as_json(),
        "live": {
            "web_vs_nio": delivery.as_json(),
            "shown_minus_nio_ms": {"summary": diff, "values": live["shown_minus_nio_ms"]},
            "dom_minus_nio_ms": {"summary": dom, "values": live["dom_minus_nio_ms"]},
            "put_ms": {"summary": put, "values": live["put_ms"]},
            "put_to_nio_ms": {"summary": put_nio, "values": live["put_to_nio_ms"]},
        },
    }
    figure.notes.append(
        "A = a fresh browser context per trial (cold HTTP cache, new device), B = a fresh "
        "matrix-nio client (new device) doing the same /sync + /messages; ABBA order."
    )
    return figure


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not judged (--quick)"}[met]


def run() -> None:
    args = parse_args("fig7_web", __doc__, extra_args)
    figure = asyncio.run(main(args))
    figure.print()
    figure.write(args)


if __name__ == "__main__":
    run()
