"""1:1 calls in direct conversations, in Chromium with fake camera and microphone.

Two browser contexts (two people) call each other in a DM with the Matrix spec's VoIP room
events (version "1"): invite, ring, answer, media both ways (getStats), hang up; decline; a call
hung up before it is answered is a missed call; glare (both call at once) ends with exactly one
call; turning the camera on renegotiates (m.call.negotiate); a call forced through a local coturn
relay connects over a relay candidate pair, and one whose first ICE attempt fails restarts ICE
(m.call.negotiate with fresh credentials) and connects; a matrix-nio client sees the events with
the spec's fields, and an invite it sends rings (or, once past its lifetime, does not);
matrix-js-sdk 43 and 37.5 in their own pages call Guilds and are called by it, with frames and
mute state both ways, and answer the ICE restart of a Guilds call whose first attempt failed.

The DM rooms are made with matrix-nio (is_direct, invite, join, m.direct on both sides) so the
tests do not depend on the DM UI's timing; the DM is then opened from the Home view's DM list.
These tests use their own stack, whose Synapse has `turn_uris` + `turn_shared_secret` for a
coturn on a reserved port (started for the relay test).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nio
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from guildsctl.synapse import stop, wait_until
from guildsctl.turn import (
    CoturnMissing,
    fresh_turn_secret,
    port_listening_udp_tcp,
    start_coturn,
    synapse_turn_settings,
    turn_uris,
)
from tests.harness.api import eventually
from tests.harness.chat_steps import LIVE_MS, new_page
from tests.harness.dm_steps import make_dm, open_dm
from tests.harness.jssdk import SDK_VERSIONS, SdkPage, start_sdk
from tests.harness.stack import Stack, User, build_stack, free_port

pytestmark = pytest.mark.browser

CALL_MS = 30_000  # ring, answer and connect, generously (the machine is shared)
# A first ICE attempt that cannot work fails in Chromium once its checks time out (about 15 s),
# then the restart connects: allow for both on a shared machine.
RECOVERY_MS = 90_000
VOIP_FIELDS = {"call_id", "party_id", "version"}
# The VoIP events that carry the sender's stream metadata (mute and camera state).
WITH_STREAM_METADATA = frozenset(
    ("m.call.invite", "m.call.answer", "m.call.negotiate", "m.call.sdp_stream_metadata_changed")
)


@dataclass
class Turn:
    port: int
    secret: str
    state_dir: Path
    pid: int = 0  # coturn's, once the `coturn` fixture started it


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Turn:
    return Turn(free_port(), fresh_turn_secret(), tmp_path_factory.mktemp("coturn"))


@pytest_asyncio.fixture(scope="module")
async def call_stack(tmp_path_factory: pytest.TempPathFactory, turn: Turn) -> AsyncIterator[Stack]:
    """A stack whose homeserver hands out TURN credentials for the test's coturn."""
    root = tmp_path_factory.mktemp("stack-calls")
    settings = synapse_turn_settings(turn_uris("127.0.0.1", turn.port), turn.secret)
    stack = build_stack("sqlite", root, homeserver_extra=settings)
    try:
        stack.http = aiohttp.ClientSession()
        stack.start_guilds()
        yield stack
    finally:
        await stack.close()


