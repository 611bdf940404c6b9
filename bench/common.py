"""What every benchmark script shares: the interleaved A/B runner, statistics, the table, the JSON.

A figure compares a subject (A: Guilds) with a baseline (B: what the same thing costs without
Guilds) measured in the same run, interleaved A B A B … so that the drift of a shared, noisy
machine falls on both sides alike. One *trial* of a side returns named metrics
(`{"seconds": 1.2}`, `{"msgs_per_s": 40.0, "p95_ms": 80.0}`); the runner collects them per side
and per pair, and reports for each metric the median, the spread (min–max and IQR), p50/p95 of
the trials, and the ratio A/B per pair (median and min–max of the ratios).

Each script:

    args = parse_args("fig1_messages", __doc__)
    result = asyncio.run(main(args))          # builds a Figure
    result.print()                             # the table
    result.write(args)                         # bench/results/fig1_messages.json

`bench/results/` is git-ignored (every run rewrites it); the figures quoted in
docs/PERFORMANCE.md come from the JSON copied into docs/performance/ after a full run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Metrics = Mapping[str, float]
Trial = Callable[[], Awaitable[Metrics]]


# -- statistics ---------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, spread (min, max, IQR) and p50/p95 of a list of measurements."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": float(statistics.median(values)),
        "mean": float(statistics.fmean(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "q1": percentile(values, 25),
        "q3": percentile(values, 75),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
    }


@dataclass
class Comparison:
    """One metric of an A/B run: every trial of each side, in pair order."""

    metric: str
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [x / y for x, y in zip(self.a, self.b, strict=False) if y]

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "a": summarize(self.a),
            "b": summarize(self.b),
            "ratio": summarize(self.ratios),
            "a_values": self.a,
            "b_values": self.b,
        }


@dataclass
class ABResult:
    """The outcome of `interleaved`: one Comparison per metric, plus the labels of the sides."""

    a_label: str
    b_label: str
    comparisons: dict[str, Comparison]
    seconds: float

    def __getitem__(self, metric: str) -> Comparison:
        return self.comparisons[metric]

    def as_json(self) -> dict[str, Any]:
        return {
            "a_label": self.a_label,
            "b_label": self.b_label,
            "seconds": self.seconds,
            "metrics": {m: c.as_json() for m, c in self.comparisons.items()},
        }


async def interleaved(
    a: Trial,
    b: Trial,
    *,
    pairs: int = 5,
    warmup: int = 1,
    a_label: str = "guilds",
    b_label: str = "baseline",
    alternate: bool = False,
    log: Callable[[str], None] | None = None,
) -> ABResult:
    """Run A B A B … for `pairs` pairs (after `warmup` unrecorded pairs); collect each metric.

    `alternate=True` runs the odd pairs as B A (ABBA order), which also cancels a drift that
    favours whichever side runs second. Each trial returns its metrics as a mapping.
    """
    comparisons: dict[str, Comparison] = {}
    started = time.monotonic()
    for index in range(warmup + pairs):
        recorded = index >= warmup
        swap = alternate and index % 2 == 1
        order = [(b, "b"), (a, "a")] if swap else [(a, "a"), (b, "b")]
        results: dict[str, Metrics] = {}
        for trial, side in order:
            results[side] = await trial()
        if log is not None:
            tag = "warm-up" if not recorded else f"pair {index - warmup + 1}/{pairs}"
            log(
                f"  {tag}: {a_label} {_fmt_metrics(results['a'])} | "
                f"{b_label} {_fmt_metrics(results['b'])}"
            )
        if not recorded:
            continue
        for metric, value in results["a"].items():
            comparisons.setdefault(metric, Comparison(metric)).a.append(float(value))
        for metric, value in results["b"].items():
            comparisons.setdefault(metric, Comparison(metric)).b.append(float(value))
    return ABResult(a_label, b_label, comparisons, time.monotonic() - started)


def _fmt_metrics(metrics: Metrics) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


# -- the machine --------------------------------------------------------------------------------
def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """What the figures came from: CPU model, cores, RAM, Python, and the load right now."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_mb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    uptime = ""
    try:
        uptime = subprocess.run(
            ["uptime"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "ram_mb": ram_mb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": load_average(),
        "uptime": uptime,
    }


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, in seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- command line, table, JSON ------------------------------------------------------------------
def parse_args(
    figure: str,
    description: str | None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """A figure's command line (`argv`, default sys.argv). `args.shared` is None: the figure
    builds its own stacks (bench.smoke sets it to stacks several figures share)."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{figure}", description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--pairs", type=int, default=None, help="interleaved A/B pairs (≥ 5)")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path(os.environ.get("GUILDS_BENCH_RESULTS", RESULTS_DIR)),
        help="where <figure>.json goes (default bench/results, or $GUILDS_BENCH_RESULTS)",
    )
    parser.add_argument(
        "--backend",
        choices=["postgres", "sqlite"],
        default="postgres",
        help="the database of Synapse and the bridge (postgres: the production shape)",
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    args.figure = figure
    args.shared = None
    if args.pairs is None:
        args.pairs = 1 if args.quick else 5
    return args


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def spread(summary: Mapping[str, float], digits: int = 3) -> str:
    """`median [min–max]` of a summary, for a table cell."""
    if not summary.get("n"):
        return "–"
    low, high = fmt(summary["min"], digits), fmt(summary["max"], digits)
    return f"{fmt(summary['median'], digits)} [{low}–{high}]"


def p95_cells(seconds: Mapping[str, Any]) -> list[str]:
    """A's spread and p95, B's spread and p95, and the ratio's spread: the cells figures 3–5
    give each row, from a comparison's `as_json()`."""
    return [
        spread(seconds["a"]),
        fmt(seconds["a"]["p95"]),
        spread(seconds["b"]),
        fmt(seconds["b"]["p95"]),
        spread(seconds["ratio"]),
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns (markdown-compatible pipes)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


@dataclass
class Target:
    """A target of the issue and whether this run met it (None: not judged, e.g. --quick)."""

    name: str
    limit: str
    measured: str
    met: bool | None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "measured": self.measured, "met": self.met}


@dataclass
class Figure:
    """Everything one script reports: table rows, raw A/B results, targets, parameters."""

    figure: str
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    machine_before: dict[str, Any] = field(default_factory=machine)

    def print(self) -> None:
        print(f"\n## {self.figure}: {self.title}\n")
        print(table(self.headers, self.rows))
        if self.targets:
            print()
            for target in self.targets:
                verdict = {True: "met", False: "MISSED", None: "not judged"}[target.met]
                print(
                    f"target {target.name}: {target.limit}; measured {target.measured} → {verdict}"
                )
        for note in self.notes:
            print(f"note: {note}")
        print()
        sys.stdout.flush()

    def as_json(self, args: argparse.Namespace | None = None) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "title": self.title,
            "started_at": self.started_at,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": bool(getattr(args, "quick", False)),
            "pairs": getattr(args, "pairs", None),
            "backend": getattr(args, "backend", None),
            "params": self.params,
            "machine": self.machine_before,
            "load_after": {"loadavg": load_average(), "uptime": machine()["uptime"]},
            "headers": self.headers,
            "rows": [[_jsonable(c) for c in row] for row in self.rows],
            "targets": [t.as_json() for t in self.targets],
            "results": self.results,
            "notes": self.notes,
        }

    def write(self, args: argparse.Namespace) -> Path:
        directory: Path = args.results_dir
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.figure}.json"
        path.write_text(json.dumps(self.as_json(args), indent=2, default=_jsonable) + "\n")
        print(f"wrote {path}")
        return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the real stack -----------------------------------------------------------------------------
