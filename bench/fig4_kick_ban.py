"""Figure 4: the kick and ban cascade across a server of 50 channels.

Before each trial (untimed) the victim joins the space and every channel. A: the owner's
`POST /servers/{sid}/members/{uid}/kick` (or `/ban`), timed from the request until the owner's
`/sync` has shown the victim out of the space and every channel. B: a raw client (the bot) on
the same rooms built on the Synapse without the module, kicking (or banning) the victim from
the space and then each channel, one request after another, timed the same way. Each trial has
a fresh victim (so nobody needs unbanning). Ratio = A / B. Target: A's p95 ≤ 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from typing import Any

from bench.common import (
    ABResult,
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
from bench.raw import (
    PlainHomeserver,
    Raw,
    SyncWatcher,
    register,
    timed,
    timeline_events,
    timeline_filter,
)
from bench.shapes import (
    GuildsServer,
    PlainServer,
    build_guilds_server,
    build_plain_server,
    join_all,
    template_name,
    templates_config,
    wait_member,
)

FIGURE = "fig4_kick_ban"

MEMBER_FILTER = timeline_filter("m.room.member", limit=1000)


@dataclass
class Sides:
    guilds: GuildsServer
    plain: PlainServer
    owner_a: Raw
    watch_a: SyncWatcher
    watch_b: SyncWatcher


def gone_check(rooms: list[str], user_id: str) -> Any:
    """A /sync check: the user's membership has become leave or ban in every room."""
    pending = set(rooms)

    def check(answer: Any) -> bool:
        for room_id, event in timeline_events(answer):
            if (
                room_id in pending
                and event.get("type") == "m.room.member"
                and event.get("state_key") == user_id
                and event.get("content", {}).get("membership") in ("leave", "ban")
            ):
                pending.discard(room_id)
        return not pending

    return check


async def measure(
    stack: Any, plain: PlainHomeserver, size: int, actions: list[str], args: argparse.Namespace
) -> dict[str, ABResult]:
    http = stack.http
    bot_b = Raw(http, plain.homeserver.url, plain.as_token, plain.bot_user_id)
    name = template_name(size)
    log(f"{FIGURE}: {size} channels: building both servers")
    owner_a = await register(http, stack.homeserver)
    server = await build_guilds_server(stack, owner_a, size)
    await join_all(owner_a, server.channels)
    owner_b = await register(http, plain.homeserver)
    template = None if name is None else stack.config.templates[name]
    rooms = await build_plain_server(bot_b, owner_b, template)
    await join_all(owner_b, rooms.channels)
    sides = Sides(
        server,
        rooms,
        owner_a,
        SyncWatcher(owner_a, MEMBER_FILTER),
        SyncWatcher(owner_b, MEMBER_FILTER),
    )

    results: dict[str, ABResult] = {}
    for action in actions:
        log(f"{FIGURE}: {action}")
        results[action] = await _measure_action(stack, plain, action, sides, args)
    return results


async def _measure_action(
    stack: Any,
    plain: PlainHomeserver,
    action: str,
    sides: Sides,
    args: argparse.Namespace,
) -> ABResult:
    http = stack.http
    bot_a = Raw(http, stack.hs_url, stack.config.appservice.registration.as_token)
    bot_b = Raw(http, plain.homeserver.url, plain.as_token, plain.bot_user_id)
    server, rooms = sides.guilds, sides.plain
    owner_a, watch_a, watch_b = sides.owner_a, sides.watch_a, sides.watch_b
    a_rooms = [server.space, *server.channels]
    b_rooms = [rooms.space, *rooms.channels]
    pids_a = [stack.homeserver.proc.pid, stack.guilds_proc.pid]  # type: ignore[union-attr]
    pids_b = [plain.homeserver.proc.pid, plain.null_as.pid]  # type: ignore[union-attr]

    async def run_a() -> dict[str, float]:
        victim = await register(http, stack.homeserver)
        await bot_a.invite(server.space, victim.user_id)
        await victim.join(server.space)
        await wait_member(stack, server.space, victim)
        await join_all(victim, server.channels)
        path = f"/servers/{server.space}/members/{victim.user_id}/{action}"

        async def act() -> None:
            async with http.post(
                f"{stack.web_url}/_guilds/v1{path}",
                json={"reason": "bench"},
                headers={"Authorization": f"Bearer {owner_a.token}"},
            ) as response:
                if response.status != 204:
                    raise RuntimeError(f"{path}: {response.status} {await response.text()}")

        check = gone_check(a_rooms, victim.user_id)
        return await with_cpu(pids_a, timed(act, watch_a, check))

    async def run_b() -> dict[str, float]:
        victim = await register(http, plain.homeserver)
        await bot_b.invite(rooms.space, victim.user_id)
        await victim.join(rooms.space)
        await join_all(victim, rooms.channels)

        async def act() -> None:
            for room in b_rooms:
                await bot_b.membership_action(room, action, victim.user_id, "bench")

        check = gone_check(b_rooms, victim.user_id)
        return await with_cpu(pids_b, timed(act, watch_b, check))

    return await interleaved(
        run_a,
        run_b,
        pairs=args.pairs,
        warmup=0 if args.quick else 1,
        a_label="guilds",
        b_label="raw client",
        log=log,
    )


def _size(args: argparse.Namespace) -> int:
    return 3 if args.quick else 50


def admin_config(args: argparse.Namespace) -> dict[str, Any]:
    """What this figure needs of the Guilds stack's config (bench.smoke merges the figures')."""
    return templates_config([_size(args)])


async def main(args: argparse.Namespace) -> Figure:
    size = _size(args)
    figure = Figure(
        FIGURE,
        f"kick/ban cascade across {size} channels (A: Guilds API, B: raw client, sequential)",
        [
            "action",
            "channels",
            "A guilds s median [min–max]",
            "A p95 s",
            "B raw s median [min–max]",
            "B p95 s",
            "A/B median [min–max]",
        ],
        params={"channels": size},
    )
    async with figure_stacks(args, admin_config(args)) as (stack, plain):
        results = await measure(stack, plain, size, ["kick", "ban"], args)
        for action, result in results.items():
            figure.results[action] = result.as_json()
            seconds = result["seconds"].as_json()
            figure.rows.append(
                [
                    action,
                    size,
                    *p95_cells(seconds),
                ]
            )
            p95 = seconds["a"]["p95"]
            figure.targets.append(
                Target(
                    f"{action} p95 at {size} channels",
                    "≤ 2 s",
                    f"{fmt(p95)} s",
                    None if args.quick else p95 <= 2.0,
                )
            )
    return figure


if __name__ == "__main__":
    arguments = parse_args(FIGURE, __doc__)
    result = asyncio.run(main(arguments))
    result.print()
    result.write(arguments)
