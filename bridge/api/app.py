"""The provisioning API's sub-app (`/_guilds/v1`) and how it knows who is calling.

Callers authenticate with their own Matrix access token, which the homeserver resolves
(`/account/whoami`). Answers are cached briefly under a SHA-256 of the token, so the token itself
is never kept as a key, and a burst of requests costs one round trip to the homeserver.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict

from aiohttp import web
from aiohttp.typedefs import Handler

import guilds
from bridge.api.appservice import bearer_token
from bridge.api.openapi import add_routes as add_openapi_routes
from bridge.engine.journal import OperationFailed
from bridge.engine.matrix import HomeserverUnavailable, MatrixClient, MatrixRequestError
from bridge.engine.store import StoreUnavailable
from bridge.errors import (
    Forbidden,
    HomeserverRefused,
    MatrixError,
    MissingToken,
    Unavailable,
    UnknownToken,
    error_middleware,
    forbid_caching,
)
from bridge.metrics import METRICS, BridgeMetrics, api_metrics
from guilds.config import DEFAULT_TOKEN_CHECK_TIMEOUT_S
from guilds.ids import UserID
from guilds.permissions import PermissionDenied

log = logging.getLogger(__name__)

# API.md: bodies over 64 KiB are refused with M_TOO_LARGE. Only effective where this app is
# served on its own; mounted in another app, that app's client_max_size applies, so endpoints
# also pass this to `read_json(max_bytes=…)`.
PROVISIONING_MAX_BODY = 64 * 1024
# Long enough to absorb a page's burst of calls, short enough that a logged-out token stops
# working soon after.
TOKEN_CACHE_TTL_S = 30.0
TOKEN_CACHE_MAX_ENTRIES = 10_000
HOMESERVER_RETRY_AFTER_MS = 2000
# guilds.yaml's `homeserver.token_check_timeout_s` (guilds/config.py), by default.
WHOAMI_TIMEOUT_S = float(DEFAULT_TOKEN_CHECK_TIMEOUT_S)


class TokenResolver:
    """Resolves callers' access tokens to user ids through the homeserver, with a short cache."""

    def __init__(
        self,
        matrix: MatrixClient,
        *,
        ttl_s: float = TOKEN_CACHE_TTL_S,
        timeout_s: float = WHOAMI_TIMEOUT_S,
    ) -> None:
        self.matrix = matrix
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        # token hash -> (user, the token's device or None, expiry)
        self._cache: OrderedDict[bytes, tuple[UserID, str | None, float]] = OrderedDict()

    async def resolve(self, token: str) -> UserID:
        """Return the token's user id; raise UnknownToken, Forbidden or Unavailable."""
        return (await self.session(token))[0]

    async def session(self, token: str) -> tuple[UserID, str | None]:
        """The token's user id and device id (None when the homeserver names no device, as
        for an appservice's token); raise UnknownToken, Forbidden or Unavailable."""
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[2] > now:
            return cached[0], cached[1]
        try:
            # Bounded well below clients' own timeouts: a stuck homeserver is a 503, not a hang.
            data = await self.matrix.whoami(token=token, timeout_s=self.timeout_s)
        except HomeserverUnavailable as exc:
            log.warning("Cannot check an access token: %s", exc.reason)
            raise Unavailable(
                "The homeserver is unavailable", retry_after_ms=HOMESERVER_RETRY_AFTER_MS
            ) from exc
        except MatrixRequestError as exc:
            if exc.status == 401:
                raise UnknownToken() from exc
            if exc.status == 403:
                raise Forbidden(exc.message) from exc
            retry_after_ms = exc.retry_after_ms or HOMESERVER_RETRY_AFTER_MS
            raise Unavailable(
                "The homeserver could not check the access token", retry_after_ms=retry_after_ms
            ) from exc
        user = data.get("user_id")
        if not isinstance(user, str):
            raise Unavailable(
                "The homeserver gave no user id for the token",
                retry_after_ms=HOMESERVER_RETRY_AFTER_MS,
            )
        device = data.get("device_id")
        device = device if isinstance(device, str) else None
        # Only successes are cached: caching refusals would let guessed tokens fill the cache.
        self._cache[key] = (UserID(user), device, now + self.ttl_s)
        self._cache.move_to_end(key)
        while len(self._cache) > TOKEN_CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)
        return UserID(user), device

    def forget(self, token: str) -> None:
        """Drop a token from the cache (after a logout seen by the bridge)."""
        self._cache.pop(hashlib.sha256(token.encode()).digest(), None)


TOKEN_RESOLVER: web.AppKey[TokenResolver] = web.AppKey("guilds_token_resolver", TokenResolver)


async def require_user(request: web.Request) -> UserID:
    """The caller's user id from their `Authorization: Bearer` token, or a Matrix error."""
    return (await require_session(request))[0]


