"""The pure parts of invite links: a code's status at a given time, and create-request limits."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.errors import InvalidParam
from bridge.services.invites import CODE_RE, Invite, InviteStatus, invite_limits
from guilds.ids import RoomID, UserID


def invite(**changes: Any) -> Invite:
    fields: dict[str, Any] = {
        "code": "abcdefghijkl",
        "server_id": RoomID("!space"),
        "creator": UserID("@alice:x"),
        "created_at": 1_000,
        "expires_at": None,
        "max_uses": None,
        "uses": 0,
        "revoked_at": None,
    }
    return Invite(**{**fields, **changes})


def test_an_unlimited_code_stays_valid() -> None:
    assert invite(uses=10**6).status(10**15) == InviteStatus.VALID


def test_expiry_is_exclusive_of_the_expiry_instant() -> None:
    code = invite(expires_at=61_000)
    assert code.status(60_999) == InviteStatus.VALID
    assert code.status(61_000) == InviteStatus.EXPIRED


def test_exhausted_at_max_uses() -> None:
    assert invite(max_uses=2, uses=1).status(0) == InviteStatus.VALID
    assert invite(max_uses=2, uses=2).status(0) == InviteStatus.EXHAUSTED


def test_refusals_come_in_order_revoked_expired_exhausted() -> None:
    everything = invite(revoked_at=5, expires_at=10, max_uses=1, uses=1)
    assert everything.status(20) == InviteStatus.REVOKED
    assert invite(expires_at=10, max_uses=1, uses=1).status(20) == InviteStatus.EXPIRED


@pytest.mark.parametrize(
    ("body", "limits"),
    [
        ({}, (None, None)),
        ({"max_uses": None, "expires_in_s": None}, (None, None)),
        ({"max_uses": 1, "expires_in_s": 60}, (1, 60)),
        ({"max_uses": 1_000_000, "expires_in_s": 365 * 24 * 3600}, (1_000_000, 31_536_000)),
    ],
)
def test_limits_accepted(body: dict[str, Any], limits: tuple[int | None, int | None]) -> None:
    assert invite_limits(body) == limits


@pytest.mark.parametrize(
    "body",
    [
        {"max_uses": 0},
        {"max_uses": 1_000_001},
        {"max_uses": True},
        {"max_uses": 2.0},
        {"max_uses": "2"},
        {"expires_in_s": 59},
        {"expires_in_s": 31_536_001},
        {"expires_in_s": True},
        {"expires_in_s": [60]},
    ],
)
def test_limits_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidParam):
        invite_limits(body)


def test_codes_look_like_what_we_hand_out() -> None:
    assert CODE_RE.fullmatch("Ab3_-xYz09QW")
    for code in (
        "short",
        "has space in it",
        "../../etc/passwd",
        "x" * 65,
        "ünicode-code",
        "abcdefghijkl\n",
    ):
        assert not CODE_RE.fullmatch(code)
