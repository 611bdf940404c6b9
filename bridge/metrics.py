"""The bridge's Prometheus metrics: one registry per bridge, and the listener that serves it.

Every metric lives in the `CollectorRegistry` of one `BridgeMetrics`, never in prometheus_client's
process-wide default registry, so several bridges in one process (the tests start many) keep
apart. The exposition itself is prometheus_client's (`generate_latest`); docs/DEPLOYMENT.md lists
every metric and shows the scrape configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from guilds.config import Listen

# Operations run from tens of milliseconds (one state event) to minutes (a role change over a
# large server under rate limits).
OPERATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))
# Transactions arrive milliseconds after an event in the normal case; seconds to minutes when the
# homeserver had to retry (the bridge was down, or its database was).
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))
# The `route` label of a request that matched no route: raw paths would carry ids and let any
# caller grow the label set without bound.
UNMATCHED_ROUTE = "(unmatched)"
METRICS_PATH = "/metrics"


class _DirectoryCollector(Collector):
    """Reads the directory's size at scrape time, so nothing has to keep gauges up to date."""

    def __init__(self, footprint: Callable[[], Mapping[str, int]]) -> None:
        self._footprint = footprint

    def collect(self) -> Iterable[Metric]:
        size = self._footprint()
        yield GaugeMetricFamily(
            "guilds_servers_loaded",
            "Servers the bridge's directory holds in full (in use lately)",
            size["loaded"],
        )
        yield GaugeMetricFamily(
            "guilds_servers_compacted",
            "Servers the bridge's directory holds compacted (idle; expanded when next needed)",
            size["compacted"],
        )
        yield GaugeMetricFamily(
            "guilds_servers_evicted",
            "Servers the bridge's directory has evicted from memory to its private file (idle "
            "beyond directory.compacted_budget_mib; taken back when next needed)",
            size["evicted"],
        )
        yield CounterMetricFamily(
            "guilds_directory_evictions",
            "Servers evicted from memory since start",
            size["evictions"],
        )
        yield CounterMetricFamily(
            "guilds_directory_reloads",
            "Evicted servers taken back into memory since start (used again)",
            size["reloads"],
        )
        yield GaugeMetricFamily(
            "guilds_directory_evicted_file_bytes",
            "Size of the file the evicted servers are kept in (disk, not memory)",
            size["evicted_bytes"],
        )
        yield GaugeMetricFamily(
            "guilds_directory_rooms",
            "Rooms whose state the directory holds in full",
            size["rooms"],
        )
        yield GaugeMetricFamily(
            "guilds_directory_state_events",
            "State events the directory holds in full, over all those rooms",
            size["state_events"],
        )
        yield GaugeMetricFamily(
            "guilds_directory_bytes",
            "Estimated memory of the directory's room state, in bytes: for servers held in "
            "full, the measured deep size of a random sample of state entries scaled to all "
            "of them; for compacted servers, what they hold, measured (see docs/DEPLOYMENT.md)",
            size["bytes"],
        )
        yield GaugeMetricFamily(
            "guilds_directory_compacted_bytes",
            "The part of guilds_directory_bytes held by compacted servers",
            size["compact_bytes"],
        )


