"""The static import graph of a browser module, for `<link rel="modulepreload">` in the shell.

There is no build step: the browser discovers the client's ES modules level by level (main.js,
then what it imports, then what those import …), one round trip and one main-thread turn per
level, before the client can make its first request. Listing every module of the graph in the
page lets the browser fetch them all at once (figure 7 of docs/PERFORMANCE.md measured the
waterfall at about half the time to the first message). Only static `import … from "./x.js"`
and `export … from` with relative specifiers are followed; dynamic `import()` stays lazy.
"""

from __future__ import annotations

import re
from pathlib import Path

from web.assets import STATIC_DIR

_STATIC_IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["'](\.{1,2}/[^"']+)["']"""
    r"""|^\s*import\s*["'](\.{1,2}/[^"']+)["']""",
    re.MULTILINE,
)


def module_graph(entry: str, root: Path = STATIC_DIR) -> list[str]:
    """URLs (`/static/…`) of every module `entry` (a path under `root`) imports statically,
    directly or not, in breadth-first order, without the entry itself."""
    root = root.resolve()
    start = (root / entry).resolve()
    seen = {start}
    order: list[Path] = []
    queue = [start]
    while queue:
        current = queue.pop(0)
        try:
            text = current.read_text(encoding="utf-8")
        except OSError:
            continue
        for match in _STATIC_IMPORT.finditer(text):
            target = (current.parent / (match.group(1) or match.group(2))).resolve()
            if target in seen or not target.is_relative_to(root) or not target.is_file():
                continue
            seen.add(target)
            order.append(target)
            queue.append(target)
    return [f"/static/{path.relative_to(root).as_posix()}" for path in order]
