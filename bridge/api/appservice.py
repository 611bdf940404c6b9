"""The application service's HTTP endpoints (`/_matrix/app/v1`), which Synapse calls.

Synapse authenticates with the registration's `hs_token`; transactions are stored durably by the
inbox before the 200 that tells Synapse not to send them again.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.engine.inbox import TransactionInbox
from bridge.engine.store import StoreUnavailable
from bridge.errors import (
    BadJson,
    Forbidden,
    NotFound,
    Unauthorized,
    Unavailable,
    error_middleware,
    forbid_caching,
    read_json,
)
from bridge.metrics import METRICS, BridgeMetrics
from guilds.ids import UserID

log = logging.getLogger(__name__)

# Synapse sends up to 100 events (and as many ephemeral ones) per transaction; events are at
# most 64 KiB each, so this bounds a full batch with room to spare.
APPSERVICE_MAX_BODY = 16 * 1024 * 1024
PREFIX = "/_matrix/app/v1"
# When the database is busy, Synapse is asked to come back soon rather than at its own pace.
STORE_RETRY_AFTER_MS = 1000

HS_TOKEN: web.AppKey[str] = web.AppKey("guilds_hs_token", str)
BOT_USER_ID: web.AppKey[str] = web.AppKey("guilds_bot_user_id", str)
INBOX: web.AppKey[TransactionInbox] = web.AppKey("guilds_inbox", TransactionInbox)


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@web.middleware
async def _hs_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Missing Authorization: Bearer <hs_token>")
    # Constant time, so response timing reveals nothing about the token.
    if not hmac.compare_digest(token.encode(), request.app[HS_TOKEN].encode()):
        log.warning("Refused an appservice request with a wrong hs_token from %s", request.remote)
        raise Forbidden("Invalid hs_token")
    return await handler(request)


async def put_transaction(request: web.Request) -> web.Response:
    txn_id = request.match_info["txnId"]
    body = await read_json(request)
    events = body.get("events", [])
    if not isinstance(events, list):
        raise BadJson("'events' must be a list")
    # Ephemeral events (typing, receipts, presence) need no durability; nothing uses them yet.
    try:
        await request.app[INBOX].record(txn_id, events)
    except StoreUnavailable as exc:
        # Not acknowledged: Synapse keeps the transaction and sends it again.
        log.warning("Transaction %s not stored, database unavailable: %s", txn_id, exc)
        raise Unavailable(
            "Database unavailable; retry the transaction", retry_after_ms=STORE_RETRY_AFTER_MS
        ) from exc
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.observe_transaction(events)
    return web.json_response({})


async def get_user(request: web.Request) -> web.Response:
    # The bot is the only user of the namespace that exists; Guilds makes no puppets.
    if request.match_info["userId"] == request.app[BOT_USER_ID]:
        return web.json_response({})
    raise NotFound("No such user")


async def get_room(request: web.Request) -> web.Response:
    # Guilds creates no rooms on demand from an alias.
    raise NotFound("No such room alias")


async def post_ping(request: web.Request) -> web.Response:
    # The body only echoes an optional transaction_id; read it to check it is JSON at all.
    if request.can_read_body:
        await read_json(request)
    log.info("The homeserver pinged the application service")
    return web.json_response({})


def create_appservice_app(
    *,
    hs_token: str,
    bot_user_id: UserID | str,
    inbox: TransactionInbox,
    client_max_size: int = APPSERVICE_MAX_BODY,
    metrics: BridgeMetrics | None = None,
) -> web.Application:
    """The app a runner serves on `appservice.listen`, at the registration's `url`."""
    # error_middleware is outermost so that auth failures and 404s get the Matrix shape too.
    app = web.Application(
        middlewares=[error_middleware, _hs_auth_middleware], client_max_size=client_max_size
    )
    forbid_caching(app)
    app[HS_TOKEN] = hs_token
    app[BOT_USER_ID] = bot_user_id
    app[INBOX] = inbox
    if metrics is not None:
        app[METRICS] = metrics
    app.router.add_put(PREFIX + "/transactions/{txnId}", put_transaction)
    app.router.add_get(PREFIX + "/users/{userId}", get_user)
    app.router.add_get(PREFIX + "/rooms/{alias}", get_room)
    app.router.add_post(PREFIX + "/ping", post_ping)
    return app
