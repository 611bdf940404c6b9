"""Serving the browser client's files from `web/static/` with exact MIME types and caching."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from aiohttp import web
from aiohttp.helpers import ETAG_ANY
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


@dataclass(frozen=True)
class Asset:
    """One static file as served: its bytes, and the (mtime, size) stamp they were read at."""

    body: bytes
    stamp: tuple[int, int]
    modified: float

    @property
    def etag(self) -> str:
        return f"{self.stamp[0]:x}-{self.stamp[1]:x}"


def _resolve_within(root: Path, relative: str) -> Path | None:
    """The file `relative` names under `root`, or None for any path that cannot name one.

    The path comes decoded from the URL, so it may hold what no file name here has: a NUL
    (`%00`, which `resolve()` refuses with ValueError), lone surrogates from invalid UTF-8,
    control characters, or more than the file system accepts (OSError).
    """
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF or c == "\x7f" for c in relative):
        return None
    try:
        path = (root / relative).resolve()
    except (ValueError, OSError):
        return None
    return path if path.is_relative_to(root) else None


def static_handler(root: Path = STATIC_DIR) -> Handler:
    """Serve `root`'s files from memory, re-read when a file's mtime or size changes.

    The whole client is a few hundred kilobytes, so every file is kept; and a handler that holds
    no open file cannot leak one when the browser drops a request halfway, as aiohttp's
    FileResponse does when cancelled while its executor is still opening the file.
    """
    root = root.resolve()
    assets: dict[Path, Asset] = {}

    def load(path: Path) -> Asset | None:
        try:
            stat = path.stat()
            if not S_ISREG(stat.st_mode):
                return None
            stamp = (stat.st_mtime_ns, stat.st_size)
            asset = assets.get(path)
            if asset is None or asset.stamp != stamp:
                asset = assets[path] = Asset(path.read_bytes(), stamp, stat.st_mtime)
        except OSError:
            return None
        return asset

    async def handle(request: web.Request) -> web.StreamResponse:
        path = _resolve_within(root, request.match_info["path"])
        asset = load(path) if path is not None and path.suffix in MIME_TYPES else None
        if path is None or asset is None:
            raise web.HTTPNotFound()
        headers = {"Cache-Control": STATIC_CACHE_CONTROL}
        if any(tag.value in (asset.etag, ETAG_ANY) for tag in request.if_none_match or ()):
            response = web.Response(status=304, headers=headers)
        else:
            headers["Content-Type"] = MIME_TYPES[path.suffix]
            response = web.Response(body=asset.body, headers=headers)
        response.etag = asset.etag
        response.last_modified = asset.modified
        return response

    return handle
