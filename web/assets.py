"""Serving the browser client's files from `web/static/` with exact MIME types and caching."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

STATIC_DIR = Path(__file__).parent / "static"

# Named here rather than guessed: `mimetypes` reads /etc/mime.types, and a browser refuses to run
# an ES module served as anything but a JavaScript type. Other extensions are not served at all.
MIME_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

# There is no build step, so file names carry no content hash: browsers must revalidate each time
# (answered by a 304 thanks to the ETag), or an upgrade would mix old and new modules.
STATIC_CACHE_CONTROL = "no-cache"


def static_handler(root: Path = STATIC_DIR) -> Handler:
    root = root.resolve()

    async def handle(request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path.suffix not in MIME_TYPES or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(
            path,
            headers={
                "Content-Type": MIME_TYPES[path.suffix],
                "Cache-Control": STATIC_CACHE_CONTROL,
            },
        )

    return handle
