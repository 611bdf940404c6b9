"""Figure 8: group calls in a video channel (full mesh, fake camera and microphone) with 2, 4 and
8 participants, each in its own browser context of one Chromium.

Join time (A): N − 1 people are already in the channel's call; the N-th clicks the channel in
the sidebar (the click is timestamped in the page, capture phase), and the page's own call polls
`getStats()` (through calls/group.js `currentCall().stats()`, every 25 ms) until inbound video
frames have been decoded from every one of the N − 1 peers. The joiner then leaves, the others'
tiles drop back to N − 1, and the next trial starts. Everything the UI does is inside: the
membership state event, the to-device invite/answer/candidates through the homeserver, ICE over
loopback host candidates, getUserMedia, encoding and decoding.

Baseline (B), interleaved A B A B …: the same browser, a bare page with no signalling at all:
getUserMedia, then N − 1 pairs of RTCPeerConnections wired to each other inside the page
(offer/answer/candidates handed over directly), each receiving side attached to a <video>, polled
the same way until every receiving side has decoded a video frame. The ratio A/B is what
signalling through Matrix and the call machinery add on top of what WebRTC itself needs.

CPU per participant: with all N in the call and media flowing (after the trials), the CPU time
of every Chromium process (browser, renderers, GPU/utility and network processes, from /proc)
over a steady window, divided by the window and by N: the share of one core each participant
costs. Beside it, the same window with the same N pages open and nobody in a call.

Through the SFU (rows "N via SFU", bench/sfu_calls.py): 2, 4, 8, 16 and 25 participants, two
real browsers (one resident, one that joins and measures), the others synthetic (aiortc); join
p50/p95 (click → audio and frames from every other participant), the ratio to the mesh row of
the same N where the mesh can, and the CPU of Janus, of the browsers and of the synthetic
participants per participant, with the load average of the machine during each window.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from typing import Any

import nio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from bench.browser import (
    chromium_pids,
    cpu_seconds,
    cpu_used,
    launch_chromium,
    new_context,
    store_session,
    watch_errors,
)
from bench.common import (
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
from bench.sfu_calls import (
    LEAVE,
    PATIENCE_MS,
    SFU_SIZES,
    full_call_cost,
    grid_text,
    measure_sfu,
)
from tests.harness.api import Api, create_server, join_server
from tests.harness.stack import Stack, User

GROUP_JS = "/static/js/calls/group.js"
SIZES = (2, 4, 8)
FRAMES_DEADLINE_MS = 60_000
LOOPBACK_URL = "http://127.0.0.1:9/bench-loopback.html"  # served by context.route, never dialled

# The joiner's page: remember when a channel of the sidebar is clicked (capture phase, so the
# time is taken before the app's own handler runs).
# The requests the page makes after the click are kept too (path and timing relative to the
# click, no query string): they show where a join's time goes.
CLICK_PROBE = """
() => {
  window.__benchClick = null;
  window.__benchNet = [];
  if (window.__benchClickInstalled) return;
  window.__benchClickInstalled = true;
  new PerformanceObserver((list) => {
    const click = window.__benchClick;
    if (click === null) return;
    for (const e of list.getEntries()) {
      if (e.startTime < click) continue;
      window.__benchNet.push({
        path: new URL(e.name).pathname.replace(/![^/]+|@[^/]+/g, "…"),
        start: Math.round(e.startTime - click),
        end: Math.round(e.responseEnd - click),
      });
    }
  }).observe({ type: "resource" });
  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest('[data-testid="channel"]')) {
      window.__benchClick ??= performance.now();
    }
  }, true);
}
"""

CLICK_CHANNEL = """
(roomId) => {
  const button = document.querySelector(`[data-testid="channel"][data-channel-id="${roomId}"]`);
  button.click();
}
"""

# Poll the app's call until video frames were decoded (and, with `audio`, audio bytes arrived)
# from `peers` distinct peers.
WAIT_CALL_FRAMES = """
async ({ module, peers, deadline, audio }) => {
  const { currentCall } = await import(module);
  const first = {};
  const started = performance.now();
  while (performance.now() - started < deadline) {
    const call = currentCall();
    if (call && window.__benchClick !== null) {
      const stats = await call.stats();
      const now = performance.now() - window.__benchClick;
      for (const s of stats) {
        const heard = !audio || s.audioBytesReceived > 0;
        if (s.videoFramesDecoded > 0 && heard && !(s.userId in first)) first[s.userId] = now;
      }
      if (Object.keys(first).length >= peers) {
        return { ok: true, ms: Math.max(...Object.values(first)), first, net: window.__benchNet };
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { ok: false, first, click: window.__benchClick };
}
"""

# The baseline: getUserMedia and `peers` loopback pairs in one bare page, no signalling server.
LOOPBACK = """
async ({ peers, deadline, video }) => {
  const started = performance.now();
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: video ?? true });
  const pcs = [];
  const videos = [];
  const receivers = [];
  try {
    for (let i = 0; i < peers; i++) {
      const a = new RTCPeerConnection();
      const b = new RTCPeerConnection();
      pcs.push(a, b);
      a.onicecandidate = (e) => { if (e.candidate) b.addIceCandidate(e.candidate); };
      b.onicecandidate = (e) => { if (e.candidate) a.addIceCandidate(e.candidate); };
      b.ontrack = (e) => {
        if (e.track.kind !== "video") return;
        const video = document.createElement("video");
        video.muted = true;
        video.autoplay = true;
        video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
        document.body.append(video);
        videos.push(video);
      };
      for (const track of stream.getTracks()) a.addTrack(track, stream);
      const offer = await a.createOffer();
      await a.setLocalDescription(offer);
      await b.setRemoteDescription(offer);
      const answer = await b.createAnswer();
      await b.setLocalDescription(answer);
      await a.setRemoteDescription(answer);
      receivers.push(b);
    }
    const first = {};
    while (performance.now() - started < deadline) {
      for (let i = 0; i < receivers.length; i++) {
        if (i in first) continue;
        let frames = 0;
        (await receivers[i].getStats()).forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
        });
        if (frames > 0) first[i] = performance.now() - started;
      }
      if (Object.keys(first).length >= peers) {
        return { ok: true, ms: Math.max(...Object.values(first)) };
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return { ok: false, ms: null };
  } finally {
    for (const pc of pcs) pc.close();
    for (const track of stream.getTracks()) track.stop();
    for (const video of videos) video.remove();
  }
}
"""

TILES = "() => document.querySelectorAll('[data-testid=\"call-tile\"]').length"


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        default=None,
        help="participant counts, comma-separated (default 2,4,8; --quick: 2)",
    )
    parser.add_argument(
        "--camera",
        default=None,
        metavar="WxH@FPS",
        help="the camera every participant asks for (default: the web client's own, 640x360@20)",
    )
    parser.add_argument(
        "--max-trial-s",
        type=float,
        default=30.0,
        help="a join slower than this means the cores cannot carry the call: stop that size",
    )
    parser.add_argument(
        "--sfu-sizes",
        default=None,
        help="participant counts through the SFU (Janus), one browser and the rest synthetic, "
        "comma-separated (default 2,4,8,16,25; --quick: 2; 0: none)",
    )
    parser.add_argument(
        "--cpu-seconds",
        type=float,
        default=None,
        help="length of each CPU window (default 10 s, --quick 1 s)",
    )
    parser.add_argument(
        "--sfu-trials",
        type=int,
        default=None,
        help="joins per size through the SFU (default 8, --quick 1)",
    )


class Participant:
    def __init__(self, user: User, context: BrowserContext, page: Page) -> None:
        self.user = user
        self.context = context
        self.page = page

    def channel(self, room_id: str) -> Any:
        return self.page.locator(f'[data-testid="channel"][data-channel-id="{room_id}"]')


class Scene:
    def __init__(self, stack: Stack, browser: Browser, sid: str, room_id: str) -> None:
        self.stack = stack
        self.browser = browser
        self.sid = sid
        self.room_id = room_id
        self.users: list[User] = []
        self.people: list[Participant] = []
        self.problems: list[str] = []
        # getUserMedia video constraints for every page (None: the client's own).
        self.camera: dict[str, int] | None = None


def parse_camera(text: str | None) -> dict[str, int] | None:
    """`320x180@15` → {"width": 320, "height": 180, "frameRate": 15}."""
    if text is None:
        return None
    size, _, fps = text.partition("@")
    width, _, height = size.partition("x")
    return {"width": int(width), "height": int(height), "frameRate": int(fps or 15)}


async def build_scene(stack: Stack, browser: Browser, most: int) -> Scene:
    owner = await stack.register_user()
    server = await create_server(stack, owner, f"Calls {secrets.token_hex(2)}")
    sid = server["server_id"]
    status, answer = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/channels", {"name": "bench-video", "kind": "video"}
    )
    if status != 201:
        raise RuntimeError(f"could not create the video channel: {status} {answer}")
    scene = Scene(stack, browser, sid, str(answer["channel_id"]))
    scene.users.append(owner)
    for _ in range(most - 1):
        user = await stack.register_user()
        await join_server(stack, sid, user)
        scene.users.append(user)
    # Everyone is in the channel's room beforehand: the figure is the call, not the room join.
    for user in scene.users[1:]:
        async with stack.nio_client(user) as client:
            joined = await client.join(scene.room_id)
            if not isinstance(joined, nio.JoinResponse):
                raise RuntimeError(f"{user.user_id} could not join the channel: {joined}")
    return scene


async def open_people(scene: Scene, count: int) -> None:
    """Open a signed-in page in its own context for each of the first `count` users."""
    while len(scene.people) < count:
        user = scene.users[len(scene.people)]
        context = await new_context(scene.browser)
        page = await context.new_page()
        # Other people load this machine (load averages of 40 and more were seen): be patient.
        page.set_default_timeout(PATIENCE_MS)
        watch_errors(page, scene.problems)
        await store_session(page, scene.stack, user)
        await page.goto(f"{scene.stack.web_url}/#server={scene.sid}")
        if scene.camera is not None:
            await page.evaluate(
                "async ([module, video]) => (await import(module)).setCameraConstraints(video)",
                [GROUP_JS, scene.camera],
            )
        person = Participant(user, context, page)
        await expect(person.channel(scene.room_id)).to_be_visible(timeout=PATIENCE_MS)
        await page.evaluate(CLICK_PROBE)
        scene.people.append(person)


async def in_call_tiles(page: Page, tiles: int, deadline_s: float = 60.0) -> None:
    await expect(page.get_by_test_id("call-tile")).to_have_count(tiles, timeout=deadline_s * 1000)


async def join_and_wait(scene: Scene, person: Participant, peers: int) -> dict[str, Any]:
    await person.page.evaluate(CLICK_PROBE)
    await expect(person.channel(scene.room_id)).to_be_visible()
    # A DOM click rather than Playwright's: in a busy call the sidebar re-renders its channel
    # buttons so often that Playwright never finds the button "stable" to click.
    await person.page.evaluate(CLICK_CHANNEL, scene.room_id)
    result: dict[str, Any] = await person.page.evaluate(
        WAIT_CALL_FRAMES, {"module": GROUP_JS, "peers": peers, "deadline": FRAMES_DEADLINE_MS}
    )
    if not result.get("ok"):
        raise RuntimeError(
            f"{person.user.user_id} saw frames from {len(result.get('first', {}))} of {peers} "
            f"peers within {FRAMES_DEADLINE_MS / 1000:.0f} s"
        )
    return result


async def leave(person: Participant) -> None:
    # A DOM click: on a loaded machine the busy page never looks "stable" to Playwright.
    await person.page.evaluate(LEAVE)
    await expect(person.page.get_by_test_id("call-panel")).to_be_hidden(timeout=PATIENCE_MS)


async def loopback_page(browser: Browser) -> Page:
    context = await new_context(browser)
    await context.route(
        LOOPBACK_URL,
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body="<!doctype html><title>loopback</title><body></body>",
        ),
    )
    page = await context.new_page()
    # A loopback http origin is a secure context: getUserMedia is allowed there.
    await page.goto(LOOPBACK_URL)
    return page


class Starved(RuntimeError):
    """A trial took longer than --max-trial-s: the machine's cores cannot carry this call."""


async def measure_size(
    scene: Scene, size: int, args: argparse.Namespace, cpu_window: float, out: dict[str, Any]
) -> None:
    """Fill `out` step by step, so that a size that cannot finish still reports how far it got
    (CPU at rest, CPU with the N − 1 residents in the call, the trials that ran)."""
    await open_people(scene, size)
    people = scene.people[:size]
    residents, joiner = people[:-1], people[-1]
    limit_ms = args.max_trial_s * 1000

    # Nobody in a call yet: what the same N open pages cost at rest.
    out["cpu_idle"] = await cpu_window_of(cpu_window)

    log(f"  {size}: {len(residents)} resident(s) join the call")
    for index, person in enumerate(residents):
        await join_and_wait(scene, person, index)
    for person in residents:
        await in_call_tiles(person.page, len(residents))
    if len(residents) > 1:
        out["cpu_residents"] = await cpu_window_of(cpu_window)
        log(f"  {size}: {len(residents)} in the call use {out['cpu_residents']['cores']:.2f} cores")

    baseline_page = await loopback_page(scene.browser)
    traces: list[dict[str, Any]] = out.setdefault("traces", [])
    bare_ms: list[float] = out.setdefault("bare_ms", [])

    async def ours() -> dict[str, float]:
        result = await join_and_wait(scene, joiner, size - 1)
        traces.append({"ms": result["ms"], "first": result["first"], "net": result["net"]})
        if result["ms"] > limit_ms:
            raise Starved(f"a join took {result['ms'] / 1000:.0f} s")
        # The others see the joiner too before it leaves (so a trial ends in a full call).
        for person in residents:
            await in_call_tiles(person.page, size)
        await leave(joiner)
        for person in residents:
            await in_call_tiles(person.page, size - 1)
        return {"join_to_frames_ms": float(result["ms"])}

    async def bare() -> dict[str, float]:
        result = await baseline_page.evaluate(
            LOOPBACK, {"peers": size - 1, "deadline": FRAMES_DEADLINE_MS, "video": scene.camera}
        )
        if not result.get("ok"):
            raise Starved(f"the bare loopback of {size - 1} pair(s) decoded no frame in time")
        bare_ms.append(float(result["ms"]))
        if result["ms"] > limit_ms:
            raise Starved(f"the bare loopback alone took {result['ms'] / 1000:.0f} s")
        return {"join_to_frames_ms": float(result["ms"])}

    out["ab"] = await interleaved(
        ours,
        bare,
        pairs=args.pairs,
        warmup=0 if args.quick else 1,
        a_label="guilds call",
        b_label="bare loopback",
        log=log,
    )
    await baseline_page.context.close()

    # Everyone in, media flowing: the steady state.
    await join_and_wait(scene, joiner, size - 1)
    for person in people:
        await in_call_tiles(person.page, size)
    await asyncio.sleep(cpu_window / 3)
    out["cpu_call"] = await cpu_window_of(cpu_window)
    for person in people:
        await leave(person)


async def cpu_window_of(seconds: float) -> dict[str, float]:
    """CPU seconds all Chromium processes used over a window of `seconds` of wall time."""
    pids = chromium_pids()
    before = cpu_seconds(pids)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    after = cpu_seconds(chromium_pids())
    wall = time.monotonic() - started
    used = cpu_used(before, after)
    return {"cpu_s": used, "wall_s": wall, "cores": used / wall, "processes": len(after)}


async def main(args: argparse.Namespace) -> Figure:
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [2] if args.quick else SIZES
    cpu_window = args.cpu_seconds or (1.0 if args.quick else 10.0)
    figure = Figure(
        "fig8_calls",
        "Calls: click Join → video frames from every peer; CPU per participant",
        [
            "participants",
            "guilds join → frames, ms (A)",
            "bare loopback, ms (B)",
            "ratio A/B",
            "CPU per participant in call",
            "CPU per page at rest",
        ],
        params={
            "sizes": sizes,
            "cpu_window_s": cpu_window,
            "poll_ms": 25,
            "camera": args.camera or "the client's own (640x360@20)",
        },
    )
    sfu_sizes = (
        [int(s) for s in args.sfu_sizes.split(",") if int(s) > 1]
        if args.sfu_sizes is not None
        else [2]
        if args.quick
        else list(SFU_SIZES)
    )
    sfu: dict[str, dict[str, Any]] = {}
    measured: dict[str, dict[str, Any]] = {}
    async with bench_stack(args.backend) as stack:
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                scene = await build_scene(stack, browser, max(sizes))
                scene.camera = parse_camera(args.camera)
                for size in sizes:
                    log(f"fig8: {size} participants, {args.pairs} interleaved pairs")
                    out = measured.setdefault(str(size), {})
                    try:
                        await measure_size(scene, size, args, cpu_window, out)
                    except Exception as exc:  # noqa: BLE001 - a size that cannot run is reported
                        log(f"  {size} participants: stopped, {exc!r}")
                        out["error"] = f"{type(exc).__name__}: {exc}"
                        break
                if scene.problems:
                    figure.notes.append(f"page errors seen: {scene.problems[:5]}")
                # The mesh pages (of a size that stopped: still in its call) must not load the
                # cores while the SFU rows are measured.
                for person in scene.people:
                    await person.context.close()
                if sfu_sizes:
                    log(f"fig8: through the SFU, {sfu_sizes} participants")
                    sfu = await measure_sfu(
                        browser,
                        args,
                        sfu_sizes,
                        args.sfu_trials or (1 if args.quick else 8),
                        cpu_window,
                        WAIT_CALL_FRAMES,
                        CLICK_PROBE,
                        CLICK_CHANNEL,
                        FRAMES_DEADLINE_MS,
                    )
            finally:
                await browser.close()

    figure.results = {}
    for size in sizes:
        entry = measured.get(str(size), {})
        figure.rows.append(size_row(size, entry))
        figure.results[str(size)] = size_json(size, entry)
        if "error" in entry:
            figure.notes.append(f"{size} participants: not measured to the end — {entry['error']}")
        elif not entry:
            figure.notes.append(f"{size} participants: not tried (a smaller call did not finish)")
        log_trace(size, entry.get("traces", []))
    fit = sfu.get("model", {}).get("janus_fit")
    for size in sfu_sizes:
        entry = sfu.get(str(size), {})
        mesh = measured.get(str(size), {})
        mesh_median = median_join(mesh) if "ab" in mesh else None
        figure.rows.append(sfu_row(size, entry, mesh_median, fit))
        if mesh_median is not None and entry.get("join_ms", {}).get("values"):
            entry["sfu_over_mesh_median"] = (
                float(entry["join_ms"]["summary"]["median"]) / mesh_median
            )
        if "error" in entry:
            figure.notes.append(f"{size} via the SFU: not measured — {entry['error']}")
        elif entry and not entry.get("resident_receives_all"):
            figure.notes.append(
                f"{size} via the SFU: the resident browser received "
                f"{entry.get('resident_receives_from')} of {size - 1} speakers"
            )
        if "grid" in entry:
            grid = grid_text(entry["grid"])
            figure.notes.append(f"{size} via the SFU, the joiner's grid: {grid}")
    figure.results["sfu"] = sfu
    if fit is not None:
        figure.notes.append(
            "Janus's CPU, fitted over every SFU window: "
            f"{fit['base_cores'] * 100:.1f} % of a core at rest + "
            f"{fit['per_publisher_cores'] * 100:.2f} % per publisher + "
            f"{fit['per_stream_cores'] * 100:.2f} % per forwarded stream (audio + video); a full "
            "call where everyone receives everyone costs per participant "
            "publisher + (N − 1) × stream."
        )
    if sfu_sizes:
        goal = max(sfu_sizes)
        entry = sfu.get(str(goal), {})
        summary = entry.get("join_ms", {}).get("summary", {})
        figure.targets.append(
            Target(
                f"{goal} via the SFU",
                "every browser receives every speaker, join p95 ≤ 2000 ms",
                (
                    f"p95 {summary['p95']:.0f} ms, resident received "
                    f"{entry.get('resident_receives_from')} of {goal - 1}"
                    if summary.get("n")
                    else f"not measured: {entry.get('error', 'no trial')}"
                ),
                None
                if args.quick
                else bool(
                    summary.get("n")
                    and summary["p95"] <= 2000
                    and entry.get("resident_receives_all")
                ),
            )
        )
    measured_sizes = [s for s in sizes if "ab" in measured.get(str(s), {})]
    figure.targets.append(
        Target(
            "calls",
            "no numeric target in issue #8: reported as measured",
            "; ".join(
                f"{s}: median {fmt(median_join(measured[str(s)]), 4)} ms" for s in measured_sizes
            )
            or "nothing measured",
            None,
        )
    )
    figure.notes.append(
        "One Chromium holds every participant (a context each) on this machine's cores, so the "
        "CPU per participant includes the encoding of N − 1 outgoing and decoding of N − 1 "
        "incoming streams per person (full mesh), and the joiner's time includes the other "
        "pages competing for the same cores."
    )
    if sfu_sizes:
        figure.notes.append(
            "Rows 'via SFU': two browsers (one resident, one joining) in a video channel whose "
            "N − 2 other participants are synthetic (aiortc, 160x120 picture and a tone, "
            "through the bridge's credentials, tests/harness/synthetic.py); join p50/p95 is "
            "click → audio and frames from all N − 1; column B is the mesh's median join of the "
            "same N in this run, the ratio SFU / mesh; CPU from /proc over a window with all N "
            "in the call (docs/DEPLOYMENT.md 7b), the load average at its end."
        )
    return figure


def sfu_row(
    size: int, entry: dict[str, Any], mesh_median: float | None, fit: dict[str, float] | None
) -> list[Any]:
    """A row of the SFU's: join p50/p95 (a browser joining a resident browser and N − 2
    synthetic participants), the mesh's median of the same N beside it, and the CPU."""
    summary = entry.get("join_ms", {}).get("summary", {})
    join = (
        f"p50 {fmt(summary['p50'], 4)} / p95 {fmt(summary['p95'], 4)}"
        if summary.get("n")
        else "not measured"
    )
    mesh = f"mesh median {fmt(mesh_median, 4)}" if mesh_median is not None else "–"
    ratio = (
        f"{summary['median'] / mesh_median:.2f} (SFU/mesh)"
        if mesh_median is not None and summary.get("n")
        else "–"
    )
    share = entry.get("janus_cores_per_participant")
    cpu = "–"
    if share is not None:
        cpu = f"Janus {share * 100:.1f} %, browser {entry['browser_cores_each'] * 100:.0f} % each"
        if fit is not None:
            cpu += f"; full call: Janus {full_call_cost(fit, size) * 100:.1f} %"
    load = entry.get("cpu_full", {}).get("loadavg")
    return [f"{size} via SFU", join, mesh, ratio, cpu, f"load {load}" if load else "–"]


def median_join(entry: dict[str, Any]) -> float:
    return float(summarize(entry["ab"]["join_to_frames_ms"].a)["median"])


def per_core(sample: dict[str, float] | None, people: int) -> str:
    if not sample:
        return "–"
    return f"{sample['cores'] / people * 100:.0f} % of a core"


def size_row(size: int, entry: dict[str, Any]) -> list[Any]:
    idle = per_core(entry.get("cpu_idle"), size)
    if "ab" in entry:
        comparison = entry["ab"]["join_to_frames_ms"]
        return [
            size,
            spread(summarize(comparison.a), 4),
            spread(summarize(comparison.b), 4),
            spread(summarize(comparison.ratios)),
            per_core(entry.get("cpu_call"), size),
            idle,
        ]
    ran = [t["ms"] for t in entry.get("traces", [])]
    residents = entry.get("cpu_residents")
    what = (
        "not tried"
        if not entry
        else "stopped: "
        + (f"joins took {', '.join(f'{ms / 1000:.0f} s' for ms in ran)}" if ran else "see notes")
    )
    cpu = (
        f"{size - 1} in call: {residents['cores'] / (size - 1) * 100:.0f} % of a core each "
        f"({residents['cores']:.2f} cores)"
        if residents
        else "–"
    )
    bare = entry.get("bare_ms", [])
    return [size, what, ", ".join(f"{ms:.0f}" for ms in bare) or "–", "–", cpu, idle]


def size_json(size: int, entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: entry[key]
        for key in ("cpu_idle", "cpu_residents", "cpu_call", "error", "bare_ms")
        if key in entry
    }
    if "ab" in entry:
        out["join"] = entry["ab"].as_json()
    if "cpu_call" in entry:
        out["cpu_per_participant_cores"] = entry["cpu_call"]["cores"] / size
    out["join_traces"] = entry.get("traces", [])
    return out


def log_trace(size: int, traces: list[dict[str, Any]]) -> None:
    """The requests of the median join, to show where its time goes."""
    if not traces:
        return
    median = sorted(traces, key=lambda t: t["ms"])[len(traces) // 2]
    log(
        f"  {size} participants, the median join ({median['ms']:.0f} ms), requests after the click:"
    )
    for request in median["net"]:
        log(f"    {request['start']:>6} → {request['end']:>6} ms  {request['path']}")
    log(f"    frames from each peer at (ms): {median['first']}")


def run() -> None:
    args = parse_args("fig8_calls", __doc__, extra_args)
    figure = asyncio.run(main(args))
    figure.print()
    figure.write(args)


if __name__ == "__main__":
    run()
