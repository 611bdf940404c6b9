"""Prometheus metrics of a real bridge: real operations through the API, then a scrape.

The exposition is parsed with prometheus_client's own parser, so what is checked is what
Prometheus would read.
"""

from __future__ import annotations

import nio
from prometheus_client.parser import text_string_to_metric_families

from bridge.engine.matrix import MatrixClient
from tests.harness.api import Api, create_server, eventually
from tests.harness.invariants import power_everywhere
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(stack: Stack) -> Samples:
    assert stack.http is not None
    async with stack.http.get(stack.metrics_url) as response:
        assert response.status == 200, await response.text()
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_real_operations_move_the_metrics(stack: Stack, alice: User) -> None:
    before = await scrape(stack)
    server = await create_server(stack, alice, "Measured")
    sid = server["server_id"]
    api = Api(stack, alice)
    assert (await api.call("GET", f"/servers/{sid}"))[0] == 200
    assert (await api.call("GET", f"/servers/{sid}/roles"))[0] == 200
    assert (await api.call("POST", f"/servers/{sid}/roles", {"name": 5}))[0] == 400
    assert (await api.call("GET", "/no/such/route"))[0] == 404
    async with stack.nio_client(alice) as client:
        sent = await client.room_send(
            server["default_channel_id"], "m.room.message", {"msgtype": "m.text", "body": "hi"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent

    events_before = get(before, "guilds_appservice_events_total")

    async def delivered() -> Samples | None:
        # Transactions come a moment after the homeserver's answers: wait for the message's.
        now = await scrape(stack)
        return now if get(now, "guilds_appservice_events_total") > events_before else None

    after = await eventually(delivered, what="the bridge to count appservice events")

    def moved(name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    done = {"kind": "create_server", "outcome": "done"}
    assert moved("guilds_operations_total", **done) == 1
    assert moved("guilds_operation_duration_seconds_count", **done) == 1
    assert moved("guilds_operation_duration_seconds_sum", **done) > 0

    prefix = "/_guilds/v1"
    assert moved(
        "guilds_api_requests_total", method="POST", route=f"{prefix}/servers", status="201"
    )
    for route, status in [("/servers/{sid}", "200"), ("/servers/{sid}/roles", "200")]:
        labels = {"method": "GET", "route": prefix + route}
        assert moved("guilds_api_requests_total", status=status, **labels) >= 1, route
        assert moved("guilds_api_request_duration_seconds_count", **labels) >= 1, route
    roles = {"method": "POST", "route": f"{prefix}/servers/{{sid}}/roles"}
    assert moved("guilds_api_requests_total", status="400", **roles) == 1
    unmatched = {"method": "GET", "route": "(unmatched)", "status": "404"}
    assert moved("guilds_api_requests_total", **unmatched) == 1
    # Routes are templates: no server id, nor any raw path, ever becomes a label value.
    assert not any(sid in v or "/no/such" in v for _, labels in after for _, v in labels)

    assert moved("guilds_appservice_transactions_total") >= 1
    lag_count = moved("guilds_appservice_event_lag_seconds_count")
    assert lag_count >= 1
    assert moved("guilds_appservice_event_lag_seconds_sum") >= 0

    assert get(after, "guilds_servers_loaded") >= 1
    # The stack lives for the whole session, and its directory may have evicted or compacted
    # other servers meanwhile (their rooms then leave these gauges): the server just made and
    # used is held, its space and every channel counted.
    read, listed = await api.call("GET", f"/servers/{sid}")
    assert read == 200 and listed["channels"], listed
    assert get(after, "guilds_directory_rooms") >= 1 + len(listed["channels"])
    assert get(after, "guilds_directory_state_events") > get(after, "guilds_directory_rooms")
    assert get(after, "guilds_directory_bytes") > 0
    # Nothing is queued once the operation is done.
    assert get(after, "guilds_operation_queue_depth") == 0
    assert get(after, "process_resident_memory_bytes") > 0


async def test_a_repair_is_counted_by_trigger_and_what(
    stack: Stack, alice: User, bot: MatrixClient
) -> None:
    """The bot's own write that breaks the rules (as a stale plan would) is repaired by
    convergence, and the repair shows in the metrics with its trigger and what it mended."""
    server = await create_server(stack, alice, "Repaired")
    general = server["default_channel_id"]
    before = await scrape(stack)
    levels = next(
        e["content"] for e in await bot.get_state(general) if e["type"] == "m.room.power_levels"
    )
    wrong = {**levels, "users": {**levels.get("users", {}), alice.user_id: 42}}
    await bot.send_state(general, "m.room.power_levels", "", wrong)
    await power_everywhere(stack, [general], alice.user_id, 100)
    repairs = "guilds_convergence_repairs_total"
    labels = {"trigger": "event", "what": "power_levels"}

    async def counted() -> Samples | None:
        now = await scrape(stack)
        return now if get(now, repairs, **labels) > get(before, repairs, **labels) else None

    await eventually(counted, what="the repair to be counted")
