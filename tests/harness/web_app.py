"""The web UI's app under aiohttp's test client, configured as example.org's, for unit tests."""

from __future__ import annotations

from pathlib import Path

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guilds.config import GuildsConfig, parse_config
from guildsctl.configgen import fresh_token

HS_PUBLIC = "https://matrix.example.org"


def make_config(tmp_path: Path, *, brand: str = "Guilds") -> GuildsConfig:
    registration = {
        "id": "guilds",
        "url": "http://127.0.0.1:8009",
        # The generator guilds uses itself: a random urlsafe token can spell a placeholder
        # marker ("xxx", "token") and be refused.
        "as_token": fresh_token(),
        "hs_token": fresh_token(),
        "sender_localpart": "guilds",
        "namespaces": {"users": [{"regex": "@guilds:example\\.org", "exclusive": True}]},
        "rate_limited": False,
    }
    (tmp_path / "registration.yaml").write_text(yaml.safe_dump(registration), encoding="utf-8")
    data = {
        "homeserver": {
            "server_name": "example.org",
            "url": "http://127.0.0.1:8008",
            "public_url": HS_PUBLIC,
        },
        "appservice": {"registration": "registration.yaml"},
        "database": "sqlite:///guilds.db",
        "web": {"brand_name": brand, "public_url": "https://chat.example.org"},
    }
    return parse_config(data, tmp_path)


async def start(app: web.Application) -> TestClient:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client
