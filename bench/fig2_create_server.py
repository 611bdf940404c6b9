"""Figure 2: creating a server of N channels (N = 1, 10, 50).

A: `POST /_guilds/v1/servers {name, template}` with a template of N text channels (general and
N - 1 others), timed until the 201 answer (the server whole: every room created and linked, the
owner joined to the space, admin room and general).

B: the same rooms with the same state built by a careful client, one by one, with plain
Client-Server calls on the same Synapse without the module: the steps of the very plan the
bridge runs (createRoom with initial state batched in, then the space links and markers), then
the owner's three joins. See bench/shapes.py. Ratio = A / B; target ≤ 0.7 at N = 50.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import (
    Figure,
    Target,
    cpu_seconds,
    figure_stacks,
    fmt,
    interleaved,
    log,
    parse_args,
    spread,
)
from bench.raw import Raw, register
from bench.shapes import build_plain_server, template_name, templates_config

FIGURE = "fig2_create_server"


def _sizes(args: argparse.Namespace) -> list[int]:
    return [1, 5] if args.quick else [1, 10, 50]


def admin_config(args: argparse.Namespace) -> dict[str, Any]:
    """What this figure needs of the Guilds stack's config (bench.smoke merges the figures')."""
    return templates_config(_sizes(args))


async def main(args: argparse.Namespace) -> Figure:
    sizes = _sizes(args)
    figure = Figure(
        FIGURE,
        "create a server of N channels (A: Guilds API, B: raw client, one room after another)",
        [
            "channels",
            "A guilds s median [min–max]",
            "B raw s median [min–max]",
            "A/B median [min–max]",
        ],
        params={"sizes": sizes},
    )
    async with figure_stacks(args, admin_config(args)) as (stack, plain):
        templates = stack.config.templates
        bot = Raw(stack.http, plain.homeserver.url, plain.as_token, plain.bot_user_id)
        # The homeserver first, then its appservice (the bridge; B's null appservice).
        pids_a = [stack.homeserver.proc.pid, stack.guilds_proc.pid]  # type: ignore[union-attr]
        pids_b = [plain.homeserver.proc.pid, plain.null_as.pid]  # type: ignore[union-attr]
        for size in sizes:
            name = template_name(size)
            template = None if name is None else templates[name]
            log(f"{FIGURE}: {size} channel(s)")

            async def run_a(name: str | None = name) -> dict[str, float]:
                owner = await stack.register_user()
                body: dict[str, Any] = {"name": "Bench", "topic": "hi"}
                if name is not None:
                    body["template"] = name
                hs_before = cpu_seconds(pids_a[0])
                cpu_before = sum(cpu_seconds(p) for p in pids_a)
                started = time.monotonic()
                async with stack.http.post(
                    f"{stack.web_url}/_guilds/v1/servers",
                    json=body,
                    headers={"Authorization": f"Bearer {owner.access_token}"},
                ) as response:
                    answer = await response.json()
                    if response.status != 201:
                        raise RuntimeError(f"POST /servers: {response.status} {answer}")
                return {
                    "seconds": time.monotonic() - started,
                    "server_cpu_s": sum(cpu_seconds(p) for p in pids_a) - cpu_before,
                    "hs_cpu_s": cpu_seconds(pids_a[0]) - hs_before,
                }

            async def run_b(template: Any = template) -> dict[str, float]:
                owner = await register(stack.http, plain.homeserver)
                hs_before = cpu_seconds(pids_b[0])
                cpu_before = sum(cpu_seconds(p) for p in pids_b)
                started = time.monotonic()
                await build_plain_server(bot, owner, template)
                return {
                    "seconds": time.monotonic() - started,
                    "server_cpu_s": sum(cpu_seconds(p) for p in pids_b) - cpu_before,
                    "hs_cpu_s": cpu_seconds(pids_b[0]) - hs_before,
                }

            result = await interleaved(
                run_a,
                run_b,
                pairs=args.pairs,
                warmup=0 if args.quick else 1,
                a_label="guilds",
                b_label="raw client",
                log=log,
            )
            figure.results[f"channels_{size}"] = result.as_json()
            seconds = result["seconds"].as_json()
            figure.rows.append(
                [size, spread(seconds["a"]), spread(seconds["b"]), spread(seconds["ratio"])]
            )
            server = result["server_cpu_s"].as_json()
            homeserver = result["hs_cpu_s"].as_json()
            figure.notes.append(
                f"{size} channel(s), CPU per server created (median): A homeserver "
                f"{fmt(homeserver['a']['median'])} s + bridge "
                f"{fmt(server['a']['median'] - homeserver['a']['median'])} s; "
                f"B homeserver {fmt(homeserver['b']['median'])} s"
            )
            if size == max(sizes):
                ratio = seconds["ratio"]["median"]
                figure.targets.append(
                    Target(
                        f"ratio at N = {size}",
                        "A/B ≤ 0.7 (at N = 50)",
                        fmt(ratio),
                        None if args.quick else ratio <= 0.7,
                    )
                )
    return figure


if __name__ == "__main__":
    arguments = parse_args(FIGURE, __doc__)
    result = asyncio.run(main(arguments))
    result.print()
    result.write(arguments)
