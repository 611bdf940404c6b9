"""`GET /_guilds/v1/templates`: the server templates `POST /servers` offers, as config declares."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.app import require_user
from bridge.services.servers import Servers
from guilds.config import ServerTemplate

TEMPLATE_SERVERS: web.AppKey[Servers] = web.AppKey("guilds_template_servers", Servers)


def template_json(template: ServerTemplate) -> dict[str, Any]:
    return {
        "name": template.name,
        "description": template.description,
        "topic": template.topic,
        "welcome_message": template.welcome_message,
        "default_channel": template.default_channel,
        "categories": list(template.categories),
        "channels": [
            {
                "name": c.name,
                "kind": c.kind,
                "topic": c.topic,
                "category": c.category,
                "allowed_roles": None if c.allowed_roles is None else list(c.allowed_roles),
            }
            for c in template.channels
        ],
        "roles": [
            {
                "role_id": r.role_id,
                "name": r.name,
                "color": r.color,
                "power": r.power,
                "permissions": list(r.permissions),
            }
            for r in template.roles
        ],
    }


async def list_templates(request: web.Request) -> web.Response:
    await require_user(request)
    templates = request.config_dict[TEMPLATE_SERVERS].templates
    # `default` first, the others by name: the order a create-server form offers them in.
    names = sorted(templates, key=lambda n: (n != "default", n))
    return web.json_response({"templates": [template_json(templates[n]) for n in names]})


def add_routes(app: web.Application, servers: Servers) -> None:
    app[TEMPLATE_SERVERS] = servers
    app.router.add_get("/templates", list_templates)
