"""Figure 6: read paths at scale, and the bridge's memory.

One server of 1,000 members and 200 channels (`--quick`: 10 members, 5 channels), populated
through the shared-secret admin API (registration) and concurrent joins (the bot invites, the
user's client joins the space, the module joins them to the default channel).

Latency, interleaved A B A B …, each trial `REQUESTS` sequential requests by a member:
- `GET /_guilds/v1/servers/{sid}` vs Synapse's own `GET /_matrix/client/v1/rooms/{sid}/hierarchy`
  (every page, limit 50): the server's channels as the same member may see them;
- the member list, `GET /_guilds/v1/servers/{sid}/members?limit=500` followed to the last page,
  vs Synapse's `GET /_matrix/client/v3/rooms/{sid}/joined_members` (all at once).
Target: p95 ≤ 100 ms for the Guilds calls.

Memory: the bridge's RSS (from /proc) before the server, after it is populated, and after
adding small servers (1 channel, the owner alone) up to 10 and 40 of them. 100 full servers
(100,000 joins) do not fit the run, so the bridge's model of 100 of them is measured apart:
the current state of every room of the real server, fetched as the bridge fetches it, is loaded
100 times (`--quick`: 5) under distinct room ids into a `ServerDirectory` in a separate process
(bench/directory_memory.py), each copy read as `GET /servers/{sid}` and the member list read it;
that process's RSS is read before, after 1, 10 and 100 copies. Then the same for 1,000 copies
(`--quick`: 5) left idle (bench/directory_memory.py `--idle`), with the bridge's default
directory settings but one server held in full: each copy is compacted once read, and beyond
`directory.compacted_budget_mib` (default 32 MiB; `--quick`: 0) the least recently used compacted
copies are evicted from memory to the directory's file. The RSS after 1, 10, 100, 250, 500 and
1,000 idle copies shows memory growing with idle servers until the budget is full, then flat.
Targets: ≤ 0.5 MiB per idle server (all the model's memory at 1,000 idle servers over 1,000), and
flat memory with 1,000 idle servers: ≤ 0.01 MiB more per idle server from 500 to 1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import (
    Figure,
    Target,
    figure_stack,
    fmt,
    interleaved,
    log,
    parse_args,
    percentile,
    rss_mb,
    spread,
)
from bench.directory_memory import capture, state_fingerprint, unsettled
from bench.raw import Raw, register, register_many
from bench.shapes import build_guilds_server, templates_config
from bridge.engine.matrix import MatrixClient
from guilds.config import DEFAULT_COMPACTED_BUDGET_MIB
from guilds.ids import RoomID, UserID

FIGURE = "fig6_read_paths"
REQUESTS = 20
ROOT = Path(__file__).resolve().parents[1]
# MiB each idle server may add to the model once the budget for compacted servers is full.
FLAT_MIB_PER_SERVER = 0.01
# Two captures of the populated server this many seconds apart, with nothing pending in either,
# show it settled (no join, invitation or repair of Guilds' still under way).
SETTLE_PAUSE_S = 5.0
# Seconds between readings of the machine's load average while the figure runs.
LOAD_EVERY_S = 30.0


# Seconds spent waiting out a 429 (Synapse rate-limits /hierarchy): not counted as latency.
_paused = [0.0]


async def timed_requests(call: Any, count: int) -> dict[str, float]:
    samples = []
    for _ in range(count):
        _paused[0] = 0.0
        started = time.monotonic()
        await call()
        samples.append((time.monotonic() - started - _paused[0]) * 1000)
    return {"p50_ms": percentile(samples, 50), "p95_ms": percentile(samples, 95)}


async def populate(stack: Any, space: str, count: int, concurrency: int = 8) -> list[Raw]:
    bot = Raw(stack.http, stack.hs_url, stack.config.appservice.registration.as_token)
    users = await register_many(stack.http, stack.homeserver, count, concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    done = 0

    async def join(user: Raw) -> None:
        nonlocal done
        async with semaphore:
            await bot.invite(space, user.user_id)
            await user.join(space)
            done += 1
            if done % 100 == 0:
                log(f"  {done}/{count} joined")

    await asyncio.gather(*(join(u) for u in users))
    return users


async def member_count(stack: Any, space: str, user: Raw) -> int:
    total, start = 0, None
    while True:
        query = "limit=500" + (f"&from={quote(start)}" if start else "")
        async with stack.http.get(
            f"{stack.web_url}/_guilds/v1/servers/{space}/members?{query}",
            headers={"Authorization": f"Bearer {user.token}"},
        ) as response:
            page = await response.json()
            if response.status != 200:
                raise RuntimeError(f"members: {response.status} {page}")
        total += len(page["members"])
        start = page.get("next")
        if not start:
            return total


async def capture_server(stack: Any, space: str) -> dict[str, Any]:
    """Every room of the server with its current state, fetched as the bridge fetches it."""
    matrix = MatrixClient(
        stack.hs_url, stack.config.appservice.registration.as_token, session=stack.http
    )
    return await capture(matrix, RoomID(space), UserID(stack.bot_user_id))


async def settled_capture(stack: Any, space: str, timeout_s: float) -> dict[str, Any]:
    """The server captured once Guilds has finished with it (directory_memory.unsettled: no
    invitation pending, every member in the channels the stack's `join_channels` policy puts
    them in) and two captures `SETTLE_PAUSE_S` apart hold the same state: the server as it
    stays when idle, which is what the model's memory is measured on."""
    join_all = stack.config.policies.join_channels == "all"
    deadline = time.monotonic() + timeout_s
    previous: dict[str, Any] | None = None
    while True:
        captured = await capture_server(stack, space)
        pending = unsettled(captured, join_all=join_all)
        if (
            not pending
            and previous is not None
            and state_fingerprint(previous) == state_fingerprint(captured)
        ):
            return captured
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server never settled: {pending[:5] or 'its state changed'}")
        if pending:
            log(f"  not settled yet: {len(pending)} rooms pending, e.g. {pending[0]}")
        previous = None if pending else captured
        await asyncio.sleep(SETTLE_PAUSE_S)


