"""The bridge's metrics as prometheus_client exposes them: labels, queue depths, lag, routes."""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics import (
    METRICS,
    UNMATCHED_ROUTE,
    BridgeMetrics,
    api_metrics,
    create_metrics_app,
)
from bridge.readback.directory import RoomStates
from guilds.ids import RoomID


def samples(metrics: BridgeMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, parsed back with prometheus_client's own parser."""
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: BridgeMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def test_registries_of_two_bridges_are_apart() -> None:
    a, b = BridgeMetrics(), BridgeMetrics()
    a.observe_operation("create_server", "done", 0.2)
    assert value(a, "guilds_operations_total", kind="create_server", outcome="done") == 1
    assert value(b, "guilds_operations_total", kind="create_server", outcome="done") is None


def test_operations_count_and_time_by_kind_and_outcome() -> None:
    m = BridgeMetrics()
    m.observe_operation("edit_role", "done", 0.07)
    m.observe_operation("edit_role", "failed", 3.0)
    m.observe_operation("edit_role", "failed", 40.0)
    assert value(m, "guilds_operations_total", kind="edit_role", outcome="failed") == 2
    labels = {"kind": "edit_role", "outcome": "failed"}
    assert value(m, "guilds_operation_duration_seconds_count", **labels) == 2
    assert value(m, "guilds_operation_duration_seconds_sum", **labels) == 43.0
    assert value(m, "guilds_operation_duration_seconds_bucket", le="5.0", **labels) == 1


def test_repairs_by_cause() -> None:
    m = BridgeMetrics()
    m.observe_repair("event", "power_levels")
    m.observe_repair("event", "power_levels")
    m.observe_repair("sweep", "space_child")
    repairs = "guilds_convergence_repairs_total"
    assert value(m, repairs, trigger="event", what="power_levels") == 2
    assert value(m, repairs, trigger="sweep", what="space_child") == 1


def test_queue_depth_lists_only_servers_with_work() -> None:
    m = BridgeMetrics()
    m.set_queue_depth("!a:x", 3)
    m.set_queue_depth("!b:x", 1)
    m.set_queue_depth("!c:x", 0)
    assert value(m, "guilds_operation_queue_depth") == 4
    assert value(m, "guilds_operation_queue_depth_max") == 3
    assert value(m, "guilds_operation_queue_server_depth", server="!a:x") == 3
    assert value(m, "guilds_operation_queue_server_depth", server="!c:x") is None
    m.set_queue_depth("!a:x", 0)
    assert value(m, "guilds_operation_queue_server_depth", server="!a:x") is None
    assert value(m, "guilds_operation_queue_depth") == 1
    assert value(m, "guilds_operation_queue_depth_max") == 1
    # A server that was never listed can report empty without error.
    m.set_queue_depth("!never:x", 0)


def test_transactions_count_events_and_their_lag() -> None:
    m = BridgeMetrics()
    events: list[Any] = [
        {"type": "m.room.message", "origin_server_ts": 10_000},
        {"type": "m.room.message", "origin_server_ts": 11_500},
        # Without a timestamp (or a nonsense one) an event counts, but adds no lag.
        {"type": "m.room.message"},
        {"type": "m.room.message", "origin_server_ts": True},
        "not an event",
        # A homeserver clock ahead of ours counts as no lag, never a negative one.
        {"type": "m.room.message", "origin_server_ts": 13_000},
    ]
    m.observe_transaction(events, now_ms=12_000)
    assert value(m, "guilds_appservice_transactions_total") == 1
    assert value(m, "guilds_appservice_events_total") == 6
    assert value(m, "guilds_appservice_event_lag_seconds_count") == 3
    assert value(m, "guilds_appservice_event_lag_seconds_sum") == 2.5


def test_directory_size_is_read_at_scrape_time() -> None:
    m = BridgeMetrics()
    size = {
        "servers": 3,
        "loaded": 1,
        "compacted": 2,
        "rooms": 3,
        "state_events": 40,
        "bytes": 9000,
        "compact_bytes": 500,
        "evicted": 7,
        "evicted_bytes": 4096,
        "evictions": 9,
        "reloads": 2,
    }
    m.watch_directory(lambda: size)
    assert value(m, "guilds_servers_loaded") == 1
    size["loaded"] = 2
    assert value(m, "guilds_servers_loaded") == 2
    assert value(m, "guilds_servers_compacted") == 2
    assert value(m, "guilds_directory_bytes") == 9000
    assert value(m, "guilds_directory_compacted_bytes") == 500
    assert value(m, "guilds_servers_evicted") == 7
    assert value(m, "guilds_directory_evicted_file_bytes") == 4096
    assert value(m, "guilds_directory_evictions_total") == 9
    assert value(m, "guilds_directory_reloads_total") == 2


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({})


async def test_requests_are_labelled_by_route_template_never_raw_path() -> None:
    m = BridgeMetrics()
    api = web.Application(middlewares=[api_metrics])
    api[METRICS] = m
    api.router.add_get("/servers/{sid}", _ok)
    outer = web.Application()
    outer.add_subapp("/_guilds/v1", api)
    async with TestClient(TestServer(outer)) as client:
        assert (await client.get("/_guilds/v1/servers/!secret:x")).status == 200
        assert (await client.get("/_guilds/v1/nowhere/!secret:x")).status == 404
        assert (await client.post("/_guilds/v1/servers/!secret:x")).status == 405
    route = "/_guilds/v1/servers/{sid}"
    assert value(m, "guilds_api_requests_total", method="GET", route=route, status="200") == 1
    got = samples(m)
    assert (
        value(m, "guilds_api_requests_total", method="GET", route=UNMATCHED_ROUTE, status="404")
        == 1
    )
    assert all("secret" not in v for (_, labels) in got for _, v in labels)
    assert value(m, "guilds_api_request_duration_seconds_count", method="GET", route=route) == 1


async def test_metrics_app_serves_the_text_format() -> None:
    m = BridgeMetrics()
    m.observe_repair("startup", "join_rules")
    async with TestClient(TestServer(create_metrics_app(m))) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"guilds_convergence_repairs", "process_resident_memory_bytes"} <= names


def _room_json(room: int, members: int) -> str:
    """A room's `/state` answer as the homeserver sends it, as text (parsed like the real one)."""
    events = [
        {
            "type": "m.room.member",
            "state_key": f"@user{i}:example.org",
            "content": {"membership": "join", "displayname": f"User number {i}"},
            "event_id": f"$member{room}-{i}",
        }
        for i in range(members)
    ]
    events.append(
        {
            "type": "m.room.power_levels",
            "state_key": "",
            "content": {"users": {f"@user{i}:example.org": 50 for i in range(0, members, 7)}},
            "event_id": f"$pl{room}",
        }
    )
    return json.dumps(events)


def test_directory_bytes_estimate_is_near_what_python_allocates() -> None:
    texts = [_room_json(room, 40 + room % 30) for room in range(120)]
    gc.collect()
    tracemalloc.start()
    try:
        states = RoomStates()
        for room, text in enumerate(texts):
            # Parsed here, so the strings the state keeps are allocated while traced.
            states.replace(RoomID(f"!room{room}:x"), json.loads(text))
        gc.collect()
        allocated, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rooms, entries, estimate = states.footprint()
    assert rooms == 120
    assert entries == sum(40 + room % 30 + 1 for room in range(120))
    # A sampled estimate, not an accounting: it must land within a factor of two.
    assert allocated / 2 <= estimate <= allocated * 2, (estimate, allocated)
