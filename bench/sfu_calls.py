"""Figure 8's SFU rows: a channel call through Janus with N participants, one of them a real
browser that measures, the N − 1 others synthetic (tests/harness/synthetic.py: aiortc publishing
a tone and a 160×120 picture with the bridge's credentials, as a browser would join).

Join time: the browser clicks the channel (timestamped in the page, as for the mesh rows) and its
call polls `getStats()` until video frames were decoded from every one of the N − 1 others; then
it leaves, and the next trial starts. CPU: Janus's own CPU time over a window with all N in the
call, divided by N — what each participant costs the SFU, to size a deployment by
(docs/DEPLOYMENT.md, section 7b). The synthetic participants' CPU is theirs, not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import nio
from playwright.async_api import Browser, expect

from bench.browser import new_context, store_session, watch_errors
from bench.common import bench_stack, cpu_seconds, log, summarize
from guildsctl.synapse import stop
from tests.harness.api import Api, create_server, join_server
from tests.harness.sfu import start_test_janus
from tests.harness.stack import Stack, User
from tests.harness.synthetic import SyntheticParticipant

SFU_SIZES = (2, 4, 8, 16, 25)
GROUP_JS = "/static/js/calls/group.js"


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


async def measure_sfu(
    browser: Browser,
    args: argparse.Namespace,
    sizes: list[int],
    trials: int,
    cpu_window: float,
    wait_frames_js: str,
    click_probe_js: str,
    click_channel_js: str,
    deadline_ms: int,
) -> dict[str, dict[str, Any]]:
    """Per size: join times (ms), and Janus's CPU per participant (share of a core)."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="guilds-bench-janus-") as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        proc, janus = start_test_janus(root)
        try:
            config = {"sfu": janus.guilds_sfu_section()}
            async with bench_stack(args.backend, admin_config=config) as stack:
                owner = await stack.register_user()
                sid, room_id = await _channel(stack, owner)
                context = await new_context(browser)
                page = await context.new_page()
                problems: list[str] = []
                watch_errors(page, problems)
                await store_session(page, stack, owner)
                await page.goto(f"{stack.web_url}/#server={sid}")
                button = page.locator(f'[data-testid="channel"][data-channel-id="{room_id}"]')
                await expect(button).to_be_visible(timeout=30_000)
                async with contextlib.AsyncExitStack() as synthetic:
                    present = 0
                    for size in sizes:
                        out = results.setdefault(str(size), {})
                        try:
                            while present < size - 1:
                                user = await _member(stack, sid, room_id)
                                await synthetic.enter_async_context(
                                    SyntheticParticipant(stack, user, sid, room_id, video=True)
                                )
                                present += 1
                            joins = []
                            for _ in range(trials):
                                await page.evaluate(click_probe_js)
                                await page.evaluate(click_channel_js, room_id)
                                result = await page.evaluate(
                                    wait_frames_js,
                                    {
                                        "module": GROUP_JS,
                                        "peers": size - 1,
                                        "deadline": deadline_ms,
                                    },
                                )
                                if not result.get("ok"):
                                    raise RuntimeError(
                                        f"frames from {len(result.get('first', {}))} of "
                                        f"{size - 1} within {deadline_ms / 1000:.0f} s"
                                    )
                                joins.append(float(result["ms"]))
                                # The CPU window of the last trial, with all N in the call.
                                if len(joins) == trials:
                                    before = cpu_seconds(proc.pid)
                                    started = time.monotonic()
                                    await asyncio.sleep(cpu_window)
                                    used = cpu_seconds(proc.pid) - before
                                    cores = used / (time.monotonic() - started)
                                    out["janus_cores"] = cores
                                    out["janus_cores_per_participant"] = cores / size
                                await page.get_by_test_id("call-leave").click()
                                await expect(page.get_by_test_id("call-panel")).to_be_hidden(
                                    timeout=30_000
                                )
                            out["join_ms"] = {"values": joins, "summary": summarize(joins)}
                            log(
                                f"  SFU {size}: join p50 {out['join_ms']['summary']['p50']:.0f} ms,"
                                f" Janus {out['janus_cores_per_participant'] * 100:.1f} % of a core"
                                " per participant"
                            )
                        except Exception as exc:  # noqa: BLE001 - a size that cannot run is reported
                            out["error"] = f"{type(exc).__name__}: {exc}"
                            log(f"  SFU {size}: stopped, {exc!r}")
                            break
                if problems:
                    results.setdefault("notes", {})["page_errors"] = problems[:5]
                await context.close()
        finally:
            stop(proc)
    return results
