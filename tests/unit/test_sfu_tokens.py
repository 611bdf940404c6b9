"""The names and tokens the bridge derives for the SFU (bridge/services/sfu.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from bridge.services.sfu import SfuAccess, sign_token
from guilds.config import JanusSettings


def access(secret: str | None = None) -> SfuAccess:
    key = secret or secrets.token_hex(32)
    return SfuAccess(
        JanusSettings("ws://127.0.0.1:1", "ws://127.0.0.1:1", key, secrets.token_hex(32))
    )


def test_a_token_is_what_janus_checks() -> None:
    # Janus (src/auth.c): HMAC-SHA1 of everything before the colon, base64, expiry first.
    token = sign_token("k" * 64, "janus.plugin.videoroom", ("room=abc",), 180, 1_000_000)
    data, mac = token.split(":")
    assert data == "1000180,janus.plugin.videoroom,room=abc"
    expected = hmac.new(b"k" * 64, data.encode(), hashlib.sha1).digest()
    assert base64.b64decode(mac) == expected


def test_room_ids_are_stable_per_secret_and_not_the_matrix_id() -> None:
    secret = secrets.token_hex(32)
    one, same, other = access(secret), access(secret), access()
    room = "!quietroom:localhost"
    assert one.room_of(room) == same.room_of(room) != other.room_of(room)
    # 32 hex digits: nothing of the Matrix id (whose letters are not all hex) can be in it.
    derived = one.room_of(room)
    assert len(derived) == 32 and set(derived) <= set("0123456789abcdef"), derived
    assert "quiet" not in derived


def test_participant_ids_name_who_they_were_signed_for_and_cannot_be_forged() -> None:
    a = access()
    room = a.room_of("!r:localhost")
    pid = a.participant_id(room, "@bob:localhost", "DEV")
    who = a.read_participant(room, pid)
    assert who is not None and (who.user_id, who.device_id) == ("@bob:localhost", "DEV")
    # Another room, another secret, or a changed user: not signed.
    assert a.read_participant(a.room_of("!other:localhost"), pid) is None
    assert access().read_participant(room, pid) is None
    user, device, nonce, mac = pid.split(".")
    forged_user = base64.urlsafe_b64encode(b"@eve:localhost").rstrip(b"=").decode()
    assert a.read_participant(room, f"{forged_user}.{device}.{nonce}.{mac}") is None
    assert a.read_participant(room, "guessed-id") is None
