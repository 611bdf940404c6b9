"""Fixtures shared by unit tests: the operation journal over the in-memory homeserver."""

from __future__ import annotations

from tests.harness.fake_matrix import db, hs, journal  # noqa: F401 - fixtures
