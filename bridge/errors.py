"""Matrix-shaped errors and the aiohttp middleware that turns any exception into `{errcode, error}`.

Errors are exceptions with the HTTP status and errcode on the class (as in mautrix-python), so a
handler raises `NotFound("No such server")` and never builds an error response itself. The
appservice app, the provisioning API and the web UI's app all install `error_middleware`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)


class MatrixError(Exception):
    """An error answered to the client as `{"errcode": ..., "error": ..., **extra}`."""

    status: ClassVar[int] = 500
    errcode: ClassVar[str] = "M_UNKNOWN"
    default_message: ClassVar[str] = "Internal server error"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        # Extra fields come first so they can never overwrite errcode or error.
        return {**self.extra, "errcode": self.errcode, "error": self.message}

    def headers(self) -> dict[str, str]:
        return {}

    def to_response(self) -> web.Response:
        return web.json_response(self.to_json(), status=self.status, headers=self.headers())


class MissingToken(MatrixError):
    status = 401
    errcode = "M_MISSING_TOKEN"
    default_message = "Missing access token"


class UnknownToken(MatrixError):
    status = 401
    errcode = "M_UNKNOWN_TOKEN"
    default_message = "Unknown or expired access token"


class Unauthorized(MatrixError):
    status = 401
    errcode = "M_UNAUTHORIZED"
    default_message = "Missing or malformed authorization"


class Forbidden(MatrixError):
    status = 403
    errcode = "M_FORBIDDEN"
    default_message = "Forbidden"


class NotFound(MatrixError):
    status = 404
    errcode = "M_NOT_FOUND"
    default_message = "Not found"


class NoSfu(MatrixError):
    """No SFU is configured: channel calls run peer to peer (docs/CALLS.md)."""

    status = 404
    errcode = "GUILDS_NO_SFU"
    default_message = "No SFU is configured: channel calls run peer to peer"


class Unrecognized(MatrixError):
    status = 404
    errcode = "M_UNRECOGNIZED"
    default_message = "Unrecognized request"


class MethodNotAllowed(Unrecognized):
    status = 405
    default_message = "Method not allowed"


class BadJson(MatrixError):
    status = 400
    errcode = "M_BAD_JSON"
    default_message = "Malformed JSON body"


class NotJson(MatrixError):
    status = 400
    errcode = "M_NOT_JSON"
    default_message = "Body is not valid JSON"


class InvalidParam(MatrixError):
    status = 400
    errcode = "M_INVALID_PARAM"
    default_message = "Invalid parameter"


class MissingParam(MatrixError):
    status = 400
    errcode = "M_MISSING_PARAM"
    default_message = "Missing parameter"


class Conflict(MatrixError):
    status = 409
    errcode = "M_CONFLICT"
    default_message = "Conflict"


class InviteExpired(MatrixError):
    status = 410
    errcode = "GUILDS_INVITE_EXPIRED"
    default_message = "This invite has expired"


class InviteExhausted(MatrixError):
    status = 410
    errcode = "GUILDS_INVITE_EXHAUSTED"
    default_message = "This invite has reached its maximum number of uses"


class InviteRevoked(MatrixError):
    status = 410
    errcode = "GUILDS_INVITE_REVOKED"
    default_message = "This invite has been revoked"


class TooLarge(MatrixError):
    status = 413
    errcode = "M_TOO_LARGE"
    default_message = "Request body too large"


class _RetryLater(MatrixError):
    """An error the client should retry after `retry_after_ms` (also sent as Retry-After)."""

    def __init__(self, message: str | None = None, *, retry_after_ms: int, **extra: Any) -> None:
        super().__init__(message, retry_after_ms=retry_after_ms, **extra)
        self.retry_after_ms = retry_after_ms

    def headers(self) -> dict[str, str]:
        # Retry-After is in whole seconds; round up so a client never retries too early.
        return {"Retry-After": str(max(1, -(-self.retry_after_ms // 1000)))}


class LimitExceeded(_RetryLater):
    status = 429
    errcode = "M_LIMIT_EXCEEDED"
    default_message = "Too many requests"


class Unavailable(_RetryLater):
    status = 503
    errcode = "M_UNAVAILABLE"
    default_message = "Service temporarily unavailable"


class HomeserverRefused(MatrixError):
    """The homeserver refused a change the bridge made on the caller's behalf."""

    status = 502
    errcode = "M_UNKNOWN"
    default_message = "The homeserver refused the change"


# aiohttp raises these itself (router, body reader); give them the Matrix shape too.
_HTTP_EXCEPTIONS: dict[type[web.HTTPException], type[MatrixError]] = {
    web.HTTPNotFound: Unrecognized,
    web.HTTPMethodNotAllowed: MethodNotAllowed,
    web.HTTPRequestEntityTooLarge: TooLarge,
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure of `handler` in the Matrix `{errcode, error}` JSON shape."""
    try:
        return await handler(request)
    except MatrixError as exc:
        return exc.to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            # Redirects and the like are answers, not errors.
            raise
        mapped = _HTTP_EXCEPTIONS.get(type(exc))
        if mapped is not None:
            return mapped().to_response()
        return web.json_response({"errcode": "M_UNKNOWN", "error": exc.reason}, status=exc.status)
    except Exception:
        # The traceback goes to the log only: it may name internals or echo request data.
        log.exception("Unhandled error serving %s %s", request.method, request.path)
        return MatrixError().to_response()


def forbid_caching(app: web.Application) -> None:
    """Mark every answer of `app` `Cache-Control: no-store`: they are per caller and per moment.

    API answers hold a member's view of a server, invite codes, what the homeserver sent; no
    browser cache or proxy may keep them. A response-prepare signal reaches the answers built
    by `error_middleware` and aiohttp's own 404/405 as well as the handlers'.
    """

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Cache-Control"] = "no-store"

    app.on_response_prepare.append(on_prepare)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request, *, max_bytes: int | None = None) -> dict[str, Any]:
    """Return the request body as a JSON object, or raise NotJson/BadJson/TooLarge.

    `max_bytes` sets a limit below the app's `client_max_size` for one endpoint.
    """
    if max_bytes is not None and (request.content_length or 0) > max_bytes:
        raise TooLarge(f"Request body is larger than {max_bytes} bytes")
    body = await request.read()
    if max_bytes is not None and len(body) > max_bytes:
        raise TooLarge(f"Request body is larger than {max_bytes} bytes")
    try:
        # NaN and Infinity are Python extensions, not JSON; Synapse refuses them too.
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: arrays nested thousands deep (under the size limit) exhaust the parser.
        raise NotJson() from None
    if not isinstance(data, dict):
        raise BadJson("Body must be a JSON object")
    try:
        # JSON may escape lone surrogates (\ud800); they are not text, and the homeserver
        # refuses them, so refuse them here, once, for every field of every endpoint.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadJson("Body holds invalid Unicode (a lone surrogate)") from None
    return data
