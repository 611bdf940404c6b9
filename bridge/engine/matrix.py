"""The bridge's Client-Server API client: the bot, and users it acts for as an application service.

Every request carries the token in the `Authorization` header, never in the URL, and nothing
here logs a token. Failures are exceptions: `MatrixRequestError` when the homeserver answered
with a Matrix error, `HomeserverUnavailable` when it could not be reached or answered 502–504.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
# Answers a proxy or a starting homeserver gives instead of the homeserver's own answer.
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
_MXC = re.compile(r"mxc://([^/]+)/([^/?#]+)")


class MatrixClientError(Exception):
    """A request to the homeserver failed."""


class MatrixRequestError(MatrixClientError):
    """The homeserver answered with an error."""

    def __init__(
        self, status: int, errcode: str, message: str, *, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(f"{status} {errcode}: {message}")
        self.status = status
        self.errcode = errcode
        self.message = message
        self.retry_after_ms = retry_after_ms


class HomeserverUnavailable(MatrixClientError):
    """The homeserver could not be reached, timed out, or answered 502, 503 or 504."""

    def __init__(
        self, reason: str, *, status: int | None = None, errcode: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.errcode = errcode


def path_segment(value: str) -> str:
    """Quote an id for one URL path segment (room ids hold `!` and `:`, state keys `/`)."""
    return quote(value, safe="")


class MatrixClient:
    """Talks to one homeserver with the application service's token (or a caller's)."""

    def __init__(
        self,
        base_url: str,
        as_token: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._as_token = as_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        # A session passed in belongs to the caller, who closes it.
        self._owns_session = session is None

    def __repr__(self) -> str:
        return f"MatrixClient({self.base_url!r})"

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use so the client can be built outside a running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        user_id: str | None = None,
        token: str | None = None,
        authenticated: bool = True,
        timeout_s: float | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON answer.

        `path` is already quoted (use `path_segment`). `user_id` makes the application service
        act as that user; `token` replaces the appservice token (to ask about a caller's own).
        """
        params = dict(query or {})
        if user_id is not None:
            params["user_id"] = user_id
        url = URL(self.base_url + path, encoded=True)
        if params:
            url = url.update_query(params)
        headers: dict[str, str] = {}
        if authenticated:
            headers["Authorization"] = f"Bearer {token if token is not None else self._as_token}"
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s is not None else None
        started = time.monotonic()
        try:
            async with self._http().request(
                method, url, json=json, headers=headers, timeout=timeout
            ) as resp:
                body = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            # First: TimeoutError is an OSError, and aiohttp's timeouts are TimeoutErrors.
            raise HomeserverUnavailable(
                f"the homeserver at {self.base_url} did not answer {method} {path} in time"
            ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            raise HomeserverUnavailable(
                f"cannot reach the homeserver at {self.base_url}: {type(exc).__name__}"
            ) from exc
        # The path, never the query (it may name users) nor the headers (they hold the token).
        elapsed_ms = (time.monotonic() - started) * 1000
        log.debug("%s %s -> %d in %.0f ms", method, path, status, elapsed_ms)
        data = _decode(body)
        if 200 <= status < 300:
            return data if data is not None else {}
        errcode, message, retry_after_ms = _error_fields(data, status)
        if status in _UNAVAILABLE_STATUSES:
            raise HomeserverUnavailable(
                f"the homeserver answered {status} {errcode or ''} to {method} {path}".strip(),
                status=status,
                errcode=errcode,
            )
        raise MatrixRequestError(
            status, errcode or "M_UNKNOWN", message, retry_after_ms=retry_after_ms
        )

    async def thumbnail(self, mxc: str, size: int) -> tuple[bytes, str]:
        """A square thumbnail of the media behind `mxc` (bytes, content type), as the bot."""
        match = _MXC.fullmatch(mxc)
        if match is None:
            raise MatrixRequestError(404, "M_NOT_FOUND", "not a media URI")
        server, media_id = (path_segment(part) for part in match.groups())
        url = URL(
            f"{self.base_url}/_matrix/client/v1/media/thumbnail/{server}/{media_id}", encoded=True
        )
        url = url.update_query({"width": str(size), "height": str(size), "method": "crop"})
        headers = {"Authorization": f"Bearer {self._as_token}"}
        try:
            async with self._http().get(url, headers=headers) as resp:
                body = await resp.read()
                status, kind = resp.status, resp.content_type
        except (
            TimeoutError,
            aiohttp.ClientConnectionError,
            aiohttp.ClientPayloadError,
            OSError,
        ) as exc:
            raise HomeserverUnavailable(
                f"cannot fetch media from the homeserver at {self.base_url}: {type(exc).__name__}"
            ) from exc
        if not 200 <= status < 300:
            errcode, message, retry_after_ms = _error_fields(_decode(body), status)
            raise MatrixRequestError(
                status, errcode or "M_UNKNOWN", message, retry_after_ms=retry_after_ms
            )
        return body, kind

    # -- endpoints -----------------------------------------------------------------------------

    async def versions(self) -> dict[str, Any]:
        return await self.request("GET", "/_matrix/client/versions", authenticated=False)

    async def wait_until_reachable(self, deadline_s: float) -> dict[str, Any]:
        """Retry `/versions` until it answers or `deadline_s` seconds pass (then re-raise)."""
        deadline = time.monotonic() + deadline_s
        delay = 0.05
        while True:
            try:
                return await self.versions()
            except (HomeserverUnavailable, MatrixRequestError) as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HomeserverUnavailable(
                        f"the homeserver at {self.base_url} did not answer within "
                        f"{deadline_s:.0f} s: {exc}"
                    ) from exc
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, 1.0)

    async def whoami(
        self,
        *,
        token: str | None = None,
        user_id: str | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """`/account/whoami` for the appservice (as `user_id`) or for another access token."""
        return await self.request(
            "GET",
            "/_matrix/client/v3/account/whoami",
            token=token,
            user_id=user_id,
            timeout_s=timeout_s,
        )

    async def ensure_registered(self, localpart: str) -> bool:
        """Register `@localpart` in the appservice's namespace; False if it already exists."""
        try:
            await self.request(
                "POST",
                "/_matrix/client/v3/register",
                json={
                    "type": "m.login.application_service",
                    "username": localpart,
                    # Only the account is wanted, not a device and an access token.
                    "inhibit_login": True,
                },
            )
        except MatrixRequestError as exc:
            if exc.errcode == "M_USER_IN_USE":
                return False
            raise
        return True

    async def get_displayname(self, user_id: str) -> str | None:
        try:
            data = await self.request(
                "GET", f"/_matrix/client/v3/profile/{path_segment(user_id)}/displayname"
            )
        except MatrixRequestError as exc:
            if exc.errcode == "M_NOT_FOUND":
                return None
            raise
        name = data.get("displayname")
        return name if isinstance(name, str) else None

    async def set_displayname(self, user_id: str, displayname: str) -> None:
        await self.request(
            "PUT",
            f"/_matrix/client/v3/profile/{path_segment(user_id)}/displayname",
            json={"displayname": displayname},
            user_id=user_id,
        )

    async def join_room(self, room_id: str, *, user_id: str | None = None) -> str:
        data = await self.request(
            "POST", f"/_matrix/client/v3/join/{path_segment(room_id)}", json={}, user_id=user_id
        )
        return str(data.get("room_id", room_id))

    async def get_state(self, room_id: str, *, user_id: str | None = None) -> list[dict[str, Any]]:
        data = await self.request(
            "GET", f"/_matrix/client/v3/rooms/{path_segment(room_id)}/state", user_id=user_id
        )
        return data if isinstance(data, list) else []

    async def send_state(
        self,
        room_id: str,
        event_type: str,
        state_key: str,
        content: Mapping[str, Any],
        *,
        user_id: str | None = None,
    ) -> str:
        data = await self.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{path_segment(room_id)}/state/"
            f"{path_segment(event_type)}/{path_segment(state_key)}",
            json=dict(content),
            user_id=user_id,
        )
        return str(data["event_id"])

    async def send_message(
        self,
        room_id: str,
        content: Mapping[str, Any],
        *,
        event_type: str = "m.room.message",
        txn_id: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """Send an event; pass the same `txn_id` when retrying so it is sent only once."""
        txn_id = txn_id or secrets.token_urlsafe(16)
        data = await self.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{path_segment(room_id)}/send/"
            f"{path_segment(event_type)}/{path_segment(txn_id)}",
            json=dict(content),
            user_id=user_id,
        )
        return str(data["event_id"])

    async def ping(self, appservice_id: str, *, transaction_id: str | None = None) -> int:
        """Ask the homeserver to ping our appservice endpoint; return the round trip in ms."""
        body = {"transaction_id": transaction_id} if transaction_id else {}
        data = await self.request(
            "POST",
            f"/_matrix/client/v1/appservice/{path_segment(appservice_id)}/ping",
            json=body,
        )
        return int(data.get("duration_ms", 0))


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_fields(data: Any, status: int) -> tuple[str | None, str, int | None]:
    if not isinstance(data, dict):
        return None, f"HTTP {status}", None
    raw_errcode, raw_message = data.get("errcode"), data.get("error")
    errcode = raw_errcode if isinstance(raw_errcode, str) else None
    message = raw_message if isinstance(raw_message, str) else f"HTTP {status}"
    retry = data.get("retry_after_ms")
    retry_after_ms = retry if isinstance(retry, int) and not isinstance(retry, bool) else None
    return errcode, message, retry_after_ms
