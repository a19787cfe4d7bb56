"""The operator's view of deliveries: list them (dead ones especially) and retry."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, Field

from bridge.api.openapi import Access, Operations
from bridge.api.openapi.answers import OutboxItem, OutboxPage
from bridge.api.query import parse_query
from bridge.domain.status import Status
from bridge.errors import Conflict, FieldProblem, NotFound
from bridge.input_limits import stored_id
from bridge.relay.jobs import BotEvent, DeliveryStatus
from bridge.typedefs import STORE, WORKER
from bridge.views import outbox_view

routes = web.RouteTableDef()
doc = Operations("Deliveries", Access.ADMIN)


class OutboxQuery(BaseModel):
    """Which deliveries to list, and the page."""

    status: DeliveryStatus | None = None
    conversation_id: str | None = None
    after: int = Field(default=0, ge=0, le=2**62, description="The last `id` of the page before.")
    limit: int = Field(default=100, ge=1, le=1000)


@routes.get("/v1/outbox")
@doc("List deliveries (dead ones especially)", query=OutboxQuery, answers={200: OutboxPage})
async def list_outbox(request: web.Request) -> web.Response:
    """Deliveries, filtered by `status` and `conversation_id`; page with `after` and `limit`."""
    query = parse_query(request.query, OutboxQuery)
    async with request.app[STORE].transaction() as tx:
        rows = await tx.list_outbox(
            status=query.status.value if query.status else None,
            conversation_id=query.conversation_id,
            after_id=query.after,
            limit=query.limit,
        )
    items = [outbox_view(row) for row in rows]
    next_after = items[-1]["id"] if len(items) == query.limit else None
    return web.json_response({"items": items, "next_after": next_after})


@routes.post("/v1/outbox/{item_id}/retry")
@doc(
    "Put a dead delivery back in line",
    answers={200: OutboxItem},
    errors=(404, 409),
    description="It keeps its `webhook-id` and starts again at 0 attempts.",
)
async def retry_outbox(request: web.Request) -> web.Response:
    """Put a dead delivery back in line; it keeps its webhook-id."""
    raw_id = request.match_info["item_id"]
    item_id = stored_id(raw_id)
    if item_id is None:
        raise NotFound(f"no delivery {raw_id!r}", [FieldProblem("item_id", "unknown delivery")])
    async with request.app[STORE].transaction() as tx:
        row = await tx.get_outbox(item_id)
        if row is None:
            raise NotFound(f"no delivery {raw_id}", [FieldProblem("item_id", "unknown delivery")])
        if row.kind != BotEvent.kind and row.conversation_id is not None:
            conversation = await tx.get_conversation(row.conversation_id)
            if conversation is not None and conversation.status == Status.FAILED:
                raise Conflict(
                    f"conversation {conversation.id} failed to open; start a new handoff instead",
                    [FieldProblem("conversation.status", "is failed")],
                )
        if not await tx.requeue(row.id, datetime.now(UTC)):
            raise Conflict(
                f"delivery {raw_id} is {row.status}; only dead deliveries can be retried",
                [FieldProblem("status", f"is {row.status}")],
            )
        await tx.session.refresh(row)
    request.app[WORKER].wake()
    return web.json_response(outbox_view(row))
