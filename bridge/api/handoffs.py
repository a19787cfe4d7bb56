"""The bot side: transfer-to-agent, customer messages, state, transcript, close and release."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from bridge.api import transfers
from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Operations
from bridge.api.openapi.answers import Conversation, MessageAnswer, Transcript
from bridge.api.query import parse_query
from bridge.db.tables import ConversationRow
from bridge.models import (
    AssignRequest,
    CustomerMessageRequest,
    HandoffRequest,
    MetadataUpdate,
    ReasonRequest,
    ReleaseRequest,
)
from bridge.services.queue import QueueSpot
from bridge.typedefs import ASSIGNMENT, OUTBOUND, PROFILES, SERVICE
from bridge.views import conversation_view, message_view

routes = web.RouteTableDef()
doc = Operations("Bot side", Access.BOT)
operator_doc = Operations("Bot side", Access.BOT_OR_OPERATOR)
# Closing, releasing and cancelling take an optional reason and answer the conversation.
ENDING: dict[str, Any] = {
    "body": ReasonRequest,
    "body_optional": True,
    "answers": {200: Conversation},
    "errors": (404, 409),
}
HANDOFF_EXAMPLE = {
    "bot": {"platform": "webhook", "conversation_id": "chat-1842"},
    "customer": {"id": "c-77", "firstname": "Ana", "email": "ana@example.com"},
    "region": "es",
    "metadata": {"plan": "pro"},
    "history": [{"role": "customer", "text": "I need a person", "sent_at": "2025-01-01T10:00:00Z"}],
    "callback_url": "https://bot.example.com/bridge-events",
}


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
@doc(
    "Open a handoff (transfer to an agent)",
    body=HandoffRequest,
    answers={201: Conversation, 200: Conversation},
    description="201 with a new conversation; 200 with the active one of the same bot "
    "conversation, or of the same customer under the same main channel, unchanged.",
    examples={"handoff": HANDOFF_EXAMPLE},
)
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
@doc("A conversation's state, with a fresh join link", answers={200: Conversation}, errors=(404,))
async def get_conversation(request: web.Request) -> web.Response:
    """The conversation's state, routing explanation and a fresh join link."""
    row = await request.app[SERVICE].get(request.match_info["conversation_id"])
    return await _conversation_response(request, row)


class TranscriptQuery(BaseModel):
    """Which page of the transcript."""

    after: int = Field(default=0, ge=0, le=2**62, description="The last `seq` already read.")
    limit: int = Field(default=500, ge=1, le=1000)


@routes.get("/v1/conversations/{conversation_id}/messages")
@doc(
    "The transcript, oldest first", query=TranscriptQuery, answers={200: Transcript}, errors=(404,)
)
async def get_messages(request: web.Request) -> web.Response:
    """The transcript, oldest first; page with `after` (a seq) and `limit`."""
    query = parse_query(request.query, TranscriptQuery)
    rows = await request.app[SERVICE].transcript(
        request.match_info["conversation_id"], after_seq=query.after, limit=query.limit
    )
    return web.json_response({"messages": [message_view(m) for m in rows]})


@routes.post("/v1/conversations/{conversation_id}/messages")
@doc(
    "Relay a customer message to the agent side",
    body=CustomerMessageRequest,
    answers={201: MessageAnswer, 200: MessageAnswer},
    errors=(404, 409),
    description="201 when stored; 200 for a repeated message `id`; 409 once ended.",
)
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
@doc("The bot ends the conversation", **ENDING)
async def close_conversation(request: web.Request) -> web.Response:
    """The bot ends the conversation; the agent side is told."""
    return await _end_by_bot(request, request.app[SERVICE].close)


@routes.post("/v1/conversations/{conversation_id}/release")
@operator_doc(
    "The bot takes the conversation back, or an operator hands it back for its agent",
    body=ReleaseRequest,
    body_optional=True,
    answers={200: Conversation},
    errors=(403, 404, 409),
)
async def release_conversation(request: web.Request) -> web.Response:
    """The bot takes the conversation back; the agent side is told."""
    return await transfers.release(request)


@routes.post("/v1/conversations/{conversation_id}/cancel")
@doc("The bot cancels a waiting handoff", **ENDING)
async def cancel_handoff(request: web.Request) -> web.Response:
    """The bot cancels a waiting handoff (409 once an agent has it); it hears handoff.cancelled."""
    body = await parse_body(request, ReasonRequest, optional=True)
    row = await request.app[SERVICE].cancel(request.match_info["conversation_id"], body.reason)
    return await _conversation_response(request, row)


@routes.patch("/v1/conversations/{conversation_id}/metadata")
@doc(
    "Merge new metadata into an active conversation",
    body=MetadataUpdate,
    answers={200: Conversation},
    errors=(404, 409),
)
async def update_metadata(request: web.Request) -> web.Response:
    """Merge new metadata into an active conversation; agents see it at once."""
    body = await parse_body(request, MetadataUpdate)
    row = await request.app[PROFILES].update_metadata(
        request.match_info["conversation_id"], body.metadata, replace=body.replace
    )
    return await _conversation_response(request, row)


@routes.post("/v1/conversations/{conversation_id}/assign")
@doc(
    "Give a pending chat to an agent (the first to take it wins, within capacity)",
    body=AssignRequest,
    answers={200: Conversation},
    errors=(404, 409),
)
async def assign(request: web.Request) -> web.Response:
    """Give a pending chat to an agent: the first to take it wins, within capacity (409)."""
    body = await parse_body(request, AssignRequest)
    row = await request.app[ASSIGNMENT].take(request.match_info["conversation_id"], body.agent_id)
    return await _conversation_response(request, row)
