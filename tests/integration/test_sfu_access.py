"""Who may enter a channel's SFU room (Janus VideoRoom): only those the bridge gives credentials,
and those are given only to the channel's members with `connect` (docs/CALLS.md, "SFU").

Every refusal is checked twice: at the provisioning API, and by talking to Janus directly as an
attacker would, with no token, a forged token, or a real token for another room. A member kicked
or banned from the server is removed from the SFU room by the bridge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import subprocess
import time
from typing import Any

import pytest

from guildsctl.janus import LocalJanus
from tests.harness.api import Api, create_server, eventually, join_as, join_server
from tests.harness.call_steps import add_channel
from tests.harness.sfu import ON_SFU, JanusRefused, StackWithSfu, janus_session
from tests.harness.stack import Stack, User

SfuStack = tuple[Stack, subprocess.Popen[bytes], LocalJanus]


@pytest.fixture
def sfu(stack: Stack) -> SfuStack:
    """The session's stack with an SFU (`ON_SFU`), shared with tests/browser/test_sfu_calls.py."""
    assert isinstance(stack, StackWithSfu) and stack.janus_proc is not None, "mark it ON_SFU"
    return stack, stack.janus_proc, stack.sfu


async def credentials(stack: Stack, user: User, sid: str, cid: str) -> tuple[int, Any]:
    return await Api(stack, user).call(
        "POST", f"/servers/{sid}/channels/{cid}/sfu", {"device_id": user.device_id}
    )


async def join_room(url: str, creds: dict[str, Any], **override: Any) -> dict[str, Any]:
    """Join the VideoRoom as a publisher straight at Janus; the answer event's plugin data."""
    async with janus_session(url, override.pop("token", creds["token"])) as session:
        await session.attach()
        answer = await session.request(
            {
                "janus": "message",
                "handle_id": session.handle_id,
                "body": {
                    "request": "join",
                    "ptype": "publisher",
                    "room": override.pop("room", creds["room"]),
                    "id": creds["participant_id"],
                    "token": override.pop("room_token", creds["room_token"]),
                },
            }
        )
        return dict(answer["plugindata"]["data"])


def forged_token(realm: str, descriptor: str) -> str:
    """A token of the right shape signed with a secret that is not Janus's."""
    data = f"{int(time.time()) + 600},{realm},{descriptor}"
    mac = hmac.new(secrets.token_bytes(32), data.encode(), hashlib.sha1).digest()
    return f"{data}:{base64.b64encode(mac).decode()}"