BENCH_ANSWER_WITHIN_S = 600


@asynccontextmanager
async def bench_stack(
    backend: str = "postgres",
    *,
    admin_config: dict[str, Any] | None = None,
    start_guilds: bool = True,
) -> AsyncIterator[Any]:
    """A fresh Guilds stack (Synapse + module, `guilds serve`) in a temporary folder, as the
    integration tests build it (tests/harness/stack.py); stopped and its databases dropped after.
    """
    import aiohttp

    from tests.harness.stack import build_stack

    # The figures time a change to its end, answered in one request, never a 202 to poll
    # (docs/API.md "Operations": the answer bound only shortens what a client waits on a line).
    config = {"operations": {"answer_within_s": BENCH_ANSWER_WITHIN_S}, **(admin_config or {})}
    with tempfile.TemporaryDirectory(prefix="guilds-bench-") as tmp:
        stack = build_stack(backend, Path(tmp), config)
        try:
            stack.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
            if start_guilds:
                stack.start_guilds()
            yield stack
        finally:
            await stack.close()


async def with_cpu(pids: list[int], measured: Awaitable[float]) -> dict[str, float]:
    """`{"seconds": …, "server_cpu_s": …}`: the awaited wall time, and the CPU time the given
    processes (the homeserver and its appservice) used meanwhile — a figure the machine's load
    does not inflate, unlike the wall time."""
    before = sum(cpu_seconds(pid) for pid in pids)
    seconds = await measured
    return {"seconds": seconds, "server_cpu_s": sum(cpu_seconds(pid) for pid in pids) - before}


