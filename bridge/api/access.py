"""Every request: its id, its span of the caller's trace, an access line and the HTTP metrics.

The outermost middleware, so what it records is the answer the client got (the error
middleware's JSON included) and every line logged while serving carries the request's
id and trace id. A route is named by its template (`/v1/conversations/{conversation_id}`),
never by its path: tokens ride in some paths. A request that matched no route is counted
as "(unmatched)" and logged by its path, redacted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge import logs, metrics, tracing
from bridge.typedefs import SETTINGS

log = logging.getLogger("bridge.access")

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's id is kept when it is short and plain (it is logged and echoed back).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:+/=-]{1,128}$")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
# What a client that went away before its answer is counted as (nginx's convention).
CLIENT_CLOSED = 499
MAX_CONVERSATION_ID = 64


def request_id_of(request: web.Request) -> str:
    """The caller's X-Request-Id when it is sane, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    # Not a secret, only unique: the random module's generator, without a system call.
    return given if _SANE_REQUEST_ID.match(given) else f"{random.getrandbits(128):032x}"


def route_of(request: web.Request) -> str | None:
    """The template of the route the request matched, or None."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


def _size(response: web.StreamResponse) -> int | None:
    """The bytes of the body: written ones for a streamed answer, else its length if known."""
    if response.prepared:
        return response.body_length
    return response.content_length


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve the request inside its id and span; then count it and log its access line."""
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    route = route_of(request)
    name = route or metrics.UNMATCHED_ROUTE
    parent = tracing.parse_traceparent(
        request.headers.get("traceparent"), request.headers.get("tracestate")
    )
    conversation_id = request.match_info.get("conversation_id")
    if conversation_id is not None and len(conversation_id) > MAX_CONVERSATION_ID:
        conversation_id = None  # no conversation has such an id: not worth a log field
    started = time.perf_counter()
    status = 500
    response: web.StreamResponse | None = None
    with (
        logs.bind(request_id=request_id, conversation_id=conversation_id),
        tracing.span(
            f"{request.method} {name}",
            parent,
            "server",
            {"http.request.method": request.method, "http.route": name},
        ) as span,
    ):
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            status = CLIENT_CLOSED
            raise
        finally:
            seconds = time.perf_counter() - started
            metrics.http_request(request.method, name, status, seconds)
            span.attributes["http.response.status_code"] = status
            span.failed = status >= 500
            if request.app[SETTINGS].server.access_log:
                log.info(
                    "http.access",
                    extra={
                        "method": request.method,
                        "route": route,
                        # Unmatched: the path, which the log filter redacts like any text.
                        "path": None if route else request.path,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                        "bytes": _size(response) if response is not None else None,
                    },
                )


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Answer with the request's id (on_response_prepare: streamed answers get it too)."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
