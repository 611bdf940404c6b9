"""How tests/ and bench/ may import each other, read from their source with `ast`.

What more than one test needs (fakes, steps, stacks, configs) lives in tests/harness, the one
layer both the tests and the benchmarks build on:
- no module of tests/ imports a test module, a conftest or any other module of tests/ outside
  tests/harness (a test module importing another runs, collects and breaks with it);
- bench/ takes from tests/ only tests/harness, and tests/harness nothing from bench/, so the
  benchmarks and the tests never import each other round in a cycle;
- and no chain of imports comes back to where it started, neither among the modules nor among
  the three parts (the tests, tests/harness, bench/).
Imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tests", "bench")
HARNESS = "tests.harness"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every Python module of tests/ and bench/, by dotted name."""
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported(path: Path, known: set[str]) -> Iterator[str]:
    """The modules of `known` (or the nearest known package) that `path` imports anywhere."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                yield name


@functools.cache
def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: set(imported(path, known)) - {name} for name, path in found.items()}


def in_harness(name: str) -> bool:
    return name == HARNESS or name.startswith(HARNESS + ".")


def is_package(name: str, graph: dict[str, set[str]]) -> bool:
    return any(other.startswith(name + ".") for other in graph)


def test_the_graph_sees_the_imports_it_must_judge() -> None:
    graph = import_graph()
    # Known edges today, so a broken parser cannot pass the rules below by seeing nothing.
    assert "tests.harness.stack" in graph["tests.conftest"]
    assert "tests.harness.stack" in graph["bench.common"]  # imported inside a function
    assert "bench.directory_memory" in graph["tests.unit.test_directory_memory"]


def test_tests_import_from_tests_only_the_harness() -> None:
    graph = import_graph()
    wrong = {
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name.startswith("tests.")
        for target in targets
        if target.startswith("tests.") and not in_harness(target) and not is_package(target, graph)
    }
    assert not wrong, "move what is shared into tests/harness:\n" + "\n".join(sorted(wrong))


def test_bench_takes_only_the_harness_from_tests_and_the_harness_nothing_from_bench() -> None:
    graph = import_graph()
    wrong = {
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if (name.startswith("bench") and target.startswith("tests") and not in_harness(target))
        or (in_harness(name) and target.startswith("bench"))
    }
    assert not wrong, "\n".join(sorted(wrong))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search closes: a node met again while still on the path."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, set())):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def part(name: str) -> str:
    return "tests/harness" if in_harness(name) else name.partition(".")[0]


def test_no_import_cycle_among_the_modules() -> None:
    found = cycles(import_graph())
    assert not found, "\n".join(" -> ".join(cycle) for cycle in found)


def test_no_import_cycle_among_the_tests_the_harness_and_bench() -> None:
    parts: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        parts.setdefault(part(name), set()).update(
            part(t) for t in targets if part(t) != part(name)
        )
    found = cycles(parts)
    assert not found, "\n".join(" -> ".join(cycle) for cycle in found)
