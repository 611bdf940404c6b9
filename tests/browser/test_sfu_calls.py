"""Channel calls through the SFU (Janus VideoRoom) in Chromium with fake media (issue #19).

With an SFU configured, two browsers in a video channel each receive the other's audio (played,
its energy growing) and video frames through Janus, not peer to peer; their MatrixRTC
memberships in room state name the Janus focus. A member kicked from the server is dropped from
the SFU room: their page leaves the call and the other stops receiving them. Janus killed in the
middle of a call: both pages say so, and hear each other again once it is back, with the same
two memberships throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.harness.api import Api, create_server, eventually, join_as, join_server
from tests.harness.call_steps import (
    GROUP_JS,
    add_channel,
    all_hear,
    call_members,
    call_stats,
    hears,
    joined,
    member_key,
    new_call_page,
    open_in_server,
    wait_for_media,
)
from tests.harness.chat_steps import channel
from tests.harness.sfu import ON_SFU, StackWithSfu
from tests.harness.stack import Stack, User
from tests.harness.synthetic import SyntheticParticipant

pytestmark = [pytest.mark.browser, ON_SFU]


# What the page's call says about its transport and its peers' connections.
TRANSPORT = f"""async () => {{
  const c = (await import('{GROUP_JS}')).currentCall();
  if (!c) return null;
  const peers = [];
  for (const p of c.peers.values()) {{
    const pairs = [];
    if (p.pc) (await p.pc.getStats()).forEach((s) => {{
      if (s.type === "candidate-pair" && s.state === "succeeded") pairs.push(s.remoteCandidateId);
    }});
    peers.push({{ user: p.userId, feed: p.feedId ?? null, pairs }});
  }}
  return {{ focus: c.focusType, peers, state: c.state }};
}}"""


@pytest.fixture
def sfu(stack: Stack) -> StackWithSfu:
    """The session's stack with an SFU, shared with tests/integration/test_sfu_access.py."""
    assert isinstance(stack, StackWithSfu)
    return stack


async def test_two_browsers_in_a_video_channel_see_and_hear_each_other_through_the_sfu(
    browser: Browser, sfu: StackWithSfu
) -> None:
    stack = sfu
    alice = await stack.register_user(f"alice_{secrets.token_hex(3)}")
    bob = await stack.register_user(f"bob_{secrets.token_hex(3)}")
    server = await create_server(stack, alice, "Big hall")
    sid = server["server_id"]
    stage = await add_channel(stack, alice, sid, "stage", "video")
    await join_server(stack, sid, bob)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (alice, bob):
            page = await new_call_page(browser, contexts, problems)
            pages.append(page)
            await open_in_server(page, stack, user, sid)
            await channel(page, "stage").click()
            await joined(page)

        # Frames and audio arrive both ways, and the audio is played (energy grows).
        await wait_for_media(pages[0], {bob.user_id}, video=True)
        await wait_for_media(pages[1], {alice.user_id}, video=True)
        await all_hear((pages[0], "alice", {bob.user_id}), (pages[1], "bob", {alice.user_id}))

        # Through Janus: each page's peer is a feed of the SFU room, not a mesh connection.
        for page, other in ((pages[0], bob), (pages[1], alice)):
            transport = await page.evaluate(TRANSPORT)
            assert transport["focus"] == "org.guilds.janus", transport
            [peer] = transport["peers"]
            assert peer["user"] == other.user_id and peer["feed"], transport

        # Who is in the call is MatrixRTC state, read by a client that is not ours (nio).
        members = await call_members(stack, bob, stage)
        for user in (alice, bob):
            content = members[member_key(user)]
            assert content["focus_active"] == {"type": "org.guilds.janus"}, content
            assert content["foci_preferred"] == [{"type": "org.guilds.janus"}], content

        # Bob is kicked from the server: the bridge drops him from the SFU room. His page
        # leaves the call, and alice stops receiving him.
        status, answer = await Api(stack, alice).call(
            "POST", f"/servers/{sid}/members/{bob.user_id}/kick", {"reason": "bye"}
        )
        assert status == 204, answer

        async def bob_out() -> bool:
            return await pages[1].evaluate(TRANSPORT) is None

        await eventually(bob_out, 60, 0.5, what="bob's page leaving the call")

        async def alice_alone() -> bool:
            return not [s for s in await call_stats(pages[0]) if s["userId"] == bob.user_id]

        await eventually(alice_alone, 60, 0.5, what="alice no longer receiving bob")
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    # A kicked page reports its refused requests; nothing else may go wrong.
    assert [p for p in problems if "403" not in p and "Forbidden" not in p] == []


