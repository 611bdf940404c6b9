"""The bridge's Client-Server API client, against a small fake homeserver served over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.matrix import HomeserverUnavailable, MatrixClient, MatrixRequestError

AS_TOKEN = "as-" + "b" * 61
HS_TOKEN = "hs-" + "c" * 61
BOT = "@guilds:localhost"
ALICE_TOKEN = "alice-" + "d" * 58


@dataclass
class Seen:
    method: str
    raw_path: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any


def _error(http_status: int, errcode: str, error: str, **extra: Any) -> web.Response:
    return web.json_response({"errcode": errcode, "error": error, **extra}, status=http_status)


class FakeHomeserver:
    """Just enough of Synapse's Client-Server API for the bridge, recording every request."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.registered: set[str] = set()
        self.displaynames: dict[str, str] = {}
        self.joins: list[tuple[str, str | None]] = []
        self.state: dict[tuple[str, str, str], Any] = {}
        self.sent: list[tuple[str, str, str, Any]] = []
        # Status to answer instead of the real thing, per route name ("versions", "join", …).
        self.fail: dict[str, tuple[int, str]] = {}
        self.versions_failures = 0
        self.user_tokens = {ALICE_TOKEN: "@alice:localhost"}
        # Where the fake "Synapse" reaches the appservice on a ping, as its registration says.
        self.appservice_url: str | None = None
        self.pings: list[int] = []
        self.release = asyncio.Event()
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(prefix))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        c = "/_matrix/client"
        app.router.add_get(c + "/versions", self.versions, name="versions")
        app.router.add_post(c + "/v3/register", self.register, name="register")
        app.router.add_get(c + "/v3/account/whoami", self.whoami, name="whoami")
        profile = c + "/v3/profile/{user}/displayname"
        app.router.add_get(profile, self.get_displayname, name="get_displayname")
        app.router.add_put(profile, self.put_displayname, name="put_displayname")
        app.router.add_post(c + "/v3/join/{room}", self.join, name="join")
        app.router.add_get(c + "/v3/rooms/{room}/state", self.get_state, name="get_state")
        state = c + "/v3/rooms/{room}/state/{type}/{key:.*}"
        app.router.add_put(state, self.put_state, name="put_state")
        app.router.add_put(c + "/v3/rooms/{room}/send/{type}/{txn}", self.send, name="send")
        app.router.add_post(c + "/v1/appservice/{id}/ping", self.ping, name="ping")
        app.router.add_get("/slow", self.slow, name="slow")
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            Seen(
                request.method,
                request.raw_path,
                request.path,
                dict(request.query),
                request.headers.get("Authorization"),
                body,
            )
        )
        name = request.match_info.route.name
        if name in self.fail:
            status, errcode = self.fail[name]
            return _error(status, errcode, "configured failure")
        return await handler(request)

    def _caller(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if token == AS_TOKEN:
            return request.query.get("user_id", BOT)
        return self.user_tokens.get(token)

    async def versions(self, request: web.Request) -> web.Response:
        if self.versions_failures > 0:
            self.versions_failures -= 1
            return web.Response(status=502, text="<html>Bad gateway</html>")
        return web.json_response({"versions": ["v1.11"]})

    async def register(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {AS_TOKEN}":
            return _error(401, "M_UNKNOWN_TOKEN", "Unrecognised access token")
        body = await request.json()
        user = f"@{body['username']}:localhost"
        if user in self.registered:
            return _error(400, "M_USER_IN_USE", "User ID already taken.")
        self.registered.add(user)
        return web.json_response({"user_id": user})

    async def whoami(self, request: web.Request) -> web.Response:
        user = self._caller(request)
        if user is None:
            return _error(401, "M_UNKNOWN_TOKEN", "Unknown access token")
        return web.json_response({"user_id": user})

    async def get_displayname(self, request: web.Request) -> web.Response:
        name = self.displaynames.get(request.match_info["user"])
        if name is None:
            return _error(404, "M_NOT_FOUND", "Profile was not found")
        return web.json_response({"displayname": name})

    async def put_displayname(self, request: web.Request) -> web.Response:
        self.displaynames[request.match_info["user"]] = (await request.json())["displayname"]
        return web.json_response({})

    async def join(self, request: web.Request) -> web.Response:
        room = request.match_info["room"]
        self.joins.append((room, request.query.get("user_id")))
        return web.json_response({"room_id": room})

    async def get_state(self, request: web.Request) -> web.Response:
        room = request.match_info["room"]
        return web.json_response(
            [
                {"type": t, "state_key": k, "content": c}
                for (r, t, k), c in self.state.items()
                if r == room
            ]
        )

    async def put_state(self, request: web.Request) -> web.Response:
        m = request.match_info
        self.state[(m["room"], m["type"], m["key"])] = await request.json()
        return web.json_response({"event_id": f"$state{len(self.state)}"})

    async def send(self, request: web.Request) -> web.Response:
        m = request.match_info
        self.sent.append((m["room"], m["type"], m["txn"], await request.json()))
        return web.json_response({"event_id": f"$sent{len(self.sent)}"})

    async def ping(self, request: web.Request) -> web.Response:
        if self._caller(request) != BOT:
            return _error(403, "M_FORBIDDEN", "Not the appservice")
        if self.appservice_url is None:
            return _error(502, "M_CONNECTION_FAILED", "Connection failed")
        started = time.monotonic()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    self.appservice_url + "/_matrix/app/v1/ping",
                    json=await request.json(),
                    headers={"Authorization": f"Bearer {HS_TOKEN}"},
                ) as resp:
                    status = resp.status
        except aiohttp.ClientConnectionError:
            return _error(502, "M_CONNECTION_FAILED", "Connection failed")
        self.pings.append(status)
        if status != 200:
            return _error(502, "M_BAD_STATUS", "Bad status", status=status)
        return web.json_response({"duration_ms": int((time.monotonic() - started) * 1000)})

    async def slow(self, request: web.Request) -> web.Response:
        # Set at teardown, so the server can stop without waiting for a handler.
        await self.release.wait()
        return web.json_response({})


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


def closed_port() -> int:
    """A local port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
