"""The operator's view of deliveries: list them (dead ones especially) and retry."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from bridge.api.handoffs import _int_query
from bridge.domain.status import Status
from bridge.errors import Conflict, FieldProblem, InvalidInput, NotFound
from bridge.input_limits import stored_id
from bridge.relay.jobs import BotEvent, DeliveryStatus
from bridge.typedefs import STORE, WORKER
from bridge.views import outbox_view

routes = web.RouteTableDef()

_STATUSES = {status.value for status in DeliveryStatus}


@routes.get("/v1/outbox")
async def list_outbox(request: web.Request) -> web.Response:
    """Deliveries, filtered by `status` and `conversation_id`; page with `after` and `limit`."""
    status = request.query.get("status")
    if status is not None and status not in _STATUSES:
        raise InvalidInput(
            "unknown status", [FieldProblem("status", f"must be one of {sorted(_STATUSES)}")]
        )
    after = _int_query(request, "after", 0, 0, 2**62)
    limit = _int_query(request, "limit", 100, 1, 1000)
    async with request.app[STORE].transaction() as tx:
        rows = await tx.list_outbox(
            status=status,
            conversation_id=request.query.get("conversation_id"),
            after_id=after,
            limit=limit,
        )
    items = [outbox_view(row) for row in rows]
    next_after = items[-1]["id"] if len(items) == limit else None
    return web.json_response({"items": items, "next_after": next_after})


@routes.post("/v1/outbox/{item_id}/retry")
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
