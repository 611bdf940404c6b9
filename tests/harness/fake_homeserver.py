"""Just enough of Synapse's Client-Server API, over real HTTP, for the bridge's unit tests."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

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


def closed_port() -> int:
    """A local port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
