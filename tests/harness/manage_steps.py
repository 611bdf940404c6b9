"""Opening the management dialogs (web/static/js/manage) in a signed-in page, for browser tests.

Until the shell's menus call them, the tests import the module in the page and call the dialogs
with the context the shell will give: the session, and callbacks the page records.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from playwright.async_api import Page

from tests.harness.stack import Stack, User

SESSION_KEY = "guilds.session.v1"


def png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (220, 40, 60)) -> bytes:
    """A small valid PNG of one colour: a real image for the media repository."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def sign_in_as(page: Page, stack: Stack, user: User, *, in_app: bool = False) -> None:
    """Store `user`'s session, as if they had signed in before, and open a page of the site.

    With `in_app`, the app itself; otherwise a page without the client (the not-found page) so
    the dialogs are tested on their own, whatever the shell is doing.
    """
    session = {
        "userId": user.user_id,
        "accessToken": user.access_token,
        "deviceId": user.device_id,
        "homeserverUrl": stack.hs_url,
    }
    await page.goto(f"{stack.web_url}/static/favicon.svg")
    await page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)", [SESSION_KEY, json.dumps(session)]
    )
    await page.goto(stack.web_url if in_app else f"{stack.web_url}/manage-dialogs")


OPEN_JS = """
async ([name, serverId, extra]) => {
  const m = await import('/static/js/manage/index.js');
  const { GuildsApi } = await import('/static/js/guilds-api.js');
  const session = JSON.parse(localStorage.getItem('guilds.session.v1'));
  window.refreshed = window.refreshed || [];
  const ctx = {
    session,
    refresh: (id) => { window.refreshed.push(id); },
    selectServer: (id) => { window.selectedServer = id; },
    onServerGone: (id) => { window.goneServer = id; },
  };
  const api = GuildsApi.forSession(session);
  const server = serverId ? await api.getServer(serverId) : null;
  let third = undefined;
  if (extra && extra.channel) third = server.channels.find((c) => c.channel_id === extra.channel);
  if (extra && extra.category) {
    third = server.categories.find((c) => c.category_id === extra.category);
  }
  window.lastResult = undefined;
  Promise.resolve(m[name](ctx, server, third)).then((r) => { window.lastResult = r; });
  return null;
}
"""


async def open_dialog(page: Page, name: str, server_id: str | None = None, **extra: Any) -> None:
    """Call `manage/index.js`'s `name(ctx, server[, channel|category])` in the page."""
    await page.evaluate(OPEN_JS, [name, server_id, extra or None])


async def manage_entries(page: Page, server_id: str) -> list[str]:
    entries = await page.evaluate(
        """async (serverId) => {
          const m = await import('/static/js/manage/index.js');
          const { GuildsApi } = await import('/static/js/guilds-api.js');
          const session = JSON.parse(localStorage.getItem('guilds.session.v1'));
          const server = await GuildsApi.forSession(session).getServer(serverId);
          return m.manageEntries({ session }, server).map((e) => e.id);
        }""",
        server_id,
    )
    assert isinstance(entries, list)
    return [str(e) for e in entries]
