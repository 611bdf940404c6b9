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

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.harness.scheduling import longest_first, work_group
from tests.harness.sfu import build_sfu_stack
from tests.harness.stack import BACKENDS, CONFIGURED, SFU, Stack, User, build_stack
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


# Tests on Synapse's worker deployment run once more when they fail (pytest-rerunfailures).
# Synapse split into processes can lose the invalidation of a room's cached state between them
# (docs/DEPLOYMENT.md 8: a state read answering an older event, an event built on stale
# auth events refused 403) until the room's next state change; Guilds cannot clear it, and the
# fix belongs in Synapse. A failure that repeats still fails the run, and every rerun is listed
# in the summary (`-ra`: "R" lines), so a new fault of ours does not hide behind it.
WORKERS_RERUNS = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("stack") == "workers":
            item.add_marker(pytest.mark.flaky(reruns=WORKERS_RERUNS))


class Stacks:
    """The stacks one xdist worker has started, by `stack` param, kept until the session ends.

    pytest keeps one instance of a parametrized fixture at a time: a session-scoped `stack`
    whose param changes from one test to the next (a group on SQLite, then one on PostgreSQL,
    then SQLite again, as xdist hands the groups out) was torn down and started again each
    time, 36 Synapse and bridge starts in a run where 11 kinds were used. The `stack` fixture
    now only looks its param up here; each kind is started once, the first time it is asked
    for, and stopped when the session ends.
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: dict[str, Stack] = {}
        # A kind that failed to start fails every test that asks for it, without a new try.
        self._failed: dict[str, BaseException] = {}

    async def get(self, backend: str) -> Stack:
        if backend in self._failed:
            raise self._failed[backend]
        if backend not in self._started:
            try:
                self._started[backend] = await self._start(backend)
            except Exception as exc:
                self._failed[backend] = exc
                raise
        return self._started[backend]

    async def _start(self, backend: str) -> Stack:
        root = self._tmp.mktemp(f"stack-{backend}")
        # `workers` only for the tests that opt in (tests.harness.workers.ALSO_ON_WORKERS), and
        # the `CONFIGURED` ones and `SFU` only for the modules that name them.
        if backend == "workers":
            s: Stack = build_workers_stack(root)
        elif backend == SFU:
            s = build_sfu_stack(root)
        elif backend in CONFIGURED:
            s = build_stack("sqlite", root, CONFIGURED[backend])
        else:
            s = build_stack(backend, root)
        try:
            s.http = aiohttp.ClientSession()
            s.start_guilds()
        except BaseException:
            await s.close()
            raise
        return s

    async def close(self) -> None:
        """Stop every stack, each even when stopping another failed."""
        started, self._started = list(self._started.values()), {}
        async with contextlib.AsyncExitStack() as closing:
            for s in started:
                closing.push_async_callback(s.close)


@pytest_asyncio.fixture(scope="session")
async def stacks(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stacks]:
    started = Stacks(tmp_path_factory)
    try:
        yield started
    finally:
        await started.close()


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def stack(request: pytest.FixtureRequest, stacks: Stacks) -> Stack:
    return await stacks.get(request.param)


@pytest_asyncio.fixture
async def alice(stack: Stack) -> User:
    return await stack.register_user()


@pytest_asyncio.fixture
async def bob(stack: Stack) -> User:
    return await stack.register_user()
