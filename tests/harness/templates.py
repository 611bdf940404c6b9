"""The server templates an admin declares in guilds.yaml, for the template tests (API and UI)."""

from __future__ import annotations

from typing import Any

TEMPLATES: dict[str, Any] = {
    "templates": {
        "community": {
            "description": "Rules, staff and voice rooms",
            "topic": "Be kind",
            "welcome_message": "Welcome! Read the rules first.",
            "categories": ["Info", "Voice"],
            "roles": [
                {
                    "id": "staff",
                    "name": "Staff",
                    "color": "#aa0000",
                    "power": 40,
                    "permissions": ["manage_messages", "kick_members"],
                },
                {"id": "vip", "name": "VIP"},
            ],
            "channels": [
                {"name": "rules", "kind": "text", "category": "Info", "topic": "The rules"},
                {"name": "staff-room", "kind": "text", "allowed_roles": ["staff"]},
                {"name": "Lounge", "kind": "voice", "category": "Voice"},
                {
                    "name": "VIP lounge",
                    "kind": "video",
                    "category": "Voice",
                    "allowed_roles": ["vip", "staff"],
                },
            ],
        }
    }
}
