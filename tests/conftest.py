"""Fixtures shared by every test that needs the real stack.

`stack` is one Synapse (loading synapse_module) plus one `guilds serve` process, started once
per test session for each backend: the SQLite run and the PostgreSQL run both appear in the
output as `[sqlite]` and `[postgres]`. A module whose checks storage does not change runs on
SQLite alone (`ON_SQLITE`, tests/harness/workers.py). The modules about an admin's settings in
guilds.yaml (templates, `join_channels: default`) name a `CONFIGURED` stack instead, which they
share (tests/harness/stack.py).

`make test` runs the suite on several pytest-xdist workers (`--dist loadscope`); each worker is
a session of its own, with its own stacks (free ports, fresh PostgreSQL databases, a claimed
Redis database), so tests never share a homeserver across workers. `work_group` below keeps
the work that shares expensive fixtures on one worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.harness.scheduling import longest_first, work_group
from tests.harness.stack import BACKENDS, CONFIGURED, Stack, User, build_stack
from tests.harness.workers import build_workers_stack, workers_stack  # noqa: F401 - a fixture


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadscope` with the scopes of `work_group` (xdist's own `loadgroup` renames node
    ids in a way pytest 9 no longer honours, so the groups are made here), handed out longest
    first (`longest_first`)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SuiteScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_group(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            # xdist hands out the first group of its queue: put the longest first.
            for scope in reversed(longest_first(self.workqueue)):
                self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return SuiteScheduling(config, log)


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"stack-{backend}")
    # `workers` only for the tests that opt in (tests.harness.workers.ALSO_ON_WORKERS), and the
    # `CONFIGURED` ones only for the modules that name them.
    if backend == "workers":
        s: Stack = build_workers_stack(root)
    elif backend in CONFIGURED:
        s = build_stack("sqlite", root, CONFIGURED[backend])
    else:
        s = build_stack(backend, root)
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
