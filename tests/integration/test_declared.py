"""Declared servers on a real Synapse: created at start-up, unchanged by a restart, planned by
`guilds apply --dry-run` without a change, repaired by `guilds apply` (through the running
bridge, and in-process when none runs)."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from guildsctl.configgen import read_yaml, write_yaml
from tests.harness.api import Api, eventually
from tests.harness.stack import BACKENDS, Stack, User, build_stack


@pytest_asyncio.fixture(scope="module", params=BACKENDS)
async def declaring(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend = request.param
    s = build_stack(backend, tmp_path_factory.mktemp(f"declared-{backend}"))
    try:
        s.http = aiohttp.ClientSession()
        yield s
    finally:
        await s.close()


def declare(stack: Stack, servers: dict[str, Any]) -> None:
    data = read_yaml(stack.config_path)
    data["servers"] = servers
    write_yaml(stack.config_path, data, private=True)


async def guilds_apply(stack: Stack, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "guildsctl.cli",
        "apply",
        "-c",
        str(stack.config_path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=stack.root,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, (out.decode(), err.decode())
    return out.decode()


async def company_of(stack: Stack, owner: User) -> list[dict[str, Any]]:
    _, listed = await Api(stack, owner).call("GET", "/servers")
    return [s for s in listed["servers"] if s["name"] == "Company"]


async def server(stack: Stack, user: User, sid: str) -> dict[str, Any]:
    status, answer = await Api(stack, user).call("GET", f"/servers/{sid}")
    assert status == 200, answer
    return answer


def layout(answer: dict[str, Any]) -> dict[str, Any]:
    categories = {c["category_id"]: c["name"] for c in answer["categories"]}
    return {
        "channels": sorted(
            (
                c["name"],
                c["kind"],
                categories.get(c["category_id"]),
                tuple(c["allowed_roles"] or ()),
            )
            for c in answer["channels"]
        ),
        "roles": sorted(r["role_id"] for r in answer["roles"]),
    }


async def roles_of(stack: Stack, owner: User, sid: str, user: User) -> list[str] | None:
    status, member = await Api(stack, owner).call("GET", f"/servers/{sid}/members?limit=500")
    assert status == 200, member
    for entry in member["members"]:
        if entry["user_id"] == user.user_id:
            return sorted(entry["roles"])
    return None


EXPECTED = {
    "channels": [
        ("Lounge", "voice", None, ()),
        ("general", "text", None, ()),
        ("rules", "text", "Info", ()),
        ("staff-room", "text", None, ("staff",)),
    ],
    "roles": ["admin", "member", "moderator", "staff"],
}


async def test_a_declared_server_is_created_kept_planned_and_repaired(declaring: Stack) -> None:
    stack = declaring
    owner = await stack.register_user()
    alice = await stack.register_user()
    bob = await stack.register_user()
    declare(
        stack,
        {
            "company": {
                "name": "Company",
                "owner": owner.user_id,
                "categories": ["Info"],
                "roles": [{"id": "staff", "name": "Staff", "permissions": ["kick_members"]}],
                "channels": [
                    {"name": "rules", "category": "Info"},
                    {"name": "staff-room", "allowed_roles": ["staff"]},
                    {"name": "Lounge", "kind": "voice"},
                ],
                "members": [
                    {"users": [alice.user_id], "roles": ["staff"]},
                    {"users": [bob.user_id]},
                    # Users the bridge has not met yet join at their first request.
                    {"regex": "@newcomer_[a-z0-9]+:localhost"},
                ],
            }
        },
    )

    # Created at start-up, with its members and their roles.
    stack.start_guilds()

    async def created() -> bool:
        return len(await company_of(stack, owner)) == 1

    assert await eventually(created, deadline_s=60), stack.guilds_log.read_text()[-3000:]
    sid = (await company_of(stack, owner))[0]["server_id"]

    async def members_in() -> bool:
        return await roles_of(stack, owner, sid, alice) == ["member", "staff"] and (
            await roles_of(stack, owner, sid, bob) == ["member"]
        )

    assert await eventually(members_in, deadline_s=30)
    first = await server(stack, owner, sid)
    assert layout(first) == EXPECTED
    ids = sorted(c["channel_id"] for c in first["channels"])

    # A restart changes nothing: no second server, no new rooms.
    stack.stop_guilds()
    stack.start_guilds()

    async def reconciled_twice() -> bool:
        return stack.guilds_log.read_text().count("Declared servers: left alone") >= 2

    assert await eventually(reconciled_twice, deadline_s=60)
    assert len(await company_of(stack, owner)) == 1

    async def same_rooms() -> bool:
        again = await server(stack, owner, sid)
        return sorted(c["channel_id"] for c in again["channels"]) == ids

    assert await eventually(same_rooms, deadline_s=30)
    again = await server(stack, owner, sid)

    # Changed by hand: a channel deleted, a role edited, a member's role taken away.
    rules = next(c["channel_id"] for c in again["channels"] if c["name"] == "rules")
    api = Api(stack, owner)
    assert (await api.call("DELETE", f"/servers/{sid}/channels/{rules}"))[0] == 204
    status, _ = await api.call("PATCH", f"/servers/{sid}/roles/staff", {"permissions": []})
    assert status == 200
    path = f"/servers/{sid}/members/{alice.user_id}/roles/staff"
    assert (await api.call("DELETE", path))[0] == 200

    # The dry run says what it would do, and does nothing.
    plan = await guilds_apply(stack, "--dry-run")
    assert "Plan (dry run, nothing done)" in plan
    assert "would be created: 1" in plan and "channel #rules" in plan
    assert "role staff restored (permissions)" in plan
    assert f"member {alice.user_id} given back staff" in plan
    after_dry = await server(stack, owner, sid)
    assert "rules" not in [c["name"] for c in after_dry["channels"]]
    assert await roles_of(stack, owner, sid, alice) == ["member"]

    # Applying repairs exactly that, through the running bridge.
    report = await guilds_apply(stack)
    assert "Applied by the running bridge" in report and "failed: 0" in report
    repaired = await server(stack, owner, sid)
    assert layout(repaired) == EXPECTED
    staff = next(r for r in repaired["roles"] if r["role_id"] == "staff")
    assert staff["permissions"] == ["kick_members"]

    async def staff_again() -> bool:
        return await roles_of(stack, owner, sid, alice) == ["member", "staff"]

    assert await eventually(staff_again, deadline_s=30)

    # With no bridge running, `guilds apply` does it in-process; the next start agrees.
    lounge = next(c["channel_id"] for c in repaired["channels"] if c["name"] == "Lounge")
    assert (await api.call("DELETE", f"/servers/{sid}/channels/{lounge}"))[0] == 204
    stack.stop_guilds()
    report = await guilds_apply(stack)
    assert "Applied here (no bridge running)" in report and "channel #Lounge" in report
    stack.start_guilds()

    async def whole() -> bool:
        # The API answers while the bridge is still reading its servers in: wait for them.
        listed = await company_of(stack, owner)
        return len(listed) == 1 and layout(await server(stack, owner, sid)) == EXPECTED

    assert await eventually(whole, deadline_s=30)

    async def declared_again() -> bool:
        # The start-up applies the declared servers after it has read the servers in.
        return stack.guilds_log.read_text().count("Declared servers: created: 0") >= 2

    assert await eventually(declared_again, deadline_s=30)

    # A regex names users as they come: a newcomer's first request joins them.
    newcomer = await stack.register_user(f"newcomer_{secrets.token_hex(3)}")
    stranger = await stack.register_user()

    async def joined() -> bool:
        return len(await company_of(stack, newcomer)) == 1

    assert await eventually(joined, deadline_s=30)
    assert await company_of(stack, stranger) == []
    assert await roles_of(stack, owner, sid, newcomer) == ["member"]