@pytest.fixture(scope="module")
def coturn(turn: Turn) -> Iterator[Turn]:
    """coturn on the reserved port, with the homeserver's secret (`make test` installs it)."""
    try:
        proc = start_coturn(
            port=turn.port,
            secret=turn.secret,
            state_dir=turn.state_dir,
            log_path=turn.state_dir / "turnserver.log",
            realm="localhost",
        )
    except CoturnMissing as exc:
        pytest.fail(str(exc))
    try:
        if not wait_until(
            lambda: port_listening_udp_tcp(turn.port),
            deadline_s=15,
            alive=lambda: proc.poll() is None,
        ):
            log = (turn.state_dir / "turnserver.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"coturn did not start on port {turn.port}:\n{log}")
        turn.pid = proc.pid
        yield turn
    finally:
        stop(proc)


@contextmanager
def coturn_paused(turn: Turn) -> Iterator[None]:
    """coturn stopped (SIGSTOP): requests wait in its socket until it continues, as behind a
    slow link. It always continues on the way out, whatever the test did."""
    assert turn.pid
    os.kill(turn.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(turn.pid, signal.SIGCONT)


# --- steps ------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def second(browser: Browser) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """A second person's browser context; its page errors fail the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    problems: list[str] = []
    try:
        yield context, problems
    finally:
        await context.close()
    assert not problems, problems


async def pair(
    page: Page, second: tuple[BrowserContext, list[str]], stack: Stack
) -> tuple[Page, User, User, str]:
    """Alice in `page`, Bob in a second context, both in their DM. Answers (bob's page, ...)."""
    alice, bob = await stack.register_user(), await stack.register_user()
    room_id = await make_dm(stack, alice, bob)
    other = await new_page(second[0], second[1])
    await open_dm(page, stack, alice, bob, room_id)
    await open_dm(other, stack, bob, alice, room_id)
    return other, alice, bob, room_id


def panel(page: Page) -> Any:
    return page.get_by_test_id("direct-call-panel")


async def call_answered(
    page: Page, other: Page, *, kind: str = "video", connected_ms: int = CALL_MS
) -> None:
    """`page` places a call (`kind` "video" or "voice") in the open DM, `other` accepts it, and
    both connect."""
    await page.get_by_test_id("dm-header").get_by_test_id(f"dm-call-{kind}").click()
    ringing = other.get_by_test_id("incoming-call")
    await expect(ringing).to_be_visible(timeout=CALL_MS)
    await ringing.get_by_test_id("call-accept").click()
    for p in (page, other):
        await expect(panel(p)).to_have_attribute("data-state", "connected", timeout=connected_ms)


def status(page: Page) -> Any:
    return panel(page).get_by_test_id("direct-call-status")


async def call_info(page: Page) -> dict[str, Any]:
    """Every 1:1 call this page knows, by call id: state, direction, end reason."""
    info: dict[str, Any] = await page.evaluate(
        """async () => {
          const mod = await import("/static/js/views/direct-call.js");
          const out = {};
          for (const [id, c] of mod.current.calls) {
            out[id] = {state: c.state, direction: c.direction, endReason: c.endReason};
          }
          return out;
        }"""
    )
    return info


MEDIA_JS = """async ({deadlineMs, needVideo}) => {
  const mod = await import("/static/js/views/direct-call.js");
  const deadline = Date.now() + deadlineMs;
  let last = null;
  while (Date.now() < deadline) {
    const call = mod.current.current;
    if (call && call.pc) {
      const stats = await call.pc.getStats();
      let frames = 0, audioBytes = 0, pair = null;
      const relays = [];
      const byId = new Map();
      stats.forEach((s) => byId.set(s.id, s));
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
        if (s.type === "inbound-rtp" && s.kind === "audio") audioBytes += s.bytesReceived || 0;
        if (s.type === "local-candidate" && s.candidateType === "relay") {
          relays.push([s.address, s.port]);
        }
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const p = byId.get(s.selectedCandidatePairId);
          const local = p && byId.get(p.localCandidateId);
          const remote = p && byId.get(p.remoteCandidateId);
          if (local && remote) {
            const end = (c) => ({type: c.candidateType, address: c.address, port: c.port});
            pair = {local: end(local), remote: end(remote)};
          }
        }
      });
      last = {frames, audioBytes, pair, relays, callId: call.callId, state: call.state};
      if (audioBytes > 0 && (!needVideo || frames > 0)) return last;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {timedOut: true, ...last};
}"""


async def media(page: Page, *, video: bool = True) -> dict[str, Any]:
    """Poll the current call's getStats until audio (and video) arrive; answers the figures."""
    result: dict[str, Any] = await page.evaluate(
        MEDIA_JS, {"deadlineMs": CALL_MS, "needVideo": video}
    )
    assert not result.get("timedOut"), f"no media: {result}"
    return result


# matrix-nio's own classes for the call events it knows: parsing into them (not BadEvent) means
# the events pass nio's schema, written independently of ours.
NIO_CALL_CLASSES: dict[str, type] = {
    "m.call.invite": nio.CallInviteEvent,
    "m.call.answer": nio.CallAnswerEvent,
    "m.call.candidates": nio.CallCandidatesEvent,
    "m.call.hangup": nio.CallHangupEvent,
}


async def room_call_events(
    stack: Stack, user: User, room_id: str, *, not_judged: str | None = None
) -> list[dict[str, Any]]:
    """The room's m.call.* events as a plain matrix-nio client reads them, oldest first.

    Those Guilds sent must parse in nio; `not_judged` names a sender whose events come from
    another client (matrix-js-sdk ends its candidates with the spec's `{"candidate": ""}`,
    which nio's schema refuses), so they are returned unjudged.
    """
    async with stack.nio_client(user) as client:
        answer = await client.room_messages(room_id, start="", limit=100)
        assert isinstance(answer, nio.RoomMessagesResponse), answer
    events = []
    for parsed in reversed(answer.chunk):
        source = parsed.source
        if not str(source.get("type", "")).startswith("m.call."):
            continue
        expected = NIO_CALL_CLASSES.get(source["type"])
        if expected is not None and source.get("sender") != not_judged:
            assert isinstance(parsed, expected), f"nio could not parse {source}: {parsed}"
        events.append(source)
    return events


def notices(page: Page) -> Any:
    return page.get_by_test_id("call-notice")


async def force_relay(page: Page, coturn: Turn) -> None:
    """Calls from `page` use only relay candidates, from the coturn the homeserver hands out."""
    servers = await page.evaluate(
        """async () => {
          const ice = await import("/static/js/calls/ice.js");
          ice.setIceOverride({iceTransportPolicy: "relay"});
          const calls = (await import("/static/js/views/direct-call.js")).current;
          return ice.getIceServers(calls.client);
        }"""
    )
    # The homeserver's /voip/turnServer hands out the coturn with fresh credentials.
    assert servers and f"turn:127.0.0.1:{coturn.port}?transport=udp" in servers[0]["urls"]
    assert servers[0]["username"] and servers[0]["credential"]


async def ice_restarts(page: Page) -> int:
    """How many times the page's current 1:1 call restarted ICE."""
    count: int = await page.evaluate(
        """async () => {
          const call = (await import("/static/js/views/direct-call.js")).current.current;
          return call?.recovery?.restarts ?? 0;
        }"""
    )
    return count


def ice_ufrag(sdp: str) -> str:
    found = re.search(r"^a=ice-ufrag:(\S+)", sdp, re.MULTILINE)
    assert found, sdp
    return found.group(1)


class FirstIceAttemptLost:
    """Loses, on their way to the homeserver, every candidate of a caller's first ICE attempt:
    those inside the invite's SDP and those in m.call.candidates (Chromium writes each one's
    `ufrag`). The callee never learns where the caller's relay is, so its coturn allocation never
    permits it, the caller's checks die there, and the first attempt fails: only an ICE restart
    (new credentials, new candidates) can connect the call."""

    def __init__(self) -> None:
        self.ufrag: str | None = None
        self.lost = 0

    async def handle(self, route: Route) -> None:
        request = route.request
        if request.method != "PUT":
            await route.continue_()
            return
        body = request.post_data_json
        assert isinstance(body, dict), request.post_data
        if "/send/m.call.invite/" in request.url:
            sdp = body["offer"]["sdp"]
            self.ufrag = ice_ufrag(sdp)
            lines = sdp.split("\r\n")
            kept = [line for line in lines if not line.startswith("a=candidate:")]
            self.lost += len(lines) - len(kept)
            body["offer"]["sdp"] = "\r\n".join(kept)
        elif self.ufrag is not None:
            candidates = body["candidates"]
            body["candidates"] = [
                c for c in candidates if f" ufrag {self.ufrag}" not in c["candidate"]
            ]
            self.lost += len(candidates) - len(body["candidates"])
        await route.continue_(post_data=json.dumps(body))

    async def install(self, page: Page) -> None:
        await page.route(re.compile(r"/send/m\.call\.(invite|candidates)/"), self.handle)


# --- the tests ---------------------------------------------------------------------------------


async def test_video_call_invite_ring_answer_media_both_ways_hangup(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack
) -> None:
    other, alice, bob, room_id = await pair(page, second, call_stack)

    await page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
    await expect(panel(page)).to_have_attribute("data-state", "inviting", timeout=CALL_MS)
    await expect(status(page)).to_contain_text("Calling")

    ringing = other.get_by_test_id("incoming-call")
    await expect(ringing).to_be_visible(timeout=CALL_MS)
    await expect(ringing).to_contain_text("video call")
    await ringing.get_by_test_id("call-accept").click()
    await expect(ringing).to_have_count(0)

    for p in (page, other):
        await expect(panel(p)).to_have_attribute("data-state", "connected", timeout=CALL_MS)
    seen_by_alice = await media(page)
    seen_by_bob = await media(other)
    print(f"alice receives {seen_by_alice}; bob receives {seen_by_bob}")
    assert seen_by_alice["callId"] == seen_by_bob["callId"]

    await panel(page).get_by_test_id("direct-call-hangup").click()
    await expect(panel(page)).to_have_attribute("data-state", "ended")
    await expect(panel(other)).to_have_attribute("data-state", "ended", timeout=CALL_MS)
    await expect(panel(other)).to_have_attribute("data-end-reason", "user_hangup")
    await expect(status(other)).to_contain_text("ended the call")
    # Media stopped: no live camera or microphone track stays open after the call.
    live_tracks = await page.evaluate(
        """async () => {
          const mod = await import("/static/js/views/direct-call.js");
          const call = [...mod.current.calls.values()].pop();
          return call.localStream.getTracks().filter((t) => t.readyState === "live").length;
        }"""
    )
    assert live_tracks == 0
    for p in (page, other):
        await expect(notices(p)).to_have_count(1, timeout=LIVE_MS)
        await expect(notices(p)).to_contain_text("Video call ended")

    # A plain Matrix client sees the spec's events, version "1", with the spec's fields.
    events = await room_call_events(call_stack, bob, room_id)
    types = [e["type"] for e in events]
    for needed in (
        "m.call.invite",
        "m.call.candidates",
        "m.call.answer",
        "m.call.select_answer",
        "m.call.hangup",
    ):
        assert needed in types, types
    for e in events:
        assert VOIP_FIELDS <= set(e["content"]), e
        assert e["content"]["version"] == "1", e
        assert e["content"]["call_id"] == seen_by_alice["callId"], e
    invite = next(e for e in events if e["type"] == "m.call.invite")
    answer = next(e for e in events if e["type"] == "m.call.answer")
    select = next(e for e in events if e["type"] == "m.call.select_answer")
    hangup = next(e for e in events if e["type"] == "m.call.hangup")
    assert invite["sender"] == alice.user_id and invite["content"]["invitee"] == bob.user_id
    assert invite["content"]["lifetime"] == 60_000
    assert invite["content"]["offer"]["type"] == "offer"
    assert "m=video" in invite["content"]["offer"]["sdp"]
    assert answer["sender"] == bob.user_id and answer["content"]["answer"]["type"] == "answer"
    assert select["sender"] == alice.user_id
    assert select["content"]["selected_party_id"] == answer["content"]["party_id"]
    assert select["content"]["party_id"] == invite["content"]["party_id"]
    assert hangup["sender"] == alice.user_id and hangup["content"]["reason"] == "user_hangup"
    for e in events:
        if e["type"] == "m.call.candidates":
            assert isinstance(e["content"]["candidates"], list) and e["content"]["candidates"]
            for c in e["content"]["candidates"]:
                assert {"candidate", "sdpMid", "sdpMLineIndex"} <= set(c), c


async def test_declined_call_missed_call_and_calling_back_picks_up(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack
) -> None:
    other, alice, bob, room_id = await pair(page, second, call_stack)

    # Declined: the caller is told, both timelines say so.
    await page.get_by_test_id("dm-header").get_by_test_id("dm-call-voice").click()
    ringing = other.get_by_test_id("incoming-call")
    await expect(ringing).to_be_visible(timeout=CALL_MS)
    await expect(ringing).to_contain_text("voice call")
    await ringing.get_by_test_id("call-reject").click()
    await expect(ringing).to_have_count(0)
    await expect(panel(page)).to_have_attribute("data-end-reason", "rejected", timeout=CALL_MS)
    await expect(status(page)).to_contain_text("declined the call")
    await expect(notices(page).last).to_contain_text("declined the call", timeout=LIVE_MS)
    await expect(notices(other).last).to_contain_text("You declined the call", timeout=LIVE_MS)
    events = await room_call_events(call_stack, alice, room_id)
    reject = [e for e in events if e["type"] == "m.call.reject"]
    assert len(reject) == 1 and reject[0]["sender"] == bob.user_id
    assert VOIP_FIELDS <= set(reject[0]["content"]) and reject[0]["content"]["version"] == "1"
    assert not any(e["type"] == "m.call.answer" for e in events)

    # Missed: the caller gives up before anyone answers; the ringing stops, a notice stays.
    await page.get_by_test_id("direct-call-close").click()
    await page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
    await expect(panel(page)).to_have_attribute("data-state", "inviting", timeout=CALL_MS)
    await expect(ringing).to_be_visible(timeout=CALL_MS)
    await panel(page).get_by_test_id("direct-call-hangup").click()
    await expect(ringing).to_have_count(0, timeout=CALL_MS)
    await expect(notices(other).last).to_contain_text("Missed video call from", timeout=LIVE_MS)
    await expect(notices(page).last).to_contain_text("did not answer your video call")

    # Calling back while their call rings here picks it up: one call, not two.
    await page.get_by_test_id("direct-call-close").click()
    await page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
    await expect(ringing).to_be_visible(timeout=CALL_MS)
    await other.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
    for p in (page, other):
        await expect(panel(p)).to_have_attribute("data-state", "connected", timeout=CALL_MS)
    a, b = await call_info(page), await call_info(other)
    live = {k for k, v in a.items() if v["state"] != "ended"}
    assert len(live) == 1 and live == {k for k, v in b.items() if v["state"] != "ended"}, (a, b)
    await panel(other).get_by_test_id("direct-call-hangup").click()
    await expect(panel(page)).to_have_attribute("data-state", "ended", timeout=CALL_MS)


async def test_glare_both_call_at_once_ends_with_exactly_one_call_then_a_closed_tab_hangs_up(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack
) -> None:
    other, alice, bob, room_id = await pair(page, second, call_stack)

    await asyncio.gather(
        page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click(),
        other.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click(),
    )
    for p in (page, other):
        await expect(panel(p)).to_have_attribute("data-state", "connected", timeout=CALL_MS)
    alive_a: dict[str, Any] = {}
    alive_b: dict[str, Any] = {}

    async def one_call_each() -> bool:
        nonlocal alive_a, alive_b
        a, b = await call_info(page), await call_info(other)
        alive_a = {k: v for k, v in a.items() if v["state"] != "ended"}
        alive_b = {k: v for k, v in b.items() if v["state"] != "ended"}
        return len(alive_a) == 1 and alive_a.keys() == alive_b.keys()

    await eventually(one_call_each, deadline_s=30, what="exactly one live call on both sides")
    (survivor,) = alive_a
    assert alive_a[survivor]["direction"] != alive_b[survivor]["direction"]
    await media(page)
    await media(other)
    await expect(page.get_by_test_id("incoming-call")).to_have_count(0)
    await expect(other.get_by_test_id("incoming-call")).to_have_count(0)

    # The room tells the same story: two invites, the lesser call id answered, the other hung up.
    events = await room_call_events(call_stack, alice, room_id)
    invites = sorted(e["content"]["call_id"] for e in events if e["type"] == "m.call.invite")
    if len(invites) == 2:
        assert survivor == invites[0], (survivor, invites)
        answered = {e["content"]["call_id"] for e in events if e["type"] == "m.call.answer"}
        assert answered == {invites[0]}
        hung_up = {e["content"]["call_id"] for e in events if e["type"] == "m.call.hangup"}
        assert invites[1] in hung_up
    else:
        # One side saw the other's invite before sending its own: it answered that one instead.
        assert invites == [survivor], invites
    print(f"glare: invites {invites}, survivor {survivor}")

    # Bob closes his tab mid-call: the hangup goes out as the page goes (fetch keepalive), so
    # Alice's call ends as hung up, not when ICE gives up (that would be ice_timeout).
    await other.close(run_before_unload=True)
    await expect(panel(page)).to_have_attribute("data-state", "ended", timeout=CALL_MS)
    await expect(panel(page)).to_have_attribute("data-end-reason", "user_hangup")
    # No missed-call notice for the call that lost the glare: one "call ended" line only.
    await expect(notices(page)).to_have_count(1, timeout=LIVE_MS)
    await expect(notices(page)).to_contain_text("Video call ended")


async def test_voice_call_then_camera_on_renegotiates_and_leaving_ends_it(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack
) -> None:
    other, alice, bob, room_id = await pair(page, second, call_stack)

    await call_answered(page, other, kind="voice")
    heard = await media(other, video=False)
    assert heard["frames"] == 0, heard

    await panel(page).get_by_test_id("direct-call-camera").click()
    seen = await media(other, video=True)
    print(f"after the camera went on, bob receives {seen}")
    events = await room_call_events(call_stack, alice, room_id)
    negotiate = [e for e in events if e["type"] == "m.call.negotiate"]
    assert [e["content"]["description"]["type"] for e in negotiate][:2] == ["offer", "answer"]
    for e in negotiate:
        assert VOIP_FIELDS <= set(e["content"]) and e["content"]["version"] == "1"
        assert e["content"]["lifetime"] > 0
    # Both sides are Guilds: each wrote its stream metadata under both keys, the camera's
    # offer and its answer included.
    by_alice, by_bob = [metadata_under_both_keys(events, user) for user in (alice, bob)]
    assert by_alice["m.call.invite"] == 1 and by_alice["m.call.negotiate"] >= 1, by_alice
    assert by_bob["m.call.answer"] == 1 and by_bob["m.call.negotiate"] >= 1, by_bob

    # Bob leaves the room from another client: as the spec says, that ends the call for both.
    async with call_stack.nio_client(bob) as client:
        left = await client.room_leave(room_id)
        assert isinstance(left, nio.RoomLeaveResponse), left
    for p in (page, other):
        await expect(panel(p)).to_have_attribute("data-state", "ended", timeout=CALL_MS)
    await expect(panel(page)).to_have_attribute("data-end-reason", "user_hangup")


async def test_call_forced_through_the_local_coturn_relay(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack, coturn: Turn
) -> None:
    """Relay-only on both sides. Should the first ICE attempt still fail (CI once saw it end
    with ice_failed on a loaded machine), the call restarts ICE rather than hanging up, well
    within CALL_MS (Chromium gives up on an attempt after about 15 s): the restarts are
    printed, and the pair assertions hold for whichever attempt connected."""
    other, _alice, _bob, _room_id = await pair(page, second, call_stack)
    for p in (page, other):
        await force_relay(p, coturn)

    await call_answered(page, other)
    seen = [await media(p) for p in (page, other)]
    print(f"through the relay, {[await ice_restarts(p) for p in (page, other)]} restarts: {seen}")
    for mine, theirs in (seen, seen[::-1]):
        # Each side sends from its own coturn allocation to one of the other's: its remote end
        # is a relay address of the other side, whether that candidate came by signalling
        # ("relay") or was learned from the other's first check before it arrived ("prflx").
        local, remote = mine["pair"]["local"], mine["pair"]["remote"]
        assert local["type"] == "relay", seen
        assert remote["type"] in ("relay", "prflx"), seen
        # Chromium hides a peer-reflexive candidate's address ('' in getStats): its port names it.
        relay_ports = {port for address, port in theirs["relays"] if address == "127.0.0.1"}
        assert remote["port"] in relay_ports, seen
        assert remote["address"] in ("127.0.0.1", "" if remote["type"] == "prflx" else None), seen
    await panel(page).get_by_test_id("direct-call-hangup").click()
    await expect(panel(other)).to_have_attribute("data-state", "ended", timeout=CALL_MS)


async def test_a_candidate_found_while_the_invite_is_on_its_way_still_reaches_the_callee(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack, coturn: Turn
) -> None:
    """Relay-only, the relay candidate is the caller's only one. When the TURN server answers
    late (a loaded machine), it is found after the invite's SDP was written but before the
    invite's request returns: it must still go out in m.call.candidates, so the call connects at
    its first ICE attempt, with no restart."""
    other, alice, _bob, room_id = await pair(page, second, call_stack)
    for p in (page, other):
        await force_relay(p, coturn)
    invite_sdp: list[str] = []

    async def slow_invite(route: Route) -> None:
        body = route.request.post_data_json
        assert isinstance(body, dict), route.request.post_data
        invite_sdp.append(body["offer"]["sdp"])
        await asyncio.sleep(3)  # the invite's request is slow, the relay candidate comes meanwhile
        await route.continue_()

    await page.route(re.compile(r"/send/m\.call\.invite/"), slow_invite)
    with coturn_paused(coturn):
        await page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
        # "inviting": the SDP is written and the invite on its way, without a relay candidate.
        await expect(panel(page)).to_have_attribute("data-state", "inviting", timeout=CALL_MS)
    ringing = other.get_by_test_id("incoming-call")
    await expect(ringing).to_be_visible(timeout=CALL_MS)
    assert invite_sdp and "typ relay" not in invite_sdp[0], invite_sdp
    await ringing.get_by_test_id("call-accept").click()
    for p in (page, other):
        await expect(panel(p)).to_have_attribute("data-state", "connected", timeout=CALL_MS)
    assert [await ice_restarts(p) for p in (page, other)] == [0, 0]
    await media(page)
    await media(other)

    ufrag = ice_ufrag(invite_sdp[0])
    events = await room_call_events(call_stack, alice, room_id)
    sent = [
        c["candidate"]
        for e in events
        if e["type"] == "m.call.candidates" and e["sender"] == alice.user_id
        for c in e["content"]["candidates"]
    ]
    assert any("typ relay" in c and f" ufrag {ufrag}" in c for c in sent), sent
    await panel(page).get_by_test_id("direct-call-hangup").click()
    await expect(panel(other)).to_have_attribute("data-state", "ended", timeout=CALL_MS)


# Audio bytes and decoded video frames the current call receives from now on, once both grow
# (or what grew by the deadline).
RECEIVED_JS = """async ({deadlineMs}) => {
  const call = (await import("/static/js/views/direct-call.js")).current.current;
  const read = async () => {
    let frames = 0, audioBytes = 0;
    (await call.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
      if (s.type === "inbound-rtp" && s.kind === "audio") audioBytes += s.bytesReceived || 0;
    });
    return {frames, audioBytes};
  };
  const before = await read();
  const deadline = Date.now() + deadlineMs;
  let grown = {frames: 0, audioBytes: 0};
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await read();
    grown = {frames: now.frames - before.frames, audioBytes: now.audioBytes - before.audioBytes};
    if (grown.frames > 0 && grown.audioBytes > 0) break;
  }
  return grown;
}"""


async def test_a_call_whose_relay_goes_silent_mid_call_reconnects_by_an_ice_restart(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack, coturn: Turn
) -> None:
    """Connected through the relay, the relay goes silent (coturn paused): the connection goes
    "disconnected", the panel says "Reconnecting…", and once that lasts past its grace period
    the call restarts ICE; with the relay back, the restarted connection carries media again
    and the call never ended."""
    other, _alice, _bob, _room_id = await pair(page, second, call_stack)
    for p in (page, other):
        await force_relay(p, coturn)
    await call_answered(page, other)
    await media(page)
    await media(other)
    assert [await ice_restarts(p) for p in (page, other)] == [0, 0]

    async def restarted() -> bool:
        return sum([await ice_restarts(p) for p in (page, other)]) >= 1

    with coturn_paused(coturn):
        await expect(status(page)).to_contain_text("Reconnecting", timeout=CALL_MS)
        await eventually(restarted, deadline_s=CALL_MS / 1000, what="an ICE restart")
    for p in (page, other):
        await expect(panel(p)).to_have_attribute("data-state", "connected", timeout=RECOVERY_MS)
    # Media flows again, on the restarted connection.
    received = [await p.evaluate(RECEIVED_JS, {"deadlineMs": CALL_MS}) for p in (page, other)]
    restarts = [await ice_restarts(p) for p in (page, other)]
    print(f"after {restarts} ICE restart(s), received since reconnected: {received}")
    for figures in received:
        assert figures["audioBytes"] > 0 and figures["frames"] > 0, received
    a, b = await call_info(page), await call_info(other)
    assert [v["state"] for v in a.values()] == ["connected"], a
    assert [v["state"] for v in b.values()] == ["connected"], b
    await panel(page).get_by_test_id("direct-call-hangup").click()
    await expect(panel(other)).to_have_attribute("data-end-reason", "user_hangup", timeout=CALL_MS)


async def test_a_failed_first_ice_attempt_restarts_ice_and_the_call_connects(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack, coturn: Turn
) -> None:
    other, alice, _bob, room_id = await pair(page, second, call_stack)
    for p in (page, other):
        await force_relay(p, coturn)
    lost = FirstIceAttemptLost()
    await lost.install(page)

    # Without a restart the caller hangs up with ice_failed once the first attempt fails.
    await call_answered(page, other, connected_ms=RECOVERY_MS)
    assert lost.ufrag is not None and lost.lost > 0, "no candidate of the first attempt was lost"
    restarts = [await ice_restarts(p) for p in (page, other)]
    assert sum(restarts) >= 1, restarts

    # Media flows, through the relay, on the restarted connection (none flowed before it).
    seen = [await media(p) for p in (page, other)]
    print(f"after {restarts} ICE restart(s), {lost.lost} candidate(s) lost: {seen}")
    assert seen[0]["callId"] == seen[1]["callId"]
    for figures in seen:
        assert figures["pair"]["local"]["type"] == "relay", seen
    a, b = await call_info(page), await call_info(other)
    assert [v["state"] for v in a.values()] == ["connected"], a
    assert [v["state"] for v in b.values()] == ["connected"], b

    # The restart went over Matrix as the spec's m.call.negotiate: an offer with fresh ICE
    # credentials, and its answer (what another client, Element included, understands too).
    events = await room_call_events(call_stack, alice, room_id)
    negotiated = [e["content"]["description"] for e in events if e["type"] == "m.call.negotiate"]
    offers = [d for d in negotiated if d["type"] == "offer"]
    assert offers and any(d["type"] == "answer" for d in negotiated), negotiated
    assert all(ice_ufrag(d["sdp"]) != lost.ufrag for d in offers), (lost.ufrag, offers)

    await panel(page).get_by_test_id("direct-call-hangup").click()
    await expect(panel(other)).to_have_attribute("data-state", "ended", timeout=CALL_MS)
    await expect(panel(other)).to_have_attribute("data-end-reason", "user_hangup")


async def test_another_clients_invite_rings_and_an_expired_one_does_not(
    page: Page, call_stack: Stack
) -> None:
    alice, bob = await call_stack.register_user(), await call_stack.register_user()
    room_id = await make_dm(call_stack, alice, bob)
    sdp = (
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
    )
    party = secrets.token_hex(4)

    def invite(call_id: str, lifetime: int) -> dict[str, Any]:
        return {
            "call_id": call_id,
            "party_id": party,
            "version": "1",
            "lifetime": lifetime,
            "offer": {"type": "offer", "sdp": sdp},
            "invitee": bob.user_id,
        }

    # Sent (as another client would) with a lifetime that is over before Bob opens the app.
    async with call_stack.nio_client(alice) as client:
        sent = await client.room_send(room_id, "m.call.invite", invite("expired1", 1))
        assert isinstance(sent, nio.RoomSendResponse), sent
    await open_dm(page, call_stack, bob, alice, room_id)
    await expect(notices(page)).to_contain_text("Missed voice call from", timeout=LIVE_MS)
    await expect(page.get_by_test_id("incoming-call")).to_have_count(0)

    # A live invite from that client rings; declining sends the spec's m.call.reject.
    async with call_stack.nio_client(alice) as client:
        sent = await client.room_send(room_id, "m.call.invite", invite("live1", 60_000))
        assert isinstance(sent, nio.RoomSendResponse), sent
    ringing = page.get_by_test_id("incoming-call")
    await expect(ringing).to_have_attribute("data-call-id", "live1", timeout=LIVE_MS)
    await expect(page.get_by_test_id("incoming-call")).to_have_count(1)
    await ringing.get_by_test_id("call-reject").click()

    async def rejected() -> bool:
        events = await room_call_events(call_stack, alice, room_id)
        return any(
            e["type"] == "m.call.reject"
            and e["content"]["call_id"] == "live1"
            and e["content"]["version"] == "1"
            and e["sender"] == bob.user_id
            and isinstance(e["content"].get("party_id"), str)
            for e in events
        )

    await eventually(rejected, what="bob's m.call.reject in the room")

    # An invite nobody answers stops ringing when its lifetime runs out, and is a missed call.
    async with call_stack.nio_client(alice) as client:
        sent = await client.room_send(room_id, "m.call.invite", invite("short1", 6_000))
        assert isinstance(sent, nio.RoomSendResponse), sent
    await expect(ringing).to_have_attribute("data-call-id", "short1", timeout=LIVE_MS)
    await expect(page.get_by_test_id("incoming-call")).to_have_count(0, timeout=CALL_MS)
    await expect(notices(page)).to_have_count(3, timeout=LIVE_MS)
    await expect(notices(page).last).to_contain_text("Missed voice call from")

    # A version 0 client (no party_id, no invitee, numeric version) rings too, and its hangup
    # before anyone answers stops the ringing.
    old = {k: v for k, v in invite("old1", 60_000).items() if k not in ("party_id", "invitee")}
    async with call_stack.nio_client(alice) as client:
        sent = await client.room_send(room_id, "m.call.invite", old | {"version": 0})
        assert isinstance(sent, nio.RoomSendResponse), sent
        await expect(ringing).to_have_attribute("data-call-id", "old1", timeout=LIVE_MS)
        sent = await client.room_send(room_id, "m.call.hangup", {"call_id": "old1", "version": 0})
        assert isinstance(sent, nio.RoomSendResponse), sent
    await expect(page.get_by_test_id("incoming-call")).to_have_count(0, timeout=LIVE_MS)
    await expect(notices(page)).to_have_count(4, timeout=LIVE_MS)


async def test_no_call_in_an_end_to_end_encrypted_dm(page: Page, call_stack: Stack) -> None:
    alice, bob = await call_stack.register_user(), await call_stack.register_user()
    room_id = await make_dm(call_stack, alice, bob)
    async with call_stack.nio_client(alice) as client:
        sent = await client.room_put_state(
            room_id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}
        )
        assert isinstance(sent, nio.RoomPutStateResponse), sent
    await open_dm(page, call_stack, alice, bob, room_id)
    await page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
    await expect(page.get_by_test_id("dm-call-error")).to_contain_text("end-to-end encrypted")
    await expect(panel(page)).to_have_count(0)
    assert not any(
        e["type"] == "m.call.invite" for e in await room_call_events(call_stack, alice, room_id)
    )


# --- with matrix-js-sdk on the other side ------------------------------------------------------
#
# matrix-js-sdk 43 (Element Web's) and 37.5 (which speaks only the unstable
# `org.matrix.msc3077.sdp_stream_metadata` key), each in its own Chromium page with WebRTC,
# call Guilds and are called by it: ring, answer, frames decoded on both pages, mute and camera
# state shown on the other side, hang up.

ON_EACH_SDK = pytest.mark.parametrize("sdk_version", SDK_VERSIONS)

# The SDK keeps the call it is offered (or places) as `window.sdkCall`.
SDK_WATCH_JS = """() => window.client.on("Call.incoming", (call) => { window.sdkCall = call; })"""

# Waits for the SDK's incoming call, answers it with camera and microphone, and waits until
# it is connected (polled in the page: Playwright does not await async predicates).
SDK_ANSWER_JS = """async ({deadlineMs}) => {
  const end = Date.now() + deadlineMs;
  while (!window.sdkCall && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  const call = window.sdkCall;
  if (!call) return {error: "no incoming call reached matrix-js-sdk"};
  await call.answer(true, true);
  while (call.state !== "connected" && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return {state: call.state};
}"""

# The SDK places a video call in the room, as Element Web's call button does.
SDK_PLACE_JS = """async ({roomId}) => {
  const call = window.sdk.createNewMatrixCall(window.client, roomId);
  if (!call) return {error: "matrix-js-sdk cannot place a call here"};
  window.sdkCall = call;
  await call.placeVideoCall();
  return {callId: call.callId};
}"""

# The SDK's call state, once it is `want` (or what it is at the deadline).
SDK_STATE_JS = """async ({want, deadlineMs}) => {
  const end = Date.now() + deadlineMs;
  while (window.sdkCall?.state !== want && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return window.sdkCall?.state ?? null;
}"""

# What the SDK's peer connection receives: decoded video frames and audio bytes, once both flow.
SDK_MEDIA_JS = """async ({deadlineMs}) => {
  const end = Date.now() + deadlineMs;
  let last = null;
  while (Date.now() < end) {
    const pc = window.sdkCall?.peerConn;
    if (pc) {
      let frames = 0, audioBytes = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
        if (s.type === "inbound-rtp" && s.kind === "audio") audioBytes += s.bytesReceived || 0;
      });
      last = {frames, audioBytes, callId: window.sdkCall.callId};
      if (frames > 0 && audioBytes > 0) return last;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {timedOut: true, ...last};
}"""

# What the SDK shows of the Guilds side's microphone and camera, once it equals `want`.
SDK_REMOTE_MUTE_JS = """async ({want, deadlineMs}) => {
  const end = Date.now() + deadlineMs;
  let seen = null;
  while (Date.now() < end) {
    const feed = window.sdkCall?.remoteUsermediaFeed;
    seen = feed ? {audio: feed.isAudioMuted(), video: feed.isVideoMuted()} : null;
    if (seen && seen.audio === want.audio && seen.video === want.video) return seen;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {timedOut: true, seen};
}"""


async def sdk_state(sdk_page: Page, want: str) -> None:
    seen = await sdk_page.evaluate(SDK_STATE_JS, {"want": want, "deadlineMs": CALL_MS})
    assert seen == want, f"matrix-js-sdk's call is {seen}, not {want}"


async def sdk_media(sdk_page: Page) -> dict[str, Any]:
    """Poll the SDK's getStats until video frames and audio arrive; answers the figures."""
    result: dict[str, Any] = await sdk_page.evaluate(SDK_MEDIA_JS, {"deadlineMs": CALL_MS})
    assert not result.get("timedOut"), f"matrix-js-sdk receives no media: {result}"
    return result


async def sdk_sees_guilds_muted(sdk_page: Page, audio: bool, video: bool) -> None:
    answer = await sdk_page.evaluate(
        SDK_REMOTE_MUTE_JS, {"want": {"audio": audio, "video": video}, "deadlineMs": CALL_MS}
    )
    assert not answer.get("timedOut"), f"matrix-js-sdk shows {answer}, not {audio=} {video=}"


async def sdk_mutes(
    sdk_page: Page, *, audio: bool | None = None, video: bool | None = None
) -> None:
    """The SDK user mutes or unmutes their microphone or camera from the SDK's own call."""
    await sdk_page.evaluate(
        """async ({audio, video}) => {
          if (audio !== null) await window.sdkCall.setMicrophoneMuted(audio);
          if (video !== null) await window.sdkCall.setLocalVideoMuted(video);
        }""",
        {"audio": audio, "video": video},
    )


async def sdk_beside_guilds(
    page: Page, second: tuple[BrowserContext, list[str]], stack: Stack, url: str
) -> tuple[Page, User, User, str]:
    """Alice in Guilds (`page`), Bob in the SDK page at `url`, in their DM. Answers
    (the SDK's page, alice, bob, the DM's id)."""
    alice, bob = await stack.register_user(), await stack.register_user()
    room_id = await make_dm(stack, alice, bob)
    await open_dm(page, stack, alice, bob, room_id)
    sdk_page = await new_page(second[0], second[1])
    await start_sdk(sdk_page, url, stack, bob)
    await sdk_page.evaluate(SDK_WATCH_JS)
    return sdk_page, alice, bob, room_id


async def mute_state_travels_both_ways(page: Page, sdk_page: Page) -> None:
    """Alice (Guilds) mutes and turns her camera off, the SDK shows it; Bob (SDK) does the same,
    Alice's panel says so; both turn back on."""
    remote = panel(page).get_by_test_id("direct-call-remote-state")
    await expect(remote).to_have_attribute("data-audio-muted", "false", timeout=CALL_MS)
    await sdk_sees_guilds_muted(sdk_page, audio=False, video=False)

    # Guilds → SDK.
    await panel(page).get_by_test_id("direct-call-mute").click()
    await sdk_sees_guilds_muted(sdk_page, audio=True, video=False)
    await panel(page).get_by_test_id("direct-call-camera").click()
    await sdk_sees_guilds_muted(sdk_page, audio=True, video=True)
    await panel(page).get_by_test_id("direct-call-mute").click()
    await sdk_sees_guilds_muted(sdk_page, audio=False, video=True)

    # SDK → Guilds.
    await sdk_mutes(sdk_page, audio=True)
    await expect(remote).to_have_attribute("data-audio-muted", "true", timeout=CALL_MS)
    await expect(remote).to_contain_text("is muted")
    await sdk_mutes(sdk_page, video=True)
    await expect(remote).to_have_attribute("data-video-muted", "true", timeout=CALL_MS)
    await expect(remote).to_contain_text("camera off")
    await sdk_mutes(sdk_page, audio=False, video=False)
    await expect(remote).to_have_attribute("data-audio-muted", "false", timeout=CALL_MS)
    await expect(remote).to_have_attribute("data-video-muted", "false", timeout=CALL_MS)


def metadata_under_both_keys(events: list[dict[str, Any]], guilds_user: User) -> Counter[str]:
    """Every event `guilds_user`'s Guilds sent that carries its stream metadata (invite, answer,
    negotiate, and each change) has it under both keys, equal and not empty, for matrix-js-sdk 37
    (the unstable key) and 43 (the stable one) alike. Answers how many of each type it sent."""
    sent: Counter[str] = Counter()
    for e in events:
        if e["sender"] != guilds_user.user_id or e["type"] not in WITH_STREAM_METADATA:
            continue
        sent[e["type"]] += 1
        stable = e["content"].get("sdp_stream_metadata")
        assert stable and isinstance(stable, dict), e
        assert e["content"].get("org.matrix.msc3077.sdp_stream_metadata") == stable, e
        assert VOIP_FIELDS <= set(e["content"]), e
    return sent


async def guilds_wrote_metadata_under_both_keys(
    stack: Stack, guilds_user: User, sdk_user: User, room_id: str, opened_with: str
) -> None:
    """Guilds (`guilds_user`) opened the call with `opened_with` (its invite, or its answer to
    the SDK's) and wrote each mute change after it, all with the metadata under both keys."""
    events = await room_call_events(stack, sdk_user, room_id, not_judged=sdk_user.user_id)
    sent = metadata_under_both_keys(events, guilds_user)
    assert sent[opened_with] == 1, (opened_with, sent)
    assert sent["m.call.sdp_stream_metadata_changed"] >= 3, sent


@ON_EACH_SDK
async def test_guilds_calls_matrix_js_sdk_frames_and_mute_state_both_ways(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack, sdk_version: str
) -> None:
    async with SdkPage(sdk_version) as url:
        sdk_page, alice, bob, room_id = await sdk_beside_guilds(page, second, call_stack, url)
        # Alice calls from Guilds; Bob answers in matrix-js-sdk; media flows both ways.
        await page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
        answered = await sdk_page.evaluate(SDK_ANSWER_JS, {"deadlineMs": CALL_MS})
        assert answered == {"state": "connected"}, answered
        await expect(panel(page)).to_have_attribute("data-state", "connected", timeout=CALL_MS)
        seen_by_alice, seen_by_bob = await media(page), await sdk_media(sdk_page)
        print(f"guilds receives {seen_by_alice}; matrix-js-sdk {sdk_version} {seen_by_bob}")
        assert seen_by_alice["callId"] == seen_by_bob["callId"]

        await mute_state_travels_both_ways(page, sdk_page)

        await panel(page).get_by_test_id("direct-call-hangup").click()
        await expect(panel(page)).to_have_attribute("data-state", "ended")
        await sdk_state(sdk_page, "ended")
    await guilds_wrote_metadata_under_both_keys(call_stack, alice, bob, room_id, "m.call.invite")


@ON_EACH_SDK
async def test_matrix_js_sdk_calls_guilds_frames_and_mute_state_both_ways(
    page: Page, second: tuple[BrowserContext, list[str]], call_stack: Stack, sdk_version: str
) -> None:
    async with SdkPage(sdk_version) as url:
        sdk_page, alice, bob, room_id = await sdk_beside_guilds(page, second, call_stack, url)
        # Bob calls from matrix-js-sdk; Alice's Guilds rings and she answers there.
        placed = await sdk_page.evaluate(SDK_PLACE_JS, {"roomId": room_id})
        assert "callId" in placed, placed
        ringing = page.get_by_test_id("incoming-call")
        await expect(ringing).to_be_visible(timeout=CALL_MS)
        await expect(ringing).to_contain_text("video call")
        await ringing.get_by_test_id("call-accept").click()
        await expect(panel(page)).to_have_attribute("data-state", "connected", timeout=CALL_MS)
        await expect(panel(page)).to_have_attribute("data-call-id", placed["callId"])
        await sdk_state(sdk_page, "connected")
        seen_by_alice, seen_by_bob = await media(page), await sdk_media(sdk_page)
        print(f"guilds receives {seen_by_alice}; matrix-js-sdk {sdk_version} {seen_by_bob}")
        assert seen_by_alice["callId"] == seen_by_bob["callId"] == placed["callId"]

        await mute_state_travels_both_ways(page, sdk_page)

        # Bob hangs up in the SDK; Alice's call ends.
        await sdk_page.evaluate("() => window.sdkCall.hangup('user_hangup', false)")
        await expect(panel(page)).to_have_attribute("data-state", "ended", timeout=CALL_MS)
        await expect(panel(page)).to_have_attribute("data-end-reason", "user_hangup")
    await guilds_wrote_metadata_under_both_keys(call_stack, alice, bob, room_id, "m.call.answer")


@ON_EACH_SDK
async def test_guilds_restarts_a_failed_ice_attempt_with_matrix_js_sdk(
    page: Page,
    second: tuple[BrowserContext, list[str]],
    call_stack: Stack,
    coturn: Turn,
    sdk_version: str,
) -> None:
    """Both relay-only; the first attempt's candidates of the Guilds caller are lost on the way
    (as in test_a_failed_first_ice_attempt_restarts_ice_and_the_call_connects), so only an ICE
    restart, negotiated with matrix-js-sdk over m.call.negotiate, can connect the call."""
    async with SdkPage(sdk_version) as url:
        sdk_page, _alice, bob, room_id = await sdk_beside_guilds(page, second, call_stack, url)
        await force_relay(page, coturn)
        await sdk_page.evaluate("() => window.client.setForceTURN(true)")
        lost = FirstIceAttemptLost()
        await lost.install(page)

        await page.get_by_test_id("dm-header").get_by_test_id("dm-call-video").click()
        answered = await sdk_page.evaluate(SDK_ANSWER_JS, {"deadlineMs": RECOVERY_MS})
        assert answered == {"state": "connected"}, answered
        await expect(panel(page)).to_have_attribute("data-state", "connected", timeout=CALL_MS)
        assert lost.ufrag is not None and lost.lost > 0, "no first-attempt candidate was lost"
        seen_by_alice, seen_by_bob = await media(page), await sdk_media(sdk_page)
        restarts = await ice_restarts(page)
        print(f"matrix-js-sdk {sdk_version}, {restarts} restart(s) in Guilds: {seen_by_alice}")
        assert seen_by_alice["callId"] == seen_by_bob["callId"]
        assert seen_by_alice["pair"]["local"]["type"] == "relay", seen_by_alice

        events = await room_call_events(call_stack, bob, room_id, not_judged=bob.user_id)
        negotiated = [
            (e["sender"], e["content"]["description"])
            for e in events
            if e["type"] == "m.call.negotiate"
        ]
        offers = [d for _, d in negotiated if d["type"] == "offer"]
        assert offers and any(d["type"] == "answer" for _, d in negotiated), negotiated
        assert all(ice_ufrag(d["sdp"]) != lost.ufrag for d in offers), (lost.ufrag, offers)
        assert restarts >= 1 or any(sender == bob.user_id for sender, d in negotiated), negotiated

        await panel(page).get_by_test_id("direct-call-hangup").click()
        await sdk_state(sdk_page, "ended")
