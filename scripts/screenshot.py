"""Take the README's screenshot: the real stack, a believable server, the main view in Chromium.

Brings up Synapse with the module and `guilds serve` through the test harness (SQLite, in a
temporary folder), fills a server through the provisioning API and matrix-nio — channels of every
kind in categories, roles with colours, several people, a short conversation with a reply, an
edit, reactions, an image and a thread — then opens the web UI as the owner at 1280×800 in the
dark theme and writes docs/screenshot.png; then the other main views into docs/screenshots/: a
thread open beside the channel, a video call of two, the Roles dialog, an image's larger view, a
search, the pinned messages and the phone layout.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--views docs/screenshots]

Needs what `make test` installs (Chromium) and, for the emoji people wrote (messages, reactions)
not to be empty boxes, a colour emoji font (Debian: `apt-get install fonts-noto-color-emoji`; or,
leaving the system as it is, `apt-get download` it, `dpkg-deb -x` it into a folder and run with
FONTCONFIG_FILE naming a fonts.conf that includes /etc/fonts/fonts.conf and that folder).
The UI's own icons are SVG and need no font.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import nio
from playwright.async_api import Browser, Page, async_playwright, expect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.api import Api, join_as, join_server  # noqa: E402
from tests.harness.chat_steps import channel, message_with, open_as  # noqa: E402
from tests.harness.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.harness.stack import Stack, User, build_stack  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}


# --- A picture to share: a mockup drawn as a PNG, with no imaging library ----------------------


def mockup_png(width: int = 480, height: int = 270) -> bytes:
    """A small UI mockup: a gradient backdrop, a window with a sidebar and three cards."""

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        # The window: a title bar, a dark sidebar, a light body with three cards.
        if 24 <= x < width - 24 and 20 <= y < height - 20:
            if y < 40:
                return (47, 49, 54)
            if x < 120:
                return (32, 34, 37)
            for i in range(3):
                left = 140 + i * 106
                if left <= x < left + 92 and 60 <= y < 190:
                    if y < 100:
                        return ((88, 101, 242), (35, 165, 90), (240, 178, 50))[i]
                    return (248, 249, 250)
            if 140 <= x < 440 and 205 <= y < 215:
                return (220, 222, 226)
            return (235, 237, 240)
        t = (x + y) / (width + height)
        return (int(88 + 120 * t), int(101 - 40 * t), int(242 - 60 * t))

    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def icon_png(rgb: tuple[int, int, int], size: int = 96) -> bytes:
    """A round-friendly server icon: a solid colour with a lighter diagonal band."""
    rows = b""
    for y in range(size):
        row = b"\x00"
        for x in range(size):
            band = abs(x - y) < size // 6
            r, g, b = rgb
            row += (
                bytes((min(r + 60, 255), min(g + 60, 255), min(b + 60, 255)))
                if band
                else bytes(rgb)
            )
        rows += row

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


# --- Filling the server ------------------------------------------------------------------------


async def call(api: Api, method: str, path: str, body: Any = None) -> Any:
    status, answer = await api.call(method, path, body)
    if status not in (200, 201):
        raise RuntimeError(f"{method} {path}: {status} {answer}")
    return answer


async def upload(stack: Stack, user: User, data: bytes, name: str) -> str:
    assert stack.http is not None
    async with stack.http.post(
        f"{stack.hs_url}/_matrix/media/v3/upload",
        params={"filename": name},
        data=data,
        headers={"Authorization": f"Bearer {user.access_token}", "Content-Type": "image/png"},
    ) as response:
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"upload failed: {answer}")
        return str(answer["content_uri"])


async def send(
    stack: Stack, user: User, room_id: str, content: dict[str, Any], kind: str = "m.room.message"
) -> str:
    async with stack.nio_client(user) as client:
        answer = await client.room_send(room_id, kind, content)
        if not isinstance(answer, nio.RoomSendResponse):
            raise RuntimeError(f"send failed: {answer}")
        return str(answer.event_id)


async def say(stack: Stack, user: User, room_id: str, body: str, html: str | None = None) -> str:
    content: dict[str, Any] = {"msgtype": "m.text", "body": body}
    if html:
        content |= {"format": "org.matrix.custom.html", "formatted_body": html}
    return await send(stack, user, room_id, content)


async def populate(stack: Stack) -> tuple[User, User, str]:
    """Create the people and the server; answer the owner, a moderator and the server's id."""
    names = ["Ava Chen", "Ben Ortiz", "Cleo Park", "Dmitri Volkov", "Erin Walsh", "Farah Haddad"]
    people = [await stack.register_user(name.split()[0].lower()) for name in names]
    for user, name in zip(people, names, strict=True):
        async with stack.nio_client(user) as client:
            await client.set_displayname(name)
    ava, ben, cleo, dmitri, erin, farah = people
    owner = Api(stack, ava)
    # The owner has a picture: the same one in the user panel, her messages and the members.
    picture = await upload(stack, ava, icon_png((230, 126, 34)), "ava.png")
    async with stack.nio_client(ava) as client:
        await client.set_avatar(picture)

    # Two other servers for the rail: one with an icon, one with initials.
    for name, colour in (("Book Club", None), ("Game Night", (235, 69, 158))):
        other = await call(owner, "POST", "/servers", {"name": name})
        if colour:
            icon = await upload(stack, ava, icon_png(colour), "icon.png")
            await call(owner, "PATCH", f"/servers/{other['server_id']}", {"icon": icon})

    server = await call(
        owner, "POST", "/servers", {"name": "Pixel Studio", "topic": "Design, code and coffee"}
    )
    sid, general = server["server_id"], server["default_channel_id"]
    icon = await upload(stack, ava, icon_png((88, 101, 242)), "icon.png")
    await call(owner, "PATCH", f"/servers/{sid}", {"icon": icon})
    await call(
        owner,
        "PATCH",
        f"/servers/{sid}/channels/{general}",
        {"topic": "Say hi — everything that isn't a project lives here"},
    )

    designers = await call(
        owner, "POST", f"/servers/{sid}/roles", {"name": "Designers", "color": "#e67e22"}
    )
    engineers = await call(
        owner, "POST", f"/servers/{sid}/roles", {"name": "Engineers", "color": "#1abc9c"}
    )
    work = await call(owner, "POST", f"/servers/{sid}/categories", {"name": "Projects"})
    voice = await call(owner, "POST", f"/servers/{sid}/categories", {"name": "Hangouts"})
    for name, kind, category, topic in (
        ("announcements", "text", None, "News from the studio"),
        ("design", "text", work["category_id"], "Mockups and reviews"),
        ("engineering", "text", work["category_id"], "Builds, bugs and releases"),
        ("Lounge", "voice", voice["category_id"], None),
        ("Stand-up", "video", voice["category_id"], None),
    ):
        body: dict[str, Any] = {"name": name, "kind": kind}
        if category:
            body["category_id"] = category
        if topic:
            body["topic"] = topic
        await call(owner, "POST", f"/servers/{sid}/channels", body)

    for user in (ben, cleo, dmitri, erin, farah):
        await join_server(stack, sid, user)
        await join_as(stack, user, general)
    for user, role in (
        (ben, "moderator"),
        (cleo, designers["role_id"]),
        (farah, designers["role_id"]),
        (dmitri, engineers["role_id"]),
    ):
        await call(owner, "PUT", f"/servers/{sid}/members/{user.user_id}/roles/{role}")

    # The conversation.
    await say(stack, ben, general, "Morning all ☕ stand-up in 10 in the video channel")
    mockups = await say(
        stack, cleo, general, "Pushed the new onboarding mockups — feedback welcome!"
    )
    image = await upload(stack, cleo, mockup_png(), "onboarding.png")
    await send(
        stack,
        cleo,
        general,
        {
            "msgtype": "m.image",
            "body": "onboarding.png",
            "url": image,
            "info": {"mimetype": "image/png", "w": 480, "h": 270},
        },
    )
    await send(
        stack,
        ava,
        general,
        {
            "msgtype": "m.text",
            "body": "> <@cleo> Pushed the new onboarding mockups\n\n"
            "Love the palette. Can we ship it Friday?",
            "format": "org.matrix.custom.html",
            "formatted_body": "Love the <strong>palette</strong>. Can we ship it Friday?",
            "m.relates_to": {"m.in_reply_to": {"event_id": mockups}},
        },
    )
    for user, key in ((ben, "🎉"), (dmitri, "🎉"), (farah, "😍")):
        await send(
            stack,
            user,
            general,
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": mockups, "key": key}},
            "m.reaction",
        )
    friday = await say(stack, dmitri, general, "Friday works, the build is green")
    await send(
        stack,
        dmitri,
        general,
        {
            "msgtype": "m.text",
            "body": "* Friday works — the build is green and I'll tag the release ✅",
            "m.new_content": {
                "msgtype": "m.text",
                "body": "Friday works — the build is green and I'll tag the release ✅",
            },
            "m.relates_to": {"rel_type": "m.replace", "event_id": friday},
        },
    )
    accessibility = await say(
        stack,
        erin,
        general,
        "Accessibility pass is done: contrast is fine, `Tab` order fixed",
        "Accessibility pass is done: contrast is fine, <code>Tab</code> order fixed",
    )
    # A thread under it (the spec's m.thread, with the reply fallback to the thread's latest).
    latest = accessibility
    for user, body in (
        (ben, "Did the light theme get the same pass?"),
        (erin, "Yes, both themes. Focus rings are visible on every control now"),
    ):
        latest = await send(
            stack,
            user,
            general,
            {
                "msgtype": "m.text",
                "body": body,
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": accessibility,
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": latest},
                },
            },
        )
    # Two pins, as a moderator makes them from any client.
    async with stack.nio_client(ben) as client:
        pins = {"pinned": [mockups, friday]}
        assert isinstance(
            await client.room_put_state(general, "m.room.pinned_events", pins),
            nio.RoomPutStateResponse,
        )
    async with stack.nio_client(farah) as client:
        await client.room_typing(general, typing_state=True, timeout=60_000)
    return ava, ben, sid


