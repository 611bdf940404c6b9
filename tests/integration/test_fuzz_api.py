"""Hostile JSON against every provisioning endpoint that takes a body: what schemathesis cannot see.

tests/integration/test_schemathesis.py checks, from the OpenAPI document, that every answer is no
5xx and conforms. What it cannot check is kept here: that a refused request changes nothing (the
server's model is the same before and after, which needs reading the server back after each
call), with values a schema-driven generator does not make (lone surrogates, bidi overrides,
zero-width and terminal control characters, fields an endpoint does not read); bodies that are
not JSON at all, nested too deep or too large; and the name rules' edge cases. `make test` runs
a few examples per endpoint; set GUILDS_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.api import Api, create_server, join_server
from tests.harness.routes import app_routes, fill
from tests.harness.stack import Stack, User

EXAMPLES = int(os.environ.get("GUILDS_FUZZ_EXAMPLES", "6"))
# The fields each endpoint reads (API.md), plus one it does not know.
FIELDS = [
    "name",
    "topic",
    "icon",
    "kind",
    "category_id",
    "order",
    "allowed_roles",
    "color",
    "power",
    "permissions",
    "max_uses",
    "expires_in_s",
    "user_id",
    "reason",
    "public",
    "unknown_field",
]
NASTY_TEXT = [
    "",
    " ",
    "\u202egnp.exe",  # RTL override
    "a\u200bb\u200d\ufeff",  # zero-width
    "\ud800",  # a lone surrogate: valid JSON escape, invalid Unicode
    "\x00\x07\x1b[31m\r\n",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%s%n{0}",
    "x" * 101,
    "é" * 100,
    "𝕏" * 101,
    "admin",
    "!room:localhost",
    "@guilds:localhost",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.sampled_from(NASTY_TEXT),
    st.builds(lambda n: "A" * n, st.integers(min_value=1000, max_value=60_000)),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
    json_values,  # not even an object
)


@dataclass
class Target:
    stack: Stack
    owner: User
    values: dict[str, str]
    routes: list[tuple[str, str]]


def call(stack: Stack, user: User, method: str, path: str, raw: bytes | None) -> tuple[int, Any]:
    """A blocking call (hypothesis drives plain functions), through the web UI's origin."""
    request = urllib.request.Request(  # noqa: S310 - our own stack, over http
        f"{stack.web_url}/_guilds/v1{path}",
        data=raw,
        method=method,
        headers={
            "Authorization": f"Bearer {user.access_token}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - our stack
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None


def snapshot(target: Target) -> Any:
    sid = target.values["sid"]
    return [
        call(target.stack, target.owner, "GET", path, None)
        for path in (
            "/servers",
            f"/servers/{sid}",
            f"/servers/{sid}/members",
            f"/servers/{sid}/roles",
            f"/servers/{sid}/invites",
        )
    ]


@pytest.fixture
async def target(stack: Stack, alice: User, bob: User, tmp_path: Path) -> Target:
    routes, _ = await app_routes(stack, tmp_path)
    server = await create_server(stack, alice, "Fuzzed")
    sid = server["server_id"]
    api = Api(stack, alice)
    status, category = await api.call("POST", f"/servers/{sid}/categories", {"name": "Cat"})
    assert status == 201, category
    status, role = await api.call("POST", f"/servers/{sid}/roles", {"name": "Crew"})
    assert status == 201, role
    status, invite = await api.call("POST", f"/servers/{sid}/invites", {})
    assert status == 201, invite
    await join_server(stack, sid, bob)
    values = {
        "sid": sid,
        "cid": server["default_channel_id"],
        "cat": category["category_id"],
        "rid": role["role_id"],
        # The owner: kicking, banning or demoting them is always refused, whatever the body.
        "uid": alice.user_id,
        "code": invite["code"],
    }
    with_body = [(m, t) for m, t in routes if m in ("POST", "PUT", "PATCH")]
    return Target(stack, alice, values, with_body)


def check_answer(status: int, answer: Any, what: str) -> None:
    assert status < 500, (what, status, answer)
    if status >= 400:
        # The Matrix error shape, with a sentence, never a trace.
        assert isinstance(answer, dict) and answer["errcode"].startswith(("M_", "GUILDS_"))
        assert "Traceback" not in answer["error"], answer


def test_a_refused_hostile_body_changes_nothing(target: Target) -> None:
    assert len(target.routes) >= 15, target.routes
    created: list[str] = []

    @settings(
        max_examples=EXAMPLES * len(target.routes),
        deadline=None,  # each example is a real HTTP round trip; the test's timeout bounds it
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(route=st.sampled_from(target.routes), body=bodies)
    def one(route: tuple[str, str], body: Any) -> None:
        method, template = route
        path = fill(template, target.values)
        before = snapshot(target)
        raw = json.dumps(body).encode()
        status, answer = call(target.stack, target.owner, method, path, raw)
        check_answer(status, answer, f"{method} {template} {raw[:200]!r}")
        if status >= 400:
            assert snapshot(target) == before, (method, template, body, answer)
        elif (method, template) == ("POST", "/servers"):
            created.append(answer["server_id"])

    one()
    print(f"{EXAMPLES * len(target.routes)} hostile bodies over {len(target.routes)} endpoints")


def test_malformed_huge_and_deep_bodies_are_refused_cleanly(target: Target) -> None:
    sid = target.values["sid"]
    cases: list[tuple[bytes, int, str]] = [
        (b"{not json", 400, "M_NOT_JSON"),
        (b"\xff\xfe\x00", 400, "M_NOT_JSON"),
        (b'{"name": NaN}', 400, "M_NOT_JSON"),
        (b"[]", 400, "M_BAD_JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 413, "M_TOO_LARGE"),
        (b"[" * 20_000 + b"]" * 20_000, 400, "M_NOT_JSON"),
        (json.dumps({"name": "x" * 10_000_000}).encode(), 413, "M_TOO_LARGE"),
        (b'{"name": "' + b"\\ud800" * 100 + b'"}', 400, "M_BAD_JSON"),
    ]
    before = snapshot(target)
    for raw, status, errcode in cases:
        for method, path in [("PATCH", f"/servers/{sid}"), ("POST", f"/servers/{sid}/roles")]:
            got, answer = call(target.stack, target.owner, method, path, raw)
            assert (got, answer["errcode"]) == (status, errcode), (path, raw[:40], answer)
    assert snapshot(target) == before


@pytest.mark.parametrize(
    "bad_name",
    ["", "x" * 101, "𝕏" * 101, "bad\x00name", "line\nbreak", "bell\x07", "\x1b[31mred"],
)
def test_names_over_the_limits_are_invalid_params(target: Target, bad_name: str) -> None:
    sid, values = target.values["sid"], target.values
    before = snapshot(target)
    for method, path, body in [
        ("POST", "/servers", {"name": bad_name}),
        ("PATCH", f"/servers/{sid}", {"name": bad_name}),
        ("POST", f"/servers/{sid}/channels", {"name": bad_name, "kind": "text"}),
        ("PATCH", f"/servers/{sid}/channels/{values['cid']}", {"topic": "t", "name": bad_name}),
        ("POST", f"/servers/{sid}/categories", {"name": bad_name}),
        ("PATCH", f"/servers/{sid}/categories/{values['cat']}", {"name": bad_name}),
        ("POST", f"/servers/{sid}/roles", {"name": bad_name}),
        ("PATCH", f"/servers/{sid}/roles/{values['rid']}", {"name": bad_name}),
    ]:
        status, answer = call(target.stack, target.owner, method, path, json.dumps(body).encode())
        assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), (method, path, answer)
    assert snapshot(target) == before