class BridgeMetrics:
    """The metrics of one bridge, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # The process's own memory, CPU and file descriptors, as every Prometheus client shows.
        ProcessCollector(registry=r)
        self.operations = Counter(
            "guilds_operations",
            "Journaled operations finished, by kind and outcome (done or failed)",
            ["kind", "outcome"],
            registry=r,
        )
        self.operation_seconds = Histogram(
            "guilds_operation_duration_seconds",
            "Time from an operation's start in this process to its outcome",
            ["kind", "outcome"],
            buckets=OPERATION_BUCKETS,
            registry=r,
        )
        self.repairs = Counter(
            "guilds_convergence_repairs",
            "Changes the bridge made to bring a server back to its rules, by what set off the"
            " check (event, operation, startup, sweep, doctor) and what was repaired",
            ["trigger", "what"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "guilds_operation_queue_depth",
            "Operations waiting or running in every server's queue, together",
            registry=r,
        )
        self.queue_depth_max = Gauge(
            "guilds_operation_queue_depth_max",
            "The longest single server's operation queue",
            registry=r,
        )
        self.server_queue_depth = Gauge(
            "guilds_operation_queue_server_depth",
            "Operations in one server's queue; only servers whose queue is not empty are listed",
            ["server"],
            registry=r,
        )
        self._queue_depths: dict[str, int] = {}
        self.transactions = Counter(
            "guilds_appservice_transactions",
            "Appservice transactions the homeserver delivered and the bridge acknowledged",
            registry=r,
        )
        self.events = Counter(
            "guilds_appservice_events",
            "Events received in acknowledged appservice transactions",
            registry=r,
        )
        self.event_lag = Histogram(
            "guilds_appservice_event_lag_seconds",
            "Time from an event's origin_server_ts to its transaction's arrival at the bridge",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.api_requests = Counter(
            "guilds_api_requests",
            "Provisioning API requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.api_seconds = Histogram(
            "guilds_api_request_duration_seconds",
            "Time to answer a provisioning API request, by method and route template",
            ["method", "route"],
            buckets=API_BUCKETS,
            registry=r,
        )

    # -- what the parts of the bridge call -------------------------------------------------------

    def observe_operation(self, kind: str, outcome: str, seconds: float) -> None:
        """An operation of `kind` ended with `outcome` ("done" or "failed") after `seconds`."""
        self.operations.labels(kind, outcome).inc()
        self.operation_seconds.labels(kind, outcome).observe(seconds)

    def observe_repair(self, trigger: str, what: str) -> None:
        """The bridge changed a server back to its rules: `trigger` set off the check, `what`
        names the part of a room repaired. Both are short fixed words (never an id: every
        value is a new time series)."""
        self.repairs.labels(trigger, what).inc()

    def set_queue_depth(self, server_id: str, depth: int) -> None:
        """The operation queue of `server_id` now holds `depth` operations.

        A per-server series exists only while that server's queue is not empty, so a homeserver
        of thousands of idle servers exports three series here, not thousands.
        """
        if depth > 0:
            self._queue_depths[server_id] = depth
            self.server_queue_depth.labels(server_id).set(depth)
        elif self._queue_depths.pop(server_id, None) is not None:
            self.server_queue_depth.remove(server_id)
        self.queue_depth.set(sum(self._queue_depths.values()))
        self.queue_depth_max.set(max(self._queue_depths.values(), default=0))

    def observe_transaction(self, events: Iterable[Any], now_ms: int | None = None) -> None:
        """An appservice transaction was acknowledged: count it, its events and their lag."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self.transactions.inc()
        count = 0
        for event in events:
            count += 1
            ts = event.get("origin_server_ts") if isinstance(event, dict) else None
            if isinstance(ts, int) and not isinstance(ts, bool):
                # Clocks of the homeserver and the bridge may differ a little: never negative.
                self.event_lag.observe(max(0, now_ms - ts) / 1000)
        self.events.inc(count)

    def watch_directory(self, footprint: Callable[[], Mapping[str, int]]) -> None:
        """Report the directory's size, read from `footprint()` at each scrape."""
        self.registry.register(_DirectoryCollector(footprint))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


METRICS: web.AppKey[BridgeMetrics] = web.AppKey("guilds_metrics", BridgeMetrics)


def route_template(request: web.Request) -> str:
    """The matched route's path template (`/_guilds/v1/servers/{sid}`), never the raw path."""
    info = request.match_info
    resource = info.route.resource if info is not None else None
    if resource is None or info.http_exception is not None:
        return UNMATCHED_ROUTE
    return resource.canonical


@web.middleware
async def api_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request by route template and status (outermost middleware)."""
    metrics = request.config_dict.get(METRICS)
    if metrics is None:
        return await handler(request)
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = route_template(request)
        metrics.api_requests.labels(request.method, route, str(status)).inc()
        metrics.api_seconds.labels(request.method, route).observe(time.monotonic() - started)


async def _get_metrics(request: web.Request) -> web.Response:
    # prometheus_client picks the format the scraper asks for (the text format, or OpenMetrics).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(request.app[METRICS].registry)
    # The content type carries its own parameters, so it goes in as a raw header.
    return web.Response(body=body, headers={"Content-Type": content_type})


def create_metrics_app(metrics: BridgeMetrics) -> web.Application:
    """The app `guilds serve` serves on `metrics.listen`: `GET /metrics` and nothing else."""
    app = web.Application()
    app[METRICS] = metrics
    app.router.add_get(METRICS_PATH, _get_metrics)
    return app


def metrics_url(listen: Listen) -> str:
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    return f"http://{host}:{listen.port}{METRICS_PATH}"
