"""Calling the provisioning API and checking its Matrix effects, for the integration tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nio

from guilds.vocabulary import ROLE_EVENT
from tests.harness.contract import assert_conforms
from tests.harness.stack import Stack, User


class Api:
    """The provisioning API as a caller sees it (through the web UI's origin)."""

    def __init__(self, stack: Stack, user: User | None) -> None:
        self.stack = stack
        self.user = user

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        follow: bool = True,
    ) -> tuple[int, Any]:
        """The answer to one request; a 202 is followed to its operation's outcome (as a client
        that polls it would see it) unless `follow` is False.

        On a loaded machine any change may outlive the answer bound; tests about what a change
        does are not about when it is answered (tests/integration/test_queue.py is).
        """
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
            status, answer = response.status, (await response.json() if text else None)
        if follow and status == 202 and self.user is not None:
            return await outcome(self.stack, self.user, status, answer)
        return status, answer


async def create_server(stack: Stack, owner: User, name: str = "Friends") -> dict[str, Any]:
    status, server = await Api(stack, owner).call("POST", "/servers", {"name": name, "topic": "hi"})
    status, server = await outcome(stack, owner, status, server)
    assert status == 201, server
    return dict(server)


async def add_channel(stack: Stack, owner: User, sid: str, name: str, **extra: object) -> str:
    """A text channel made by `owner` through the API; its id."""
    status, channel = await Api(stack, owner).call(
        "POST", f"/servers/{sid}/channels", {"name": name, "kind": "text", **extra}
    )
    assert status == 201, channel
    return str(channel["channel_id"])


async def outcome(stack: Stack, user: User, status: int, answer: Any) -> tuple[int, Any]:
    """What a request came to: its answer, or, for a 202, its operation's once it has ended
    (docs/API.md, "Operations": a change that outlives the answer bound goes on)."""
    if status != 202:
        return status, answer
    assert answer["status"] == "pending" and answer["operation_id"], answer
    assert_conforms(answer, "Operation")
    path = f"/operations/{answer['operation_id']}"

    async def ended() -> dict[str, Any] | None:
        code, operation = await Api(stack, user).call("GET", path)
        if code == 200 and operation["status"] != "pending":
            return dict(operation)
        return None

    operation = await eventually(ended, deadline_s=180, interval_s=0.2, what=f"{path} to end")
    assert_conforms(operation, "Operation")
    if operation["status"] == "done":
        return operation["http_status"], operation["result"]
    assert operation["status"] == "failed", operation
    return operation["http_status"], operation["error"]


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

    # The bridge learns of the join by transaction, a moment later: on a loaded machine (the
    # bench smoke run's figures, all at once beside the other xdist worker, load 9-11 on 2
    # cores) the homeserver's transactions took longer than 15 s; this bounds liveness only.
    async def visible() -> bool:
        return (await Api(stack, user).call("GET", f"/servers/{server_id}"))[0] == 200

    assert await eventually(visible, deadline_s=60), (
        f"{user.user_id} never became a member of {server_id}"
    )


async def join_servers(stack: Stack, server_id: str, *users: User) -> None:
    """`join_server` for several users at once: each one's invite, join and wait overlap."""
    await asyncio.gather(*(join_server(stack, server_id, user) for user in users))