async def sample_load(samples: list[list[float]]) -> None:
    """Appends the machine's load average (1, 5, 15 min) every `LOAD_EVERY_S` until cancelled."""
    while True:
        samples.append([round(v, 2) for v in os.getloadavg()])
        await asyncio.sleep(LOAD_EVERY_S)


async def model_memory(
    captured: dict[str, Any], copies: int, *, idle: bool, budget_mib: float | None = None
) -> dict[str, Any]:
    """bench/directory_memory.py's report for `copies` copies of the captured server, held in
    full or (`idle`) left idle for the directory to compact, and evict beyond `budget_mib`
    (None: the bridge's default).

    A process of its own, so what it measures is the model alone, not this script's objects.
    """
    with tempfile.NamedTemporaryFile("w", prefix="guilds-fig6-", suffix=".json") as file:
        json.dump(captured, file)
        file.flush()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.directory_memory",
            file.name,
            "--copies",
            str(copies),
            *(["--idle"] if idle else []),
            *([] if budget_mib is None else ["--compacted-budget-mib", str(budget_mib)]),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.directory_memory exited with {process.returncode}")
    report: dict[str, Any] = json.loads(out)
    return report


def _shape(args: argparse.Namespace) -> tuple[int, int]:
    """(members, channels) of the server read."""
    return (10, 5) if args.quick else (1000, 200)


