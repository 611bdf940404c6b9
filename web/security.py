"""Security headers sent with every response of the web UI, the Content-Security-Policy first."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL: a CSP source with a path would match that path only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(homeserver_public_url: str, sfu_url: str | None = None) -> str:
    """The policy for every page: no inline script, no eval, and only the homeserver besides us.

    The browser client talks to the homeserver directly (Client-Server API, media), so its origin
    is allowed for fetches and media; so is the SFU's WebSocket API, when one is configured
    (channel calls, docs/CALLS.md); nothing else is.
    """
    hs = origin_of(homeserver_public_url)
    connect = f"'self' {hs}" + (f" {origin_of(sfu_url)}" if sfu_url else "")
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": f"'self' data: blob: {hs}",
        "media-src": f"'self' blob: {hs}",
        "connect-src": connect,
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(homeserver_public_url: str, sfu_url: str | None = None) -> Mapping[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(homeserver_public_url, sfu_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def add_security_headers(app: web.Application, headers: Mapping[str, str]) -> None:
    """Set `headers` on every response, including static files, errors and sub-app answers.

    A response-prepare signal rather than a middleware: it also reaches responses that no
    middleware sees, such as those a sub-app's own error middleware builds.
    """

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)

    app.on_response_prepare.append(on_prepare)
