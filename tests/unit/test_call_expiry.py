"""When a call membership stops counting, as the bridge's sweep reads it
(bridge/services/calls.py)."""

from __future__ import annotations

from bridge.services.calls import DEFAULT_EXPIRES_MS, membership_device, membership_expiry_ms


def test_an_empty_membership_has_left() -> None:
    assert membership_expiry_ms({}, 1_000) is None


def test_expires_wins_over_expires_ts_as_matrix_js_sdk_43_reads_it() -> None:
    # 43 reads only `created_ts` + `expires`; a client that writes a stale `expires_ts` beside
    # a refreshed `expires` is still in the call for it, so it is for the sweeper too.
    content = {"expires_ts": 5_000, "created_ts": 1_000, "expires": 60_000}
    assert membership_expiry_ms(content, 9_000) == 61_000


def test_expires_ts_alone_is_read() -> None:
    assert membership_expiry_ms({"expires_ts": 5_000, "created_ts": 1_000}, 9_000) == 5_000


def test_expires_counts_from_created_ts_else_from_the_event() -> None:
    assert membership_expiry_ms({"created_ts": 1_000, "expires": 60_000}, 9_000) == 61_000
    assert membership_expiry_ms({"expires": 60_000}, 9_000) == 69_000


def test_without_expires_matrixrtc_default_of_four_hours() -> None:
    assert membership_expiry_ms({"application": "m.call"}, 1_000) == 1_000 + DEFAULT_EXPIRES_MS


def test_values_that_are_not_numbers_are_ignored() -> None:
    content = {"expires_ts": "soon", "created_ts": True, "expires": "60000"}
    assert membership_expiry_ms(content, 1_000) == 1_000 + DEFAULT_EXPIRES_MS


def test_a_membership_names_its_device_and_when_it_joined() -> None:
    content = {"device_id": "DEV", "created_ts": 1_000, "expires": 60_000}
    assert membership_device(content, "@a:x", 9_000) == ("@a:x", "DEV", 1_000)
    # Without created_ts, the event's own time (a refresh then looks like a new join).
    assert membership_device({"device_id": "DEV"}, "@a:x", 9_000) == ("@a:x", "DEV", 9_000)
    assert membership_device({}, "@a:x", 9_000) is None
    assert membership_device({"application": "m.call"}, "@a:x", 9_000) is None
