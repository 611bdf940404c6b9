"""What every HTTP answer of the running stack carries, and how it meets malformed requests.

Observations (issue 16): API answers carried no `Cache-Control: no-store`, and
`GET /static/js/main.js%00.txt` answered 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE


async def answer(stack: Stack, method: str, url: str, **kwargs: Any) -> tuple[int, str]:
    """Status and Cache-Control of one request, the URL sent byte for byte as written."""
    assert stack.http is not None
    async with stack.http.request(method, URL(url, encoded=True), **kwargs) as response:
        await response.read()
        return response.status, response.headers.get("Cache-Control", "")


async def test_api_answers_on_the_web_origin_are_not_stored(stack: Stack, alice: User) -> None:
    api = f"{stack.web_url}/_guilds/v1"
    auth = {"Authorization": f"Bearer {alice.access_token}"}
    requests: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", f"{api}/version", {}, 200),
        ("GET", f"{api}/servers", {"headers": auth}, 200),
        ("GET", f"{api}/servers", {}, 401),
        ("GET", f"{api}/servers/!nope:localhost", {"headers": auth}, 404),
        ("GET", f"{api}/no-such-endpoint", {"headers": auth}, 404),
        ("POST", f"{api}/servers", {"headers": auth, "data": b"{not json"}, 400),
        ("DELETE", f"{api}/version", {}, 405),
    ]
    for method, url, kwargs, expected in requests:
        status, cache_control = await answer(stack, method, url, **kwargs)
        assert status == expected, (method, url, status)
        assert cache_control == "no-store", (method, url, cache_control)


async def test_api_answers_on_the_appservice_listener_are_not_stored(stack: Stack) -> None:
    prefix = f"{stack.appservice_url}/_matrix/app/v1"
    hs_token = stack.config.appservice.registration.hs_token
    requests: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", f"{prefix}/ping", {"headers": {"Authorization": f"Bearer {hs_token}"}}, 200),
        ("PUT", f"{prefix}/transactions/1", {"json": {"events": []}}, 401),
        ("GET", f"{prefix}/no-such-endpoint", {}, 401),
        ("POST", f"{stack.appservice_url}/_guilds/admin/v1/apply", {}, 401),
    ]
    for method, url, kwargs, expected in requests:
        status, cache_control = await answer(stack, method, url, **kwargs)
        assert status == expected, (method, url, status)
        assert cache_control == "no-store", (method, url, cache_control)


@pytest.mark.parametrize(
    "path",
    [
        "/static/js/main.js%00.txt",
        "/static/%00",
        "/static/js/..%2f..%2fapp.py",
        "/static/%2e%2e/%2e%2e/guilds.yaml",
        "/static/js/%ff%fe.js",
        "/static/js/" + "a" * 5000 + ".js",
    ],
)
async def test_malformed_static_paths_are_client_errors(stack: Stack, path: str) -> None:
    status, _ = await answer(stack, "GET", stack.web_url + path)
    assert 400 <= status < 500, (path[:60], status)
    # The same origin still serves the real file afterwards.
    assert (await answer(stack, "GET", f"{stack.web_url}/static/js/main.js"))[0] == 200
