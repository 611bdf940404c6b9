"""Render the JSON of a benchmark run as the markdown tables of docs/PERFORMANCE.md.

.venv/bin/python -m bench.report [DIR]     # DIR: bench/results by default
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, table


def render(data: dict[str, Any]) -> str:
    lines = [f"### {data['figure']}: {data['title']}", ""]
    machine = data.get("machine", {})
    lines.append(
        f"Run {data['started_at']} → {data.get('finished_at', '?')}, "
        f"backend {data.get('backend')}, "
        f"{data.get('pairs')} pairs; load average before {machine.get('loadavg')}, "
        f"after {data.get('load_after', {}).get('loadavg')}."
    )
    lines += ["", table(data["headers"], data["rows"]), ""]
    for target in data.get("targets", []):
        verdict = {True: "**met**", False: "**missed**", None: "not judged"}[target["met"]]
        name, limit, measured = target["name"], target["limit"], target["measured"]
        lines.append(f"- target {name}: {limit}; measured {measured} → {verdict}")
    for note in data.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS_DIR
    for path in sorted(directory.glob("fig*.json")):
        print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
