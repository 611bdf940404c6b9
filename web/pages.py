"""The HTML pages: the Jinja2 environment, the app shell and the not-found page."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from guilds.config import GuildsConfig
from web.preload import module_graph

CONFIG_KEY = web.AppKey("config", GuildsConfig)
TEMPLATES_KEY = web.AppKey("templates", jinja2.Environment)

# The shell is tiny and names module files that change on upgrade: always revalidate.
PAGE_CACHE_CONTROL = "no-cache"


def create_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    config = request.app[CONFIG_KEY]
    html = (
        request.app[TEMPLATES_KEY]
        .get_template(template)
        .render(
            brand_name=config.web.brand_name,
            # The homeserver admin's default look (web.theme, web.logo); a user's choice wins.
            theme=config.web.theme,
            logo=config.web.logo,
            homeserver_url=config.homeserver.public_url,
            server_name=config.homeserver.server_name,
            **context,
        )
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": PAGE_CACHE_CONTROL},
    )


async def index(request: web.Request) -> web.Response:
    """The app shell; the browser client in /static/js/main.js draws everything inside it."""
    return render(request, "index.html", preload=module_graph("js/main.js"))


async def invite(request: web.Request) -> web.Response:
    """The landing page of an invite link; /static/js/invite.js looks the code up and joins."""
    # The code is only echoed into a <meta> (autoescaped); the API decides whether it exists.
    return render(request, "invite.html", code=request.match_info["code"])


def not_found(request: web.Request) -> web.Response:
    return render(request, "404.html", status=404, path=request.path)
