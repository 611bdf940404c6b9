"""Secrets are compared in constant time and kept out of caches' keys, and no code compares them
with `==`: checked by calling the code with a spy and by reading the sources."""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp.test_utils import TestClient, TestServer

import bridge.api.appservice
from bridge.api.app import TokenResolver
from bridge.api.appservice import create_appservice_app
from bridge.engine.inbox import TransactionInbox
from bridge.engine.migrations import migrate
from bridge.engine.store import Database

HS_TOKEN = "hs-" + "b" * 61
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    db = await Database.open(f"sqlite:///{tmp_path / 'bridge.db'}")
    await migrate(db)
    inbox = TransactionInbox(db)
    app = create_appservice_app(hs_token=HS_TOKEN, bot_user_id="@guilds:localhost", inbox=inbox)
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()
        await db.close()


@pytest.mark.parametrize("sent", ["hs-" + "c" * 61, "short", HS_TOKEN])
async def test_the_hs_token_is_compared_with_compare_digest(
    client: TestClient[Any, Any], sent: str
) -> None:
    with mock.patch.object(
        bridge.api.appservice.hmac, "compare_digest", wraps=hmac.compare_digest
    ) as spy:
        response = await client.get(
            "/_matrix/app/v1/users/@guilds:localhost", headers={"Authorization": f"Bearer {sent}"}
        )
    assert response.status == (200 if sent == HS_TOKEN else 403)
    spy.assert_called_once_with(sent.encode(), HS_TOKEN.encode())


class FakeMatrix:
    def __init__(self) -> None:
        self.calls = 0

    async def whoami(self, *, token: str | None = None, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {"user_id": "@alice:localhost"}


async def test_the_token_cache_keeps_no_token() -> None:
    matrix = FakeMatrix()
    resolver = TokenResolver(matrix)  # type: ignore[arg-type]
    token = "syt_YWxpY2U_secretsecretsecret_0abc12"
    assert await resolver.resolve(token) == "@alice:localhost"
    assert await resolver.resolve(token) == "@alice:localhost"
    assert matrix.calls == 1  # cached
    kept = repr(resolver._cache)
    assert token not in kept and token.encode().hex() not in kept


# `token == x`, `x != secret`, `hs_token in (...)`: comparisons that leak timing.
NAIVE_COMPARISON = re.compile(
    r"(\w*(token|secret)\w*\s*(==|!=)\s*(?!None\b)\w)|(\w\s*(==|!=)\s*\w*(token|secret)\b)",
    re.IGNORECASE,
)


def test_no_secret_is_compared_with_equality_anywhere() -> None:
    # The pattern catches what it is for, and lets a None check through.
    for bad in ("if token == expected:", "if hs_token != sent", "ok = sent == as_token"):
        assert NAIVE_COMPARISON.search(bad), bad
    assert not NAIVE_COMPARISON.search("if token is None or token == None_x:".split(" or")[0])
    sources = [
        p
        for part in ("bridge", "web", "synapse_module", "guilds", "guildsctl")
        for p in (ROOT / part).rglob("*.py")
    ]
    assert len(sources) > 20
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if NAIVE_COMPARISON.search(line.split("#", 1)[0])
    ]
    assert offenders == []
