"""Calling the provisioning API and checking its Matrix effects, for the integration tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nio

from tests.harness.stack import Stack, User


class Api:
    """The provisioning API as a caller sees it (through the web UI's origin)."""

    def __init__(self, stack: Stack, user: User | None) -> None:
        self.stack = stack
        self.user = user

    async def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> tuple[int, Any]:
        assert self.stack.http is not None
        headers = {}
        if self.user is not None:
            headers["Authorization"] = f"Bearer {self.user.access_token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.stack.http.request(
            method, f"{self.stack.web_url}/_guilds/v1{path}", **kwargs
        ) as response:
            text = await response.text()
            return response.status, (await response.json() if text else None)


async def create_server(stack: Stack, owner: User, name: str = "Friends") -> dict[str, Any]:
    status, server = await Api(stack, owner).call("POST", "/servers", {"name": name, "topic": "hi"})
    assert status == 201, server
    return server


async def state_of(client: nio.AsyncClient, room_id: str) -> dict[tuple[str, str], dict]:
    response = await client.room_get_state(room_id)
    assert isinstance(response, nio.RoomGetStateResponse), response
    return {(e["type"], e["state_key"]): e["content"] for e in response.events}


async def join_server(stack: Stack, server_id: str, user: User) -> None:
    """Until invites land: the bot invites, the user's own client joins."""
    assert stack.http is not None
    token = stack.config.appservice.registration.as_token
    async with stack.http.post(
        f"{stack.hs_url}/_matrix/client/v3/rooms/{server_id}/invite",
        json={"user_id": user.user_id},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 200, await response.text()
    async with stack.nio_client(user) as client:
        joined = await client.join(server_id)
        assert isinstance(joined, nio.JoinResponse), joined

    # The bridge learns of the join by transaction, a moment later.
    async def visible() -> bool:
        return (await Api(stack, user).call("GET", f"/servers/{server_id}"))[0] == 200

    assert await eventually(visible), f"{user.user_id} never became a member of {server_id}"


async def eventually(check: Any, deadline_s: float = 10.0) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)
