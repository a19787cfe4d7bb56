"""Webhooks from live-chat platforms, one URL per channel.

`POST /webhooks/{channel}` for platforms that sign or send a header secret, and
`POST /webhooks/{channel}/{token}` for platforms that can only put a secret in the URL.
A wrong signature or secret is a 401 and nothing is stored.
"""

from __future__ import annotations

from aiohttp import web

from bridge.errors import FieldProblem, NotFound
from bridge.ports.agent_side import InboundRequest
from bridge.typedefs import BOTS, INBOUND, SERVICE

routes = web.RouteTableDef()


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
async def webhook(request: web.Request) -> web.Response:
    """A platform webhook authenticated by a header or signature."""
    return await _handle(request, None)


@routes.post("/webhooks/{channel}/{token}")
async def webhook_with_token(request: web.Request) -> web.Response:
    """A platform webhook authenticated by the secret in its URL."""
    return await _handle(request, request.match_info["token"])
