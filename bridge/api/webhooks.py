"""Webhooks from live-chat platforms, one URL per channel.

`POST /webhooks/{channel}` for platforms that sign or send a header secret, and
`POST /webhooks/{channel}/{token}` for platforms that can only put a secret in the URL.
A wrong signature or secret is a 401 and nothing is stored.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api.openapi import Access, Answer, Operations
from bridge.errors import FieldProblem, NotFound
from bridge.ports.agent_side import InboundRequest
from bridge.typedefs import BOTS, INBOUND, SERVICE

routes = web.RouteTableDef()
doc = Operations("Platforms", Access.PLATFORM, errors=(400, 404, 409))

# The adapter's own answer, in the platform's shape (some platforms expect data back).
PLATFORM_ANSWERS = {
    200: Answer(None, "Accepted; the body is what the platform expects back."),
    201: Answer(None, "Created, for a platform API that says so."),
    202: Answer(None, "Queued, for a platform API that says so."),
}
PLATFORM_BODY = "The platform's own event, in its wire format; its adapter checks and reads it."


async def _inbound(request: web.Request, token: str | None) -> InboundRequest:
    return InboundRequest(
        method=request.method,
        headers=request.headers,
        query=request.query,
        body=await request.read(),
        path_token=token,
    )


async def _handle(request: web.Request, token: str | None) -> web.Response:
    inbound = await _inbound(request, token)
    reply = await request.app[INBOUND].handle(request.match_info["channel"], inbound)
    return web.json_response(reply.body, status=reply.status)


@routes.route("*", "/bots/{bot}/{path:.*}")
@doc(
    "A bot platform's own API, served by its adapter",
    description="Tovie's Operator API and JivoChat's Bot API, for bots configured under "
    "`bots:`; each adapter checks the platform's own credential.",
    methods=("GET", "POST"),
    raw_body=PLATFORM_BODY,
    body_optional=True,
    answers=PLATFORM_ANSWERS,
)
async def bot_api(request: web.Request) -> web.Response:
    """A bot platform's own API (Tovie's Operator API, Jivo's Bot API), served by its adapter."""
    name = request.match_info["bot"]
    adapter = request.app[BOTS].get(name)
    if adapter is None:
        raise NotFound(f"no bot {name!r} is configured", [FieldProblem("bot", "unknown")])
    inbound = await _inbound(request, None)
    reply = await adapter.handle_request(request.match_info["path"], inbound, request.app[SERVICE])
    return web.json_response(reply.body, status=reply.status)


@routes.post("/webhooks/{channel}")
@doc(
    "A platform webhook authenticated by a header or signature",
    raw_body=PLATFORM_BODY,
    answers=PLATFORM_ANSWERS,
)
async def webhook(request: web.Request) -> web.Response:
    """A platform webhook authenticated by a header or signature."""
    return await _handle(request, None)


@routes.post("/webhooks/{channel}/{token}")
@doc(
    "A platform webhook authenticated by the secret in its URL",
    raw_body=PLATFORM_BODY,
    answers=PLATFORM_ANSWERS,
)
async def webhook_with_token(request: web.Request) -> web.Response:
    """A platform webhook authenticated by the secret in its URL."""
    return await _handle(request, request.match_info["token"])
