"""A plain Client-Server API client for the baselines: what a careful Matrix client does by hand.

Only aiohttp and the endpoints of the Matrix spec; no Guilds code, so a baseline measures
Synapse alone. Also: a second homeserver built from a stack's own configuration without the
Guilds module, and the users of figures registered through the shared-secret admin API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from guildsctl.configgen import read_yaml, registration, write_yaml
from guildsctl.synapse import Homeserver, generate_base_config, postgres_database, spawn

_txn = itertools.count(1)


class MatrixError(RuntimeError):
    def __init__(self, status: int, body: Any, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {body}")
        self.status = status
        self.body = body


class Raw:
    """One user's access token on one homeserver, calling the Client-Server API directly."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str, user_id: str = ""):
        self.http = http
        self.base = base_url.rstrip("/")
        self.token = token
        self.user_id = user_id

    async def call(
        self, method: str, path: str, body: Any = None, *, ok: Iterable[int] = (200,)
    ) -> Any:
        url = path if path.startswith("http") else f"{self.base}{path}"
        headers = {"Authorization": f"Bearer {self.token}"}
        for attempt in range(20):
            async with self.http.request(method, url, json=body, headers=headers) as response:
                text = await response.text()
                answer = json.loads(text) if text else None
                if response.status == 429 and attempt < 19:
                    retry = (answer or {}).get("retry_after_ms", 200) / 1000
                    await asyncio.sleep(min(retry, 2.0))
                    continue
                if response.status not in ok:
                    raise MatrixError(response.status, answer, f"{method} {path}")
                return answer
        raise AssertionError("unreachable")

    async def create_room(self, body: dict[str, Any]) -> str:
        answer = await self.call("POST", "/_matrix/client/v3/createRoom", body)
        return str(answer["room_id"])

    async def send_state(self, room_id: str, event_type: str, state_key: str, content: Any) -> str:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}"
        return str((await self.call("PUT", path, content))["event_id"])

    async def get_state(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}"
        return await self.call("GET", path)

    async def send_message(self, room_id: str, body: str) -> str:
        txn = f"b{next(_txn)}_{secrets.token_hex(4)}"
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}"
        answer = await self.call("PUT", path, {"msgtype": "m.text", "body": body})
        return str(answer["event_id"])

    async def join(self, room_id: str) -> None:
        await self.call("POST", f"/_matrix/client/v3/join/{quote(room_id)}", {})

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.call(
            "POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/invite", {"user_id": user_id}
        )

    async def membership_action(
        self, room_id: str, action: str, user_id: str, reason: str = ""
    ) -> None:
        body = {"user_id": user_id, "reason": reason} if reason else {"user_id": user_id}
        await self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/{action}", body)

    async def joined_rooms(self) -> set[str]:
        return set((await self.call("GET", "/_matrix/client/v3/joined_rooms"))["joined_rooms"])

    async def sync(self, since: str | None, timeout_ms: int, filter_json: str | None) -> Any:
        params = [f"timeout={timeout_ms}"]
        if since:
            params.append(f"since={quote(since)}")
        if filter_json:
            params.append(f"filter={quote(filter_json)}")
        return await self.call("GET", "/_matrix/client/v3/sync?" + "&".join(params))


async def register(
    http: aiohttp.ClientSession, hs: Homeserver, localpart: str | None = None
) -> Raw:
    """A new user through the shared-secret admin API (not rate limited), with its token."""
    localpart = localpart or f"b{secrets.token_hex(5)}"
    password = secrets.token_urlsafe(12)
    url = f"{hs.url}/_synapse/admin/v1/register"
    async with http.get(url) as response:
        nonce = (await response.json())["nonce"]
    mac = hmac.new(
        hs.registration_shared_secret().encode(),
        b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]),
        hashlib.sha1,
    ).hexdigest()
    body = {"nonce": nonce, "username": localpart, "password": password, "admin": False, "mac": mac}
    async with http.post(url, json=body) as response:
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"registering {localpart} failed: {answer}")
    return Raw(http, hs.url, answer["access_token"], answer["user_id"])


async def register_many(
    http: aiohttp.ClientSession, hs: Homeserver, count: int, concurrency: int = 8
) -> list[Raw]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> Raw:
        async with semaphore:
            return await register(http, hs)

    return list(await asyncio.gather(*(one() for _ in range(count))))


