"""How `make test` shares the suite out among pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.harness.stack import BACKENDS, ROOM_VERSION_11

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


def work_group(nodeid: str) -> str:
    """Which tests one xdist worker takes together: a module's tests on one backend (its module
    fixtures, such as a cast of users, are built once, and the worker's stack for that backend is
    reused); every test on the worker deployment (one main process, two workers and a Redis
    database, started once rather than on each xdist worker); and the browser modules with
    real media, one after another. Other browser modules are groups of their own, like any
    module: kept in one group, the browser tests were a single chunk of about 24 minutes under
    load that one worker ran while the other had run out of work."""
    path, _, rest = nodeid.partition("::")
    if path in MEDIA_MODULES:
        return "browser-media"
    ids = rest[rest.index("[") + 1 : -1].split("-") if rest.endswith("]") and "[" in rest else []
    backend = next((i for i in ids if i in (*BACKENDS, ROOM_VERSION_11, "workers")), "")
    return "workers" if backend == "workers" else f"{path}[{backend}]"
