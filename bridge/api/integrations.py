"""Signed calls from CRMs and helpdesks: customer profile and tags, metadata, presence.

Each call is signed per Standard Webhooks with one of BRIDGE_SECURITY__INTEGRATION_SECRETS
(several during a rotation); a bad signature or a timestamp over five minutes off is a
401 with nothing stored, and a repeated webhook-id is acknowledged without effect.
"""

from __future__ import annotations

import time

from aiohttp import web

from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Operations
from bridge.api.openapi.answers import Done, MetadataAnswer, UpdatedConversations
from bridge.errors import FieldProblem, Forbidden, InvalidSignature
from bridge.models import CustomerUpdate, MetadataUpdate, PresenceUpdate
from bridge.relay import signing
from bridge.typedefs import ASSIGNMENT, PROFILES, SETTINGS

routes = web.RouteTableDef()
doc = Operations("Integrations", Access.SIGNED)


async def _verified(request: web.Request) -> str:
    """The request's webhook-id once its signature checks out."""
    secrets = request.app[SETTINGS].security.integration_secrets
    if not secrets:
        raise Forbidden(
            "integrations are disabled: set BRIDGE_SECURITY__INTEGRATION_SECRETS",
            [FieldProblem("webhook-signature", "no integration secret is configured")],
        )
    body = (await request.read()).decode("utf-8", "replace")
    keys = [signing.secret_key(s.get_secret_value()) for s in secrets]
    try:
        return signing.verify(keys, request.headers, body, time.time())
    except signing.VerificationError as exc:
        raise InvalidSignature(str(exc), [FieldProblem("webhook-signature", str(exc))]) from exc


@routes.post("/integrations/customers")
@doc("Re-identify or tag a customer", body=CustomerUpdate, answers={200: UpdatedConversations})
async def update_customer(request: web.Request) -> web.Response:
    """Re-identify or tag a customer on their active conversations."""
    delivery_id = await _verified(request)
    body = await parse_body(request, CustomerUpdate)
    rows = await request.app[PROFILES].update_customer(body, delivery_id=delivery_id)
    return web.json_response({"updated_conversations": [row.id for row in rows]})


@routes.post("/integrations/conversations/{conversation_id}/metadata")
@doc(
    "Merge metadata into an active conversation",
    body=MetadataUpdate,
    answers={200: MetadataAnswer},
    errors=(404, 409),
)
async def update_metadata(request: web.Request) -> web.Response:
    """Merge metadata into an active conversation."""
    delivery_id = await _verified(request)
    body = await parse_body(request, MetadataUpdate)
    row = await request.app[PROFILES].update_metadata(
        request.match_info["conversation_id"],
        body.metadata,
        replace=body.replace,
        delivery_id=delivery_id,
    )
    return web.json_response({"conversation_id": row.id, "metadata": row.conversation_metadata})


@routes.post("/integrations/presence")
@doc("Set an agent's presence", body=PresenceUpdate, answers={200: Done})
async def push_presence(request: web.Request) -> web.Response:
    """Set an agent's presence; pending chats with routers are re-evaluated."""
    delivery_id = await _verified(request)
    body = await parse_body(request, PresenceUpdate)
    await request.app[ASSIGNMENT].set_presence(
        body.agent_id, body.presence, name=body.name, source=body.channel, delivery_id=delivery_id
    )
    return web.json_response({"result": "ok"})
