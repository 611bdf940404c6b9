"""HTTP handler of `POST /servers/{sid}/channels/{cid}/sfu` (docs/API.md): credentials for a
voice or video channel's SFU room, issued after checking the caller (bridge/services/sfu.py).

Not queued: it changes no server, and a caller joining a call should not wait behind a server's
other changes.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api.app import PROVISIONING_MAX_BODY, require_session
from bridge.errors import read_json
from bridge.services.sfu import SfuCredentials

SFU: web.AppKey[SfuCredentials] = web.AppKey("guilds_sfu", SfuCredentials)


async def sfu_credentials(request: web.Request) -> web.Response:
    user, device = await require_session(request)
    body = await read_json(request, max_bytes=PROVISIONING_MAX_BODY)
    credentials = request.config_dict[SFU]
    answer = await credentials.issue(
        request.match_info["sid"], request.match_info["cid"], user, body, session_device=device
    )
    return web.json_response(answer)


def add_routes(app: web.Application, credentials: SfuCredentials) -> None:
    app[SFU] = credentials
    app.router.add_post("/servers/{sid}/channels/{cid}/sfu", sfu_credentials)
