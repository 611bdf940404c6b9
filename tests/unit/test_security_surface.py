"""What an attacker could aim at without any account: invite codes they might guess, and files the
web origin might serve. Checked on the code itself, no services."""

from __future__ import annotations

import ast
import inspect
import math
import string
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import bridge.services.invites
from bridge.services.invites import CODE_BYTES, CODE_RE, Invites
from tests.harness.web_only import make_config
from web.app import create_app
from web.assets import STATIC_DIR

URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def test_invite_codes_come_from_secrets_token_urlsafe() -> None:
    """By inspection: the only source of codes is `secrets`, with at least 64 random bits."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(Invites.create)))
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "secrets.token_urlsafe" in calls
    assert not {c for c in calls if c.startswith("random.")}, calls
    assert CODE_BYTES * 8 >= 64


def test_invite_codes_are_unguessable() -> None:
    """Many codes drawn exactly as `create` draws them: long, URL-safe, distinct, uniform."""
    codes = [bridge.services.invites.secrets.token_urlsafe(CODE_BYTES) for _ in range(20_000)]
    assert all(len(c) >= 8 and set(c) <= URL_SAFE and CODE_RE.fullmatch(c) for c in codes)
    assert len(set(codes)) == len(codes)
    # Shannon entropy of the characters: close to log2(64) = 6 bits each for a uniform draw.
    counts = Counter("".join(codes))
    total = sum(counts.values())
    entropy = -sum(n / total * math.log2(n / total) for n in counts.values())
    assert entropy > 5.95, entropy
    assert len(counts) == 64
    print(f"{len(codes)} codes, {len(codes[0])} characters, {entropy:.3f} bits per character")


# -- the web origin serves no user files -------------------------------------------------------


@pytest.fixture
async def web_app(tmp_path: Path) -> web.Application:
    return create_app(make_config(tmp_path), web.Application())


# The app shell, the invite landing page (DESIGN.md), client discovery and our own static files:
# nothing else. A new route must be added here on purpose, after asking whether it serves
# anything a user sent.
ALLOWED_ROUTES = {
    "GET /",
    "GET /.well-known/matrix/client",
    "GET /invite/{code}",
    "GET /static/{path}",
}


async def test_the_web_app_has_no_route_serving_arbitrary_files(web_app: web.Application) -> None:
    routes = {
        f"{route.method} {route.resource.canonical}"
        for route in web_app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert "GET /static/{path}" in routes and routes <= ALLOWED_ROUTES, routes
    web_client = TestClient(TestServer(web_app))
    await web_client.start_server()
    try:
        # The static route serves the shipped files only: no escape, no executable types.
        for path in [
            "/static/../app.py",
            "/static/%2e%2e/app.py",
            "/static/js/../../security.py",
            "/static/..%2f..%2fguilds.yaml",
            "/static/index.html",
            "/static/upload.exe",
        ]:
            response = await web_client.get(path)
            assert response.status == 404, path
        served = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
        assert served and all(p.suffix != ".html" for p in served)
    finally:
        await web_client.close()
