"""Slow clients: a deadline for the request head and one for the body.

aiohttp reads a request head without a deadline of its own, but its keep-alive timer
(`keepalive_timeout`) runs from the moment a connection opens and again after each
response, and closes the connection if no complete request head has arrived by then. So
`server.header_timeout_seconds` is given to aiohttp as that timer: a client that trickles
its headers, or sends none, is closed when it runs out. Nothing bounds the body: a handler
would wait on `request.read()` for as long as the client keeps the connection open. The
middleware here reads the body first, within `server.body_timeout_seconds`, and answers
408 when it does not arrive; handlers then read the body already in memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.errors import FieldProblem, RequestTimeout
from bridge.settings import ServerSettings
from bridge.typedefs import SETTINGS

# After a 408 aiohttp drains the unread body this long before it closes; short, because
# the client that earned the 408 is the one sending slowly.
LINGER_SECONDS = 2.0


def server_options(server: ServerSettings) -> dict[str, Any]:
    """`web.run_app` arguments that bound how long a connection may take to send a request."""
    return {"keepalive_timeout": server.header_timeout_seconds, "lingering_time": LINGER_SECONDS}


@web.middleware
async def body_deadline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body within the body timeout (408 otherwise), then run the handler."""
    if request.body_exists and request.content.is_eof():
        # All of it has arrived (a small body comes with the head): reading cannot wait,
        # so no deadline is set up for it.
        await request.read()
    elif request.body_exists:
        limit = request.app[SETTINGS].server.body_timeout_seconds
        try:
            async with asyncio.timeout(limit):
                # Kept by aiohttp: the handler's read(), json() and text() return it.
                await request.read()
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {limit:g} seconds",
                [FieldProblem("(body)", "sent too slowly")],
            ) from None
    return await handler(request)
