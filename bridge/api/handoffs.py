"""The bot side: transfer-to-agent, customer messages, state, transcript, close and release."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from bridge.api import transfers
from bridge.api.errors import parse_body
from bridge.db.tables import ConversationRow
from bridge.errors import FieldProblem, InvalidInput
from bridge.models import (
    AssignRequest,
    CustomerMessageRequest,
    HandoffRequest,
    MetadataUpdate,
    ReasonRequest,
)
from bridge.services.queue import QueueSpot
from bridge.typedefs import ASSIGNMENT, OUTBOUND, PROFILES, SERVICE
from bridge.views import conversation_view, message_view

routes = web.RouteTableDef()


async def _conversation_response(
    request: web.Request, row: ConversationRow, status: int = 200, queue: QueueSpot | None = None
) -> web.Response:
    # The queue position is counted now, on the queue's index (nothing stores it per row).
    if queue is None:
        queue = await request.app[ASSIGNMENT].spot(row)
    return web.json_response(
        conversation_view(row, request.app[SERVICE].join_url(row), queue), status=status
    )


@routes.post("/v1/handoffs")
async def create_handoff(request: web.Request) -> web.Response:
    """Open a handoff: 201 when created, 200 with the existing active conversation."""
    body = await parse_body(request, HandoffRequest)
    # Checked before anything is stored: events go to this URL later, with no one to tell.
    await request.app[OUTBOUND].check("callback_url", str(body.callback_url))
    opened = await request.app[SERVICE].open_placed(body)
    return await _conversation_response(
        request, opened.row, 201 if opened.created else 200, opened.queue
    )


@routes.get("/v1/conversations/{conversation_id}")
async def get_conversation(request: web.Request) -> web.Response:
    """The conversation's state, routing explanation and a fresh join link."""
    row = await request.app[SERVICE].get(request.match_info["conversation_id"])
    return await _conversation_response(request, row)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a whole number", [FieldProblem(name, "not a whole number")]
        ) from None
    if not low <= value <= high:
        raise InvalidInput(
            f"{name} is out of range", [FieldProblem(name, f"must be between {low} and {high}")]
        )
    return value


@routes.get("/v1/conversations/{conversation_id}/messages")
async def get_messages(request: web.Request) -> web.Response:
    """The transcript, oldest first; page with `after` (a seq) and `limit`."""
    after = _int_query(request, "after", 0, 0, 2**62)
    limit = _int_query(request, "limit", 500, 1, 1000)
    rows = await request.app[SERVICE].transcript(
        request.match_info["conversation_id"], after_seq=after, limit=limit
    )
    return web.json_response({"messages": [message_view(m) for m in rows]})


@routes.post("/v1/conversations/{conversation_id}/messages")
async def post_customer_message(request: web.Request) -> web.Response:
    """Relay a customer message to the agent side: 201, or 200 for a repeated message id."""
    body = await parse_body(request, CustomerMessageRequest)
    message, created = await request.app[SERVICE].customer_message(
        request.match_info["conversation_id"], body
    )
    return web.json_response({"message": message_view(message)}, status=201 if created else 200)


# Closing and releasing: the service's method, given the conversation, "bot" and the reason.
_Ending = Callable[[str, Literal["bot"], str | None], Awaitable[ConversationRow]]


async def _end_by_bot(request: web.Request, end: _Ending) -> web.Response:
    body = await parse_body(request, ReasonRequest, optional=True)
    row = await end(request.match_info["conversation_id"], "bot", body.reason)
    return await _conversation_response(request, row)


@routes.post("/v1/conversations/{conversation_id}/close")
async def close_conversation(request: web.Request) -> web.Response:
    """The bot ends the conversation; the agent side is told."""
    return await _end_by_bot(request, request.app[SERVICE].close)


@routes.post("/v1/conversations/{conversation_id}/release")
async def release_conversation(request: web.Request) -> web.Response:
    """The bot takes the conversation back; the agent side is told."""
    return await transfers.release(request)


@routes.post("/v1/conversations/{conversation_id}/cancel")
async def cancel_handoff(request: web.Request) -> web.Response:
    """The bot cancels a waiting handoff (409 once an agent has it); it hears handoff.cancelled."""
    body = await parse_body(request, ReasonRequest, optional=True)
    row = await request.app[SERVICE].cancel(request.match_info["conversation_id"], body.reason)
    return await _conversation_response(request, row)


@routes.patch("/v1/conversations/{conversation_id}/metadata")
async def update_metadata(request: web.Request) -> web.Response:
    """Merge new metadata into an active conversation; agents see it at once."""
    body = await parse_body(request, MetadataUpdate)
    row = await request.app[PROFILES].update_metadata(
        request.match_info["conversation_id"], body.metadata, replace=body.replace
    )
    return await _conversation_response(request, row)


@routes.post("/v1/conversations/{conversation_id}/assign")
async def assign(request: web.Request) -> web.Response:
    """Give a pending chat to an agent: the first to take it wins, within capacity (409)."""
    body = await parse_body(request, AssignRequest)
    row = await request.app[ASSIGNMENT].take(request.match_info["conversation_id"], body.agent_id)
    return await _conversation_response(request, row)
