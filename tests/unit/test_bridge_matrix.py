"""The bridge's Client-Server API client, against a small fake homeserver served over real HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from bridge.engine.matrix import HomeserverUnavailable, MatrixClient, MatrixRequestError
from tests.harness.fake_homeserver import (
    ALICE_TOKEN,
    AS_TOKEN,
    BOT,
    FakeHomeserver,
    closed_port,
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
async def client(homeserver: FakeHomeserver) -> AsyncIterator[MatrixClient]:
    matrix = MatrixClient(homeserver.url, AS_TOKEN)
    try:
        yield matrix
    finally:
        await matrix.close()


async def test_token_goes_in_the_header_never_in_the_url_nor_the_logs(
    homeserver: FakeHomeserver, client: MatrixClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bridge")
    await client.whoami()
    await client.ensure_registered("guilds")
    await client.join_room("!room:localhost", user_id="@alice:localhost")
    await client.whoami(token=ALICE_TOKEN)
    assert [r.authorization for r in homeserver.requests] == [
        f"Bearer {AS_TOKEN}",
        f"Bearer {AS_TOKEN}",
        f"Bearer {AS_TOKEN}",
        f"Bearer {ALICE_TOKEN}",
    ]
    for seen in homeserver.requests:
        assert "access_token" not in seen.query
        assert AS_TOKEN not in seen.raw_path and ALICE_TOKEN not in seen.raw_path
    assert caplog.records, "requests are logged at debug level"
    for record in caplog.records:
        assert AS_TOKEN not in record.getMessage() and ALICE_TOKEN not in record.getMessage()


async def test_user_id_makes_the_appservice_act_as_a_user(
    homeserver: FakeHomeserver, client: MatrixClient
) -> None:
    assert await client.whoami(user_id="@alice:localhost") == {"user_id": "@alice:localhost"}
    await client.join_room("!room:localhost", user_id="@alice:localhost")
    assert homeserver.joins == [("!room:localhost", "@alice:localhost")]


async def test_ids_are_quoted_as_single_path_segments(
    homeserver: FakeHomeserver, client: MatrixClient
) -> None:
    event_id = await client.send_state("!r:localhost", "chat.guilds.role", "a/b c", {"n": 1})
    assert event_id == "$state1"
    assert homeserver.state == {("!r:localhost", "chat.guilds.role", "a/b c"): {"n": 1}}
    assert "a%2Fb%20c" in homeserver.requests[-1].raw_path
    # An empty state key is the room-wide state event.
    await client.send_state("!r:localhost", "m.room.topic", "", {"topic": "t"})
    state = await client.get_state("!r:localhost")
    assert {"type": "m.room.topic", "state_key": "", "content": {"topic": "t"}} in state


async def test_send_message_uses_a_fresh_txn_id_unless_retrying(
    homeserver: FakeHomeserver, client: MatrixClient
) -> None:
    await client.send_message("!r:localhost", {"msgtype": "m.text", "body": "one"})
    await client.send_message("!r:localhost", {"msgtype": "m.text", "body": "two"})
    await client.send_message("!r:localhost", {"body": "again"}, txn_id="fixed")
    txns = [txn for (_, _, txn, _) in homeserver.sent]
    assert len(set(txns)) == 3 and txns[2] == "fixed"


async def test_registering_an_existing_user_is_not_an_error(client: MatrixClient) -> None:
    assert await client.ensure_registered("guilds") is True
    assert await client.ensure_registered("guilds") is False


async def test_displayname_round_trip(client: MatrixClient) -> None:
    assert await client.get_displayname(BOT) is None
    await client.set_displayname(BOT, "Guilds")
    assert await client.get_displayname(BOT) == "Guilds"


async def test_matrix_errors_are_raised_with_their_errcode(client: MatrixClient) -> None:
    with pytest.raises(MatrixRequestError) as info:
        await client.whoami(token="not-a-token")
    assert (info.value.status, info.value.errcode) == (401, "M_UNKNOWN_TOKEN")
    with pytest.raises(MatrixRequestError) as info:
        await client.request("GET", "/_matrix/client/v3/nothing")
    # aiohttp's plain 404 page is not Matrix JSON: the errcode falls back to M_UNKNOWN.
    assert (info.value.status, info.value.errcode) == (404, "M_UNKNOWN")


async def test_gateway_errors_and_refused_connections_are_unavailable(
    homeserver: FakeHomeserver, client: MatrixClient
) -> None:
    homeserver.versions_failures = 1
    with pytest.raises(HomeserverUnavailable) as info:
        await client.versions()
    assert (info.value.status, info.value.errcode) == (502, None)
    homeserver.fail["join"] = (503, "M_UNKNOWN")
    with pytest.raises(HomeserverUnavailable) as info:
        await client.join_room("!r:localhost")
    assert (info.value.status, info.value.errcode) == (503, "M_UNKNOWN")
    nowhere = MatrixClient(f"http://127.0.0.1:{closed_port()}", AS_TOKEN)
    try:
        with pytest.raises(HomeserverUnavailable, match="cannot reach"):
            await nowhere.whoami()
    finally:
        await nowhere.close()


async def test_a_homeserver_that_does_not_answer_in_time_is_unavailable(
    homeserver: FakeHomeserver, client: MatrixClient
) -> None:
    with pytest.raises(HomeserverUnavailable, match="in time"):
        await client.request("GET", "/slow", timeout_s=0.2)


async def test_wait_until_reachable_retries_until_the_deadline(
    homeserver: FakeHomeserver, client: MatrixClient
) -> None:
    homeserver.versions_failures = 3
    assert await client.wait_until_reachable(5) == {"versions": ["v1.11"]}
    assert homeserver.count("GET", "/_matrix/client/versions") == 4

    homeserver.versions_failures = 1_000_000
    started = time.monotonic()
    with pytest.raises(HomeserverUnavailable, match="did not answer within"):
        await client.wait_until_reachable(0.3)
    assert time.monotonic() - started < 2


async def test_ping_reports_the_homeserver_answer(
    homeserver: FakeHomeserver, client: MatrixClient
) -> None:
    # No appservice listening: Synapse answers 502 M_CONNECTION_FAILED.
    with pytest.raises(HomeserverUnavailable) as info:
        await client.ping("guilds")
    assert (info.value.status, info.value.errcode) == (502, "M_CONNECTION_FAILED")
