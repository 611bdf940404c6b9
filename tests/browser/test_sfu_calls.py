"""Channel calls through the SFU (Janus VideoRoom) in Chromium with fake media (issue #19).

With an SFU configured, two browsers in a video channel each receive the other's audio (played,
its energy growing) and video frames through Janus, not peer to peer; their MatrixRTC
memberships in room state name the Janus focus. A member kicked from the server is dropped from
the SFU room: their page leaves the call and the other stops receiving them. Janus killed in the
middle of a call: both pages say so, and hear each other again once it is back, with the same
two memberships throughout.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect

from guildsctl.janus import LocalJanus, start_janus
from guildsctl.synapse import stop
from tests.harness.api import Api, create_server, eventually, join_as, join_server
from tests.harness.call_steps import (
    GROUP_JS,
    add_channel,
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
from tests.harness.sfu import build_sfu_stack
from tests.harness.stack import Stack
from tests.harness.synthetic import SyntheticParticipant

pytestmark = pytest.mark.browser


class SfuStack:
    """The stack, and the Janus beside it (which a test may kill and start again)."""

    def __init__(self, stack: Stack, proc: subprocess.Popen[bytes], janus: LocalJanus, root: Path):
        self.stack = stack
        self.proc = proc
        self.janus = janus
        self.root = root


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


@pytest_asyncio.fixture(scope="module")
async def sfu(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SfuStack]:
    root: Path = tmp_path_factory.mktemp("sfu-browser")
    stack, proc, janus = build_sfu_stack(root)
    holder = SfuStack(stack, proc, janus, root)
    try:
        stack.http = aiohttp.ClientSession()
        stack.start_guilds()
        yield holder
    finally:
        await stack.close()
        stop(holder.proc)


async def test_two_browsers_in_a_video_channel_see_and_hear_each_other_through_the_sfu(
    browser: Browser, sfu: SfuStack
) -> None:
    stack = sfu.stack
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
        await hears(pages[0], "alice", {bob.user_id})
        await hears(pages[1], "bob", {alice.user_id})

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
    browser: Browser, sfu: SfuStack
) -> None:
    stack = sfu.stack
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
        await hears(pages[0], "alice", {bob.user_id})
        await hears(pages[1], "bob", {alice.user_id})

        # Janus dies (SIGKILL: no goodbye to anyone).
        sfu.proc.kill()
        sfu.proc.wait()
        for page in pages:
            await expect(page.get_by_test_id("call-status")).to_contain_text(
                "Lost the connection to the call server", timeout=30_000
            )
        # Still in the call as far as room state says: nobody left.
        members = await call_members(stack, alice, lounge)
        assert members[member_key(alice)] and members[member_key(bob)], members

        # It comes back (as `guilds run`'s supervisor would start it): both pages rejoin the
        # room, which the bridge creates again, and hear each other.
        sfu.proc = start_janus(sfu.janus, sfu.root / "janus", sfu.root / "logs" / "janus.log")
        await hears(pages[0], "alice", {bob.user_id})
        await hears(pages[1], "bob", {alice.user_id})
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
    browser: Browser, sfu: SfuStack
) -> None:
    # Synthetic participants (aiortc) join with the bridge's credentials, as a browser does;
    # the browser beside them receives each one's frames and plays each one's tone.
    stack = sfu.stack
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
