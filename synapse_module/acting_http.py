"""The module's one HTTP endpoint: the bridge tells it a local user's membership changed.

`POST /_synapse/client/guilds/v1/membership` with `{"user_id": "@…", "room_id": "!…"}`,
authenticated by Synapse itself with the appservice token: only the bridge's bot may call it
(anyone else gets 403, a missing or unknown token Synapse's own 401). The answer is
`{"action": <what was done> | null}`. The module decides from the room's current state alone
(synapse_module/acting.py), so a caller can make it do nothing that the state does not call for.
Every Synapse process loading the module serves it.
"""

from __future__ import annotations

import re
from typing import Final

from synapse.module_api import (
    DirectServeJsonResource,
    JsonDict,
    ModuleApi,
    SynapseRequest,
    parse_json_object_from_request,
)
from synapse.module_api.errors import Codes, SynapseError

from synapse_module.acting import Acting

# Enough to refuse what is not an id before it reaches Synapse's parsers; Synapse's own checks
# apply to the rest.
_USER_ID: Final = re.compile(r"@[^:\s]+:\S+")
_ROOM_ID: Final = re.compile(r"![^\s]+")
_MAX_ID_LENGTH: Final = 255


class MembershipResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, acting: Acting, bot_user_id: str) -> None:
        super().__init__()
        self._api = api
        self._acting = acting
        self._bot = bot_user_id

    async def _async_render_POST(self, request: SynapseRequest) -> tuple[int, JsonDict]:
        requester = await self._api.get_user_by_req(request)
        if requester.app_service_id is None or requester.user.to_string() != self._bot:
            raise SynapseError(
                403, "Only the Guilds bridge may ask the Guilds module to act", Codes.FORBIDDEN
            )
        body = parse_json_object_from_request(request)
        user_id = _id(body, "user_id", _USER_ID)
        room_id = _id(body, "room_id", _ROOM_ID)
        if user_id == self._bot or not self._api.is_mine(user_id):
            raise SynapseError(
                400,
                "user_id must be a user of this homeserver other than the bot",
                Codes.INVALID_PARAM,
            )
        return 200, {"action": await self._acting.on_membership(user_id, room_id)}


def _id(body: JsonDict, key: str, pattern: re.Pattern[str]) -> str:
    value = body.get(key)
    if value is None:
        raise SynapseError(400, f"{key} is required", Codes.MISSING_PARAM)
    if not isinstance(value, str) or len(value) > _MAX_ID_LENGTH or not pattern.fullmatch(value):
        raise SynapseError(400, f"{key} must be a Matrix id", Codes.INVALID_PARAM)
    return value
