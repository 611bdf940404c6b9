"""Authentication of every endpoint, enumerated from the apps themselves so none is forgotten.

The provisioning API's routes are read from the bridge's own router (a new endpoint is checked
the day it is added), each called without a token, with an unknown token and with the token of
someone who may not act there. The appservice endpoints are checked with a wrong `hs_token`.
Finally the logs of the whole stack are searched for every token the run has used.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from bridge.engine.store import Database
from tests.harness.api import Api, create_server, join_server
from tests.harness.routes import app_routes, fill
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE

# API.md: the only endpoints that answer without a token.
PUBLIC = {
    ("GET", "/version"),
    ("GET", "/openapi.json"),
    ("GET", "/invites/{code}"),
    ("GET", "/invites/{code}/icon"),
}
# API.md's "needs: member" rows: any member may call them (the rest need a permission).
MEMBER_ROUTES = {
    ("GET", "/servers/{sid}"),
    ("GET", "/servers/{sid}/members"),
    ("GET", "/servers/{sid}/roles"),
    ("POST", "/servers/{sid}/leave"),
    ("POST", "/servers/{sid}/channels/{cid}/sfu"),
}
# Routes about no one server (the caller's own list, creating one, redeeming a code, the
# templates on offer), where "another user's token" has no meaning.
OWN_ROUTES = {
    ("GET", "/servers"),
    ("POST", "/servers"),
    ("POST", "/invites/{code}/redeem"),
    ("GET", "/templates"),
}
# Readable by the user who made the change only (docs/API.md "Operations"): to anyone else,
# members included, an operation is as unknown as a made-up id.
REQUESTER_ROUTES = {("GET", "/operations/{oid}")}
# Tokens made up by these tests: they must not reach the logs either.
MADE_UP_TOKENS: list[str] = []


# A body each endpoint would accept, so a refusal is about who calls, not what is sent.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/servers"): {"name": "Never made"},
    ("PATCH", "/servers/{sid}"): {"name": "Hijacked"},
    ("POST", "/servers/{sid}/transfer"): {},
    ("POST", "/servers/{sid}/roles"): {"name": "Hijackers"},
    ("PATCH", "/servers/{sid}/roles/{rid}"): {"name": "Hijacked"},
    ("POST", "/servers/{sid}/channels"): {"name": "hijacked", "kind": "text"},
    ("PATCH", "/servers/{sid}/channels/{cid}"): {"topic": "hijacked"},
    ("POST", "/servers/{sid}/categories"): {"name": "Hijacked"},
    ("PATCH", "/servers/{sid}/categories/{cat}"): {"name": "Hijacked"},
    ("POST", "/servers/{sid}/invites"): {},
    ("POST", "/servers/{sid}/members/{uid}/kick"): {},
    ("POST", "/servers/{sid}/members/{uid}/ban"): {},
    ("POST", "/servers/{sid}/channels/{cid}/sfu"): {"device_id": "DEVICE"},
}


async def call(
    stack: Stack, method: str, path: str, body: Any, token: str | None
) -> tuple[int, Any]:
    assert stack.http is not None
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with stack.http.request(
        method, f"{stack.web_url}/_guilds/v1{path}", json=body, headers=headers
    ) as response:
        text = await response.text()
        return response.status, (await response.json() if text else None)


async def a_full_server(stack: Stack, db: Database, owner: User, member: User) -> dict[str, str]:
    """A server with a category, a custom role, an invite and a member, and one of the owner's
    operations: an id per placeholder."""
    server = await create_server(stack, owner, "Guarded")
    sid = server["server_id"]
    api = Api(stack, owner)
    status, category = await api.call("POST", f"/servers/{sid}/categories", {"name": "Cat"})
    assert status == 201, category
    status, role = await api.call("POST", f"/servers/{sid}/roles", {"name": "Crew"})
    assert status == 201, role
    status, invite = await api.call("POST", f"/servers/{sid}/invites", {})
    assert status == 201, invite
    await join_server(stack, sid, member)
    row = await db.fetchone(
        "SELECT job_id FROM queued_jobs WHERE server_id = ? AND actor = ?", sid, owner.user_id
    )
    assert row is not None
    return {
        "oid": row["job_id"],
        "sid": sid,
        "cid": server["default_channel_id"],
        "cat": category["category_id"],
        "rid": role["role_id"],
        "uid": owner.user_id,
        "code": invite["code"],
    }


async def snapshot(stack: Stack, owner: User, sid: str) -> Any:
    api = Api(stack, owner)
    server = await api.call("GET", f"/servers/{sid}")
    members = await api.call("GET", f"/servers/{sid}/members")
    invites = await api.call("GET", f"/servers/{sid}/invites")
    return server, members, invites


async def test_every_endpoint_refuses_a_missing_or_unknown_token(
    stack: Stack, db: Database, alice: User, bob: User, tmp_path: Path
) -> None:
    routes, _ = await app_routes(stack, tmp_path)
    values = await a_full_server(stack, db, alice, bob)
    before = await snapshot(stack, alice, values["sid"])
    checked = 0
    for method, template in routes:
        if (method, template) in PUBLIC:
            continue
        path, body = fill(template, values), BODIES.get((method, template))
        status, answer = await call(stack, method, path, body, None)
        assert (status, answer["errcode"]) == (401, "M_MISSING_TOKEN"), (method, template)
        # A header that is not a bearer token is no token at all.
        assert stack.http is not None
        async with stack.http.request(
            method,
            f"{stack.web_url}/_guilds/v1{path}",
            json=body,
            headers={"Authorization": f"Basic {alice.access_token}"},
        ) as response:
            assert response.status == 401, (method, template)
            assert (await response.json())["errcode"] == "M_MISSING_TOKEN"
        made_up = secrets.token_urlsafe(24)
        MADE_UP_TOKENS.append(made_up)
        status, answer = await call(stack, method, path, body, made_up)
        assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN"), (method, template)
        checked += 1
    assert checked == len(routes) - len(PUBLIC)
    assert await snapshot(stack, alice, values["sid"]) == before


async def test_another_users_token_is_refused_everywhere(
    stack: Stack, db: Database, alice: User, bob: User, tmp_path: Path
) -> None:
    """A stranger gets 404 (API.md: a server the caller cannot see); a plain member 403."""
    routes, _ = await app_routes(stack, tmp_path)
    values = await a_full_server(stack, db, alice, bob)
    stranger = await stack.register_user()
    before = await snapshot(stack, alice, values["sid"])
    for method, template in routes:
        if (method, template) in PUBLIC | OWN_ROUTES:
            continue
        path, body = fill(template, values), BODIES.get((method, template))
        status, answer = await call(stack, method, path, body, stranger.access_token)
        assert (status, answer["errcode"]) == (404, "M_NOT_FOUND"), (method, template, answer)
        if (method, template) in MEMBER_ROUTES:
            continue
        status, answer = await call(stack, method, path, body, bob.access_token)
        refused = (
            (404, "M_NOT_FOUND") if (method, template) in REQUESTER_ROUTES else (403, "M_FORBIDDEN")
        )
        assert (status, answer["errcode"]) == refused, (method, template, answer)
    status, listed = await Api(stack, stranger).call("GET", "/servers")
    assert status == 200 and listed["servers"] == []
    assert await snapshot(stack, alice, values["sid"]) == before


async def test_public_endpoints_stay_public(
    stack: Stack, db: Database, alice: User, bob: User
) -> None:
    values = await a_full_server(stack, db, alice, bob)
    status, version = await call(stack, "GET", "/version", None, None)
    assert status == 200 and isinstance(version["version"], str)
    status, contract = await call(stack, "GET", "/openapi.json", None, None)
    assert status == 200 and contract["openapi"].startswith("3.1")
    status, preview = await call(stack, "GET", f"/invites/{values['code']}", None, None)
    assert status == 200 and preview["server_id"] == values["sid"] and preview["valid"] is True


async def test_appservice_endpoints_refuse_a_missing_or_wrong_hs_token(
    stack: Stack, tmp_path: Path
) -> None:
    _, routes = await app_routes(stack, tmp_path)
    assert "PUT /_matrix/app/v1/transactions/{txnId}" in routes
    assert stack.http is not None
    registration = stack.config.appservice.registration
    values = {"txnId": f"auth-{secrets.token_hex(4)}", "userId": stack.bot_user_id, "alias": "#a:b"}
    for route in routes:
        method, template = route.split(" ", 1)
        url = f"{stack.appservice_url}{fill(template, values)}"
        wrong = secrets.token_urlsafe(48)
        MADE_UP_TOKENS.append(wrong)
        cases: list[tuple[dict[str, str], int, str]] = [
            ({}, 401, "M_UNAUTHORIZED"),
            ({"Authorization": f"Bearer {wrong}"}, 403, "M_FORBIDDEN"),
            # The other secret of the registration is not this one.
            ({"Authorization": f"Bearer {registration.as_token}"}, 403, "M_FORBIDDEN"),
        ]
        for headers, expected, errcode in cases:
            async with stack.http.request(
                method, url, json={"events": []}, headers=headers
            ) as response:
                answer = await response.json()
                assert (response.status, answer["errcode"]) == (expected, errcode), route


def stack_logs(stack: Stack) -> list[Path]:
    found = [p for p in stack.root.rglob("*") if p.is_file() and ".log" in p.name]
    # The stack's two processes' outputs at least (Synapse may add its own homeserver.log).
    assert stack.guilds_log in found and stack.homeserver.log_path in found, found
    return found


async def test_no_token_of_the_run_is_in_any_log(stack: Stack, alice: User) -> None:
    """Runs after the other tests of this module (and whatever ran before it on this stack)."""
    # A burst of authenticated calls right now, so this test never checks an idle log only.
    server = await create_server(stack, alice, "Logged")
    await Api(stack, alice).call("GET", f"/servers/{server['server_id']}")
    registration = stack.config.appservice.registration
    secrets_used = {
        "as_token": registration.as_token,
        "hs_token": registration.hs_token,
        **{f"user token {i}": t for i, t in enumerate(stack.issued_tokens)},
        **{f"made-up token {i}": t for i, t in enumerate(MADE_UP_TOKENS)},
    }
    assert alice.access_token in stack.issued_tokens
    logs = stack_logs(stack)
    total = 0
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        total += len(text)
        for name, token in secrets_used.items():
            assert token not in text, f"the {name} appears in {path.name}"
    # The logs are not empty: the bridge runs at DEBUG level in the test stack.
    assert total > 1_000, total
    print(f"{len(secrets_used)} tokens checked against {len(logs)} logs ({total} characters)")
