"""Subscriptions: CRMs and helpdesks that receive signed lifecycle events.

An organization's subscription receives only the conversations on its organization's
channels, and its caller sees and deletes only its organization's subscriptions. An admin's
subscription without an organization receives every conversation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Answer, Operations
from bridge.api.openapi.directory import NewSubscription, SubscriptionList
from bridge.api.tenancy import OrganizationQuery, listed_organization, owning_organization, visible
from bridge.db.tables import SubscriptionRow
from bridge.errors import FieldProblem, InvalidInput, NotFound
from bridge.events import EVENT_TYPES
from bridge.models import SubscriptionRequest
from bridge.relay.signing import new_secret
from bridge.typedefs import OUTBOUND, STORE

routes = web.RouteTableDef()
doc = Operations("Subscriptions", Access.DIRECTORY)


def _view(row: SubscriptionRow, *, with_secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id,
        "url": row.url,
        "events": row.events,
        "description": row.description,
        "organization_id": row.organization_id,
        "created_at": row.created_at.isoformat(),
    }
    if with_secret:
        view["secret"] = row.secret
    return view


@routes.post("/v1/subscriptions")
@doc(
    "Subscribe to lifecycle events",
    body=SubscriptionRequest,
    answers={201: NewSubscription},
    description="The answer holds the secret that signs the events, shown this once.",
)
async def create_subscription(request: web.Request) -> web.Response:
    """Subscribe; the answer holds the signing secret, shown this once."""
    body = await parse_body(request, SubscriptionRequest)
    organization = owning_organization(request, body.organization_id)
    unknown = [
        FieldProblem(f"events[{i}]", f"unknown event type; known: *, {', '.join(EVENT_TYPES)}")
        for i, name in enumerate(body.events)
        if name != "*" and name not in EVENT_TYPES
    ]
    if unknown:
        raise InvalidInput("unknown event types", unknown)
    await request.app[OUTBOUND].check("url", str(body.url))
    row = SubscriptionRow(
        id=str(uuid.uuid4()),
        url=str(body.url),
        events=list(dict.fromkeys(body.events)),
        secret=new_secret(),
        description=body.description,
        created_at=datetime.now(UTC),
        organization_id=organization,
    )
    async with request.app[STORE].transaction() as tx:
        await tx.add_subscription(row)
    return web.json_response(_view(row, with_secret=True), status=201)


@routes.get("/v1/subscriptions")
@doc(
    "List subscriptions (without secrets)", query=OrganizationQuery, answers={200: SubscriptionList}
)
async def list_subscriptions(request: web.Request) -> web.Response:
    """Every subscription the caller may see, without secrets (`?organization_id=` narrows)."""
    organization = listed_organization(request)
    async with request.app[STORE].transaction() as tx:
        rows = await tx.subscriptions()
    if organization is not None:
        rows = [row for row in rows if row.organization_id == organization]
    return web.json_response({"items": [_view(row) for row in rows]})


@routes.delete("/v1/subscriptions/{subscription_id}")
@doc(
    "Unsubscribe; events still queued for it are cancelled",
    answers={204: Answer(None, "Gone.")},
    errors=(404,),
)
async def delete_subscription(request: web.Request) -> web.Response:
    """Unsubscribe; events still queued for it are cancelled."""
    subscription_id = request.match_info["subscription_id"]
    async with request.app[STORE].transaction() as tx:
        row = await tx.get_subscription(subscription_id)
        # Another organization's subscription is answered as an unknown one.
        if row is None or not visible(request, row.organization_id):
            raise NotFound(
                f"no subscription {subscription_id!r}",
                [FieldProblem("subscription_id", "unknown subscription")],
            )
        await tx.delete_subscription(subscription_id)
    return web.Response(status=204)