# -- a homeserver without the module ------------------------------------------------------------
NULL_APPSERVICE = """
import sys
from aiohttp import web

async def ok(request):
    await request.read()
    return web.json_response({})

async def missing(request):
    return web.json_response({"errcode": "M_NOT_FOUND"}, status=404)

app = web.Application()
app.router.add_put("/_matrix/app/v1/transactions/{txn}", ok)
app.router.add_post("/_matrix/app/v1/ping", ok)
app.router.add_get("/_matrix/app/v1/users/{u}", missing)
app.router.add_get("/_matrix/app/v1/rooms/{r}", missing)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


class PlainHomeserver:
    """Synapse from the same configuration as a stack's, minus the `modules:` entry.

    Its own database, signing key and port; the same application-service registration (same
    namespaces, tokens) pointing at a null appservice that acknowledges every transaction, so
    Synapse does the same appservice work on both sides and only the module differs.
    """

    def __init__(self, stack: Any, root: Path) -> None:
        from tests.harness.stack import PG_HOST, PG_PORT, PG_USER, create_pg_database, free_port

        self.stack = stack
        self.root = root
        port, self.as_port = free_port(), free_port()
        self.pg_databases: list[str] = []
        base_overlay = read_yaml(stack.homeserver.overlay_config)
        overlay = {k: v for k, v in base_overlay.items() if k != "modules"}
        overlay["public_baseurl"] = f"http://127.0.0.1:{port}/"
        overlay["listeners"] = [dict(overlay["listeners"][0], port=port)]
        if stack.backend == "postgres":
            name = create_pg_database("guilds_bench_plain")
            self.pg_databases.append(name)
            overlay["database"] = postgres_database(name, PG_HOST, PG_PORT, PG_USER)
        reg = read_yaml(stack.root / "registration.yaml")
        reg_path = root / "registration.yaml"
        write_yaml(
            reg_path,
            registration(
                f"http://127.0.0.1:{self.as_port}",
                reg["sender_localpart"],
                stack.server_name,
                tokens={"as_token": reg["as_token"], "hs_token": reg["hs_token"]},
            ),
            private=True,
        )
        overlay["app_service_config_files"] = [str(reg_path)]
        generate_base_config(root / "synapse", stack.server_name)
        self.homeserver = Homeserver(root / "synapse", port, root / "logs" / "synapse.log")
        self.homeserver.write_overlay(overlay)
        self.as_token = str(reg["as_token"])
        self.bot_user_id = f"@{reg['sender_localpart']}:{stack.server_name}"
        script = root / "null_appservice.py"
        script.write_text(NULL_APPSERVICE)
        self.null_as = spawn(
            [sys.executable, str(script), str(self.as_port)],
            log_path=root / "logs" / "as.log",
            cwd=root,
        )

    def start(self) -> None:
        self.homeserver.start()

    def stop(self) -> None:
        from guildsctl.synapse import stop
        from tests.harness.stack import drop_pg_database

        self.homeserver.stop()
        stop(self.null_as)
        for name in self.pg_databases:
            drop_pg_database(name)


async def wait_for(check: Any, deadline_s: float = 60.0, interval_s: float = 0.02) -> float:
    """Poll `check()` until truthy; return the monotonic time it first held."""
    deadline = time.monotonic() + deadline_s
    while True:
        if await check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {deadline_s}s")
        await asyncio.sleep(interval_s)


def timeline_filter(event_type: str, *, limit: int, lazy_load_members: bool = False) -> str:
    """A /sync filter (as JSON) that brings only the timeline's events of one type: nothing of
    presence, account data, ephemeral events or room state."""
    state: dict[str, Any] = {"types": []}
    if lazy_load_members:
        state["lazy_load_members"] = True
    return json.dumps(
        {
            "presence": {"types": []},
            "account_data": {"types": []},
            "room": {
                "timeline": {"limit": limit, "types": [event_type]},
                "state": state,
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
        }
    )


class SyncWatcher:
    """One user's /sync, long-polled: the moment a condition over what it saw first holds.

    `check(answer)` is called with every /sync answer and returns True when done; the time
    returned is when that answer arrived, i.e. when a client would show it.
    """

    def __init__(self, raw: Raw, filter_json: str | None = None) -> None:
        self.raw = raw
        self.filter = filter_json
        self.since: str | None = None

    async def catch_up(self) -> None:
        answer = await self.raw.sync(self.since, 0, self.filter)
        self.since = answer["next_batch"]

    async def wait(self, check: Any, deadline_s: float = 120.0) -> float:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            answer = await self.raw.sync(self.since, 5000, self.filter)
            now = time.monotonic()
            self.since = answer["next_batch"]
            if check(answer):
                return now
        raise TimeoutError(f"{self.raw.user_id}: the condition did not hold in {deadline_s}s")


def timeline_events(answer: Any, section: str = "join") -> Iterable[tuple[str, dict[str, Any]]]:
    """(room_id, event) for every timeline event of a /sync answer's rooms in `section`."""
    for room_id, room in answer.get("rooms", {}).get(section, {}).items():
        for event in room.get("timeline", {}).get("events", []):
            yield room_id, event


async def timed(action: Any, watcher: SyncWatcher, check: Any, deadline_s: float = 900.0) -> float:
    """Seconds from the start of `action()` until the watcher's `check` holds."""
    await watcher.catch_up()
    started = time.monotonic()
    waiting = asyncio.create_task(watcher.wait(check, deadline_s))
    try:
        await action()
        done = await waiting
    finally:
        waiting.cancel()
    return done - started