async def test_the_sfu_killed_mid_call_pages_say_so_and_hear_each_other_once_it_is_back(
    browser: Browser, sfu: StackWithSfu
) -> None:
    stack = sfu
    alice = await stack.register_user(f"alice_{secrets.token_hex(3)}")
    bob = await stack.register_user(f"bob_{secrets.token_hex(3)}")
    server = await create_server(stack, alice, "Hall")
    sid = server["server_id"]
    lounge = await add_channel(stack, alice, sid, "lounge", "voice")
    await join_server(stack, sid, bob)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        for user in (alice, bob):
            page = await new_call_page(browser, contexts, problems)
            pages.append(page)
            await open_in_server(page, stack, user, sid)
            await channel(page, "lounge").click()
            await joined(page)
        await all_hear((pages[0], "alice", {bob.user_id}), (pages[1], "bob", {alice.user_id}))

        # Janus dies (SIGKILL: no goodbye to anyone).
        sfu.kill_janus()
        for page in pages:
            await expect(page.get_by_test_id("call-status")).to_contain_text(
                "Lost the connection to the call server", timeout=30_000
            )
        # Still in the call as far as room state says: nobody left.
        members = await call_members(stack, alice, lounge)
        assert members[member_key(alice)] and members[member_key(bob)], members

        # It comes back (as `guilds run`'s supervisor would start it): both pages rejoin the
        # room, which the bridge creates again, and hear each other.
        sfu.start_janus_again()
        await all_hear((pages[0], "alice", {bob.user_id}), (pages[1], "bob", {alice.user_id}))
        for page in pages:
            await expect(page.get_by_test_id("call-status")).not_to_contain_text("Lost")
        members = await call_members(stack, alice, lounge)
        live = {key for key, content in members.items() if content}
        assert live == {member_key(alice), member_key(bob)}, members
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert [p for p in problems if "WebSocket" not in p] == []


async def test_a_browser_receives_every_synthetic_participant_through_the_sfu(
    browser: Browser, sfu: StackWithSfu
) -> None:
    # Synthetic participants (aiortc) join with the bridge's credentials, as a browser does;
    # the browser beside them receives each one's frames and plays each one's tone.
    stack = sfu
    alice = await stack.register_user(f"alice_{secrets.token_hex(3)}")
    server = await create_server(stack, alice, "Arena")
    sid = server["server_id"]
    arena = await add_channel(stack, alice, sid, "arena", "video")
    synthetic = [await stack.register_user(f"synth{i}_{secrets.token_hex(3)}") for i in range(3)]
    for user in synthetic:
        await join_server(stack, sid, user)
        await join_as(stack, user, arena)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    try:
        async with contextlib.AsyncExitStack() as participants:
            for user in synthetic:
                await participants.enter_async_context(
                    SyntheticParticipant(stack, user, sid, arena, video=True)
                )
            page = await new_call_page(browser, contexts, problems)
            await open_in_server(page, stack, alice, sid)
            await channel(page, "arena").click()
            await joined(page)
            others = {u.user_id for u in synthetic}
            await wait_for_media(page, others, video=True)
            await hears(page, "alice", others)
            # They are in the call for every client: MatrixRTC state, naming the Janus focus.
            members = await call_members(stack, alice, arena)
            for user in synthetic:
                assert members[member_key(user)]["focus_active"] == {"type": "org.guilds.janus"}
            await expect(page.get_by_test_id("call-tile")).to_have_count(4)
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