async def eventually(
    check: Any, deadline_s: float = 15.0, interval_s: float = 0.1, *, what: str | None = None
) -> Any:
    """Await `check()` until it returns something truthy or the deadline passes; return that.

    With `what`, a timeout fails the test naming what never happened, instead of returning
    the last (falsy) result for the caller to assert on.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            if what is not None:
                raise AssertionError(f"timed out waiting for {what}")
            return result
        await asyncio.sleep(interval_s)


async def bot_invite(stack: Stack, room_id: str, user_id: str) -> None:
    """The bot invites a user to a room (a plain invite: the user's own client must join)."""
    assert stack.http is not None
    token = stack.config.appservice.registration.as_token
    async with stack.http.post(
        f"{stack.hs_url}/_matrix/client/v3/rooms/{room_id}/invite",
        json={"user_id": user_id},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 200, await response.text()


async def role_room(stack: Stack, server_id: str, role_id: str) -> str:
    """The room whose membership is the role, as the space's role state names it."""
    assert stack.http is not None
    token = stack.config.appservice.registration.as_token
    async with stack.http.get(
        f"{stack.hs_url}/_matrix/client/v3/rooms/{server_id}/state/{ROLE_EVENT}/{role_id}",
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 200, await response.text()
        room_id = (await response.json())["room_id"]
    assert isinstance(room_id, str), f"the role {role_id} has no room"
    return room_id


async def give_role(stack: Stack, server_id: str, role_id: str, user: User) -> None:
    """Until the roles endpoints land: the bot invites to the role room, the user joins it."""
    room_id = await role_room(stack, server_id, role_id)
    await bot_invite(stack, room_id, user.user_id)
    async with stack.nio_client(user) as client:
        joined = await client.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined

    async def holds() -> bool:
        status, server = await Api(stack, user).call("GET", f"/servers/{server_id}")
        return status == 200 and role_id in server["me"]["roles"]

    assert await eventually(holds), f"{user.user_id} never got the role {role_id}"


async def hierarchy(client: nio.AsyncClient, space_id: str) -> set[str]:
    """The room ids the hierarchy API lists for this client under the space (every page)."""
    found: set[str] = set()
    page: str | None = None
    while True:
        answer = await client.space_get_hierarchy(space_id, from_page=page)
        assert isinstance(answer, nio.SpaceGetHierarchyResponse), answer
        found |= {room["room_id"] for room in answer.rooms}
        page = answer.next_batch
        if not page:
            return found


async def as_bot(stack: Stack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A Client-Server API call made by the bot (say, to ban someone as a moderator would)."""
    assert stack.http is not None
    token = stack.config.appservice.registration.as_token
    async with stack.http.request(
        method,
        f"{stack.hs_url}/_matrix/client/v3{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        text = await response.text()
        return response.status, (await response.json() if text else None)


async def default_room_version(stack: Stack) -> str:
    """The room version the homeserver creates rooms in, which Guilds rooms are made in too."""
    status, answer = await as_bot(stack, "GET", "/capabilities")
    assert status == 200, answer
    return str(answer["capabilities"]["m.room_versions"]["default"])


async def grant(stack: Stack, server_id: str, granter: User, user: User, role_id: str) -> None:
    """A role given through the API by `granter`; returns once the holder's own view shows it."""
    path = f"/servers/{server_id}/members/{user.user_id}/roles/{role_id}"
    status, answer = await Api(stack, granter).call("PUT", path)
    status, answer = await outcome(stack, granter, status, answer)
    assert status == 200, answer

    async def holds() -> bool:
        status, server = await Api(stack, user).call("GET", f"/servers/{server_id}")
        return status == 200 and role_id in server["me"]["roles"]

    assert await eventually(holds), f"{user.user_id} never got the role {role_id}"


async def join_as(stack: Stack, user: User, room_id: str) -> nio.JoinResponse | nio.JoinError:
    """The user's own client joins a room (a no-op answer when already joined)."""
    async with stack.nio_client(user) as client:
        answer = await client.join(room_id)
        assert isinstance(answer, nio.JoinResponse | nio.JoinError), answer
        return answer


async def joined_rooms(stack: Stack, user: User) -> set[str]:
    async with stack.nio_client(user) as client:
        answer = await client.joined_rooms()
        assert isinstance(answer, nio.JoinedRoomsResponse), answer
        return set(answer.rooms)


async def settled(api: Api, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A change through the API and what it came to (`outcome`, for the caller `api` stands for)."""
    status, answer = await api.call(method, path, body)
    assert api.user is not None
    return await outcome(api.stack, api.user, status, answer)
