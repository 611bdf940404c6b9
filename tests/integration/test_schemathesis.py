"""schemathesis against the live provisioning API, with the contract it serves (openapi.json).

A real stack (Synapse with the module, `guilds serve`) and a real user's token. Every operation
gets generated requests, valid and invalid; then schemathesis's state machine follows the
document's links (a created server's id into the calls on it, a created role, channel, category
and invite into theirs). Every answer must be no 5xx, and conform to the document: a documented
status, content type, headers and body schema. `make test` runs a few examples per operation;
GUILDS_SCHEMATHESIS_EXAMPLES raises that (`make soak`).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.harness.api import Api, create_server, join_server
from tests.harness.stack import Stack, User

EXAMPLES = int(os.environ.get("GUILDS_SCHEMATHESIS_EXAMPLES", "8"))
# schemathesis gives up on an answer after 10 s; an unban or a kick acts in every room of the
# server, and the runs create dozens of channels on a busy machine: slow is not wrong here.
REQUEST_TIMEOUT_S = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
]
# Storage does not change what the HTTP layer answers: one backend keeps `make test` short.
pytestmark = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


def load(stack: Stack, mode: str = "all") -> Any:
    """The document as the bridge serves it, not as the repository holds it."""
    config = SchemathesisConfig.from_dict({"generation": {"mode": mode}})
    return schemathesis.openapi.from_url(f"{stack.web_url}/_guilds/v1/openapi.json", config=config)


def base_url(stack: Stack) -> str:
    return f"{stack.web_url}/_guilds/v1"


def call_every_operation(
    stack: Stack,
    user: User,
    schema: Any,
    ids: dict[str, str] | None = None,
    skip: frozenset[tuple[str, str]] = frozenset(),
) -> Counter[tuple[str, int]]:
    """Valid and invalid requests to each operation (but `skip`); how each was answered.

    With `ids`, valid requests use those real ids as path parameters instead of made-up ones
    (invalid requests keep theirs: the path may be what was made invalid).
    """
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    headers = {"Authorization": f"Bearer {user.access_token}"}
    modes = schema.config.generation.modes
    strategies = [
        operation.as_strategy(generation_mode=mode)
        for operation in operations
        if (operation.method.upper(), operation.path) not in skip
        for mode in modes
    ]
    answered: Counter[tuple[str, int]] = Counter()

    @settings(
        max_examples=EXAMPLES * len(strategies),
        deadline=None,  # each example is a real HTTP round trip; the test's timeout bounds it
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=st.one_of(strategies))
    def one(case: Case) -> None:
        if ids and case.meta is not None and case.meta.generation.mode.is_positive:
            case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
        response = case.call_and_validate(
            base_url=base_url(stack), headers=headers, checks=CHECKS, timeout=REQUEST_TIMEOUT_S
        )
        answered[(f"{case.method} {case.path}", response.status_code)] += 1

    one()
    print(sorted(answered.items()))
    return answered


def test_every_operation_answers_as_documented(stack: Stack, alice: User) -> None:
    answered = call_every_operation(stack, alice, load(stack))
    # Not only refusals: valid requests were carried out (a server created, the lists read).
    assert answered[("POST /servers", 201)] >= 1, answered
    assert answered[("GET /servers", 200)] >= 1, answered
    assert len({route for route, _ in answered}) >= 25, answered


async def test_operations_on_a_real_server_answer_as_documented(
    stack: Stack, alice: User, bob: User
) -> None:
    """Valid requests with the ids of a real server, so that they reach past the 404s of made-up
    ids into each operation's own rules (the owner acting; `uid` is a plain member). Invalid
    ones are the test above's."""
    server = await create_server(stack, alice, "Generated")
    sid = server["server_id"]
    api = Api(stack, alice)
    made = {}
    for path, body, key in [
        ("channels", {"name": "spare", "kind": "voice"}, "channel_id"),
        ("categories", {"name": "Cat"}, "category_id"),
        ("roles", {"name": "Crew"}, "role_id"),
        ("invites", {}, "code"),
    ]:
        status, answer = await api.call("POST", f"/servers/{sid}/{path}", body)
        assert status == 201, answer
        made[path] = answer[key]
    await join_server(stack, sid, bob)
    ids = {
        "sid": sid,
        "cid": made["channels"],
        "cat": made["categories"],
        "rid": made["roles"],
        "uid": bob.user_id,
        "code": made["invites"],
    }
    skip = frozenset(
        {
            # Not deleting or giving away the server that every other request needs.
            ("DELETE", "/servers/{sid}"),
            ("POST", "/servers/{sid}/transfer"),
            # About no server: the test above has them.
            ("POST", "/servers"),
            ("GET", "/servers"),
            ("GET", "/templates"),
            ("GET", "/version"),
            ("GET", "/openapi.json"),
        }
    )
    # Hypothesis drives plain functions; the stack's own event loop is not needed meanwhile.
    answered = await asyncio.to_thread(
        call_every_operation, stack, alice, load(stack, "positive"), ids, skip
    )
    reached = {route for (route, status) in answered if status < 300 and "{sid}" in route}
    assert len(reached) >= 8, answered


def test_linked_calls_answer_as_documented(stack: Stack, alice: User) -> None:
    # Valid requests only: invalid ones are the test above's, and here they would mostly end a
    # scenario before its links lead anywhere.
    schema = load(stack, "positive")
    headers = {"Authorization": f"Bearer {alice.access_token}"}
    url = base_url(stack)

    answered: Counter[tuple[str, int]] = Counter()

    class Links(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": url, "headers": headers, "timeout": REQUEST_TIMEOUT_S}

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            answered[(f"{case.method} {case.path}", response.status_code)] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)

    Links.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
    print(sorted(answered.items()))
    # The links were followed: calls on a server created in the same scenario succeeded.
    followed = [
        route for (route, status), n in answered.items() if "{sid}" in route and status < 300
    ]
    assert followed, answered