async def open_server(browser: Browser, stack: Stack, user: User, sid: str, viewport: Any) -> Page:
    """A page of its own, signed in as `user`, showing the server by its address (routes.js):
    on a phone the rail is in a drawer."""
    context = await browser.new_context(viewport=viewport)
    context.set_default_timeout(60_000)
    page = await context.new_page()
    await open_as(page, stack, user)
    await page.evaluate("localStorage.setItem('guilds.theme', 'dark')")
    await page.goto(f"{stack.web_url}/#/server/{quote(sid, safe='')}")
    await expect(page.get_by_test_id("server-name")).to_have_text("Pixel Studio")
    return page


async def still(page: Page, path: Path) -> None:
    await page.mouse.move(640, 20)  # no hover effects in the picture
    await page.wait_for_timeout(300)  # the hover's fade
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path))
    print(f"wrote {path}")


async def shoot(stack: Stack, owner: User, guest: User, sid: str, out: Path, views: Path) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await open_server(browser, stack, owner, sid, VIEWPORT)
            await channel(page, "general").click()
            await ready(page)
            await still(page, out)

            # A thread beside the channel.
            await message_with(page, "Accessibility pass").get_by_test_id("thread-summary").click()
            thread = page.get_by_test_id("thread-replies").get_by_test_id("thread-message")
            await expect(thread).to_have_count(2)
            await still(page, views / "thread.png")
            await page.get_by_test_id("thread-close").click()

            # An image's larger view.
            await page.get_by_test_id("message-image-open").click()
            await expect(page.get_by_test_id("lightbox-image")).to_be_visible()
            await images_loaded(page)
            await still(page, views / "image.png")
            await page.keyboard.press("Escape")

            # The Roles dialog, a role open.
            await page.get_by_test_id("server-menu-button").click()
            await page.get_by_test_id("menu-openRoles").click()
            roles = page.get_by_test_id("roles-dialog")
            await roles.locator('[data-testid="role-item"]', has_text="Designers").click()
            await expect(roles.get_by_test_id("role-name")).to_have_value("Designers")
            await still(page, views / "roles.png")
            await page.keyboard.press("Escape")

            # A search of the whole server, and the channel's pinned messages.
            await page.get_by_test_id("search-scope").select_option("server")
            await page.get_by_test_id("search-input").fill("friday")
            await page.get_by_test_id("search-input").press("Enter")
            await expect(page.get_by_test_id("search-result")).to_have_count(2)
            await still(page, views / "search.png")
            await page.get_by_test_id("pins-button").click()
            await expect(page.get_by_test_id("pin")).to_have_count(2)
            await still(page, views / "pins.png")
            await page.keyboard.press("Escape")
            await page.get_by_test_id("search-input").fill("")  # not left in the next pictures

            # A video call of two (Chromium's fake camera), seen by the owner.
            guest_page = await open_server(browser, stack, guest, sid, VIEWPORT)
            for someone in (page, guest_page):
                await channel(someone, "Stand-up").click()
            status = page.get_by_test_id("call-status")
            await expect(status).to_have_text("2 in the call", timeout=90_000)
            await expect(page.locator(".call-tile.has-video")).to_have_count(2, timeout=60_000)
            await page.wait_for_timeout(1500)  # a few frames decoded
            await still(page, views / "video-call.png")
            await guest_page.context.close()

            # The phone layout: the server's default channel, the drawers closed.
            phone = await open_server(browser, stack, owner, sid, {"width": 390, "height": 844})
            await expect(message_with(phone, "Tab")).to_have_count(1, timeout=30_000)
            await images_loaded(phone)
            await still(phone, views / "phone.png")
        finally:
            await browser.close()


