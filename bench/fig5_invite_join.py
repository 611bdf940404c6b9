"""Figure 5: joining through an invite, in a server of 50 channels.

A: a fresh user redeems an invite code (`POST /_guilds/v1/invites/{code}/redeem`, which has
the bot invite them to the space) and their client joins the space, as the web UI does; the
module then joins them to the default channel. Timed from the redeem request until the user's
own `/sync` shows them joined to the space and to the default channel.

B: the raw equivalent on the same rooms built on the Synapse without the module: the bot
invites the user to the space, the user's client joins the space, then the default channel —
one request after another, timed the same way. Ratio = A / B. Target: A's p95 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench.common import (
    Figure,
    Target,
    figure_stacks,
    fmt,
    interleaved,
    log,
    p95_cells,
    parse_args,
    with_cpu,
)
from bench.raw import Raw, SyncWatcher, register, timed, timeline_filter
from bench.shapes import build_guilds_server, build_plain_server, template_name, templates_config

FIGURE = "fig5_invite_join"

JOIN_FILTER = timeline_filter("m.room.member", limit=1, lazy_load_members=True)


def joined_check(rooms: list[str]) -> Any:
    pending = set(rooms)

    def check(answer: Any) -> bool:
        pending.difference_update(answer.get("rooms", {}).get("join", {}))
        return not pending

    return check


def _size(args: argparse.Namespace) -> int:
    return 3 if args.quick else 50


def admin_config(args: argparse.Namespace) -> dict[str, Any]:
    """What this figure needs of the Guilds stack's config (bench.smoke merges the figures')."""
    return templates_config([_size(args)])


async def main(args: argparse.Namespace) -> Figure:
    size = _size(args)
    pairs = args.pairs if args.quick else max(args.pairs, 10)
    args.pairs = pairs  # recorded in the JSON as run
    figure = Figure(
        FIGURE,
        f"join through an invite, server of {size} channels (A: redeem, B: raw invite + joins)",
        [
            "channels",
            "A guilds s median [min–max]",
            "A p95 s",
            "B raw s median [min–max]",
            "B p95 s",
            "A/B median [min–max]",
        ],
        params={"channels": size, "pairs": pairs},
    )
    async with figure_stacks(args, admin_config(args)) as (stack, plain):
        http = stack.http
        bot_b = Raw(http, plain.homeserver.url, plain.as_token, plain.bot_user_id)
        name = template_name(size)
        log(f"{FIGURE}: {size} channels: building both servers")
        owner_a = await register(http, stack.homeserver)
        server = await build_guilds_server(stack, owner_a, size)
        owner_b = await register(http, plain.homeserver)
        template = None if name is None else stack.config.templates[name]
        rooms = await build_plain_server(bot_b, owner_b, template)
        async with http.post(
            f"{stack.web_url}/_guilds/v1/servers/{server.space}/invites",
            json={},
            headers={"Authorization": f"Bearer {owner_a.token}"},
        ) as response:
            invite = await response.json()
            if response.status != 201:
                raise RuntimeError(f"creating an invite: {invite}")
        code = invite["code"]
        pids_a = [stack.homeserver.proc.pid, stack.guilds_proc.pid]  # type: ignore[union-attr]
        pids_b = [plain.homeserver.proc.pid, plain.null_as.pid]  # type: ignore[union-attr]

        async def run_a() -> dict[str, float]:
            user = await register(http, stack.homeserver)
            watch = SyncWatcher(user, JOIN_FILTER)

            async def act() -> None:
                async with http.post(
                    f"{stack.web_url}/_guilds/v1/invites/{code}/redeem",
                    headers={"Authorization": f"Bearer {user.token}"},
                ) as response:
                    if response.status != 200:
                        raise RuntimeError(f"redeem: {await response.text()}")
                await user.join(server.space)

            check = joined_check([server.space, server.general])
            return await with_cpu(pids_a, timed(act, watch, check, 60))

        async def run_b() -> dict[str, float]:
            user = await register(http, plain.homeserver)
            watch = SyncWatcher(user, JOIN_FILTER)

            async def act() -> None:
                await bot_b.invite(rooms.space, user.user_id)
                await user.join(rooms.space)
                await user.join(rooms.general)

            check = joined_check([rooms.space, rooms.general])
            return await with_cpu(pids_b, timed(act, watch, check, 60))

        result = await interleaved(
            run_a,
            run_b,
            pairs=pairs,
            warmup=0 if args.quick else 1,
            a_label="guilds",
            b_label="raw client",
            log=log,
        )
    figure.results["join"] = result.as_json()
    seconds = result["seconds"].as_json()
    figure.rows.append(
        [
            size,
            *p95_cells(seconds),
        ]
    )
    p95 = seconds["a"]["p95"]
    figure.targets.append(
        Target(
            f"p95 at {size} channels", "≤ 1 s", f"{fmt(p95)} s", None if args.quick else p95 <= 1.0
        )
    )
    return figure


if __name__ == "__main__":
    arguments = parse_args(FIGURE, __doc__)
    result = asyncio.run(main(arguments))
    result.print()
    result.write(arguments)
