"""Fixtures shared by unit tests: the operation journal over the in-memory homeserver.

Hypothesis's property tests run with no deadline and without its "input generation is slow"
health check: both time the machine, and `make test` shares 2 cores with a homeserver, Chromium
and other sessions' suites (test_powerlevels failed that check at a load of 50, with nothing
wrong). The number of examples, which is what the tests' strength rests on, is unchanged.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.harness.fake_matrix import db, hs, journal  # noqa: F401 - fixtures

settings.register_profile("guilds", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("guilds")