@ON_SFU
async def test_members_get_credentials_others_cannot_enter_even_straight_at_janus(
    sfu: SfuStack,
) -> None:
    stack, _, janus = sfu
    owner = await stack.register_user(f"owner_{secrets.token_hex(3)}")
    bob = await stack.register_user(f"bob_{secrets.token_hex(3)}")
    outsider = await stack.register_user(f"out_{secrets.token_hex(3)}")
    server = await create_server(stack, owner, "Stage")
    sid = server["server_id"]
    lounge = await add_channel(stack, owner, sid, "lounge", "voice")
    status, staff_channel = await Api(stack, owner).call(
        "POST",
        f"/servers/{sid}/channels",
        {"name": "staff", "kind": "video", "allowed_roles": ["moderator"]},
    )
    assert status == 201, staff_channel
    staff = staff_channel["channel_id"]
    await join_server(stack, sid, bob)
    await join_as(stack, bob, lounge)

    # Bob, a member with `connect`, gets credentials and joins the room with them.
    status, creds = await credentials(stack, bob, sid, lounge)
    assert status == 200, creds
    assert creds["focus"] == {"type": "org.guilds.janus", "url": janus.ws_url}
    assert creds["room"] != lounge and lounge not in creds["room_token"]
    assert creds["expires_at"] > time.time() * 1000
    joined = await join_room(janus.ws_url, creds)
    assert joined.get("videoroom") == "joined", joined

    # The room id is not derived from anything public: another stack's bridge would not know it.
    await join_as(stack, owner, staff)
    status, owner_creds = await credentials(stack, owner, sid, staff)
    assert status == 200, owner_creds
    assert owner_creds["room"] not in (staff, lounge, creds["room"])

    # Not a member of the server: no credentials, as for a channel that does not exist.
    status, answer = await credentials(stack, outsider, sid, lounge)
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND"), answer
    # A gated channel bob has no role for: no credentials either.
    status, answer = await credentials(stack, bob, sid, staff)
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND"), answer
    # A text channel has no call.
    status, answer = await credentials(stack, bob, sid, server["default_channel_id"])
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
    # Bad input: a clear error in the documented shape.
    status, answer = await Api(stack, bob).call(
        "POST", f"/servers/{sid}/channels/{lounge}/sfu", {"device_id": 7}
    )
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
    # Another device's id, even one of bob's own: a participant id speaks for that device.
    second = await stack.new_device(bob)
    assert second.device_id != bob.device_id
    status, answer = await Api(stack, second).call(
        "POST", f"/servers/{sid}/channels/{lounge}/sfu", {"device_id": bob.device_id}
    )
    assert (status, answer["errcode"]) == (403, "M_FORBIDDEN"), answer
    assert (await credentials(stack, second, sid, lounge))[0] == 200

    # Straight at Janus: no token opens no session at all.
    async with janus_session(janus.ws_url, None) as session:
        with pytest.raises(JanusRefused) as refused:
            await session.attach()
        assert refused.value.answer["error"]["code"] == 403, refused.value.answer
    # A token signed with another secret neither.
    with pytest.raises(JanusRefused):
        await join_room(janus.ws_url, creds, token=forged_token("janus", "janus.plugin.videoroom"))
    # A forged room token, with a real API token, does not open the room.
    forged_join = await join_room(
        janus.ws_url,
        creds,
        room_token=forged_token("janus.plugin.videoroom", f"room={creds['room']}"),
    )
    assert forged_join.get("error_code") == 433, forged_join
    # Bob's real token for the lounge does not open the staff room, even knowing its id.
    refused_join = await join_room(janus.ws_url, creds, room=owner_creds["room"])
    assert refused_join.get("error_code") == 433, refused_join  # unauthorized
    assert "token" in refused_join["error"], refused_join


async def join_publisher(session: Any, creds: dict[str, Any], pid: str | None = None) -> None:
    """Attach and join the credentials' VideoRoom room as a publisher, under the participant id
    the bridge signed (or `pid`): Janus must answer "joined"."""
    await session.attach()
    answer = await session.videoroom(
        {
            "request": "join",
            "ptype": "publisher",
            "room": creds["room"],
            "id": creds["participant_id"] if pid is None else pid,
            "token": creds["room_token"],
        }
    )
    assert answer.get("videoroom") == "joined", answer


async def participants(janus: LocalJanus, room: str) -> set[str]:
    """Who is in a VideoRoom room, as Janus's own `listparticipants` says (a private room's
    list needs its secret: read through the bridge's access object)."""
    from bridge.services.sfu import SfuAccess
    from guilds.config import JanusSettings

    access = SfuAccess(
        JanusSettings(janus.ws_url, janus.ws_url, janus.token_secret, janus.admin_key)
    )
    secret = access._room_secret(room)  # noqa: SLF001 - the test reads what only the bridge may
    (listing,) = await access._videoroom(  # noqa: SLF001
        [{"request": "listparticipants", "room": room, "secret": secret}]
    )
    return {str(p["id"]) for p in listing.get("participants", [])}


