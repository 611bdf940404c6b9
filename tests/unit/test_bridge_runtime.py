"""The Bridge's lifecycle and provisioning sub-app, against the fake homeserver over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import guilds
from bridge.api.app import require_user
from bridge.runtime import Bridge, BridgeStartupError
from guilds.config import (
    AppserviceSettings,
    GuildsConfig,
    HomeserverSettings,
    Listen,
    Registration,
    WebSettings,
)
from guilds.ids import RoomID
from tests.harness.fake_homeserver import (
    ALICE_TOKEN,
    AS_TOKEN,
    BOT,
    HS_TOKEN,
    FakeHomeserver,
    closed_port,
)


def make_config(tmp_path: Path, hs_url: str, *, as_token: str = AS_TOKEN) -> GuildsConfig:
    registration = Registration(
        id="guilds",
        url="http://127.0.0.1:8009",
        as_token=as_token,
        hs_token=HS_TOKEN,
        sender_localpart="guilds",
        user_regexes=("@guilds:localhost",),
        rate_limited=False,
    )
    return GuildsConfig(
        homeserver=HomeserverSettings("localhost", hs_url, hs_url),
        appservice=AppserviceSettings(
            Listen("127.0.0.1", 8009),
            "guilds",
            "Guilds Bot",
            tmp_path / "registration.yaml",
            registration,
        ),
        database_url=f"sqlite:///{tmp_path / 'guilds.db'}",
        web=WebSettings(False, Listen("127.0.0.1", 8080), "http://127.0.0.1:8080", "Guilds"),
        log_level="INFO",
    )


@pytest.fixture
async def homeserver() -> AsyncIterator[FakeHomeserver]:
    fake = FakeHomeserver()
    fake.server = TestServer(fake.app())
    await fake.server.start_server()
    try:
        yield fake
    finally:
        fake.release.set()
        await fake.server.close()


@pytest.fixture
async def bridge(tmp_path: Path, homeserver: FakeHomeserver) -> AsyncIterator[Bridge]:
    bridge = Bridge(make_config(tmp_path, homeserver.url))
    await bridge.open()
    try:
        yield bridge
    finally:
        await bridge.close()


@pytest.fixture
async def appservice(
    bridge: Bridge, homeserver: FakeHomeserver
) -> AsyncIterator[TestClient[Any, Any]]:
    """The appservice app served, and the fake homeserver told where to reach it."""
    async with TestClient(TestServer(bridge.appservice_app)) as client:
        homeserver.appservice_url = str(client.make_url("")).rstrip("/")
        yield client


async def eventually(check: Callable[[], Awaitable[Any] | Any], *, deadline_s: float = 5) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.02)


def invite(room_id: str, n: int = 1) -> dict[str, Any]:
    return {
        "event_id": f"$invite{n}",
        "room_id": room_id,
        "type": "m.room.member",
        "state_key": BOT,
        "sender": "@alice:localhost",
        "content": {"membership": "invite"},
    }


async def test_apps_need_open_first(tmp_path: Path) -> None:
    bridge = Bridge(make_config(tmp_path, "http://127.0.0.1:1"))
    with pytest.raises(RuntimeError, match="open"):
        _ = bridge.appservice_app
    await bridge.close()


async def test_connect_registers_names_and_pings_the_bot(
    bridge: Bridge, homeserver: FakeHomeserver, appservice: TestClient[Any, Any]
) -> None:
    homeserver.versions_failures = 2  # a homeserver still starting
    await bridge.connect(deadline_s=10)
    assert homeserver.registered == {BOT}
    assert homeserver.displaynames == {BOT: "Guilds Bot"}
    # The homeserver reached our /_matrix/app/v1/ping with the hs_token.
    assert homeserver.pings == [200]
    assert bridge.inbox.running


async def test_reconnecting_repeats_nothing_needless(
    tmp_path: Path, homeserver: FakeHomeserver, bridge: Bridge, appservice: TestClient[Any, Any]
) -> None:
    await bridge.connect(deadline_s=10)
    await bridge.close()
    again = Bridge(make_config(tmp_path, homeserver.url))
    await again.open()
    try:
        # A second process on the same data: the bot exists and is named already.
        homeserver.appservice_url = None
        homeserver.fail["ping"] = (404, "M_UNRECOGNIZED")  # an older homeserver: ping skipped
        await again.connect(deadline_s=10)
    finally:
        await again.close()
    assert homeserver.count("PUT", "/_matrix/client/v3/profile/") == 1
    assert homeserver.count("POST", "/_matrix/client/v3/register") == 2


async def test_invited_bot_joins_the_room(
    bridge: Bridge, homeserver: FakeHomeserver, appservice: TestClient[Any, Any]
) -> None:
    await bridge.connect(deadline_s=10)
    other_member = {**invite("!other:localhost", 2), "state_key": "@bob:localhost"}
    resp = await appservice.put(
        "/_matrix/app/v1/transactions/1",
        json={"events": [invite("!room:localhost"), other_member]},
        headers={"Authorization": f"Bearer {HS_TOKEN}"},
    )
    assert resp.status == 200
    await bridge.inbox.wait_idle(within_s=5)
    # Only the bot's own invite makes it join.
    assert homeserver.joins == [("!room:localhost", None)]


async def test_a_refused_join_is_not_retried_but_an_outage_is(
    bridge: Bridge, homeserver: FakeHomeserver
) -> None:
    bridge.inbox.base_backoff_s = 0.01
    homeserver.fail["join"] = (403, "M_FORBIDDEN")
    await bridge.inbox.record("t1", [invite("!gone:localhost")])
    await bridge.inbox.process_pending()
    assert homeserver.count("POST", "/_matrix/client/v3/join/") == 1
    row = await bridge.db.fetchone("SELECT handled_at FROM inbox WHERE event_id = '$invite1'")
    assert row is not None and row["handled_at"] is not None

    homeserver.fail["join"] = (502, "M_UNKNOWN")
    await bridge.inbox.record("t2", [invite("!busy:localhost", 2)])
    bridge.inbox.start()
    await eventually(lambda: homeserver.count("POST", "/_matrix/client/v3/join/") >= 3)
    del homeserver.fail["join"]
    await bridge.inbox.wait_idle(within_s=5)
    assert homeserver.joins[-1] == ("!busy:localhost", None)


async def test_connect_explains_an_unreachable_homeserver(tmp_path: Path) -> None:
    bridge = Bridge(make_config(tmp_path, f"http://127.0.0.1:{closed_port()}"))
    await bridge.open()
    try:
        with pytest.raises(BridgeStartupError, match="not reachable"):
            await bridge.connect(deadline_s=0.3)
        assert not bridge.inbox.running
    finally:
        await bridge.close()


async def test_connect_explains_an_unknown_as_token(
    tmp_path: Path, homeserver: FakeHomeserver
) -> None:
    bridge = Bridge(make_config(tmp_path, homeserver.url, as_token="z" * 64))
    await bridge.open()
    try:
        with pytest.raises(BridgeStartupError, match="app_service_config_files"):
            await bridge.connect(deadline_s=5)
    finally:
        await bridge.close()


async def test_connect_explains_an_appservice_the_homeserver_cannot_reach(
    bridge: Bridge, homeserver: FakeHomeserver
) -> None:
    # Nothing serves the appservice app: the homeserver's ping keeps failing until the deadline.
    started = time.monotonic()
    with pytest.raises(BridgeStartupError, match="cannot reach the application service"):
        await bridge.connect(deadline_s=1)
    assert time.monotonic() - started < 5
    assert homeserver.count("POST", "/_matrix/client/v1/appservice/") >= 2


# -- the provisioning sub-app -------------------------------------------------------------------


async def whoami_route(request: web.Request) -> web.Response:
    return web.json_response({"user_id": await require_user(request)})


@pytest.fixture
async def provisioning(bridge: Bridge) -> AsyncIterator[TestClient[Any, Any]]:
    """The sub-app mounted as the web UI mounts it, in a parent app without error middleware."""
    sub = bridge.provisioning_app
    # Stands in for the endpoints of a later issue, to exercise the auth helper.
    sub.router.add_get("/test-whoami", whoami_route)
    parent = web.Application()
    parent.add_subapp("/_guilds/v1", sub)
    # As connect() would: these tests are about a bridge that is up.
    bridge.ready.set()
    async with TestClient(TestServer(parent)) as client:
        yield client


async def test_the_api_says_it_is_starting_until_the_bridge_is_ready(bridge: Bridge) -> None:
    parent = web.Application()
    parent.add_subapp("/_guilds/v1", bridge.provisioning_app)
    async with TestClient(TestServer(parent)) as client:
        for path in ("/_guilds/v1/version", "/_guilds/v1/servers"):
            resp = await client.get(path)
            body = await resp.json()
            assert (resp.status, body["errcode"]) == (503, "M_UNAVAILABLE"), path
            assert body["retry_after_ms"] > 0
        bridge.ready.set()
        resp = await client.get("/_guilds/v1/version")
        assert resp.status == 200


async def test_version_needs_no_auth(provisioning: TestClient[Any, Any]) -> None:
    resp = await provisioning.get("/_guilds/v1/version")
    assert (resp.status, await resp.json()) == (200, {"version": guilds.__version__})


async def test_unknown_provisioning_routes_are_unrecognized(
    provisioning: TestClient[Any, Any],
) -> None:
    resp = await provisioning.get("/_guilds/v1/no/such/endpoint")
    assert (resp.status, (await resp.json())["errcode"]) == (404, "M_UNRECOGNIZED")
    resp = await provisioning.post("/_guilds/v1/version")
    assert (resp.status, (await resp.json())["errcode"]) == (405, "M_UNRECOGNIZED")


async def test_caller_token_is_resolved_and_cached(
    provisioning: TestClient[Any, Any], homeserver: FakeHomeserver
) -> None:
    resp = await provisioning.get("/_guilds/v1/test-whoami")
    assert (resp.status, (await resp.json())["errcode"]) == (401, "M_MISSING_TOKEN")
    resp = await provisioning.get(
        "/_guilds/v1/test-whoami", headers={"Authorization": "Bearer not-a-token"}
    )
    assert (resp.status, (await resp.json())["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    for _ in range(3):
        resp = await provisioning.get(
            "/_guilds/v1/test-whoami", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}
        )
        assert (resp.status, await resp.json()) == (200, {"user_id": "@alice:localhost"})
    # One round trip for the refused token, one for Alice's: then her answer came from the cache.
    assert homeserver.count("GET", "/_matrix/client/v3/account/whoami") == 2
    # The caller's own token went to the homeserver, not the appservice's.
    assert homeserver.requests[-1].authorization == f"Bearer {ALICE_TOKEN}"


async def test_homeserver_down_is_503_with_retry_after(
    provisioning: TestClient[Any, Any], homeserver: FakeHomeserver
) -> None:
    homeserver.fail["whoami"] = (502, "M_UNKNOWN")
    resp = await provisioning.get(
        "/_guilds/v1/test-whoami", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}
    )
    assert resp.status == 503
    body = await resp.json()
    assert body["errcode"] == "M_UNAVAILABLE" and body["retry_after_ms"] > 0


async def test_a_server_with_work_in_its_queue_is_kept_by_the_directory(bridge: Bridge) -> None:
    """The directory neither compacts nor evicts a server whose turn is held or awaited."""
    server_id = "!busy:localhost"
    assert not bridge.directory.busy(RoomID(server_id))
    async with bridge.queue.turn(server_id):
        assert bridge.directory.busy(RoomID(server_id))
    assert not bridge.directory.busy(RoomID(server_id))
