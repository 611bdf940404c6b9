"""How `make test` shares the suite out among pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.harness.stack import BACKENDS, ROOM_VERSION_11


def work_group(nodeid: str) -> str:
    """Which tests one xdist worker takes together: a module's tests on one backend (its module
    fixtures, such as a cast of users, are built once, and the worker's stack for that backend is
    reused); every test on the worker deployment (one main process, two workers and a Redis
    database, started once rather than on each xdist worker); and every browser test, one at a
    time as alone: their live-update bounds assume a quiet Chromium."""
    path, _, rest = nodeid.partition("::")
    if path.startswith("tests/browser/"):
        return "browser"
    ids = rest[rest.index("[") + 1 : -1].split("-") if rest.endswith("]") and "[" in rest else []
    backend = next((i for i in ids if i in (*BACKENDS, ROOM_VERSION_11, "workers")), "")
    return "workers" if backend == "workers" else f"{path}[{backend}]"