# What a page shows and receives of each tile over `ms` milliseconds: per tile (peer id, or
# "self"/"self-screen"), its place in the grid, its marks and classes (sampled every 100 ms), the
# frames its <video> rendered, and, for a remote feed, the level of the audio this page received
# of it (inbound-rtp energy over the window) and the frames it decoded.
OBSERVE = f"""async (ms) => {{
  const call = (await import('{GROUP_JS}')).currentCall();
  if (!call) return null;
  const grid = document.querySelector('[data-testid="call-tiles"]');
  const tiles = () => [...grid.querySelectorAll('[data-testid="call-tile"]')];
  async function received() {{
    const out = {{}};
    for (const [id, peer] of call.peers) {{
      const entry = {{ energy: 0, duration: 0, frames: 0 }};
      if (peer.pc) (await peer.pc.getStats()).forEach((s) => {{
        if (s.type !== "inbound-rtp") return;
        if (s.kind === "audio") {{
          entry.energy += s.totalAudioEnergy ?? 0;
          entry.duration += s.totalSamplesDuration ?? 0;
        }} else entry.frames += s.framesDecoded ?? 0;
      }});
      out[id] = entry;
    }}
    return out;
  }}
  const rendered = () => Object.fromEntries(tiles().map((t) => {{
    const v = t.querySelector("video");
    return [t.dataset.peer, v && v.srcObject ? v.getVideoPlaybackQuality().totalVideoFrames : 0];
  }}));
  const before = await received();
  const renderedBefore = rendered();
  const counts = {{}};
  const started = performance.now();
  let samples = 0;
  while (performance.now() - started < ms) {{
    samples += 1;
    for (const t of tiles()) {{
      const c = (counts[t.dataset.peer] ??= {{ speaking: 0, active: 0 }});
      if (t.classList.contains("speaking")) c.speaking += 1;
      if (t.classList.contains("active-speaker")) c.active += 1;
    }}
    await new Promise((r) => setTimeout(r, 100));
  }}
  const after = await received();
  const renderedAfter = rendered();
  const box = grid.getBoundingClientRect();
  const size = {{ width: grid.clientWidth, height: grid.clientHeight }};
  const result = {{ grid: size, samples, tiles: {{}} }};
  for (const t of tiles()) {{
    const id = t.dataset.peer;
    const r = t.getBoundingClientRect();
    const peer = call.peers.get(id);
    const a = after[id], b = before[id];
    const energy = a && b ? a.energy - b.energy : 0;
    const duration = a && b ? a.duration - b.duration : 0;
    const v = t.querySelector("video");
    const visible = (el) => !el.hidden && getComputedStyle(el).display !== "none";
    result.tiles[id] = {{
      user: t.dataset.userId,
      screen: t.classList.contains("screen"),
      featured: t.classList.contains("featured"),
      hasVideo: t.classList.contains("has-video"),
      rect: {{ x: r.x - box.x, y: r.y - box.y + grid.scrollTop, width: r.width, height: r.height }},
      muted: visible(t.querySelector('[data-testid="tile-muted"]')),
      deafened: visible(t.querySelector('[data-testid="tile-deafened"]')),
      cameraOff: visible(t.querySelector('[data-testid="tile-camera-off"]')),
      speaking: counts[id]?.speaking ?? 0,
      active: counts[id]?.active ?? 0,
      level: duration > 0 ? Math.sqrt(Math.max(0, energy) / duration) : 0,
      framesDecoded: a && b ? a.frames - b.frames : 0,
      framesRendered: (renderedAfter[id] ?? 0) - (renderedBefore[id] ?? 0),
      videoWidth: v ? v.videoWidth : 0,
      feed: peer?.feedId ?? null,
    }};
  }}
  return result;
}}"""