@ON_SFU
@pytest.mark.parametrize("action", ["kick", "ban"])
async def test_a_member_kicked_or_banned_is_removed_from_the_sfu_room(
    sfu: SfuStack, action: str
) -> None:
    stack, _, janus = sfu
    owner = await stack.register_user(f"owner_{secrets.token_hex(3)}")
    bob = await stack.register_user(f"bob_{secrets.token_hex(3)}")
    server = await create_server(stack, owner, "Stage")
    sid = server["server_id"]
    lounge = await add_channel(stack, owner, sid, "lounge", "voice")
    await join_server(stack, sid, bob)
    await join_as(stack, bob, lounge)
    await join_as(stack, owner, lounge)
    status, creds = await credentials(stack, bob, sid, lounge)
    assert status == 200, creds
    owner_creds = (await credentials(stack, owner, sid, lounge))[1]

    async with (
        janus_session(janus.ws_url, creds["token"]) as bob_session,
        janus_session(janus.ws_url, owner_creds["token"]) as owner_session,
    ):
        for session, c in ((bob_session, creds), (owner_session, owner_creds)):
            await join_publisher(session, c)
        assert await participants(janus, creds["room"]) == {
            creds["participant_id"],
            owner_creds["participant_id"],
        }

        status, answer = await Api(stack, owner).call(
            "POST", f"/servers/{sid}/members/{bob.user_id}/{action}", {"reason": "enough"}
        )
        assert status == 204, answer

        async def bob_gone() -> bool:
            return await participants(janus, creds["room"]) == {owner_creds["participant_id"]}

        await eventually(bob_gone, 30, 0.5, what=f"bob out of the SFU room after the {action}")

        # Janus told bob's session so itself.
        async def told() -> bool:
            event = await bob_session.next_event(10)
            data = event.get("plugindata", {}).get("data", {})
            return data.get("leaving") == "ok" and data.get("reason") == "kicked"

        await eventually(told, 30, 0, what="Janus telling bob he was kicked")

    # And no new credentials.
    status, answer = await credentials(stack, bob, sid, lounge)
    assert status in (403, 404), answer


@ON_SFU
async def test_a_participant_under_an_id_the_bridge_did_not_sign_is_kicked(sfu: SfuStack) -> None:
    # Bob has real credentials, but joins under an id of his own making (to escape a later
    # kick, or to pass for someone else): the bridge kicks that participant.
    stack, _, janus = sfu
    owner = await stack.register_user(f"owner_{secrets.token_hex(3)}")
    bob = await stack.register_user(f"bob_{secrets.token_hex(3)}")
    server = await create_server(stack, owner, "Stage")
    sid = server["server_id"]
    lounge = await add_channel(stack, owner, sid, "lounge", "voice")
    await join_server(stack, sid, bob)
    await join_as(stack, bob, lounge)
    await join_as(stack, owner, lounge)
    status, creds = await credentials(stack, bob, sid, lounge)
    assert status == 200, creds
    async with (
        janus_session(janus.ws_url, creds["token"]) as signed,
        janus_session(janus.ws_url, creds["token"]) as unsigned,
    ):
        # Under the id the bridge signed for him, beside it under one of his own.
        await join_publisher(signed, creds)
        # Janus lets him in. Whether he is still listed right after is a race: bob's own
        # credentials set off a sweep of the room that may run just after this join.
        await join_publisher(unsigned, creds, "not-signed-by-the-bridge")

        # The next credentials anyone asks for in this channel (here the owner's) find him,
        # and leave the participant the bridge signed where it is.
        status, _ = await credentials(stack, owner, sid, lounge)
        assert status == 200

        async def only_the_signed_one() -> bool:
            return await participants(janus, creds["room"]) == {creds["participant_id"]}

        await eventually(only_the_signed_one, 30, 0.5, what="the unsigned participant kicked")


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True, scope="session")
async def test_without_an_sfu_members_hear_so_and_others_hear_nothing(
    stack: Stack, alice: User, bob: User
) -> None:
    # A stack with no SFU: channel calls run peer to peer. A member who may enter the voice
    # channel is told there is no SFU; a stranger is told of no server, as on every route.
    server = await create_server(stack, alice, "No SFU")
    sid = server["server_id"]
    voice = await add_channel(stack, alice, sid, name="Lounge", kind="voice")
    status, answer = await credentials(stack, alice, sid, voice)
    assert (status, answer["errcode"]) == (404, "GUILDS_NO_SFU"), answer
    status, answer = await credentials(stack, bob, sid, voice)
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND"), answer
    assert answer["error"] == "No such server"
