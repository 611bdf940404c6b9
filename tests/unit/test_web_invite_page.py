"""The invite landing page's route: an HTML shell under the strict CSP, the code escaped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient

from tests.harness.web_app import make_config, start
from web.app import create_app


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    client = await start(create_app(make_config(tmp_path)))
    yield client
    await client.close()


async def test_invite_page_loads_its_module_and_names_the_code(client: TestClient) -> None:
    response = await client.get("/invite/AbCd_123-xyz")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    html = await response.text()
    assert '<script type="module" src="/static/js/invite.js"></script>' in html
    assert '<meta name="guilds-invite-code" content="AbCd_123-xyz">' in html
    assert "/static/css/manage.css" in html


async def test_invite_page_escapes_whatever_the_path_holds(client: TestClient) -> None:
    response = await client.get('/invite/"><img src=x onerror=alert(1)>')
    assert response.status == 200
    html = await response.text()
    assert "<img src=x" not in html
    assert 'content="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in html


async def test_invite_module_is_served_as_javascript(client: TestClient) -> None:
    for path in ("/static/js/invite.js", "/static/js/manage/index.js", "/static/css/manage.css"):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Type"].split(";")[0] in ("text/javascript", "text/css")