@dataclass
class SharedStacks:
    """One Guilds stack and one homeserver without the module that several figures run on, one
    after another or at once (bench/smoke.py); its Guilds config holds every figure's templates."""

    stack: Any
    plain: Any


def merge_admin_configs(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The union of figures' `admin_config`s: their templates side by side (a template of a
    given name is the same in every figure: shapes.templates_config names them by size)."""
    merged: dict[str, Any] = {}
    for config in configs:
        for key, value in config.items():
            if key == "templates":
                merged.setdefault("templates", {}).update(value)
            elif merged.setdefault(key, value) != value:
                raise ValueError(f"figures disagree on the stack's {key!r}")
    return merged


def _check_shared(args: argparse.Namespace, admin_config: Mapping[str, Any]) -> SharedStacks:
    shared: SharedStacks = args.shared
    missing = set(admin_config.get("templates", {})) - set(shared.stack.config.templates)
    if missing:
        raise ValueError(f"{args.figure}: the shared stack lacks the templates {sorted(missing)}")
    return shared


@asynccontextmanager
async def figure_stack(
    args: argparse.Namespace, admin_config: Mapping[str, Any]
) -> AsyncIterator[Any]:
    """The Guilds stack a figure measures: `args.shared`'s if the figure runs among others
    (left running after), else a fresh one of `args.backend` with `admin_config` (bench_stack)."""
    if args.shared is not None:
        yield _check_shared(args, admin_config).stack
        return
    async with bench_stack(args.backend, admin_config=dict(admin_config)) as stack:
        yield stack


@asynccontextmanager
async def figure_stacks(
    args: argparse.Namespace, admin_config: Mapping[str, Any]
) -> AsyncIterator[tuple[Any, Any]]:
    """`(stack, plain)`: the Guilds stack (figure_stack) and the homeserver without the module
    beside it (bench.raw.PlainHomeserver), started, and stopped after unless shared."""
    if args.shared is not None:
        shared = _check_shared(args, admin_config)
        yield shared.stack, shared.plain
        return
    async with figure_stack(args, admin_config) as stack, plain_homeserver(stack) as plain:
        yield stack, plain


@asynccontextmanager
async def plain_homeserver(stack: Any) -> AsyncIterator[Any]:
    """A started bench.raw.PlainHomeserver beside `stack`, in a temporary folder; stopped after."""
    from bench.raw import PlainHomeserver

    with tempfile.TemporaryDirectory(prefix="guilds-bench-plain-") as tmp:
        plain = PlainHomeserver(stack, Path(tmp))
        try:
            plain.start()
            yield plain
        finally:
            plain.stop()
