"""The OpenAPI document (bridge/openapi.yaml) against the routes the bridge really serves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema.validators import Draft202012Validator

from bridge.api.openapi import openapi_document
from bridge.runtime import Bridge
from guilds.config import load_config
from guildsctl import configgen
from web.app import PROVISIONING_PREFIX, create_app

REPO = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "patch", "delete"}


@pytest_asyncio.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    """A bridge with its apps built (no homeserver needed for that)."""
    configgen.write_installation(
        tmp_path, "example.org", "http://127.0.0.1:9", "sqlite:///guilds.db"
    )
    opened = Bridge(load_config(tmp_path / "guilds.yaml"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def served(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route of `app` under /_guilds/v1, sub-apps included."""
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        if path == PROVISIONING_PREFIX or path.startswith(PROVISIONING_PREFIX + "/"):
            found.add((route.method, path))
    return found


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    (server,) = document["servers"]
    assert server["url"] == PROVISIONING_PREFIX
    return {
        (method.upper(), server["url"] + path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_documented_routes_are_exactly_the_served_ones(bridge: Bridge) -> None:
    document = openapi_document()
    web_origin = served(create_app(bridge.config, bridge.provisioning_app))
    # The web UI's origin serves the API; the appservice listener serves none of it.
    assert served(bridge.appservice_app) == set()
    assert len(web_origin) >= 30
    missing = web_origin - documented(document)
    extra = documented(document) - web_origin
    assert not missing, f"served but not in bridge/openapi.yaml: {sorted(missing)}"
    assert not extra, f"in bridge/openapi.yaml but not served: {sorted(extra)}"


def test_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    operation_ids = []
    for path, item in document["paths"].items():
        templated = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            if method not in METHODS:
                continue
            operation_ids.append(operation["operationId"])
            params = [*item.get("parameters", []), *operation.get("parameters", [])]
            in_path = [resolve(document, p) for p in params]
            names = {p["name"] for p in in_path if p["in"] == "path"}
            assert names == templated, (method, path)
            statuses = set(operation["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            # Every operation says what it answers while Guilds starts or the homeserver is away.
            assert "503" in statuses, (method, path)
            if operation.get("security") != []:
                assert "401" in statuses, (method, path)
    assert len(operation_ids) == len(set(operation_ids))
    # Every schema is itself a valid JSON Schema (OpenAPI 3.1 uses draft 2020-12).
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def test_every_link_names_an_operation_and_its_parameters() -> None:
    document = openapi_document()
    operations = {
        op["operationId"]: (path, item, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }
    for item in document["paths"].values():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for response in op["responses"].values():
                for name, link in resolve(document, response).get("links", {}).items():
                    path, _, _ = operations[link["operationId"]]
                    wanted = set(re.findall(r"\{(\w+)\}", path))
                    assert set(link["parameters"]) == wanted, name


async def test_the_document_is_served_without_a_token(bridge: Bridge) -> None:
    bridge.ready.set()
    app = create_app(bridge.config, bridge.provisioning_app)
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"{PROVISIONING_PREFIX}/openapi.json")
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == openapi_document()


def test_api_md_points_to_the_document() -> None:
    text = (REPO / "docs" / "API.md").read_text(encoding="utf-8")
    assert "/_guilds/v1/openapi.json" in text and "bridge/openapi.yaml" in text
