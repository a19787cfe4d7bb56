"""Bearer-token protection for the bot-side and admin API, when a token is configured."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.errors import FieldProblem, Unauthorized
from bridge.typedefs import SETTINGS

PROTECTED_PREFIX = "/v1/"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require `Authorization: Bearer <token>` on /v1/ when BRIDGE_SECURITY__API_TOKEN is set."""
    token = request.app[SETTINGS].security.api_token
    if token is not None and request.path.startswith(PROTECTED_PREFIX):
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized(
                "a valid bearer token is required",
                [FieldProblem("Authorization", "missing or wrong bearer token")],
            )
    return await handler(request)