async def observe(page: Page, ms: int = 2500) -> dict[str, Any]:
    seen: dict[str, Any] = await page.evaluate(OBSERVE, ms)
    assert seen is not None, "the page is not in a call"
    return seen


def tile_of(seen: dict[str, Any], user: User, *, screen: bool = False) -> dict[str, Any]:
    [tile] = [
        t for t in seen["tiles"].values() if t["user"] == user.user_id and t["screen"] == screen
    ]
    return tile


async def until_seen(page: Page, check: Any, what: str, deadline_s: float = 60.0) -> dict[str, Any]:
    """Observe the page (2.5 s windows) until `check(seen)` holds; fail with the last one."""
    latest: dict[str, Any] = {}
    windows = 0
    started = time.monotonic()

    async def holds() -> bool:
        nonlocal latest, windows
        latest = await observe(page)
        windows += 1
        return bool(check(latest))

    try:
        await eventually(holds, deadline_s, 0.2, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {latest}") from None
    print(f"{what}: {windows} windows, {time.monotonic() - started:.1f} s")
    return latest


async def keep_screenshots(pages: list[Page], name: str) -> None:
    """After a failure: what each page showed, in test-artifacts/ (as the `page` fixture does)."""
    folder = Path("test-artifacts")  # Playwright makes it when missing
    for i, page in enumerate(pages):
        with contextlib.suppress(Exception):
            await page.screenshot(path=str(folder / f"{name}-{i}.png"))


def print_warnings(page: Page, who: str) -> None:
    """The page's console warnings, in the test's output (what went wrong in a call)."""
    page.on(
        "console",
        lambda m: print(f"[{who}] {m.type}: {m.text}") if m.type in ("warning", "error") else None,
    )


def camera_tile(page: Page, user: User) -> Locator:
    """`user`'s camera tile (not their screen's) on `page`."""
    return page.locator(f'[data-testid="call-tile"][data-user-id="{user.user_id}"]:not(.screen)')


def marks_in_membership(members: dict[str, dict[str, Any]], user: User) -> dict[str, Any]:
    return dict(members[member_key(user)]["org.guilds.call"])


# Many steps, each measured over seconds from two pages: more than the default 300 s on a
# loaded machine.
@pytest.mark.timeout(900)
async def test_mute_deafen_camera_marks_and_talking_travel_over_the_sfu(
    browser: Browser, sfu: StackWithSfu
) -> None:
    # Two browsers and two synthetic participants, one sending a tone and one sending silence.
    # Every mark is measured against what the page receives: a muted or deafened member's audio
    # level falls to nothing, a camera turned off stops its frames; the talking ring follows the
    # received audio level, and the speaker highlighted is the one making sound.
    stack = sfu
    alice = await stack.register_user(f"alice_{secrets.token_hex(3)}")
    bob = await stack.register_user(f"bob_{secrets.token_hex(3)}")
    loud = await stack.register_user(f"loud_{secrets.token_hex(3)}")
    quiet = await stack.register_user(f"quiet_{secrets.token_hex(3)}")
    server = await create_server(stack, alice, "Marks")
    sid = server["server_id"]
    studio = await add_channel(stack, alice, sid, "studio", "video")
    for user in (bob, loud, quiet):
        await join_server(stack, sid, user)
    for user in (loud, quiet):
        await join_as(stack, user, studio)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        async with contextlib.AsyncExitStack() as synthetic:
            for user in (alice, bob):
                page = await new_call_page(browser, contexts, problems)
                pages.append(page)
                print_warnings(page, user.user_id)
                await open_in_server(page, stack, user, sid)
                await channel(page, "studio").click()
                await joined(page)
            await synthetic.enter_async_context(
                SyntheticParticipant(stack, loud, sid, studio, video=True)
            )
            await synthetic.enter_async_context(
                SyntheticParticipant(stack, quiet, sid, studio, video=True, silent=True)
            )
            alice_page, bob_page = pages
            everyone_but_bob = {alice.user_id, loud.user_id, quiet.user_id}
            # (The silent participant's packets arrive; `hears` would wait for its energy.)
            await wait_for_media(bob_page, everyone_but_bob, video=True)

            # Both browsers mute: their fake microphones' beeps stop reaching the other, whose
            # page marks them muted.
            for page in pages:
                await page.get_by_test_id("call-mute").click()
            # The mark first, so that the measuring window starts after her mute, not across it.
            await expect(camera_tile(bob_page, alice).get_by_test_id("tile-muted")).to_be_visible()

            def alice_muted(seen: dict[str, Any]) -> bool:
                tile = tile_of(seen, alice)
                return bool(tile["muted"] and tile["level"] < 0.001 and not tile["speaking"])

            # Talking, from the received level: the tone lights its tile and makes it the
            # speaker; the silent participant's tile never lights, though its packets arrive.
            # Both pages are observed at once, bob's for alice's mute too, in the same window.
            def talking(seen: dict[str, Any]) -> bool:
                toned, silent = tile_of(seen, loud), tile_of(seen, quiet)
                return bool(
                    toned["level"] > 0.02
                    and toned["speaking"] >= seen["samples"] - 2
                    and toned["active"] >= seen["samples"] - 2
                    and silent["level"] < 0.001
                    and silent["speaking"] == 0
                    and silent["active"] == 0
                    and not toned["muted"]
                )

            await asyncio.gather(
                until_seen(
                    bob_page,
                    lambda seen: alice_muted(seen) and talking(seen),
                    "bob seeing alice muted and silent, the tone speaking, the silent one not",
                ),
                until_seen(alice_page, talking, "the tone's tile speaking, the silent one not"),
            )

            # Alice unmutes: the mark goes, her beeps arrive and light her tile.
            await alice_page.get_by_test_id("call-mute").click()

            def alice_talks(seen: dict[str, Any]) -> bool:
                tile = tile_of(seen, alice)
                return bool(not tile["muted"] and tile["level"] > 0.005 and tile["speaking"] > 0)

            await until_seen(bob_page, alice_talks, "bob hearing alice again, her tile lit")

            # Alice deafens: bob sees her deafened (and hears nothing from her); her page plays
            # nothing (every call <audio> muted).
            await alice_page.get_by_test_id("call-deafen").click()
            await expect(
                camera_tile(bob_page, alice).get_by_test_id("tile-deafened")
            ).to_be_visible()

            def alice_deafened(seen: dict[str, Any]) -> bool:
                tile = tile_of(seen, alice)
                return bool(tile["deafened"] and tile["level"] < 0.001 and not tile["speaking"])

            await until_seen(bob_page, alice_deafened, "bob seeing alice deafened")
            silenced = await alice_page.evaluate(
                "() => [...document.querySelectorAll('[data-testid=call-audio]')]"
                ".map((a) => a.muted)"
            )
            assert silenced and all(silenced), silenced
            members = await call_members(stack, bob, studio)
            assert marks_in_membership(members, alice) == {
                "kind": "video",
                "audio_muted": True,
                "deafened": True,
                "video_muted": False,
                "screenshare": False,
            }, members[member_key(alice)]
            await alice_page.get_by_test_id("call-deafen").click()
            await until_seen(
                bob_page,
                lambda seen: (
                    not tile_of(seen, alice)["deafened"] and not tile_of(seen, alice)["muted"]
                ),
                "bob seeing alice undeafened",
            )

            # Alice turns her camera off: bob sees the mark and her face instead of her video,
            # and no frame of hers arrives; back on, frames arrive and the mark goes.
            await alice_page.get_by_test_id("call-camera").click()
            # (The mark, then a measuring window that starts after the camera went off.)
            await expect(
                camera_tile(bob_page, alice).get_by_test_id("tile-camera-off")
            ).to_be_visible()

            def camera_off(seen: dict[str, Any]) -> bool:
                tile = tile_of(seen, alice)
                return bool(
                    tile["cameraOff"] and not tile["hasVideo"] and tile["framesDecoded"] == 0
                )

            await until_seen(bob_page, camera_off, "bob seeing alice's camera off")
            members = await call_members(stack, bob, studio)
            assert marks_in_membership(members, alice)["video_muted"] is True
            await alice_page.get_by_test_id("call-camera").click()
            await expect(camera_tile(bob_page, alice)).to_have_class(re.compile(r"\bhas-video\b"))

            def camera_on(seen: dict[str, Any]) -> bool:
                tile = tile_of(seen, alice)
                return bool(
                    not tile["cameraOff"]
                    and tile["hasVideo"]
                    and tile["framesDecoded"] > 5
                    and tile["framesRendered"] > 5
                )

            await asyncio.gather(
                until_seen(bob_page, camera_on, "bob seeing alice's camera again"),
                # Alice's own page marks bob, still muted, too.
                until_seen(
                    alice_page, lambda seen: tile_of(seen, bob)["muted"], "alice seeing bob muted"
                ),
            )
    except BaseException:
        await keep_screenshots(pages, "sfu-marks")
        raise
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []


def assert_grid(seen: dict[str, Any], count: int) -> None:
    """`count` equal tiles, none overlapping, all in the grid, in the columns arrangeTiles picks."""
    rects = [t["rect"] for t in seen["tiles"].values()]
    assert len(rects) == count, seen
    sizes = {(round(r["width"]), round(r["height"])) for r in rects}
    assert len(sizes) == 1, sizes
    for i, a in enumerate(rects):
        assert a["x"] >= -0.5 and a["x"] + a["width"] <= seen["grid"]["width"] + 0.5, a
        for b in rects[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"] + 0.5
                or b["x"] + b["width"] <= a["x"] + 0.5
                or a["y"] + a["height"] <= b["y"] + 0.5
                or b["y"] + b["height"] <= a["y"] + 0.5
            )
            assert apart, (a, b)


LAYOUT_JS = "/static/js/views/call-layout.js"


# Many steps, each measured over seconds from two pages: more than the default 300 s on a
# loaded machine.
@pytest.mark.timeout(900)
async def test_a_screen_share_is_a_second_feed_featured_above_a_grid_of_cameras(
    browser: Browser, sfu: StackWithSfu
) -> None:
    # Two browsers and three synthetic cameras: five people, a grid of five equal tiles on each
    # page (the last row centred), each decoding and rendering frames. Alice shares her screen:
    # a second feed of hers in the VideoRoom (her camera keeps going), shown on bob's page as
    # the featured tile, much larger than the others, its frames the screen's. Stopping it
    # returns the grid.
    stack = sfu
    alice = await stack.register_user(f"alice_{secrets.token_hex(3)}")
    bob = await stack.register_user(f"bob_{secrets.token_hex(3)}")
    server = await create_server(stack, alice, "Screens")
    sid = server["server_id"]
    hall = await add_channel(stack, alice, sid, "hall", "video")
    synthetic_users = [
        await stack.register_user(f"cam{i}_{secrets.token_hex(3)}") for i in range(3)
    ]
    for user in (bob, *synthetic_users):
        await join_server(stack, sid, user)
    for user in synthetic_users:
        await join_as(stack, user, hall)

    problems: list[str] = []
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    try:
        async with contextlib.AsyncExitStack() as synthetic:
            for user in (alice, bob):
                page = await new_call_page(browser, contexts, problems)
                pages.append(page)
                print_warnings(page, user.user_id)
                await open_in_server(page, stack, user, sid)
                await channel(page, "hall").click()
                await joined(page)
            for user in synthetic_users:
                await synthetic.enter_async_context(
                    SyntheticParticipant(stack, user, sid, hall, video=True)
                )
            alice_page, bob_page = pages
            cams = {u.user_id for u in synthetic_users}
            await asyncio.gather(
                wait_for_media(bob_page, cams | {alice.user_id}, video=True),
                wait_for_media(alice_page, cams | {bob.user_id}, video=True),
            )

            def grid_of_five(seen: dict[str, Any]) -> bool:
                remote = [t for k, t in seen["tiles"].items() if k != "self"]
                return len(seen["tiles"]) == 5 and all(
                    t["hasVideo"] and t["framesDecoded"] > 3 and t["framesRendered"] > 3
                    for t in remote
                )

            # Both pages observed at once.
            grids = await asyncio.gather(
                *(until_seen(p, grid_of_five, "five tiles, every camera rendering") for p in pages)
            )
            for page, seen in zip(pages, grids, strict=True):
                assert_grid(seen, 5)
                # The columns are those of the layout function (unit-tested up to 25).
                columns = await page.evaluate(
                    f"async ([n, w, h]) => (await import('{LAYOUT_JS}'))"
                    ".tileLayout(n, w, h).columns",
                    [5, seen["grid"]["width"], seen["grid"]["height"]],
                )
                # (A partial last row is centred, so count the first row.)
                top = min(round(t["rect"]["y"]) for t in seen["tiles"].values())
                first_row = [t for t in seen["tiles"].values() if round(t["rect"]["y"]) == top]
                assert len(first_row) == columns, (columns, seen)

            # Alice shares her screen (headless Chromium with --use-fake-ui-for-media-stream
            # answers getDisplayMedia with a generated screen, no picker).
            await alice_page.get_by_test_id("call-screen").click()
            await expect(alice_page.get_by_test_id("call-screen")).to_have_attribute(
                "aria-pressed", "true"
            )

            def featured_screen(seen: dict[str, Any]) -> bool:
                screens = [t for t in seen["tiles"].values() if t["screen"]]
                if len(screens) != 1 or len(seen["tiles"]) != 6:
                    return False
                screen = screens[0]
                others = [t for t in seen["tiles"].values() if not t["screen"]]
                area = screen["rect"]["width"] * screen["rect"]["height"]
                return bool(
                    screen["user"] == alice.user_id
                    and screen["featured"]
                    and screen["framesDecoded"] > 3
                    and screen["framesRendered"] > 3
                    and all(area > 4 * t["rect"]["width"] * t["rect"]["height"] for t in others)
                    and all(
                        t["rect"]["y"] >= screen["rect"]["y"] + screen["rect"]["height"]
                        for t in others
                    )
                    # Her camera is still a feed of its own, still sending.
                    and tile_of(seen, alice)["framesDecoded"] > 3
                )

            # Bob's page and alice's, who shows her own screen as a tile of its own, at once.
            seen, mine = await asyncio.gather(
                until_seen(bob_page, featured_screen, "alice's screen featured at bob"),
                until_seen(
                    alice_page,
                    lambda s: "self-screen" in s["tiles"] and s["tiles"]["self-screen"]["featured"],
                    "alice seeing her own screen",
                ),
            )
            screen, camera = tile_of(seen, alice, screen=True), tile_of(seen, alice)
            assert screen["feed"] and camera["feed"] and screen["feed"] != camera["feed"]
            # The screen's picture, not the camera's (the test camera is 160 wide).
            assert screen["videoWidth"] > 160, screen
            assert mine["tiles"]["self-screen"]["framesRendered"] > 0
            members = await call_members(stack, bob, hall)
            assert marks_in_membership(members, alice)["screenshare"] is True

            # She stops: the screen tile goes, the grid of five equal tiles is back.
            await alice_page.get_by_test_id("call-screen").click()
            seen = await until_seen(bob_page, grid_of_five, "the grid back at bob")
            assert_grid(seen, 5)
            members = await call_members(stack, bob, hall)
            assert marks_in_membership(members, alice)["screenshare"] is False
    except BaseException:
        await keep_screenshots(pages, "sfu-screen")
        raise
    finally:
        print("page problems:", problems)
        for context in contexts:
            await context.close()
    assert problems == []
