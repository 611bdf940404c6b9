"""What the browser figures (7: web UI, 8: calls) share: Chromium as the browser tests launch it,
fresh devices for a user, a page already signed in, and the CPU time of Chromium's processes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Playwright

from tests.harness.chromium import CHROMIUM
from tests.harness.chromium import launch_chromium as launch_test_chromium
from tests.harness.stack import Stack, User

SESSION_KEY = "guilds.session.v1"


async def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium with the browser tests' flags (fake camera and microphone, loopback
    ICE, sound without a click): `tests/harness/chromium.py`, which the figures share."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh")
    return await launch_test_chromium(playwright)


async def new_device(stack: Stack, user: User) -> User:
    """Log `user` in again: a new device and token, so that no response cache of Synapse (keyed
    by device) can answer a first /sync that another run already asked."""
    return await stack.new_device(user, "bench")


async def store_session(page: Page, stack: Stack, user: User) -> None:
    """Put the session a sign-in would have stored into the web UI's origin, without loading
    the app itself (a static file of the same origin is enough)."""
    await page.goto(f"{stack.web_url}/static/favicon.svg")
    session = {
        "userId": user.user_id,
        "accessToken": user.access_token,
        "deviceId": user.device_id,
        "homeserverUrl": stack.hs_url,
    }
    await page.evaluate(
        "([k, s]) => localStorage.setItem(k, s)", [SESSION_KEY, json.dumps(session)]
    )


async def new_context(browser: Browser, *, height: int = 800) -> BrowserContext:
    context = await browser.new_context(viewport={"width": 1280, "height": height})
    context.set_default_timeout(30_000)
    return context


def watch_errors(page: Page, problems: list[str]) -> None:
    """Collect uncaught page errors and CSP violations: a figure from a broken page is void."""
    page.on("pageerror", lambda error: problems.append(f"page error: {error.message}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )


# -- CPU of the browser's processes ---------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """Every live process under `root` (children, grandchildren, …), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def chromium_pids() -> list[int]:
    """Chromium's processes started by this Python process (through Playwright's driver)."""
    pids = []
    for pid in descendants(os.getpid()):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if "chromium" in exe:
            pids.append(pid)
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process so far, in seconds (a vanished one is left out)."""
    out: dict[int, float] = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            # After the name: state=0 ppid=1 … utime=11 stime=12 (0-based in this slice).
            out[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two samples, by processes alive at the second one (a process
    born in between counts from zero)."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())
