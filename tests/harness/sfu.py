"""A Janus SFU beside a test stack, and a minimal Janus client that talks to it directly, as an
attacker or a synthetic participant would (no browser, no Guilds code)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from guildsctl.janus import LocalJanus, janus_listening, start_janus
from guildsctl.synapse import stop, tail, wait_until
from tests.harness.stack import SFU, Stack, build_stack, free_port

PLUGIN = "janus.plugin.videoroom"
# Janus ends a session silent for its session timeout (45 s here, 60 s by default).
KEEPALIVE_S = 15.0
# The bridge's tokens last 3 minutes; the web client asks for new ones in time, and so do we.
TOKEN_REFRESH_S = 90.0
# Fresh credentials from the bridge (`POST …/sfu`), as the web client asks for them.
Refresh = Callable[[], Awaitable[dict[str, Any]]]
# For the tests on the session's stack with an SFU (`StackWithSfu`).
ON_SFU = pytest.mark.parametrize("stack", [SFU], indirect=True, scope="session")


def start_test_janus(
    root: Path, *, audiobridge: bool = False, session_timeout_s: int = 45
) -> tuple[subprocess.Popen[bytes], LocalJanus]:
    """Janus on a free loopback port with fresh secrets; raises with its log if it fails."""
    janus = LocalJanus(
        free_port(),
        rtp_ports=(40000, 49999),
        audiobridge=audiobridge,
        session_timeout_s=session_timeout_s,
    )
    log_path = root / "logs" / "janus.log"
    proc = start_janus(janus, root / "janus", log_path)
    if not wait_until(
        lambda: janus_listening(janus), deadline_s=20, alive=lambda: proc.poll() is None
    ):
        stop(proc)
        raise RuntimeError(f"Janus did not start:\n{tail(log_path)}")
    return proc, janus


@dataclass
class StackWithSfu(Stack):
    """A SQLite `Stack` whose guilds.yaml names a Janus started beside it: the `stack` param
    `SFU`, started once per session and shared by the modules that name it (the SFU's access
    rules and the browser calls through it), like the stacks with an admin's settings."""

    janus: LocalJanus | None = None
    janus_proc: subprocess.Popen[bytes] | None = None

    @property
    def sfu(self) -> LocalJanus:
        assert self.janus is not None
        return self.janus

    def kill_janus(self) -> None:
        """SIGKILL, as a crash would: no goodbye to anyone."""
        if self.janus_proc is not None:
            self.janus_proc.kill()
            self.janus_proc.wait()

    def start_janus_again(self) -> None:
        """Janus back on its port with the same secrets (as `guilds run`'s supervisor does)."""
        self.janus_proc = start_janus(
            self.sfu, self.root / "janus", self.root / "logs" / "janus.log"
        )

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self.janus_proc is not None:
                stop(self.janus_proc)


def build_sfu_stack(root: Path) -> StackWithSfu:
    """A SQLite stack whose guilds.yaml names a Janus started for it (`guilds serve` next)."""
    root.mkdir(parents=True, exist_ok=True)
    proc, janus = start_test_janus(root)
    try:
        stack = build_stack("sqlite", root, admin_config={"sfu": janus.guilds_sfu_section()})
    except BaseException:
        stop(proc)
        raise
    return StackWithSfu(
        **{f.name: getattr(stack, f.name) for f in fields(Stack)}, janus=janus, janus_proc=proc
    )


class JanusRefused(Exception):
    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(str(answer))
        self.answer = answer


class JanusSession:
    """One Janus session with one VideoRoom handle over the WebSocket API."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, token: str | None) -> None:
        self.ws = ws
        self.token = token
        self.session_id: int | None = None
        self.handle_id: int | None = None
        self.events: list[dict[str, Any]] = []

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        transaction = secrets.token_hex(6)
        body = dict(message, transaction=transaction)
        if self.token is not None:
            body["token"] = self.token
        if self.session_id is not None and "session_id" not in body:
            body["session_id"] = self.session_id
        await self.ws.send_json(body)
        while True:
            answer = await self.ws.receive_json(timeout=15)
            if answer.get("transaction") != transaction:
                self.events.append(answer)
                continue
            if answer.get("janus") == "ack":
                continue
            if answer.get("janus") == "error":
                raise JanusRefused(answer)
            return dict(answer)

    async def attach(self, plugin: str = PLUGIN) -> None:
        created = await self.request({"janus": "create"})
        self.session_id = created["data"]["id"]
        attached = await self.request({"janus": "attach", "plugin": plugin})
        self.handle_id = attached["data"]["id"]

    async def videoroom(self, body: dict[str, Any]) -> dict[str, Any]:
        """A VideoRoom request; its plugin data (joins answer with an asynchronous event)."""
        answer = await self.request({"janus": "message", "handle_id": self.handle_id, "body": body})
        return dict(answer.get("plugindata", {}).get("data", {}))

    async def next_event(self, wait_s: float = 15) -> dict[str, Any]:
        if self.events:
            return self.events.pop(0)
        return dict(await self.ws.receive_json(timeout=wait_s))


@asynccontextmanager
async def janus_session(url: str, token: str | None) -> AsyncIterator[JanusSession]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=("janus-protocol",)) as ws,
    ):
        yield JanusSession(ws, token)


async def keep_alive(session: JanusSession, refresh: Refresh | None) -> None:
    """Keep a Janus session open until cancelled, with a token asked for again (`refresh`)
    before the bridge's 3 minutes run out. Sent without waiting for the answer: only one reader
    may wait on the WebSocket (the answer is set aside by the next request, as any event is)."""
    refreshed = time.monotonic()
    while True:
        await asyncio.sleep(KEEPALIVE_S)
        if refresh is not None and time.monotonic() - refreshed > TOKEN_REFRESH_S:
            session.token = (await refresh())["token"]
            refreshed = time.monotonic()
        await session.ws.send_json(
            {
                "janus": "keepalive",
                "session_id": session.session_id,
                "transaction": "keepalive",
                "token": session.token,
            }
        )
