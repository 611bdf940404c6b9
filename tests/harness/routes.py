"""Every route of the bridge's two apps, read from their own routers, for tests that cover all."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bridge.runtime import Bridge
from tests.harness.stack import Stack


async def app_routes(stack: Stack, tmp_path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(method, path template) of every provisioning route, and every appservice path."""
    config = dataclasses.replace(stack.config, database_url=f"sqlite:///{tmp_path / 'routes.db'}")
    bridge = Bridge(config)
    await bridge.open()
    try:
        provisioning = sorted(
            {
                (route.method, route.resource.canonical)
                for route in bridge.provisioning_app.router.routes()
                if route.method != "HEAD" and route.resource is not None
            }
        )
        appservice = sorted(
            {
                f"{route.method} {route.resource.canonical}"
                for route in bridge.appservice_app.router.routes()
                if route.method != "HEAD" and route.resource is not None
            }
        )
    finally:
        await bridge.close()
    # The enumeration itself works: API.md's endpoints are all there.
    assert len(provisioning) >= 29 and ("POST", "/servers/{sid}/invites") in provisioning
    return provisioning, appservice


def fill(template: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\{(\w+)\}", one, template)