def admin_config(args: argparse.Namespace) -> dict[str, Any]:
    """What this figure needs of the Guilds stack's config (bench.smoke merges the figures').

    The full run sets `join_channels: default`, as docs/DEPLOYMENT.md advises for servers of
    this size: under `all`, a settled server of 1,000 members and 200 channels holds 200,000
    channel memberships, which Synapse's join pacing (`rc_joins.local`) would take hours to
    make, and a capture taken before would measure a server half joined. `--quick` (the smoke
    run, whose stack the other figures share) keeps the stack's default policy: its 10
    members settle in every channel within seconds.
    """
    config = templates_config([_shape(args)[1]])
    if not args.quick:
        config["policies"] = {"join_channels": "default"}
    return config


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--save-capture",
        type=Path,
        default=None,
        help="also write the captured server (JSON) here, for `python -m bench.directory_memory`",
    )


async def main(args: argparse.Namespace) -> Figure:
    members, channels = _shape(args)
    copies = 5 if args.quick else 100
    idle_copies = 5 if args.quick else 1000
    # --quick: tiny servers, which the default budget would all keep compacted in memory; none
    # kept, so that the run goes through eviction.
    idle_budget = 0 if args.quick else DEFAULT_COMPACTED_BUDGET_MIB
    figure = Figure(
        FIGURE,
        f"read paths, server of {members} members and {channels} channels",
        [
            "call",
            "A guilds p95 ms median [min–max]",
            "B synapse p95 ms median [min–max]",
            "A/B p95",
        ],
        params={
            "members": members,
            "channels": channels,
            "requests_per_trial": REQUESTS,
            "model_copies": copies,
            "idle_model_copies": idle_copies,
            "idle_compacted_budget_mib": idle_budget,
        },
    )
    loads: list[list[float]] = []
    sampler = asyncio.create_task(sample_load(loads))
    try:
        return await _measure(args, figure, loads)
    finally:
        sampler.cancel()


