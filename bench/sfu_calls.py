"""Figure 8's SFU rows: a channel call through Janus with N participants, two of them real
browsers (two contexts of one Chromium) that measure, the N − 2 others synthetic
(tests/harness/synthetic.py: aiortc publishing a tone and a 160×120 picture with the bridge's
credentials and the same MatrixRTC membership a browser writes).

Join time: the *resident* browser is in the call throughout; the *joiner* browser clicks the
channel (timestamped in the page, as for the mesh rows) and its call polls `getStats()` until
audio bytes and decoded video frames arrived from every one of the N − 1 others (the resident
included); then it leaves, and the next trial starts. After the last trial, with all N in the
call, the resident's page is checked the same way (it receives every one of its N − 1 speakers
too: "every browser receiving every speaker").

Comparison (A/B in one process): the SFU row of N is set beside the mesh row of the same N
measured a minute earlier in the same run and browser (bench/fig8_calls.py), where the mesh can
(N ≤ 8); its ratio is SFU / mesh.

CPU, from /proc over a steady window with all N in the call, and again with the joiner gone:
Janus's own process; every Chromium process (the two browsers); this Python process (the
N − 2 synthetic participants, plus Playwright's client, which is idle then). Each window also
records the forwarded streams (what Janus sends: each browser subscribes to every other
participant; synthetic participants subscribe to nobody) and `os.getloadavg()` — other people
load this machine. Janus's cost splits into a part per publisher and a part per forwarded
stream (a least-squares fit over every window), which sizes a full call where every participant
subscribes to every other: per participant, `publisher + (N − 1) × stream`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import nio
from playwright.async_api import Browser, Page, expect

from bench.browser import chromium_pids, cpu_used, new_context, store_session, watch_errors
from bench.browser import cpu_seconds as cpu_seconds_of
from bench.common import bench_stack, cpu_seconds, log, summarize
from guildsctl.janus import LocalJanus
from guildsctl.synapse import stop
from tests.harness.api import Api, create_server, join_server
from tests.harness.sfu import start_test_janus
from tests.harness.stack import Stack, User
from tests.harness.synthetic import SyntheticParticipant

SFU_SIZES = (2, 4, 8, 16, 25)
GROUP_JS = "/static/js/calls/group.js"
PATIENCE_MS = 120_000

# Poll the page's call until `peers` distinct peers have sent audio bytes and decoded video.
RECEIVING = """
async ({ module, peers, deadline }) => {
  const { currentCall } = await import(module);
  const started = performance.now();
  let seen = 0;
  while (performance.now() - started < deadline) {
    const call = currentCall();
    if (call) {
      const from = new Set();
      for (const s of await call.stats()) {
        if (s.videoFramesDecoded > 0 && s.audioBytesReceived > 0) from.add(s.userId);
      }
      seen = from.size;
      if (seen >= peers) return { ok: true, seen, ms: performance.now() - started };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { ok: false, seen };
}
"""


LEAVE = "() => document.querySelector('[data-testid=\"call-leave\"]').click()"


# The joiner's call grid once everyone is in: how many tiles, how many wholly inside the grid's
# box and the window (nothing to scroll to), whether any two overlap, their widths, and whether
# one speaker is outlined (the synthetic participants play a tone). Waits for `tiles` tiles and
# a speaker, up to `deadline` ms.
GRID = """
async ({ tiles, deadline }) => {
  const started = performance.now();
  let last = { tiles: 0 };
  while (performance.now() - started < deadline) {
    const grid = document.querySelector('[data-testid="call-tiles"]');
    const els = [...document.querySelectorAll('[data-testid="call-tile"]')];
    if (grid && els.length) {
      const box = grid.getBoundingClientRect();
      const rects = els.map((el) => el.getBoundingClientRect());
      const inside = (r) =>
        r.width > 0 && r.height > 0 &&
        r.left >= Math.max(box.left, 0) - 1 && r.top >= Math.max(box.top, 0) - 1 &&
        r.right <= Math.min(box.right, innerWidth) + 1 &&
        r.bottom <= Math.min(box.bottom, innerHeight) + 1;
      let overlaps = 0;
      for (let i = 0; i < rects.length; i++) {
        for (let j = i + 1; j < rects.length; j++) {
          const a = rects[i], b = rects[j];
          const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
          const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (w > 1 && h > 1) overlaps++;
        }
      }
      const widths = rects.map((r) => r.width);
      last = {
        tiles: els.length,
        in_view: rects.filter(inside).length,
        overlaps,
        min_width: Math.min(...widths),
        max_width: Math.max(...widths),
        speakers: els.filter((el) => el.classList.contains("active-speaker")).length,
        window: [innerWidth, innerHeight],
      };
      if (last.tiles >= tiles && last.speakers === 1) return { ok: true, ...last };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { ok: false, ...last };
}
"""


def grid_text(grid: dict[str, Any]) -> str:
    """The joiner's grid in a few words: '25 tiles, 25 in view, 1 speaker outlined'."""
    if not grid.get("tiles"):
        return "no tiles"
    text = f"{grid['tiles']} tiles, {grid['in_view']} in view, {grid['speakers']} speaker outlined"
    if grid.get("overlaps"):
        text += f", {grid['overlaps']} overlapping"
    return text


async def _channel(stack: Stack, owner: User) -> tuple[str, str]:
    server = await create_server(stack, owner, f"SFU {secrets.token_hex(2)}")
    sid = server["server_id"]
    status, answer = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/channels", {"name": "bench-sfu", "kind": "video"}
    )
    if status != 201:
        raise RuntimeError(f"could not create the video channel: {status} {answer}")
    return sid, str(answer["channel_id"])


async def _member(stack: Stack, sid: str, room_id: str) -> User:
    user = await stack.register_user()
    await join_server(stack, sid, user)
    async with stack.nio_client(user) as client:
        joined = await client.join(room_id)
        if not isinstance(joined, nio.JoinResponse):
            raise RuntimeError(f"{user.user_id} could not join the channel: {joined}")
    return user


async def _open_page(browser: Browser, stack: Stack, user: User, sid: str, room_id: str) -> Page:
    context = await new_context(browser)
    page = await context.new_page()
    # Other people load this machine (load averages of 40 and more were seen): be patient.
    page.set_default_timeout(PATIENCE_MS)
    await store_session(page, stack, user)
    await page.goto(f"{stack.web_url}/#server={sid}")
    button = page.locator(f'[data-testid="channel"][data-channel-id="{room_id}"]')
    await expect(button).to_be_visible(timeout=PATIENCE_MS)
    return page


async def cpu_window(janus_pid: int, seconds: float, **shape: int) -> dict[str, Any]:
    """Cores used over `seconds` of wall time by Janus, by Chromium (both browsers), and by this
    process (the synthetic participants); the load average at its end; the call's `shape`."""
    browsers = chromium_pids()
    janus0, browsers0, own0 = (
        cpu_seconds(janus_pid),
        cpu_seconds_of(browsers),
        cpu_seconds(os.getpid()),
    )
    started = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - started
    return {
        "wall_s": wall,
        "janus_cores": (cpu_seconds(janus_pid) - janus0) / wall,
        "browsers_cores": cpu_used(browsers0, cpu_seconds_of(chromium_pids())) / wall,
        "synthetic_process_cores": (cpu_seconds(os.getpid()) - own0) / wall,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        **shape,
    }


def janus_fit(windows: list[dict[str, Any]]) -> dict[str, float] | None:
    """Least squares `janus_cores ≈ base + publishers × p + streams × s` over the windows."""
    rows = [(1.0, float(w["publishers"]), float(w["streams"])) for w in windows]
    ys = [float(w["janus_cores"]) for w in windows]
    if len(rows) < 4:
        return None
    # Normal equations (3×3), solved by Cramer's rule.
    ata = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
    aty = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(3)]

    def det(m: list[list[float]]) -> float:
        return (
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        )

    whole = det(ata)
    if abs(whole) < 1e-9:
        return None
    solved = []
    for k in range(3):
        m = [row[:] for row in ata]
        for i in range(3):
            m[i][k] = aty[i]
        solved.append(det(m) / whole)
    base, publisher, stream = solved
    return {"base_cores": base, "per_publisher_cores": publisher, "per_stream_cores": stream}


def full_call_cost(fit: dict[str, float], size: int) -> float:
    """Janus's cores per participant in a call of `size` where everyone receives everyone."""
    return fit["per_publisher_cores"] + (size - 1) * fit["per_stream_cores"]


async def measure_sfu(
    browser: Browser,
    args: argparse.Namespace,
    sizes: list[int],
    trials: int,
    window_s: float,
    wait_frames_js: str,
    click_probe_js: str,
    click_channel_js: str,
    deadline_ms: int,
) -> dict[str, dict[str, Any]]:
    """Per size: join times (ms), the resident's reception, and the CPU windows."""
    results: dict[str, dict[str, Any]] = {}
    js = (wait_frames_js, click_probe_js, click_channel_js)
    with tempfile.TemporaryDirectory(prefix="guilds-bench-janus-") as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        proc, janus = start_test_janus(root)
        try:
            await _measure(
                proc.pid, janus, browser, args, sizes, trials, window_s, js, deadline_ms, results
            )
        except Exception as exc:  # noqa: BLE001 - the figure reports how far it got
            results.setdefault("model", {})["setup_error"] = f"{type(exc).__name__}: {exc}"
            log(f"  SFU: stopped, {exc!r}")
        finally:
            stop(proc)
    return results


async def _measure(
    janus_pid: int,
    janus: LocalJanus,
    browser: Browser,
    args: argparse.Namespace,
    sizes: list[int],
    trials: int,
    window_s: float,
    js: tuple[str, str, str],
    deadline_ms: int,
    results: dict[str, dict[str, Any]],
) -> None:
    wait_frames_js, click_probe_js, click_channel_js = js
    windows: list[dict[str, Any]] = []
    config = {"sfu": janus.guilds_sfu_section()}
    async with bench_stack(args.backend, admin_config=config) as stack:
        owner = await stack.register_user()
        sid, room_id = await _channel(stack, owner)
        problems: list[str] = []
        resident_user = await _member(stack, sid, room_id)
        joiner = await _open_page(browser, stack, owner, sid, room_id)
        resident = await _open_page(browser, stack, resident_user, sid, room_id)
        for page in (joiner, resident):
            watch_errors(page, problems)
        # The resident browser is in the call before anyone else, and stays.
        await resident.evaluate(click_probe_js)
        await resident.evaluate(click_channel_js, room_id)
        await expect(resident.get_by_test_id("call-panel")).to_be_visible(timeout=PATIENCE_MS)
        async with contextlib.AsyncExitStack() as synthetic:
            present = 0
            for size in sizes:
                out = results.setdefault(str(size), {})
                try:
                    while present < size - 2:
                        user = await _member(stack, sid, room_id)
                        await synthetic.enter_async_context(
                            SyntheticParticipant(stack, user, sid, room_id, video=True)
                        )
                        present += 1
                    out["synthetic"] = present
                    out["browsers"] = 2
                    joins: list[float] = []
                    for trial in range(trials):
                        await joiner.evaluate(click_probe_js)
                        await joiner.evaluate(click_channel_js, room_id)
                        result = await joiner.evaluate(
                            wait_frames_js,
                            {
                                "module": GROUP_JS,
                                "peers": size - 1,
                                "deadline": deadline_ms,
                                "audio": True,
                            },
                        )
                        if not result.get("ok"):
                            raise RuntimeError(
                                f"audio and frames from {len(result.get('first', {}))} "
                                f"of {size - 1} within {deadline_ms / 1000:.0f} s"
                            )
                        joins.append(float(result["ms"]))
                        out["join_ms"] = {"values": joins, "summary": summarize(joins)}
                        # --quick (the smoke test) only checks that it runs: a slow join on
                        # a loaded machine is still a join there.
                        if not args.quick and result["ms"] > args.max_trial_s * 1000:
                            raise RuntimeError(
                                f"a join took {result['ms'] / 1000:.0f} s: the cores "
                                "cannot carry this call"
                            )
                        if trial == trials - 1:
                            # Every browser receives every speaker: the resident too.
                            seen = await resident.evaluate(
                                RECEIVING,
                                {"module": GROUP_JS, "peers": size - 1, "deadline": 30_000},
                            )
                            out["resident_receives_all"] = bool(seen.get("ok"))
                            out["resident_receives_from"] = int(seen.get("seen", 0))
                            # The joiner's grid holds every participant, its own tile too.
                            out["grid"] = await joiner.evaluate(
                                GRID, {"tiles": size, "deadline": 15_000}
                            )
                            await asyncio.sleep(window_s / 3)
                            full = await cpu_window(
                                janus_pid,
                                window_s,
                                participants=size,
                                publishers=size,
                                streams=2 * (size - 1),
                            )
                            out["cpu_full"] = full
                            windows.append(full)
                        # A DOM click: a busy page never looks "stable" to Playwright.
                        await joiner.evaluate(LEAVE)
                        await expect(joiner.get_by_test_id("call-panel")).to_be_hidden(
                            timeout=PATIENCE_MS
                        )
                    # The same call without the joiner: the other point of the fit.
                    await asyncio.sleep(window_s / 3)
                    rest = await cpu_window(
                        janus_pid,
                        window_s,
                        participants=size - 1,
                        publishers=size - 1,
                        streams=size - 2,
                    )
                    out["cpu_without_joiner"] = rest
                    windows.append(rest)
                    full = out["cpu_full"]
                    out["janus_cores_per_participant"] = full["janus_cores"] / size
                    out["browser_cores_each"] = full["browsers_cores"] / 2
                    if present:
                        out["synthetic_cores_each"] = full["synthetic_process_cores"] / present
                    summary = out["join_ms"]["summary"]
                    log(
                        f"  SFU {size}: join p50 {summary['p50']:.0f} ms, p95 "
                        f"{summary['p95']:.0f} ms; Janus {full['janus_cores']:.2f} cores "
                        f"({out['janus_cores_per_participant'] * 100:.1f} % of a core per "
                        f"participant), browsers {full['browsers_cores']:.2f} cores, "
                        f"resident hears {out['resident_receives_from']}/{size - 1}, "
                        f"grid {grid_text(out['grid'])}, "
                        f"load {full['loadavg']}"
                    )
                except Exception as exc:  # noqa: BLE001 - a size that cannot run is reported
                    # A size that fails on a loaded machine does not stop the larger ones.
                    out["error"] = f"{type(exc).__name__}: {exc}"
                    log(f"  SFU {size}: stopped, {exc!r}")
                    with contextlib.suppress(Exception):
                        await joiner.evaluate(LEAVE)
        fit = janus_fit(windows)
        notes: dict[str, Any] = {"windows": windows}
        if fit is not None:
            notes["janus_fit"] = fit
            notes["janus_full_call_cores_per_participant"] = {
                str(size): full_call_cost(fit, size) for size in sizes
            }
        if problems:
            notes["page_errors"] = problems[:5]
        results["model"] = notes
        await joiner.context.close()
        await resident.context.close()
