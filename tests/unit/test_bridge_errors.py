"""The Matrix error shape every bridge and web endpoint answers with, and JSON body parsing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge import errors
from bridge.errors import error_middleware, read_json

EXPECTED = [
    (errors.MissingToken, 401, "M_MISSING_TOKEN"),
    (errors.UnknownToken, 401, "M_UNKNOWN_TOKEN"),
    (errors.Unauthorized, 401, "M_UNAUTHORIZED"),
    (errors.Forbidden, 403, "M_FORBIDDEN"),
    (errors.NotFound, 404, "M_NOT_FOUND"),
    (errors.Unrecognized, 404, "M_UNRECOGNIZED"),
    (errors.BadJson, 400, "M_BAD_JSON"),
    (errors.NotJson, 400, "M_NOT_JSON"),
    (errors.InvalidParam, 400, "M_INVALID_PARAM"),
    (errors.MissingParam, 400, "M_MISSING_PARAM"),
    (errors.Conflict, 409, "M_CONFLICT"),
    (errors.InviteExpired, 410, "GUILDS_INVITE_EXPIRED"),
    (errors.InviteExhausted, 410, "GUILDS_INVITE_EXHAUSTED"),
    (errors.InviteRevoked, 410, "GUILDS_INVITE_REVOKED"),
    (errors.TooLarge, 413, "M_TOO_LARGE"),
]


async def raise_named(request: web.Request) -> web.Response:
    cls = {cls.__name__: cls for cls, _, _ in EXPECTED}[request.match_info["name"]]
    raise cls("a human sentence", detail="extra field")


async def rate_limited(request: web.Request) -> web.Response:
    raise errors.LimitExceeded(retry_after_ms=2500)


async def unavailable(request: web.Request) -> web.Response:
    raise errors.Unavailable("The homeserver is down", retry_after_ms=100)


async def crash(request: web.Request) -> web.Response:
    raise KeyError("secret internal detail")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


async def gone(request: web.Request) -> web.Response:
    raise web.HTTPGone()


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await read_json(request))


async def echo_small(request: web.Request) -> web.Response:
    return web.json_response(await read_json(request, max_bytes=64))


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application(middlewares=[error_middleware], client_max_size=1024)
    app.router.add_get("/raise/{name}", raise_named)
    app.router.add_get("/limited", rate_limited)
    app.router.add_get("/unavailable", unavailable)
    app.router.add_get("/crash", crash)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/gone", gone)
    app.router.add_post("/echo", echo)
    app.router.add_post("/echo-small", echo_small)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(("cls", "status", "errcode"), EXPECTED, ids=lambda v: str(v))
async def test_each_error_has_its_status_and_errcode(
    client: TestClient[Any, Any], cls: type[errors.MatrixError], status: int, errcode: str
) -> None:
    resp = await client.get(f"/raise/{cls.__name__}")
    assert resp.status == status
    assert resp.content_type == "application/json"
    assert await resp.json() == {
        "errcode": errcode,
        "error": "a human sentence",
        "detail": "extra field",
    }


def test_extra_fields_cannot_replace_the_errcode() -> None:
    error = errors.Forbidden("no", errcode="M_OTHER", error="other")
    assert error.to_json() == {"errcode": "M_FORBIDDEN", "error": "no"}


async def test_retryable_errors_carry_retry_after(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/limited")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "3"
    assert await resp.json() == {
        "errcode": "M_LIMIT_EXCEEDED",
        "error": "Too many requests",
        "retry_after_ms": 2500,
    }
    resp = await client.get("/unavailable")
    assert resp.status == 503
    assert await resp.json() == {
        "errcode": "M_UNAVAILABLE",
        "error": "The homeserver is down",
        "retry_after_ms": 100,
    }


async def test_unexpected_exceptions_are_logged_not_shown(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bridge.errors"):
        resp = await client.get("/crash")
    assert resp.status == 500
    body = await resp.text()
    assert "secret internal detail" not in body and "Traceback" not in body
    assert await resp.json() == {"errcode": "M_UNKNOWN", "error": "Internal server error"}
    [record] = caplog.records
    assert record.exc_info is not None and "GET /crash" in record.getMessage()


async def test_router_errors_get_the_matrix_shape(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/no/such/route")
    assert (resp.status, (await resp.json())["errcode"]) == (404, "M_UNRECOGNIZED")
    resp = await client.delete("/crash")
    assert (resp.status, (await resp.json())["errcode"]) == (405, "M_UNRECOGNIZED")
    resp = await client.get("/gone")
    assert (resp.status, (await resp.json())["errcode"]) == (410, "M_UNKNOWN")


async def test_redirects_pass_through(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/redirect", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/elsewhere"


@pytest.mark.parametrize(
    ("body", "status", "errcode"),
    [
        (b"", 400, "M_NOT_JSON"),
        (b"{bad", 400, "M_NOT_JSON"),
        (b'{"x": NaN}', 400, "M_NOT_JSON"),
        (b"\xff\xfe", 400, "M_NOT_JSON"),
        (b"[1, 2]", 400, "M_BAD_JSON"),
        (b'"text"', 400, "M_BAD_JSON"),
        (b"x" * 2000, 413, "M_TOO_LARGE"),
    ],
    ids=["empty", "broken", "nan", "not-utf8", "array", "string", "over-client-max-size"],
)
async def test_read_json_refuses_what_is_not_a_json_object(
    client: TestClient[Any, Any], body: bytes, status: int, errcode: str
) -> None:
    resp = await client.post("/echo", data=body)
    assert resp.status == status
    assert (await resp.json())["errcode"] == errcode


async def test_read_json_returns_the_object(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/echo", json={"name": "général 🎉", "n": [1, 2]})
    assert (resp.status, await resp.json()) == (200, {"name": "général 🎉", "n": [1, 2]})


async def test_read_json_enforces_a_per_endpoint_limit(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/echo-small", json={"x": "y" * 100})
    assert (resp.status, (await resp.json())["errcode"]) == (413, "M_TOO_LARGE")
    resp = await client.post("/echo-small", json={"x": "y"})
    assert resp.status == 200
