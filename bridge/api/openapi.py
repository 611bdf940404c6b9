"""`GET /_guilds/v1/openapi.json`: the provisioning API's OpenAPI 3.1 document, bridge/openapi.yaml.

The document is written by hand, as the contract; it is not derived from the routes, so the test
that compares the two (tests/unit/test_openapi.py) can fail.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

OPENAPI_PATH = "/openapi.json"


@cache
def openapi_document() -> dict[str, Any]:
    """The parsed document (read once: it ships with the code and never changes at run time)."""
    text = resources.files("bridge").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise RuntimeError("bridge/openapi.yaml is not a mapping")
    return document


@cache
def _document_json() -> bytes:
    return json.dumps(openapi_document(), ensure_ascii=False, indent=1).encode()


async def get_openapi(request: web.Request) -> web.Response:
    # No token: the contract is public, like the code it describes.
    return web.Response(body=_document_json(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get(OPENAPI_PATH, get_openapi)
