"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from bridge.api.openapi import Access, Operations
from bridge.api.openapi.answers import Alive, Readiness
from bridge.typedefs import STORE, WORKER

routes = web.RouteTableDef()
doc = Operations("Health", Access.PUBLIC)


@routes.get("/healthz")
@doc("Liveness", answers={200: Alive})
async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@doc("Readiness: the store answers and the relay runs", answers={200: Readiness, 503: Readiness})
async def readyz(request: web.Request) -> web.Response:
    """The store answers and the relay worker runs: safe to send traffic here."""
    checks: dict[str, str] = {}
    try:
        async with request.app[STORE].transaction() as tx:
            await tx.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    checks["relay"] = "ok" if request.app[WORKER].running else "not running"
    ready = all(value == "ok" for value in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )
