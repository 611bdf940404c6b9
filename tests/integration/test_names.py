"""Names that look empty or read in another order are refused by every endpoint that takes one.

Observation (issue 16): names made only of zero-width characters, or holding bidi overrides,
were accepted for channels and roles. The rule is `guilds.model.name_problem` (API.md: Names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nio
import pytest
import pytest_asyncio

from guilds.vocabulary import ROLE_EVENT
from tests.harness.api import Api, create_server, eventually
from tests.harness.stack import Stack, User
from tests.harness.workers import ON_SQLITE

# What this module checks does not depend on the database (ON_SQLITE says why).
pytestmark = ON_SQLITE

INVISIBLE = {
    "zero-width spaces": "\u200b\u200b\u200b",
    "word joiner and BOM": "\u2060\ufeff",
    "Hangul fillers": "\u3164\u3164",
    "no-break and ideographic spaces": "\u00a0\u3000",
}
BIDI = {
    "right-to-left override": "admin\u202e",
    "override disguising an extension": "\u202egnp.exe",
    "isolates": "a\u2066b\u2069",
    "right-to-left mark": "\u200fname",
    "Arabic letter mark": "\u061cname",
}
CASES = [(label, name, "visible") for label, name in INVISIBLE.items()] + [
    (label, name, "bidirectional") for label, name in BIDI.items()
]


def refused(status: int, body: Any, why: str) -> bool:
    return status == 400 and body["errcode"] == "M_INVALID_PARAM" and why in body["error"]


@dataclass
class Named:
    """One server, with a channel, a category and a role to rename, that every case tries its
    name on: a refused call changes nothing (each case checks), so the cases share it."""

    owner: User
    sid: str
    channel_id: str
    category_id: str
    role_id: str


@pytest_asyncio.fixture(scope="module")
async def named(stack: Stack) -> Named:
    owner = await stack.register_user()
    api = Api(stack, owner)
    sid = (await create_server(stack, owner, "Names"))["server_id"]
    made = {
        "channel": await api.call(
            "POST", f"/servers/{sid}/channels", {"name": "talk", "kind": "text"}
        ),
        "category": await api.call("POST", f"/servers/{sid}/categories", {"name": "Lounge"}),
        "role": await api.call("POST", f"/servers/{sid}/roles", {"name": "helpers"}),
    }
    assert all(status == 201 for status, _ in made.values()), made
    return Named(
        owner,
        sid,
        made["channel"][1]["channel_id"],
        made["category"][1]["category_id"],
        made["role"][1]["role_id"],
    )


@pytest.mark.parametrize(("label", "name", "why"), CASES, ids=[c[0] for c in CASES])
async def test_each_name_is_refused_everywhere(
    stack: Stack, named: Named, label: str, name: str, why: str
) -> None:
    api = Api(stack, named.owner)
    status, body = await api.call("POST", "/servers", {"name": name})
    assert refused(status, body, why), (label, "create server", status, body)

    sid = named.sid
    status, server = await api.call("GET", f"/servers/{sid}")
    assert status == 200
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", f"/servers/{sid}", {"name": name}),
        ("POST", f"/servers/{sid}/channels", {"name": name, "kind": "text"}),
        ("PATCH", f"/servers/{sid}/channels/{named.channel_id}", {"name": name}),
        ("POST", f"/servers/{sid}/categories", {"name": name}),
        ("PATCH", f"/servers/{sid}/categories/{named.category_id}", {"name": name}),
        ("POST", f"/servers/{sid}/roles", {"name": name}),
        ("PATCH", f"/servers/{sid}/roles/{named.role_id}", {"name": name}),
    ]
    for method, path, body_sent in attempts:
        status, body = await api.call(method, path, body_sent)
        assert refused(status, body, why), (label, method, path, status, body)

    # Nothing was renamed or added meanwhile.
    status, after = await api.call("GET", f"/servers/{sid}")
    assert status == 200
    assert after["name"] == server["name"] == "Names"
    assert [c["name"] for c in after["channels"]] == [c["name"] for c in server["channels"]]
    assert after["categories"] == server["categories"]
    assert [r["name"] for r in after["roles"]] == [r["name"] for r in server["roles"]]


async def test_names_with_invisible_characters_beside_visible_ones_are_kept(
    stack: Stack, alice: User
) -> None:
    # A zero-width joiner inside an emoji sequence and spaces around words are ordinary.
    server = await create_server(stack, alice, "👩\u200d👩\u200d👧 family")
    assert server["name"] == "👩\u200d👩\u200d👧 family"
    status, channel = await Api(stack, alice).call(
        "POST", f"/servers/{server['server_id']}/channels", {"name": " قناة ", "kind": "text"}
    )
    assert status == 201 and channel["name"] == " قناة ", channel


async def test_the_homeserver_refuses_such_a_role_name_from_any_client(
    stack: Stack, named: Named
) -> None:
    # The module applies the same rule to a `<ns>.role` event, whatever client sends it.
    sid, role_id = named.sid, named.role_id
    async with stack.nio_client(named.owner) as client:
        found = await client.room_get_state_event(sid, ROLE_EVENT, role_id)
        assert isinstance(found, nio.RoomGetStateEventResponse), found
        role = found.content
        for label, name, why in CASES:
            response = await client.room_put_state(sid, ROLE_EVENT, {**role, "name": name}, role_id)
            assert isinstance(response, nio.RoomPutStateError), (label, response)
            assert response.status_code == "M_FORBIDDEN", (label, response)
            assert why in response.message, (label, response.message)
        # An ordinary rename by the same owner goes through, and reaches the bridge; then the
        # name is put back (and the bridge has it back) before another test reads the server.
        for name in ("Helpers", role["name"]):
            response = await client.room_put_state(sid, ROLE_EVENT, {**role, "name": name}, role_id)
            assert isinstance(response, nio.RoomPutStateResponse), response

            async def named_so(name: str = name) -> bool:
                status, server = await Api(stack, named.owner).call("GET", f"/servers/{sid}")
                return status == 200 and any(
                    r["role_id"] == role_id and r["name"] == name for r in server["roles"]
                )

            await eventually(named_so, what=f"the role to be called {name!r}")
