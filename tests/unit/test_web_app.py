"""The web UI's aiohttp app: the shell, discovery, static files, headers and 404s."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from aiohttp.typedefs import Handler

from guilds.config import GuildsConfig
from tests.harness.web_app import HS_PUBLIC, make_config, start
from web.app import create_app
from web.assets import static_handler


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    client = await start(create_app(make_config(tmp_path, brand="<b>x</b> & co")))
    yield client
    await client.close()


async def test_index_renders_the_shell_with_the_brand_escaped(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in html
    assert '<script type="module" src="/static/js/main.js"></script>' in html
    assert f'<meta name="guilds-homeserver" content="{HS_PUBLIC}">' in html
    # The CSP forbids inline script, so the page must not carry any.
    assert "<script>" not in html and '<script type="module">' not in html
    assert 'style="' not in html


async def test_well_known_client_names_the_public_homeserver(client: TestClient) -> None:
    response = await client.get("/.well-known/matrix/client")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await response.json() == {"m.homeserver": {"base_url": HS_PUBLIC}}


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/static/js/main.js", "text/javascript"),
        ("/static/js/matrix.js", "text/javascript"),
        ("/static/js/views/auth.js", "text/javascript"),
        ("/static/css/app.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_have_exact_mime_types(client: TestClient, path: str, mime: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == mime
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/js/nope.js",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/js/../../pages.py",
        "/static/js",
    ],
)
async def test_static_serves_nothing_outside_its_files(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert "def " not in await response.text()


@pytest.mark.parametrize(
    "path",
    [
        "/static/js/main.js%00.txt",
        "/static/js/%00",
        "/static/%2e%2e%2f%2e%2e%2fapp.py",
        "/static/js%2fmain.js%2f..%2f..%2f..%2fapp.py",
        "/static/js/%ff%fe.js",
        "/static/js/%c0%af.js",
        "/static/js/" + "a" * 5000 + ".js",
        "/static/" + "d/" * 3000 + "x.js",
    ],
)
async def test_malformed_static_paths_are_refused_not_errors(client: TestClient, path: str) -> None:
    # Observation (issue 16): `%00` raised ValueError in the handler and answered 500.
    response = await client.get(path)
    assert 400 <= response.status < 500, (path[:60], response.status)
    assert "def " not in await response.text()


async def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/static/js/main.js", "/.well-known/matrix/client", "/missing"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in csp
        assert "'unsafe-eval'" not in csp
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["default-src"] == "'self'"
        assert directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["connect-src"] == f"'self' {HS_PUBLIC}"
        assert HS_PUBLIC in directives["img-src"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_csp_names_the_homeserver_origin_not_its_path(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    hs = config.homeserver
    config = GuildsConfig(
        type(hs)(hs.server_name, hs.url, "https://example.org:8448/matrix"),
        config.appservice,
        config.database_url,
        config.web,
        config.log_level,
    )
    client = await start(create_app(config))
    try:
        csp = (await client.get("/")).headers["Content-Security-Policy"]
        assert "connect-src 'self' https://example.org:8448;" in csp
    finally:
        await client.close()


async def test_unknown_page_is_an_html_404(client: TestClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "text/html"
    html = await response.text()
    assert "Nothing here" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


async def test_unknown_page_path_is_escaped(client: TestClient) -> None:
    response = await client.get("/<script>alert(1)</script>")
    assert response.status == 404
    html = await response.text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


async def test_unknown_api_path_is_a_json_404(client: TestClient) -> None:
    response = await client.get("/_guilds/v1/servers")
    assert response.status == 404
    assert await response.json() == {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}


async def test_provisioning_is_mounted_and_keeps_its_own_errors(tmp_path: Path) -> None:
    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return web.json_response(
                {"errcode": "M_NOT_FOUND", "error": exc.reason}, status=exc.status
            )

    async def servers(request: web.Request) -> web.Response:
        return web.json_response({"servers": []})

    provisioning = web.Application(middlewares=[json_errors])
    provisioning.router.add_get("/servers", servers)
    client = await start(create_app(make_config(tmp_path), provisioning))
    try:
        response = await client.get("/_guilds/v1/servers")
        assert response.status == 200
        assert await response.json() == {"servers": []}
        assert "Content-Security-Policy" in response.headers
        missing = await client.get("/_guilds/v1/nope")
        assert missing.status == 404
        assert (await missing.json())["errcode"] == "M_NOT_FOUND"
        # The UI is still there beside it.
        assert (await client.get("/")).status == 200
    finally:
        await client.close()


async def test_a_static_file_changed_on_disk_is_served_anew(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("export const version = 1;\n")
    server = TestServer(_static_app(tmp_path), host="127.0.0.1")
    async with TestClient(server) as client:
        first = await client.get("/static/app.js")
        assert await first.text() == "export const version = 1;\n"
        etag = first.headers["ETag"]
        assert (await client.get("/static/app.js", headers={"If-None-Match": "*"})).status == 304
        (tmp_path / "app.js").write_text("export const version = 22;\n")
        again = await client.get("/static/app.js", headers={"If-None-Match": etag})
        assert again.status == 200
        assert await again.text() == "export const version = 22;\n"
        assert again.headers["ETag"] != etag
        (tmp_path / "app.js").unlink()
        assert (await client.get("/static/app.js")).status == 404


async def test_a_static_request_dropped_halfway_leaves_no_file_open(tmp_path: Path) -> None:
    # A browser that reloads drops its pending requests, and aiohttp cancels their handlers; a
    # response still opening its file then leaked it (a ResourceWarning that failed a later test).
    (tmp_path / "icon.svg").write_text("<svg/>")
    handle = static_handler(tmp_path)
    request = make_mocked_request(
        "GET", "/static/icon.svg", match_info={"path": "icon.svg"}, loop=asyncio.get_running_loop()
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(20):
            response = await handle(request)
            sending = asyncio.ensure_future(response.prepare(request))
            await asyncio.sleep(0)
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
            del response, sending
        await asyncio.sleep(0.2)  # anything an executor was still doing has finished
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def _static_app(root: Path) -> web.Application:
    app = web.Application()
    app.router.add_get("/static/{path:.+}", static_handler(root))
    return app


def test_the_csp_lets_pages_reach_the_sfu_only_when_one_is_configured() -> None:
    from web.security import content_security_policy

    def connect_src(csp: str) -> str:
        return dict(d.strip().split(" ", 1) for d in csp.split(";"))["connect-src"]

    assert connect_src(content_security_policy("https://hs.example.org")) == (
        "'self' https://hs.example.org"
    )
    with_sfu = content_security_policy("https://hs.example.org", "wss://sfu.example.org/janus")
    assert connect_src(with_sfu) == "'self' https://hs.example.org wss://sfu.example.org"
