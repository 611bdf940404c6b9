"""How `make test` shares the suite out among pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tests.harness.stack import BACKENDS, CONFIGURED, ROOM_VERSION_11, SFU

# The browser modules that carry real audio and video (WebRTC between pages of one Chromium):
# each call takes most of a core, so no two of them run at once.
MEDIA_MODULES = frozenset(
    f"tests/browser/{name}.py"
    for name in (
        "test_calls",
        "test_direct_calls",
        "test_interop_calls",
        "test_speaking",
        "test_call_budget",
    )
)

# Modules whose tests share nothing a group would keep (each starts what it needs: `guilds run`
# in a folder of its own, the benchmark scripts in processes of their own): each test is a group,
# so these long tests spread over both workers instead of running back to back on one.
SPLIT_BY_TEST = frozenset(
    ("tests/integration/test_run.py", "tests/integration/test_bench_smoke.py")
)

# What one test costs, roughly, in seconds on this 2-core machine under the load of a full run,
# by folder, and for the modules whose tests are far longer or shorter than their folder's
# (measured with `pytest --durations=0 -p no:xdist` on each module, 2026-12-06/07). Only the
# order of the groups depends on it (longest first), never what runs: a stale figure costs
# some balance at the end of a run, nothing else.
SECONDS_PER_TEST = {"tests/unit": 0.05, "tests/integration": 3.0, "tests/browser": 10.0}
MODULE_SECONDS_PER_TEST = {
    "tests/integration/test_bench_smoke.py": 160.0,
    "tests/integration/test_interleavings.py": 120.0,
    "tests/integration/test_load.py": 60.0,
    "tests/integration/test_run.py": 40.0,
    "tests/integration/test_doctor.py": 40.0,
    "tests/integration/test_declared.py": 40.0,
    "tests/integration/test_startup_waits.py": 30.0,
    "tests/integration/test_directory_compaction.py": 30.0,
    "tests/integration/test_permission_matrix.py": 1.0,
    "tests/browser/test_journey.py": 60.0,
    "tests/browser/test_two_clients_restart.py": 40.0,
    "tests/browser/test_run_outage.py": 60.0,
    "tests/browser/test_send_queue.py": 30.0,
    # Measured under a load of 50 (2026-12-07), scaled to the figures above: real media through
    # Janus, matrix-js-sdk scenarios in Node, two or three pages each.
    "tests/browser/test_sfu_calls.py": 40.0,
    "tests/integration/test_sfu_access.py": 10.0,
    "tests/browser/test_search_pins.py": 20.0,
    "tests/browser/test_threads.py": 20.0,
    "tests/browser/test_mentions.py": 25.0,
}


def work_group(nodeid: str) -> str:
    """Which tests one xdist worker takes together: a module's tests on one backend (its module
    fixtures, such as a cast of users, are built once, and the worker's stack for that backend is
    reused); every test on the worker deployment (one main process, two workers and a Redis
    database, started once rather than on each xdist worker); every test on one of the stacks
    with an admin's settings (`CONFIGURED`) or on the stack with an SFU (`SFU`), whichever module
    it is in; each test of the modules in `SPLIT_BY_TEST` alone; and the browser modules
    with real media, one after another. Other browser modules are groups of their own, like any
    module: kept in one group, the browser tests were a single chunk of about 24 minutes under
    load that one worker ran while the other had run out of work."""
    path, _, rest = nodeid.partition("::")
    if path in MEDIA_MODULES:
        return "browser-media"
    if path in SPLIT_BY_TEST:
        return nodeid
    ids = rest[rest.index("[") + 1 : -1].split("-") if rest.endswith("]") and "[" in rest else []
    backend = next(
        (i for i in ids if i in (*BACKENDS, ROOM_VERSION_11, "workers", SFU, *CONFIGURED)), ""
    )
    shared = backend in ("workers", SFU) or backend in CONFIGURED
    return backend if shared else f"{path}[{backend}]"


def estimated_seconds(nodeid: str) -> float:
    path = nodeid.partition("::")[0]
    if path in MODULE_SECONDS_PER_TEST:
        return MODULE_SECONDS_PER_TEST[path]
    folder = path.rpartition("/")[0]
    return SECONDS_PER_TEST.get(folder, SECONDS_PER_TEST["tests/integration"])


def longest_first(groups: Mapping[str, Iterable[str]]) -> list[str]:
    """The groups in the order workers should take them: the longest estimate first, so the
    last ones handed out are short (unit tests) and both workers finish at about the same
    time. xdist's own order is by number of tests, which put single long tests (the benchmark
    smoke run, the interleavings, the load test) last, with one worker idle beside them."""
    cost = {name: sum(estimated_seconds(n) for n in nodeids) for name, nodeids in groups.items()}
    return sorted(groups, key=lambda name: -cost[name])
