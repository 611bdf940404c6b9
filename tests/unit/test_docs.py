"""The README and docs/ point only at what a clone has, and name every part of the code.

Observation (issue 16): the README sent readers to `../shared/DESIGN.md`, which a clone does not
have, and its "Three parts" table listed five. What the README says about logs and processes
is checked against a real `guilds run` in tests/integration/test_run.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
# A backticked path to a document or into one of the repository's folders.
CODE_PATH = re.compile(r"`((?:\.\./|\./)?(?:[\w.-]+/)*[\w.-]+\.md|(?:\.\./)+[\w./-]+)`")
# The product's parts; tests/ and bench/ have sections of their own ("Testing").
PACKAGES = sorted(
    p.parent.name for p in REPO.glob("*/__init__.py") if p.parent.name not in ("tests", "bench")
)


def referenced_paths(doc: Path) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    links = [t for t in LINK.findall(text) if not re.match(r"^[a-z]+:", t)]
    return links + CODE_PATH.findall(text)


def resolves(doc: Path, target: str) -> bool:
    """Whether `target` names a file of the repository, from the doc's folder or the root."""
    for base in (doc.parent, REPO):
        path = (base / target).resolve()
        if path.is_relative_to(REPO) and path.exists():
            return True
    return False


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(REPO).as_posix() for d in DOCS])
def test_every_path_a_document_names_is_in_the_repository(doc: Path) -> None:
    missing = [t for t in referenced_paths(doc) if not resolves(doc, t)]
    assert missing == [], f"{doc.name} names what a clone does not have: {missing}"


def test_a_path_outside_the_repository_is_caught() -> None:
    # The check itself, on the sentence the README had (it named ../shared/DESIGN.md).
    doc = REPO / "README.md"
    assert CODE_PATH.findall("see `../shared/DESIGN.md` for the mapping") == ["../shared/DESIGN.md"]
    assert not resolves(doc, "../shared/DESIGN.md")
    assert resolves(doc, "docs/DESIGN.md")


def test_the_readme_starts_with_the_two_commands() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "```sh"
    assert lines[1].startswith("make run ") and lines[2].startswith("make test ")
    assert lines[3] == "```"


def test_the_readme_and_the_design_name_every_part() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    design = (REPO / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| `(\w+)/` \|", readme, flags=re.MULTILINE)
    assert sorted(table) == PACKAGES
    for package in PACKAGES:
        assert f"`{package}/`" in design or f"**{package}/**" in design, package
