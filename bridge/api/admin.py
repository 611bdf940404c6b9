"""The homeserver admin's endpoints on the appservice listener: `POST /_guilds/admin/v1/apply`
and `POST /_guilds/admin/v1/doctor`.

`guilds apply` asks a running `guilds serve` to reconcile the declared servers, and `guilds
doctor` asks it to compare (and repair) every server's rooms with its model, so one process
acts and its directory sees what it made. The appservice app's middleware admits only the
hs_token, which only the holders of the registration file have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bridge.engine.lease import LeaseBusy
from bridge.readback.convergence import DoctorReport
from bridge.services.declared import Report

APPLY_PATH = "/_guilds/admin/v1/apply"
Apply = Callable[[bool], Awaitable[Report]]
APPLY: web.AppKey[Apply] = web.AppKey("guilds_apply", Callable)  # type: ignore[arg-type]
DOCTOR_PATH = "/_guilds/admin/v1/doctor"
# (server id or None for every server, repair?) -> the report.
Doctor = Callable[[str | None, bool], Awaitable[DoctorReport]]
DOCTOR: web.AppKey[Doctor] = web.AppKey("guilds_doctor", Callable)  # type: ignore[arg-type]


async def post_apply(request: web.Request) -> web.Response:
    dry_run = request.query.get("dry_run") in ("1", "true")
    try:
        report = await request.app[APPLY](dry_run)
    except LeaseBusy as exc:
        return web.json_response(
            {"errcode": "M_LIMIT_EXCEEDED", "error": f"Busy: {exc}", "retry_after_ms": 5000},
            status=429,
        )
    return web.json_response(report.to_json())


async def post_doctor(request: web.Request) -> web.Response:
    server = request.query.get("server") or None
    repair = request.query.get("repair") in ("1", "true")
    report = await request.app[DOCTOR](server, repair)
    return web.json_response(report.to_json())


def add_routes(app: web.Application, apply: Apply, doctor: Doctor) -> None:
    app[APPLY] = apply
    app.router.add_post(APPLY_PATH, post_apply)
    app[DOCTOR] = doctor
    app.router.add_post(DOCTOR_PATH, post_doctor)
