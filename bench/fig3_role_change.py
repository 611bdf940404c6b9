"""Figure 3: role change propagation, servers of 10 / 50 / 200 channels.

A: `PUT /servers/{sid}/members/{uid}/roles/moderator` (and `DELETE`, alternately) by the owner,
timed from the request until the owner's `/sync` has shown the new power levels (the member
at 50, or gone) in the last of the server's channels.

B: the same power-level changes made by a raw client on the same rooms built on the Synapse
without the module (bench/shapes.py): the bot PUTs `m.room.power_levels` in the space, the two
role rooms, then every channel, one after another, with the content it already holds (one
request per room, nothing read first), timed the same way. Ratio = A / B. Also reported: A's
seconds per channel (the slope between sizes). Target: A's p95 ≤ 2 s at 50 channels, growing at
most linearly with the number of channels.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench.common import (
    ABResult,
    Figure,
    Target,
    cpu_seconds,
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
    build_guilds_server,
    build_plain_server,
    join_all,
    template_name,
    templates_config,
    wait_member,
)

FIGURE = "fig3_role_change"
ROLE = "moderator"
POWER = 50

PL_FILTER = timeline_filter("m.room.power_levels", limit=1000)


def levels_check(channels: list[str], user_id: str, granted: bool) -> Any:
    """A /sync check: every channel has shown power levels with the user at POWER (or not)."""
    pending = set(channels)

    def check(answer: Any) -> bool:
        for room_id, event in timeline_events(answer):
            if room_id in pending and event.get("type") == "m.room.power_levels":
                level = (event.get("content", {}).get("users") or {}).get(user_id)
                if (level == POWER) == granted:
                    pending.discard(room_id)
        return not pending

    return check


async def measure(
    stack: Any, plain: PlainHomeserver, size: int, args: argparse.Namespace
) -> ABResult:
    http = stack.http
    templates = stack.config.templates
    bot_b = Raw(http, plain.homeserver.url, plain.as_token, plain.bot_user_id)
    bot_a = Raw(http, stack.hs_url, stack.config.appservice.registration.as_token)
    log(f"{FIGURE}: {size} channels: building both servers")
    name = template_name(size)
    # A: the owner (who watches) and a member who gets and loses the role.
    owner_a = await register(http, stack.homeserver)
    server = await build_guilds_server(stack, owner_a, size)
    await join_all(owner_a, server.channels)
    member_a = await register(http, stack.homeserver)
    await bot_a.invite(server.space, member_a.user_id)
    await member_a.join(server.space)
    await wait_member(stack, server.space, member_a)
    # B: the same rooms, owner and member.
    owner_b = await register(http, plain.homeserver)
    rooms = await build_plain_server(bot_b, owner_b, None if name is None else templates[name])
    await join_all(owner_b, rooms.channels)
    member_b = await register(http, plain.homeserver)
    await bot_b.invite(rooms.space, member_b.user_id)
    await member_b.join(rooms.space)
    b_rooms = [rooms.space, *rooms.role_rooms.values(), *rooms.channels]
    levels = {r: await bot_b.get_state(r, "m.room.power_levels") for r in b_rooms}
    watch_a = SyncWatcher(owner_a, PL_FILTER)
    watch_b = SyncWatcher(owner_b, PL_FILTER)
    state = {"a": False, "b": False}  # whether the member holds the role now
    path = f"/servers/{server.space}/members/{member_a.user_id}/roles/{ROLE}"
    # The homeserver first, then its appservice (the bridge; B's null appservice).
    pids_a = [stack.homeserver.proc.pid, stack.guilds_proc.pid]  # type: ignore[union-attr]
    pids_b = [plain.homeserver.proc.pid, plain.null_as.pid]  # type: ignore[union-attr]

    async def run_a() -> dict[str, float]:
        grant = not state["a"]

        async def act() -> None:
            async with http.request(
                "PUT" if grant else "DELETE",
                f"{stack.web_url}/_guilds/v1{path}",
                headers={"Authorization": f"Bearer {owner_a.token}"},
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"{path}: {await response.text()}")

        check = levels_check(server.channels, member_a.user_id, grant)
        hs_before = cpu_seconds(pids_a[0])
        measured = await with_cpu(pids_a, timed(act, watch_a, check))
        state["a"] = grant
        return {**measured, "hs_cpu_s": cpu_seconds(pids_a[0]) - hs_before}

    async def run_b() -> dict[str, float]:
        grant = not state["b"]

        async def act() -> None:
            for room in b_rooms:
                users = dict(levels[room].get("users") or {})
                if grant:
                    users[member_b.user_id] = POWER
                else:
                    users.pop(member_b.user_id, None)
                levels[room] = dict(levels[room], users=users)
                await bot_b.send_state(room, "m.room.power_levels", "", levels[room])

        check = levels_check(rooms.channels, member_b.user_id, grant)
        hs_before = cpu_seconds(pids_b[0])
        measured = await with_cpu(pids_b, timed(act, watch_b, check))
        state["b"] = grant
        return {**measured, "hs_cpu_s": cpu_seconds(pids_b[0]) - hs_before}

    return await interleaved(
        run_a,
        run_b,
        pairs=args.pairs,
        warmup=0 if args.quick else 1,
        a_label="guilds",
        b_label="raw client",
        log=log,
    )


def _sizes(args: argparse.Namespace) -> list[int]:
    return [3] if args.quick else (args.sizes or [10, 50, 200])


def admin_config(args: argparse.Namespace) -> dict[str, Any]:
    """What this figure needs of the Guilds stack's config (bench.smoke merges the figures')."""
    return templates_config(_sizes(args))


async def main(args: argparse.Namespace) -> Figure:
    sizes = _sizes(args)
    figure = Figure(
        FIGURE,
        "role change → last channel's power levels (A: Guilds API, B: raw client, sequential)",
        [
            "channels",
            "A guilds s median [min–max]",
            "A p95 s",
            "B raw s median [min–max]",
            "B p95 s",
            "A/B median [min–max]",
        ],
        params={"sizes": sizes, "role": ROLE},
    )
    medians: dict[int, float] = {}
    p95s: dict[int, float] = {}
    async with figure_stacks(args, admin_config(args)) as (stack, plain):
        for size in sizes:
            result = await measure(stack, plain, size, args)
            figure.results[f"channels_{size}"] = result.as_json()
            seconds = result["seconds"].as_json()
            medians[size] = seconds["a"]["median"]
            p95s[size] = seconds["a"]["p95"]
            figure.rows.append(
                [
                    size,
                    *p95_cells(seconds),
                ]
            )
            server = result["server_cpu_s"].as_json()
            homeserver = result["hs_cpu_s"].as_json()
            bridge = server["a"]["median"] - homeserver["a"]["median"]
            figure.notes.append(
                f"{size} channels, CPU per change (median): A homeserver "
                f"{fmt(homeserver['a']['median'])} s + bridge {fmt(bridge)} s; "
                f"B homeserver {fmt(homeserver['b']['median'])} s"
            )
            figure.write(args)  # what is measured so far survives a later failure
    judged = not args.quick
    if p95s:
        # The target is at 50 channels; a --quick run reports its size, unjudged.
        size = 50 if 50 in p95s else max(p95s)
        figure.targets.append(
            Target(
                f"p95 at {size} channels",
                "≤ 2 s at 50 channels",
                f"{fmt(p95s[size])} s",
                p95s[size] <= 2.0 if judged and size == 50 else None,
            )
        )
    if len(medians) >= 2:
        small, large = min(medians), max(medians)
        slope = (medians[large] - medians[small]) / (large - small)
        growth = medians[large] / medians[small]
        figure.params["slope_s_per_channel"] = slope
        figure.notes.append(
            f"A's median grows {fmt(growth)}× from {small} to {large} channels "
            f"({large / small:.0f}× the channels); slope {1000 * slope:.1f} ms per channel"
        )
        figure.targets.append(
            Target(
                "growth",
                f"at most linear: median({large}) / median({small}) ≤ {large / small:.0f}",
                fmt(growth),
                growth <= large / small if judged else None,
            )
        )
    return figure


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="channel counts (default 10 50 200)"
    )


if __name__ == "__main__":
    arguments = parse_args(FIGURE, __doc__, _extra)
    result = asyncio.run(main(arguments))
    result.print()
    result.write(arguments)