async def require_session(request: web.Request) -> tuple[UserID, str | None]:
    """The caller's user id and device id (None if the homeserver names none) from their
    `Authorization: Bearer` token, or a Matrix error."""
    token = bearer_token(request)
    if token is None:
        raise MissingToken("Missing access token: send Authorization: Bearer <token>")
    # config_dict: this app may be mounted inside another, and handlers see either.
    return await request.config_dict[TOKEN_RESOLVER].session(token)


def explain_failure(exc: Exception) -> MatrixError | None:
    """The API's answer for a failure of the layers below it, or None for an internal error.

    503 when the homeserver or the database is away or busy (with a retry hint), 403 for a
    permission rule, 502 when the homeserver refused a change (with the cause) — never a bare
    500. Used by `domain_errors` and by the server queue, which stores the answer of a request
    that outlived its caller (bridge/engine/queue.py).
    """
    if isinstance(exc, MatrixError):
        return exc
    if isinstance(exc, HomeserverUnavailable):
        return Unavailable(
            "The homeserver is unavailable", retry_after_ms=HOMESERVER_RETRY_AFTER_MS
        )
    if isinstance(exc, StoreUnavailable):
        return Unavailable("The database is unavailable", retry_after_ms=HOMESERVER_RETRY_AFTER_MS)
    if isinstance(exc, PermissionDenied):
        return Forbidden(str(exc))
    if isinstance(exc, MatrixRequestError):
        # The homeserver throttling the bot is a wait, not a failure of the caller's request.
        if exc.status == 429:
            retry = exc.retry_after_ms or HOMESERVER_RETRY_AFTER_MS
            return Unavailable("The homeserver is busy", retry_after_ms=retry)
        return HomeserverRefused(f"The homeserver refused the change ({exc.errcode})")
    if isinstance(exc, OperationFailed):
        # The step and the homeserver's own errcode and message, as the journal recorded them.
        return HomeserverRefused(f"The homeserver refused part of the change: {exc.error}")
    return None


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give failures of the layers below the API their answer (see `explain_failure`)."""
    try:
        return await handler(request)
    except MatrixError:
        raise
    except Exception as exc:
        explained = explain_failure(exc)
        if explained is None:
            raise
        if isinstance(exc, HomeserverUnavailable):
            log.warning(
                "Homeserver unavailable during %s %s: %s", request.method, request.path, exc.reason
            )
        elif isinstance(exc, StoreUnavailable):
            log.warning("Database unavailable during %s %s", request.method, request.path)
        elif isinstance(exc, MatrixRequestError) and exc.status != 429:
            log.warning(
                "The homeserver refused %s %s: %s %s",
                request.method,
                request.path,
                exc.status,
                exc.errcode,
            )
        elif isinstance(exc, OperationFailed):
            log.warning("Operation %s failed during %s %s", exc.op_id, request.method, request.path)
        raise explained from exc


async def get_version(request: web.Request) -> web.Response:
    return web.json_response({"version": guilds.__version__})


READY: web.AppKey[asyncio.Event] = web.AppKey("guilds_ready", asyncio.Event)
STARTING_RETRY_AFTER_MS = 1000


@web.middleware
async def starting_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Until the bridge has loaded its servers, every answer would be partial: say so instead.

    `/version` included, so whatever waits for it (`guilds run`, the tests, a container health
    check) waits for a bridge that is ready to answer.
    """
    ready = request.config_dict.get(READY)
    if ready is not None and not ready.is_set():
        raise Unavailable("Guilds is starting", retry_after_ms=STARTING_RETRY_AFTER_MS)
    return await handler(request)


def create_provisioning_app(
    matrix: MatrixClient,
    ready: asyncio.Event | None = None,
    metrics: BridgeMetrics | None = None,
    *,
    token_check_timeout_s: float = WHOAMI_TIMEOUT_S,
) -> web.Application:
    """The sub-app to mount at `/_guilds/v1` (the web UI's app does, beside its pages).

    With `ready`, requests are answered 503 until it is set (the bridge sets it once connected).
    With `metrics`, every request is counted and timed by route (outermost, so the status
    counted is the one the caller got). A caller's token the homeserver has not checked within
    `token_check_timeout_s` is a 503.
    """
    app = web.Application(
        middlewares=[api_metrics, error_middleware, starting_guard, domain_errors],
        client_max_size=PROVISIONING_MAX_BODY,
    )
    forbid_caching(app)
    if ready is not None:
        app[READY] = ready
    if metrics is not None:
        app[METRICS] = metrics
    app[TOKEN_RESOLVER] = TokenResolver(matrix, timeout_s=token_check_timeout_s)
    app.router.add_get("/version", get_version)
    add_openapi_routes(app)
    return app
