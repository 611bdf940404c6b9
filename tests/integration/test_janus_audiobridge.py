"""The AudioBridge, loaded only when asked (bench/voice_sfu.py compares it with the VideoRoom for
voice), is locked like the VideoRoom: the core's signed tokens name the plugin (the bridge's
VideoRoom tokens do not open it), rooms are made only with the admin key, and a private room
admits only the tokens it lists. Without `audiobridge=True` the plugin is not there at all.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.services.sfu import sign_token
from guildsctl.janus import LocalJanus
from guildsctl.synapse import stop
from tests.harness.sfu import JanusRefused, janus_session, start_test_janus

AUDIOBRIDGE = "janus.plugin.audiobridge"
VIDEOROOM = "janus.plugin.videoroom"


def token(janus: LocalJanus, plugin: str) -> str:
    return sign_token(janus.token_secret, "janus", (plugin,), 600, time.time())


async def audiobridge(janus: LocalJanus, body: dict[str, Any], tok: str) -> dict[str, Any]:
    async with janus_session(janus.ws_url, tok) as session:
        await session.attach(AUDIOBRIDGE)
        return await session.videoroom(body)


async def test_the_audiobridge_admits_only_signed_tokens_the_admin_key_and_listed_tokens(
    tmp_path: Path,
) -> None:
    (tmp_path / "logs").mkdir()
    proc, janus = start_test_janus(tmp_path, audiobridge=True)
    try:
        # No token, a token for the VideoRoom (what the bridge hands out), or one signed with
        # another secret: no session on the AudioBridge.
        other = LocalJanus(janus.ws_port)
        for tok in (None, token(janus, VIDEOROOM), token(other, AUDIOBRIDGE)):
            with pytest.raises(JanusRefused):
                async with janus_session(janus.ws_url, tok) as session:
                    await session.attach(AUDIOBRIDGE)

        room, allowed = f"voice-{secrets.token_hex(4)}", secrets.token_hex(8)
        create = {"request": "create", "room": room, "is_private": True, "allowed": [allowed]}
        own = token(janus, AUDIOBRIDGE)
        # Without the admin key (or with a wrong one), no room.
        for key in ({}, {"admin_key": secrets.token_hex(8)}):
            refused = await audiobridge(janus, {**create, **key}, own)
            assert refused.get("audiobridge") == "event" and refused.get("error_code"), refused
        created = await audiobridge(janus, {**create, "admin_key": janus.admin_key}, own)
        assert created.get("audiobridge") == "created", created
        # A private room is not listed, and joins only with a token it lists.
        listed = await audiobridge(janus, {"request": "list"}, own)
        assert room not in [r.get("room") for r in listed.get("list", [])], listed
        for body in ({}, {"token": secrets.token_hex(8)}):
            answer = await audiobridge(janus, {"request": "join", "room": room, **body}, own)
            assert answer.get("error_code"), answer
        joined = await audiobridge(janus, {"request": "join", "room": room, "token": allowed}, own)
        assert joined.get("audiobridge") == "joined", joined
    finally:
        stop(proc)


async def test_without_asking_the_audiobridge_is_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    proc, janus = start_test_janus(tmp_path)
    try:
        with pytest.raises(JanusRefused, match="plugin"):
            async with janus_session(janus.ws_url, token(janus, AUDIOBRIDGE)) as session:
                await session.attach(AUDIOBRIDGE)
    finally:
        stop(proc)
