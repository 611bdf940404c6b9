"""The web UI's aiohttp application: the app shell, client discovery, static files, the API."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from guilds.config import GuildsConfig
from web.assets import STATIC_DIR, static_handler
from web.pages import CONFIG_KEY, TEMPLATES_KEY, create_environment, index, invite, not_found
from web.security import add_security_headers, security_headers

PROVISIONING_PREFIX = "/_guilds/v1"
# Paths that only programs call: an unknown one gets a JSON error, not an HTML page.
API_PREFIXES = ("/_guilds/", "/_matrix/", "/.well-known/")


async def well_known_client(request: web.Request) -> web.Response:
    """Standard Matrix client discovery, so any client given this origin finds the homeserver."""
    config = request.app[CONFIG_KEY]
    return web.json_response(
        {"m.homeserver": {"base_url": config.homeserver.public_url}},
        headers={
            # The spec asks for CORS here: other web clients read it from their own origin.
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "public, max-age=300",
        },
    )


@web.middleware
async def not_found_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer unknown paths with a 404 page for people and a Matrix-shaped error for programs."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith(API_PREFIXES):
            return web.json_response(
                {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, status=404
            )
        return not_found(request)


def create_app(
    config: GuildsConfig, provisioning: web.Application | None = None
) -> web.Application:
    """Build the web UI. `provisioning`, the bridge's API app, is mounted under /_guilds/v1."""
    app = web.Application(middlewares=[not_found_middleware])
    app[CONFIG_KEY] = config
    app[TEMPLATES_KEY] = create_environment()
    sfu_url = config.janus.public_url if config.janus is not None else None
    add_security_headers(app, security_headers(config.homeserver.public_url, sfu_url))

    app.router.add_get("/", index, name="index")
    app.router.add_get("/invite/{code}", invite, name="invite")
    app.router.add_get("/.well-known/matrix/client", well_known_client, name="well_known_client")
    app.router.add_get("/static/{path:.+}", static_handler(STATIC_DIR), name="static")
    if provisioning is not None:
        # The sub-app keeps its own error middleware, so its 404s stay JSON.
        app.add_subapp(PROVISIONING_PREFIX, provisioning)
    return app
