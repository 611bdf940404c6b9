"""Fixtures shared by every test that needs the real stack.

`stack` is one Synapse (loading synapse_module) plus one `guilds serve` process, started once
per test session for each backend: the SQLite run and the PostgreSQL run both appear in the
output as `[sqlite]` and `[postgres]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.harness.stack import BACKENDS, Stack, User, build_stack
from tests.harness.workers import build_workers_stack, workers_stack  # noqa: F401 - a fixture


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"stack-{backend}")
    # `workers` only for the tests that opt in (tests.harness.workers.ALSO_ON_WORKERS).
    s = build_workers_stack(root) if backend == "workers" else build_stack(backend, root)
    try:
        s.http = aiohttp.ClientSession()
        s.start_guilds()
        yield s
    finally:
        await s.close()


@pytest_asyncio.fixture
async def alice(stack: Stack) -> User:
    return await stack.register_user()


@pytest_asyncio.fixture
async def bob(stack: Stack) -> User:
    return await stack.register_user()
