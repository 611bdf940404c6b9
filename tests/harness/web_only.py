"""The web UI served on its own, for browser tests that play the homeserver with page.route."""

from __future__ import annotations

from pathlib import Path

import yaml

from guilds.config import GuildsConfig, parse_config
from guildsctl.configgen import fresh_token

# A name that never resolves: every request to it is answered (or refused) by the test.
FAKE_HS = "http://hs.guilds.test"


def make_config(root: Path, homeserver_public_url: str = FAKE_HS) -> GuildsConfig:
    registration = {
        "id": "guilds",
        "url": "http://127.0.0.1:8009",
        # The generator guilds uses itself: a random urlsafe token can spell a placeholder
        # marker ("xxx", "token") and be refused.
        "as_token": fresh_token(),
        "hs_token": fresh_token(),
        "sender_localpart": "guilds",
        "namespaces": {"users": [{"regex": "@guilds:guilds\\.test", "exclusive": True}]},
    }
    (root / "registration.yaml").write_text(yaml.safe_dump(registration), encoding="utf-8")
    data = {
        "homeserver": {
            "server_name": "guilds.test",
            "url": homeserver_public_url,
            "public_url": homeserver_public_url,
        },
        "appservice": {"registration": "registration.yaml"},
        "database": "sqlite:///guilds.db",
        "web": {"brand_name": "Guilds"},
    }
    return parse_config(data, root)
