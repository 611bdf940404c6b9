"""Figure 1: the module's overhead on messages.

A: the default channel of a Guilds server on Synapse with the Guilds module (and the bridge as
its appservice). B: the same room on a second Synapse started in the same run from the same
configuration minus the `modules:` entry, with the same appservice registration (answered by a
null appservice): a server built by the bridge's own plan with plain calls, so the rooms have
the same state and Synapse pushes the same transactions on both sides; only the module and the
bridge differ.

Each trial: `concurrency` users send messages (each sequentially), a second user long-polls
`/sync` in one loop kept for the whole run, as an open client does (a trial first sends one
unmeasured message and waits for it, so the long-poll is in place when the clock starts);
throughput = messages / sending time, latency = send start → the message in the receiver's
`/sync` answer (p50, p95 per trial). Interleaved A B A B …; ratio = A / B.
Target: ≤ 3 % throughput loss (ratio ≥ 0.97) and ≤ 3 % p95 increase (ratio ≤ 1.03).

Beside them, what the load does not inflate: the CPU time per message of the homeserver process
(where the module runs) and, on A, of the bridge (which receives every message's transaction;
B's null appservice answers inside this process and is not counted).

`--profile` also restarts the Guilds homeserver under cProfile for a message load and counts,
per message, the module's callbacks and the state reads they cause (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bench.common import (
    Figure,
    Target,
    cpu_seconds,
    figure_stacks,
    fmt,
    interleaved,
    log,
    parse_args,
    percentile,
    spread,
    summarize,
)
from bench.raw import MatrixError, PlainHomeserver, Raw, register_many, wait_for
from bench.shapes import build_plain_server

FIGURE = "fig1_messages"


def _filter(room_id: str) -> str:
    return json.dumps(
        {
            "presence": {"types": []},
            "account_data": {"types": []},
            "room": {
                "rooms": [room_id],
                "timeline": {"limit": 500, "types": ["m.room.message"]},
                "state": {"types": [], "lazy_load_members": True},
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
        }
    )


class Side:
    """One homeserver's room, its senders and its receiver, and the processes serving them."""

    def __init__(
        self,
        name: str,
        room_id: str,
        senders: list[Raw],
        receiver: Raw,
        homeserver_pid: Callable[[], int | None] = lambda: None,
        appservice_pid: Callable[[], int | None] = lambda: None,
        synapse_db: str | None = None,
    ) -> None:
        self.name = name
        self.room_id = room_id
        self.senders = senders
        self.receiver = receiver
        self.filter = _filter(room_id)
        # Callables: the profile run restarts the homeserver under another pid.
        self.homeserver_pid = homeserver_pid
        self.appservice_pid = appservice_pid
        # The appservice's CPU ms per message of each trial (A only: not an A/B metric).
        self.appservice_cpu: list[float] = []
        self.synapse_db = synapse_db
        # The receiver's sync loop, and what the current trial awaits from it.
        self._receiver: asyncio.Task[None] | None = None
        self._awaited: set[str] = set()
        self._arrived: dict[str, float] = {}
        self._all_arrived = asyncio.Event()

    def _txns_sent(self) -> float:
        """How many transactions Synapse has sent the appservice (PostgreSQL only)."""
        if self.synapse_db is None:
            return math.nan
        import psycopg2

        from tests.harness.stack import PG_HOST, PG_PORT, PG_USER

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.synapse_db)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT last_value FROM application_services_txn_id_seq")
                row = cur.fetchone()
                return float(row[0]) if row else math.nan
        finally:
            conn.close()

    def _cpu(self) -> tuple[float, float]:
        pids = (self.homeserver_pid(), self.appservice_pid())
        return (
            cpu_seconds(pids[0]) if pids[0] else math.nan,
            cpu_seconds(pids[1]) if pids[1] else math.nan,
        )

    async def _gap(self, token: str) -> list[dict[str, Any]]:
        path = (
            f"/_matrix/client/v3/rooms/{quote(self.room_id)}/messages"
            f"?dir=b&limit=500&from={quote(token)}"
        )
        answer = await self.receiver.call("GET", path)
        return list(answer.get("chunk", []))

    async def _receive(self) -> None:
        """The receiver's client: one sync loop for the whole run, as a real client keeps, so a
        trial never measures a fresh initial sync of an ever longer room. Each message of the
        room is timed when the /sync answer holding it arrives."""
        since: str | None = None
        while True:
            try:
                answer = await self.receiver.sync(since, 0 if since is None else 10000, self.filter)
            except (aiohttp.ClientError, MatrixError):
                # The profile run restarts the homeserver under this loop; a client retries.
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            room = answer.get("rooms", {}).get("join", {}).get(self.room_id, {})
            timeline = room.get("timeline", {})
            events = list(timeline.get("events", []))
            if since is not None and timeline.get("limited") and timeline.get("prev_batch"):
                # A gap: fetch what it skipped, as a client would, before showing it.
                events += await self._gap(timeline["prev_batch"])
                now = time.monotonic()
            since = answer["next_batch"]
            for event in events:
                body = event.get("content", {}).get("body")
                if body in self._awaited:
                    self._arrived.setdefault(body, now)
            if self._awaited <= self._arrived.keys():
                self._all_arrived.set()

    async def _delivered(self, bodies: list[str], timeout_s: float) -> dict[str, float]:
        """Wait until every body has reached the receiver; their arrival times."""
        self._arrived = {}
        self._awaited = set(bodies)
        self._all_arrived = asyncio.Event()
        if self._receiver is None or self._receiver.done():
            self._receiver = asyncio.create_task(self._receive())
        try:
            await asyncio.wait_for(self._all_arrived.wait(), timeout_s)
        except TimeoutError:
            got = len(self._arrived)
            raise RuntimeError(f"{self.name}: only {got}/{len(bodies)} messages arrived") from None
        return self._arrived

    async def close(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiver

    async def trial(self, concurrency: int, count: int) -> dict[str, float]:
        tag = secrets.token_hex(4)
        # One unmeasured message first, delivered before the clock starts: the receiver's
        # long-poll is then waiting, as it is for a client that has been open a while.
        warm = asyncio.ensure_future(self._delivered([f"{tag}-warm"], 120))
        await asyncio.sleep(0)
        await self.senders[0].send_message(self.room_id, f"{tag}-warm")
        await warm
        sent_at: dict[str, float] = {}

        async def send(sender: Raw, bodies: list[str]) -> None:
            for body in bodies:
                sent_at[body] = time.monotonic()
                await sender.send_message(self.room_id, body)

        bodies = [f"{tag}-{i}" for i in range(count)]
        delivered = asyncio.ensure_future(self._delivered(bodies, 130))
        await asyncio.sleep(0)
        cpu_before = self._cpu()
        txns_before = self._txns_sent()
        started = time.monotonic()
        await asyncio.gather(
            *(send(self.senders[k], bodies[k::concurrency]) for k in range(concurrency))
        )
        sent = time.monotonic()
        arrived = await delivered
        cpu_after = self._cpu()
        txns = self._txns_sent() - txns_before
        latencies = [(arrived[b] - sent_at[b]) * 1000 for b in bodies]
        metrics = {
            "msgs_per_s": count / (sent - started),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "hs_cpu_ms_per_msg": 1000 * (cpu_after[0] - cpu_before[0]) / count,
        }
        if not math.isnan(txns):
            # Fewer transactions than messages: Synapse batched them while one was in flight.
            metrics["txns_per_msg"] = txns / count
        if not math.isnan(cpu_before[1]):
            self.appservice_cpu.append(1000 * (cpu_after[1] - cpu_before[1]) / count)
        return metrics


async def guilds_side(stack: Any, senders_needed: int) -> Side:
    from tests.harness.api import create_server, join_server

    http = stack.http
    owner = await stack.register_user()
    server = await create_server(stack, owner, "Bench")
    channel = server["default_channel_id"]
    users = [await stack.register_user() for _ in range(senders_needed + 1)]
    await asyncio.gather(*(join_server(stack, server["server_id"], u) for u in users))
    raws = [Raw(http, stack.hs_url, u.access_token, u.user_id) for u in users]

    async def in_channel(raw: Raw) -> None:
        # The module joins each new member to the default channel (acting.py).
        async def joined() -> bool:
            return channel in await raw.joined_rooms()

        await wait_for(joined, 60, 0.1)

    await asyncio.gather(*(in_channel(r) for r in raws))
    return Side(
        "guilds channel",
        channel,
        raws[1:],
        raws[0],
        homeserver_pid=lambda: _pid(stack.homeserver.proc),
        appservice_pid=lambda: _pid(stack.guilds_proc),
        synapse_db=stack.pg_databases[0] if stack.backend == "postgres" else None,
    )


def _pid(proc: Any) -> int | None:
    return proc.pid if proc is not None and proc.poll() is None else None


async def plain_side(plain: PlainHomeserver, http: Any, senders_needed: int) -> Side:
    """The same room as A's, without the module: the default channel of a server built by the
    bridge's own plan with plain calls (bench/shapes.py), its members joined as the web UI
    joins them (the space, then the channel the module would join them to)."""
    hs = plain.homeserver
    bot = Raw(http, hs.url, plain.as_token, plain.bot_user_id)
    owner, receiver, *senders = await register_many(http, hs, senders_needed + 2)
    server = await build_plain_server(bot, owner, None)

    async def member(user: Raw) -> None:
        await bot.invite(server.space, user.user_id)
        await user.join(server.space)
        await user.join(server.general)

    await asyncio.gather(*(member(u) for u in [receiver, *senders]))
    return Side(
        "no module",
        server.general,
        senders,
        receiver,
        homeserver_pid=lambda: _pid(hs.proc),
        synapse_db=plain.pg_databases[0] if plain.pg_databases else None,
    )


async def big_room_side(
    stack: Any, members: int, homeserver: Any = None, name: str | None = None
) -> Side:
    """A plain (non-Guilds) room of `members` users on the Guilds homeserver (or on
    `homeserver`): Synapse's dispatch of the module's `check_event_allowed` loads the state of
    every room an event is created in, not only Guilds rooms, and its cost grows with the
    room's state (one member event per member)."""
    hs = homeserver if homeserver is not None else stack.homeserver
    users = await register_many(stack.http, hs, members)
    room_id = await users[0].create_room({"preset": "public_chat", "room_version": "12"})
    semaphore = asyncio.Semaphore(8)

    async def join(user: Raw) -> None:
        async with semaphore:
            await user.join(room_id)

    await asyncio.gather(*(join(u) for u in users[1:]))
    return Side(
        name or f"{members} members",
        room_id,
        users[2:3],
        users[1],
        homeserver_pid=lambda: _pid(hs.proc),
    )


async def profile_run(stack: Any, sides: list[Side], count: int) -> dict[str, Any]:
    """For each side: restart the Guilds homeserver under cProfile, send `count` messages in
    its room, stop, and count per message what the module's callbacks cost Synapse."""
    from guildsctl.synapse import http_ok, spawn, stop, wait_until

    hs = stack.homeserver
    out: dict[str, Any] = {"messages": count, "rooms": {}}
    for side in sides:
        hs.stop()
        prof_path = Path(tempfile.mkdtemp(prefix="guilds-prof-")) / "synapse.prof"
        args = [
            sys.executable, "-m", "cProfile", "-o", str(prof_path), "-m", "synapse.app.homeserver",
            "-c", str(hs.base_config), "-c", str(hs.overlay_config),
        ]  # fmt: skip
        proc = spawn(args, log_path=hs.log_path, cwd=hs.config_dir)
        hs.proc = proc
        if not wait_until(
            lambda: http_ok(f"{hs.url}/_matrix/client/versions"),
            deadline_s=90,
            alive=lambda: proc.poll() is None,  # noqa: B023 - called before the next iteration
        ):
            raise RuntimeError("Synapse under cProfile did not start")
        await side.trial(1, count)
        stop(proc, timeout=60)
        out["rooms"][side.name] = _profile_counts(prof_path)
        hs.start()
    return out


_WATCHED = {
    "on_new_event (Synapse dispatch, loads current state)": (
        "third_party_event_rules_callbacks.py",
        "on_new_event",
    ),
    "get_current_state (whole room state)": ("controllers/state.py", "get_current_state"),
    # Since issue 15: Synapse's dispatch loads the event's room state for the module's
    # check_event_allowed (kicks, bans, unbans), on every event it creates.
    "check_event_allowed (Synapse dispatch, loads the room's state)": (
        "third_party_event_rules_callbacks.py",
        "check_event_allowed",
    ),
    "GuildsModule.check_event_allowed": ("synapse_module/__init__.py", "check_event_allowed"),
    "GuildsModule.on_new_event": ("synapse_module/__init__.py", "on_new_event"),
    "GuildsModule.check_event_for_spam": ("synapse_module/__init__.py", "check_event_for_spam"),
    "StateReader.read (module state reads)": ("synapse_module/state.py", "read"),
    "StateReader.membership": ("synapse_module/state.py", "membership"),
    "get_events_as_list (event fetches)": ("events_worker.py", "get_events_as_list"),
}


def _profile_counts(path: Path) -> dict[str, dict[str, float]]:
    stats = pstats.Stats(str(path))
    out: dict[str, dict[str, float]] = {}
    raw: Any = stats.stats  # type: ignore[attr-defined]
    for label, (file_part, func) in _WATCHED.items():
        calls, cumulative = 0, 0.0
        for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in raw.items():
            if name == func and filename.endswith(file_part):
                calls += nc
                cumulative += ct
        out[label] = {"calls": calls, "cumulative_s": round(cumulative, 4)}
    # The state load Synapse makes for the module: get_current_state called by the dispatch.
    calls, cumulative = 0, 0.0
    for (filename, _line, name), (_cc, _nc, _tt, _ct, callers) in raw.items():
        if name == "get_current_state" and filename.endswith("controllers/state.py"):
            for (caller_file, _l, caller), (_c, nc, _t, ct) in callers.items():
                if caller == "on_new_event" and caller_file.endswith(
                    "third_party_event_rules_callbacks.py"
                ):
                    calls += nc
                    cumulative += ct
    out["get_current_state called by the on_new_event dispatch"] = {
        "calls": calls,
        "cumulative_s": round(cumulative, 4),
    }
    return out


def admin_config(args: argparse.Namespace) -> dict[str, Any]:
    """What this figure needs of the Guilds stack's config (bench.smoke merges the figures')."""
    return {}


async def main(args: argparse.Namespace) -> Figure:
    # Enough messages that a trial's p95 is not just its second-worst delivery.
    counts = {1: 4, 8: 16} if args.quick else {1: args.messages, 8: 4 * args.messages}
    figure = Figure(
        FIGURE,
        "module overhead on messages (A: Guilds channel, B: same Synapse without the module)",
        [
            "concurrency",
            "metric",
            "A guilds median [min–max]",
            "B no module median [min–max]",
            "A/B median [min–max]",
        ],
        params={"messages_per_trial": counts, "backend": args.backend},
    )
    async with figure_stacks(args, admin_config(args)) as (stack, plain):
        opened: list[Side] = []
        try:
            a = await guilds_side(stack, max(counts))
            opened.append(a)
            b = await plain_side(plain, stack.http, max(counts))
            opened.append(b)
            for concurrency, count in counts.items():
                log(f"{FIGURE}: concurrency {concurrency}, {count} messages per trial")

                async def run_a(c: int = concurrency, n: int = count) -> dict[str, float]:
                    return await a.trial(c, n)

                a.appservice_cpu.clear()

                async def run_b(c: int = concurrency, n: int = count) -> dict[str, float]:
                    return await b.trial(c, n)

                result = await interleaved(
                    run_a,
                    run_b,
                    pairs=args.pairs,
                    warmup=0 if args.quick else 1,
                    a_label="guilds",
                    b_label="no module",
                    log=log,
                )
                figure.results[f"concurrency_{concurrency}"] = result.as_json()
                for metric in result.comparisons:
                    c = result[metric]
                    ab = c.as_json()
                    figure.rows.append(
                        [
                            concurrency,
                            metric,
                            spread(ab["a"]),
                            spread(ab["b"]),
                            spread(ab["ratio"]),
                        ]
                    )
                bridge_cpu = summarize(a.appservice_cpu[-args.pairs :])
                figure.results[f"bridge_cpu_concurrency_{concurrency}"] = bridge_cpu
                figure.rows.append(
                    [concurrency, "bridge_cpu_ms_per_msg", spread(bridge_cpu), "–", "–"]
                )
                tput = result["msgs_per_s"].as_json()["ratio"]["median"]
                p95 = result["p95_ms"].as_json()["ratio"]["median"]
                judged = None if args.quick else True
                figure.targets.append(
                    Target(
                        f"throughput at concurrency {concurrency}",
                        "A/B ≥ 0.97",
                        fmt(tput),
                        None if judged is None else tput >= 0.97,
                    )
                )
                figure.targets.append(
                    Target(
                        f"p95 latency at concurrency {concurrency}",
                        "A/B ≤ 1.03",
                        fmt(p95),
                        None if judged is None else p95 <= 1.03,
                    )
                )
            if args.room_members:
                await _large_room(args, figure, stack, plain, opened)
            if args.profile:
                sides = [a]
                if args.profile_members:
                    sides.append(await big_room_side(stack, args.profile_members))
                    opened.append(sides[-1])
                profile = await profile_run(stack, sides, args.profile)
                figure.results["profile"] = profile
                for room, rows in profile["rooms"].items():
                    for label, row in rows.items():
                        figure.notes.append(
                            f"profile [{room}]: {label}: "
                            f"{row['calls'] / args.profile:.2f} calls/message, "
                            f"{1000 * row['cumulative_s'] / args.profile:.2f} ms/message"
                        )
        finally:
            for side in opened:
                await side.close()
    return figure


async def _large_room(
    args: argparse.Namespace, figure: Figure, stack: Any, plain: PlainHomeserver, opened: list[Side]
) -> None:
    """The same A/B in a plain room of `--room-members` users on each homeserver: what the
    module's `check_event_allowed` costs grows with the room's state, which the small channel
    above does not show."""
    members, count = args.room_members, 4 if args.quick else args.messages
    a = await big_room_side(stack, members, name=f"guilds hs, {members} members")
    opened.append(a)
    b = await big_room_side(stack, members, plain.homeserver, f"no module, {members} members")
    opened.append(b)
    log(f"{FIGURE}: a room of {members} members, {count} messages per trial")

    async def run_a() -> dict[str, float]:
        return await a.trial(1, count)

    async def run_b() -> dict[str, float]:
        return await b.trial(1, count)

    result = await interleaved(
        run_a,
        run_b,
        pairs=args.pairs,
        warmup=0 if args.quick else 1,
        a_label="guilds",
        b_label="no module",
        log=log,
    )
    figure.results[f"room_{members}_members"] = result.as_json()
    for metric, comparison in result.comparisons.items():
        ab = comparison.as_json()
        figure.rows.append(
            [f"1, room of {members}", metric, spread(ab["a"]), spread(ab["b"]), spread(ab["ratio"])]
        )


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--messages",
        type=int,
        default=100,
        metavar="N",
        help="messages per trial at concurrency 1 (4 N at concurrency 8)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile the Guilds homeserver with cProfile while N messages are sent",
    )
    parser.add_argument(
        "--room-members",
        type=int,
        default=0,
        metavar="M",
        help="also compare the two homeservers in a plain room of M members (concurrency 1)",
    )
    parser.add_argument(
        "--profile-members",
        type=int,
        default=0,
        metavar="M",
        help="with --profile, also profile a room of M members",
    )


if __name__ == "__main__":
    arguments = parse_args(FIGURE, __doc__, _extra)
    result = asyncio.run(main(arguments))
    result.print()
    result.write(arguments)
