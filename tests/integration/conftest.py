"""Fixtures for integration tests that reach past the API: the bridge's database, the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge.engine.matrix import MatrixClient
from bridge.engine.store import Database
from tests.harness.stack import Stack


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    """The running bridge's own database (the journal, the inbox, invites)."""
    database = await Database.open(stack.config.database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def bot(stack: Stack) -> AsyncIterator[MatrixClient]:
    """The Client-Server API as the bot, with the appservice's token."""
    client = MatrixClient(stack.hs_url, stack.config.appservice.registration.as_token)
    try:
        yield client
    finally:
        await client.close()