async def _measure(args: argparse.Namespace, figure: Figure, loads: list[list[float]]) -> Figure:
    members, channels = _shape(args)
    small_steps = [2, 4] if args.quick else [10, 40]
    copies = figure.params["model_copies"]
    idle_copies = figure.params["idle_model_copies"]
    idle_budget = figure.params["idle_compacted_budget_mib"]
    async with figure_stack(args, admin_config(args)) as stack:
        http = stack.http
        bridge_pid = stack.guilds_proc.pid
        rss: dict[str, float] = {"start": rss_mb(bridge_pid)}
        owner = await register(http, stack.homeserver)
        log(f"{FIGURE}: creating a server of {channels} channels")
        server = await build_guilds_server(stack, owner, channels)
        rss["one_empty_server"] = rss_mb(bridge_pid)
        log(f"{FIGURE}: {members} members joining")
        started = time.monotonic()
        users = await populate(stack, server.space, members)
        reader = users[-1]
        deadline = time.monotonic() + 600
        while await member_count(stack, server.space, owner) < members + 1:
            if time.monotonic() > deadline:
                raise TimeoutError("the bridge never counted every member")
            await asyncio.sleep(1)
        figure.params["populate_s"] = round(time.monotonic() - started, 1)
        figure.params["join_channels"] = stack.config.policies.join_channels
        log(f"{FIGURE}: waiting for the server to settle")
        started = time.monotonic()
        captured = await settled_capture(stack, server.space, 300 if args.quick else 1800)
        figure.params["settle_s"] = round(time.monotonic() - started, 1)
        rss["one_full_server"] = rss_mb(bridge_pid)
        if args.save_capture is not None:
            args.save_capture.write_text(json.dumps(captured))
        headers = {"Authorization": f"Bearer {reader.token}"}

        async def get(url: str) -> Any:
            for _ in range(50):
                async with http.get(url, headers=headers) as response:
                    body = await response.json()
                    if response.status == 429:
                        wait = body.get("retry_after_ms", 100) / 1000
                        _paused[0] += wait
                        await asyncio.sleep(wait)
                        continue
                    if response.status != 200:
                        raise RuntimeError(f"{url}: {response.status} {body}")
                    return body
            raise RuntimeError(f"{url}: still rate-limited")

        async def guilds_server() -> None:
            await get(f"{stack.web_url}/_guilds/v1/servers/{server.space}")

        async def synapse_hierarchy() -> None:
            url = f"{stack.hs_url}/_matrix/client/v1/rooms/{quote(server.space)}/hierarchy?limit=50"
            page = await get(url)
            while page.get("next_batch"):
                page = await get(f"{url}&from={quote(page['next_batch'])}")

        async def guilds_members() -> None:
            url = f"{stack.web_url}/_guilds/v1/servers/{server.space}/members?limit=500"
            page = await get(url)
            while page.get("next"):
                page = await get(f"{url}&from={quote(page['next'])}")

        async def synapse_members() -> None:
            await get(
                f"{stack.hs_url}/_matrix/client/v3/rooms/{quote(server.space)}/joined_members"
            )

        count = 5 if args.quick else REQUESTS
        for label, a_call, b_call in (
            ("GET /servers/{sid} vs /hierarchy", guilds_server, synapse_hierarchy),
            ("member list vs /joined_members", guilds_members, synapse_members),
        ):
            log(f"{FIGURE}: {label}")

            async def run_a(call: Any = a_call) -> dict[str, float]:
                return await timed_requests(call, count)

            async def run_b(call: Any = b_call) -> dict[str, float]:
                return await timed_requests(call, count)

            result = await interleaved(
                run_a,
                run_b,
                pairs=args.pairs,
                warmup=0 if args.quick else 1,
                a_label="guilds",
                b_label="synapse",
                log=log,
            )
            figure.results[label] = result.as_json()
            p95 = result["p95_ms"].as_json()
            figure.rows.append([label, spread(p95["a"]), spread(p95["b"]), spread(p95["ratio"])])
            figure.targets.append(
                Target(
                    label.split(" vs ")[0],
                    "p95 ≤ 100 ms",
                    f"{fmt(p95['a']['median'])} ms (median of the trials' p95; "
                    f"worst {fmt(p95['a']['max'])})",
                    None if args.quick else p95["a"]["median"] <= 100,
                )
            )
        # Memory: small servers on top.
        made = 0
        for target in small_steps:
            while made < target:
                small_owner = await register(http, stack.homeserver)
                await build_guilds_server(stack, small_owner, 1)
                made += 1
            rss[f"plus_{target}_small_servers"] = rss_mb(bridge_pid)
    full_delta = rss["one_full_server"] - rss["start"]
    last = small_steps[-1]
    small_per = (rss[f"plus_{last}_small_servers"] - rss["one_full_server"]) / last
    figure.results["rss_mb"] = rss
    figure.results["rss_delta_mb"] = {"one_full_server": full_delta, "per_small_server": small_per}
    for key, value in rss.items():
        figure.rows.append([f"bridge RSS, {key.replace('_', ' ')}", f"{value:.0f} MiB", "", ""])
    # After the stack has stopped (unless shared: bench.smoke), so that its processes are not
    # loading the cores meanwhile.
    log(f"{FIGURE}: the bridge's model of {copies} copies of the server")
    model = await model_memory(captured, copies, idle=False)
    figure.results["model_memory"] = model
    for step, mib in model["model_mb"].items():
        n = int(step)
        # Measured (see the note): the real server's room states loaded n times.
        label = f"bridge model, {n} such server{'s' if n > 1 else ''} (measured)"
        figure.rows.append([label, f"{fmt(mib)} MiB", "", ""])
    figure.rows.append(
        ["bridge model, per such server", f"{fmt(model['per_copy_mb'])} MiB", "", ""]
    )
    between = ", ".join(
        f"{span.replace('-', '→')}: {fmt(mib)}"
        for span, mib in model["per_copy_mb_between"].items()
    )
    figure.notes.append(
        f"one full server adds {full_delta:.1f} MiB to the bridge's RSS (the whole process); a "
        f"small server {small_per:.2f} MiB"
    )
    figure.notes.append(
        f"bridge model: {model['rooms_per_copy']} rooms and {model['state_events_per_copy']} "
        f"state events per server, each copy with room and event ids of its own, loaded through "
        f"ServerDirectory.load and read as GET /servers/{{sid}} and the member list read it, in "
        f"a process of its own; the rows are its RSS above what it held before loading "
        f"({model['rss_mb']['before']:.0f} MiB); MiB per server between readings: {between}"
    )
    log(f"{FIGURE}: the bridge's model of {idle_copies} idle copies of the server")
    idle = await model_memory(captured, idle_copies, idle=True, budget_mib=idle_budget)
    figure.results["idle_model_memory"] = idle
    for step, mib in idle["model_mb"].items():
        n = int(step)
        label = f"bridge model, {n} such server{'s' if n > 1 else ''} idle (measured)"
        figure.rows.append([label, f"{fmt(mib)} MiB", "", ""])
    last_span = list(idle["per_copy_mb_between"])[-1]
    # Beyond the budget: what each idle server added between the last two readings.
    beyond = idle["per_copy_mb_between"][last_span]
    # Everything the model holds with every copy idle, shared out over the copies.
    per_idle = idle["model_mb"][str(idle_copies)] / idle_copies
    figure.rows.append(
        [
            "bridge model, per idle such server",
            f"{fmt(per_idle)} MiB (RSS at {idle_copies} idle servers over {idle_copies}); "
            f"{fmt(beyond)} MiB added per server {last_span.replace('-', '→')}; "
            f"{fmt(idle['compacted_mb_per_copy'])} MiB compacted (counted by the directory)",
            "",
            "",
        ]
    )
    figure.targets.append(
        Target(
            "bridge model, per idle such server",
            "≤ 0.5 MiB",
            f"{fmt(per_idle)} MiB",
            None if args.quick else per_idle <= 0.5,
        )
    )
    figure.targets.append(
        Target(
            f"bridge model, {idle_copies} idle such servers",
            f"flat: ≤ {FLAT_MIB_PER_SERVER} MiB more per idle server, "
            f"{last_span.replace('-', '→')} servers",
            f"{fmt(beyond)} MiB",
            None if args.quick else beyond <= FLAT_MIB_PER_SERVER,
        )
    )
    between = ", ".join(
        f"{span.replace('-', '→')}: {fmt(mib)}" for span, mib in idle["per_copy_mb_between"].items()
    )
    figure.notes.append(
        f"idle: the same copies, each left idle after it was read, so that the directory "
        f"compacts it (`directory.max_loaded_servers: 1`; one server held in full at most "
        f"meanwhile, whose memory the process keeps for the next) and evicts the least recently "
        f"used compacted ones from memory beyond `directory.compacted_budget_mib: "
        f"{idle_budget}`; MiB per server between readings: {between}; at the end "
        f"{idle['servers_compacted']} servers compacted in memory, {idle['servers_evicted']} "
        f"evicted (a {idle['evicted_file_mb']:.0f} MiB file, on disk); loaded in "
        f"{idle['load_s']:.0f} s"
    )
    ones = [sample[0] for sample in loads]
    figure.results["loadavg_during"] = {
        "every_s": LOAD_EVERY_S,
        "samples": loads,
        "one_minute": {"min": min(ones), "median": statistics.median(ones), "max": max(ones)},
    }
    figure.notes.append(
        f"machine load during the run (1-minute load average, every {LOAD_EVERY_S:.0f} s, on "
        f"{os.cpu_count()} cores): median {statistics.median(ones):.1f}, "
        f"{min(ones):.1f}–{max(ones):.1f}"
    )
    return figure


if __name__ == "__main__":
    arguments = parse_args(FIGURE, __doc__, _extra)
    result = asyncio.run(main(arguments))
    result.print()
    result.write(arguments)
