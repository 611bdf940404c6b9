"""The benchmark scripts of figures 1–6 run end to end with --quick (tiny sizes) on the real stack.

No timing is asserted (benchmarks are not tests): only that each script finishes, prints its
table and writes JSON with the fields docs/PERFORMANCE.md relies on, holding sane numbers.
Figures 1–6 run at once in one process on one Guilds stack and one homeserver without the module
(bench/smoke.py; each script alone starts both of its own), to keep the smoke run short.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = [
    "fig1_messages",
    "fig2_create_server",
    "fig3_role_change",
    "fig4_kick_ban",
    "fig5_invite_join",
    "fig6_read_paths",
]


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _check_ab(name: str, ab: dict[str, Any]) -> None:
    assert ab["a_label"] and ab["b_label"], name
    assert ab["metrics"], f"{name}: no metrics"
    for metric, comparison in ab["metrics"].items():
        for side in ("a", "b", "ratio"):
            summary = comparison[side]
            assert summary["n"] >= 1, f"{name}/{metric}/{side}: no trials"
            for key in ("median", "min", "max", "p50", "p95"):
                assert _positive(summary[key]), f"{name}/{metric}/{side}/{key} = {summary[key]}"
            assert summary["min"] <= summary["median"] <= summary["max"]
        assert len(comparison["a_values"]) == len(comparison["b_values"]) >= 1


# How much of a failed run's output its message shows besides every traceback, whole.
TAIL_CHARS = 4000
_TRACEBACK = "Traceback (most recent call last):"
# Lines of an exception's message kept when no blank line ends it.
_MESSAGE_LINES = 20


def failure_output(output: str, tail: int = TAIL_CHARS) -> str:
    """What a failed run's message shows: every traceback in `output` whole (from its first
    line to the exception's, chained ones included), then the last `tail` characters; the
    output whole if that is no shorter."""
    lines = output.splitlines()
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith(_TRACEBACK):
            i += 1
            continue
        start = i
        i += 1
        # The frames are indented; the exception's line is not, and its message runs on to a
        # blank line (traceback.format_exc() ends with one in bench.smoke's log), or for a few
        # lines at most where the output goes straight on.
        while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
            i += 1
        message_end = min(len(lines), i + _MESSAGE_LINES)
        while i < message_end and lines[i].strip():
            if i > start + 1 and lines[i].lstrip().startswith(_TRACEBACK):
                break
            i += 1
        blocks.append("\n".join(lines[start:i]))
    shown = "\n\n".join(blocks)
    end = output[-tail:]
    if len(output) <= len(shown) + len(end):
        return output
    return f"{shown}\n\n… the output's last {tail} characters:\n{end}"


def run_quick(figures: list[str], results: Path, *, budget_s: float) -> dict[str, str]:
    """Run the figures' scripts with --quick at once, writing JSON into `results`; answers each
    one's printed output, once every one has exited 0 within `budget_s` in all."""
    env = dict(os.environ, GUILDS_BENCH_RESULTS=str(results))
    started = time.monotonic()
    procs = {
        figure: subprocess.Popen(
            [sys.executable, "-m", f"bench.{figure}", "--quick"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for figure in figures
    }
    outputs = {}
    for figure, proc in procs.items():
        out, _ = proc.communicate(timeout=max(60.0, budget_s - (time.monotonic() - started)))
        outputs[figure] = out.decode(errors="replace")
        assert proc.returncode == 0, f"{figure} failed:\n{failure_output(outputs[figure])}"
    return outputs


def run_smoke(results: Path, *, budget_s: float) -> str:
    """`python -m bench.smoke`: figures 1–6 with --quick on shared stacks, writing JSON into
    `results`; answers its printed output once it has exited 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.smoke", "--results-dir", str(results)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=budget_s,
        check=False,
    )
    output = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, f"bench.smoke failed:\n{failure_output(output)}"
    return output


@pytest.mark.timeout(900)
def test_every_backend_figure_runs_quick_and_writes_its_json(tmp_path: Path) -> None:
    output = run_smoke(tmp_path, budget_s=840)

    for figure in FIGURES:
        data = json.loads((tmp_path / f"{figure}.json").read_text())
        assert data["figure"] == figure
        assert data["quick"] is True
        assert data["title"]
        machine = data["machine"]
        assert machine["cores"] >= 1 and machine["ram_mb"] > 0
        assert len(machine["loadavg"]) == 3 and len(data["load_after"]["loadavg"]) == 3
        assert data["rows"] and all(len(row) == len(data["headers"]) for row in data["rows"])
        assert data["targets"], f"{figure}: no targets"
        for target in data["targets"]:
            assert target["met"] is None  # --quick sizes judge nothing
            assert target["limit"] and target["measured"]
        comparisons = {
            k: v for k, v in data["results"].items() if isinstance(v, dict) and "metrics" in v
        }
        assert comparisons, f"{figure}: no A/B comparison in results"
        for name, ab in comparisons.items():
            _check_ab(f"{figure}/{name}", ab)
        # The table was printed too.
        assert f"## {figure}: {data['title']}" in output

    _check_fig6_memory(json.loads((tmp_path / "fig6_read_paths.json").read_text()))


def _check_fig6_memory(fig6: dict[str, Any]) -> None:
    rss = fig6["results"]["rss_mb"]
    assert all(_positive(v) for v in rss.values()), rss
    # The bridge's model of N copies of the real server, measured in a process of its own.
    model = fig6["results"]["model_memory"]
    params = fig6["params"]
    copies = params["model_copies"]
    assert copies == 5  # --quick
    assert model["copies"] == model["servers_loaded"] == copies
    assert model["channels_per_copy"] == params["channels"]
    assert model["members_per_copy"] == params["members"] + 1  # and the owner
    # The space, the channels and the role rooms; every copy's rooms are distinct.
    assert model["rooms_per_copy"] > params["channels"]
    assert model["rooms_tracked"] == copies * model["rooms_per_copy"]
    assert model["state_events_per_copy"] > model["rooms_per_copy"]
    assert list(model["rss_mb"]) == ["before", "1", str(copies)], model["rss_mb"]
    assert all(_positive(v) for v in model["rss_mb"].values()), model["rss_mb"]
    assert _positive(model["model_mb"][str(copies)]) and _positive(model["per_copy_mb"]), model
    assert any(row[0].startswith(f"bridge model, {copies} such servers") for row in fig6["rows"])
    assert not any("extrapolated" in row[0] for row in fig6["rows"])
    # The same copies left idle: every one compacted by the directory, then evicted (--quick
    # gives compacted servers no budget).
    idle = fig6["results"]["idle_model_memory"]
    assert idle["idle"] is True and idle["copies"] == params["idle_model_copies"] == 5
    assert params["idle_compacted_budget_mib"] == idle["compacted_budget_mib"] == 0
    assert idle["servers_evicted"] == 5 and idle["servers_held_in_full"] == 0
    assert idle["servers_compacted"] == 0 and idle["first_copy_was_evicted"] is True
    assert _positive(idle["compacted_mb_per_copy"]) and _positive(idle["evicted_file_mb"]), idle
    assert list(idle["rss_mb"]) == ["before", "1", "5"], idle["rss_mb"]
    assert any(row[0] == "bridge model, per idle such server" for row in fig6["rows"])
    assert any(t["name"] == "bridge model, 5 idle such servers" for t in fig6["targets"])


def test_a_failure_shows_every_traceback_whole_and_the_end() -> None:
    frames = "".join(f'  File "bench/x.py", line {n}, in f\n    step_{n}()\n' for n in range(400))
    first = f"{_TRACEBACK}\n{frames}RuntimeError: the first figure broke\n"
    second = f'{_TRACEBACK}\n  File "y.py", line 1, in g\nValueError: another\nsecond line\n\n'
    noise = "".join(f"fig1: trial {n} done\n" for n in range(2000))
    output = f"starting\n{first}{noise}{second}{noise}fig6 failed\n"
    shown = failure_output(output)
    # The first traceback is far longer than the tail kept, and more than 6,000 characters from
    # the end: every frame of it is shown, and so is the end.
    assert len(first) > TAIL_CHARS and output.index(first) < len(output) - 6000
    assert first.rstrip("\n") in shown and "ValueError: another\nsecond line" in shown
    assert shown.endswith("fig6 failed\n") and len(shown) < len(output)
    assert failure_output("short\n") == "short\n"


BROWSER_FIGURES = ["fig7_web", "fig8_calls"]


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_the_browser_figures_run_quick_and_write_their_json(tmp_path: Path) -> None:
    """Figures 7 (web UI) and 8 (calls) drive Chromium: both at once, after the six above; beside
    them the voice comparison (synthetic participants on Janus's VideoRoom and AudioBridge)."""
    outputs = run_quick([*BROWSER_FIGURES, "voice_sfu"], tmp_path, budget_s=540)
    for figure in BROWSER_FIGURES:
        assert f"## {figure}" in outputs[figure]

    web = json.loads((tmp_path / "fig7_web.json").read_text())
    assert web["quick"] is True and all(t["met"] is None for t in web["targets"])
    _check_ab("fig7_web/first_render", web["results"]["first_render"])
    live = web["results"]["live"]
    shown = live["shown_minus_nio_ms"]["values"]
    assert len(shown) == web["params"]["live_messages"] >= 1
    # Both receivers saw every message: finite differences, and positive send → receipt times.
    assert all(math.isfinite(v) for v in shown)
    assert all(_positive(v) for v in live["web_vs_nio"]["a_values"] + live["put_ms"]["values"])

    calls = json.loads((tmp_path / "fig8_calls.json").read_text())
    two = calls["results"]["2"]
    assert "error" not in two, two.get("error")
    _check_ab("fig8_calls/join", two["join"])
    assert _positive(two["cpu_per_participant_cores"]) and _positive(two["cpu_idle"]["cores"])
    # The join's own requests were traced: its call membership was written.
    paths = [r["path"] for trace in two["join_traces"] for r in trace["net"]]
    assert any("org.matrix.msc3401.call.member" in p for p in paths), paths
    # Through the SFU: a browser joined a synthetic participant, and Janus's CPU was measured.
    sfu = calls["results"]["sfu"]["2"]
    assert "error" not in sfu, sfu.get("error")
    assert all(_positive(v) for v in sfu["join_ms"]["values"]), sfu
    assert _positive(sfu["janus_cores_per_participant"]), sfu
    # Two browsers: the resident received the joiner too; the CPU windows carry the load.
    assert sfu["browsers"] == 2 and sfu["resident_receives_all"] is True, sfu
    # The joiner's grid was read from the page: both tiles in view, side by side.
    grid = sfu["grid"]
    assert (grid["tiles"], grid["in_view"], grid["overlaps"]) == (2, 2, 0), grid
    assert _positive(sfu["browser_cores_each"]), sfu
    for window in (sfu["cpu_full"], sfu["cpu_without_joiner"]):
        assert len(window["loadavg"]) == 3 and window["publishers"] >= 1, window

    voice = json.loads((tmp_path / "voice_sfu.json").read_text())
    assert voice["quick"] is True and len(voice["machine"]["loadavg"]) == 3
    for transport in ("videoroom", "audiobridge"):
        entry = voice["results"]["2"][transport]
        assert "error" not in entry, entry.get("error")
        assert all(_positive(v) for v in entry["join_ms"]), entry
        assert _positive(entry["janus_cores_per_participant"]), entry