async def images_loaded(page: Page) -> None:
    await page.wait_for_function(
        "() => [...document.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth)"
    )


async def ready(page: Page) -> None:
    """Wait until everything the picture shows is drawn."""
    await expect(message_with(page, "Tab")).to_have_count(1, timeout=30_000)
    await expect(page.get_by_test_id("edited")).to_have_count(1, timeout=30_000)
    await expect(page.get_by_test_id("reaction")).to_have_count(2, timeout=30_000)
    await expect(page.get_by_test_id("reply-preview")).to_contain_text("mockups")
    await expect(page.get_by_test_id("typing")).to_contain_text("typing", timeout=30_000)
    await expect(page.locator(".member-group")).to_have_count(5, timeout=30_000)
    image = page.get_by_test_id("message-image")
    await expect(image).to_have_count(1)
    # The two servers with an icon show it (initials until the image has loaded).
    await expect(page.locator(".rail-icon img")).to_have_count(2, timeout=30_000)
    await expect(page.get_by_test_id("user-panel-avatar").locator("img")).to_have_count(1)
    await images_loaded(page)


def check_tools() -> None:
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh")
    fonts = ""
    if shutil.which("fc-list"):
        fonts = subprocess.run(["fc-list"], capture_output=True, text=True, check=False).stdout
    if "emoji" not in fonts.lower():
        print("warning: no colour emoji font; emoji will show as boxes", file=sys.stderr)


async def main(out: Path, views: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="guilds-screenshot-"))
    stack = build_stack("sqlite", root)
    try:
        stack.http = aiohttp.ClientSession()
        stack.start_guilds()
        owner, guest, sid = await populate(stack)
        await shoot(stack, owner, guest, sid, out, views)
    finally:
        await stack.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--views", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    check_tools()
    asyncio.run(main(args.out, args.views))
