"""The console's pages and its token-bound JSON API.

Every route takes the signed join token from the URL and reaches only the one
conversation it names; a tampered or expired token gets a 403 (an HTML page for the
page, JSON for the API).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

from aiohttp import web
from aiohttp_sse import sse_response

from adapters.console import desk, supervisor
from adapters.console.agent_actions import routes as agent_action_routes
from adapters.console.pages import (
    CHAT_PAGE_HEADERS,
    forbidden_page,
    html_page,
    static_routes,
)
from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Answer, Operations
from bridge.api.openapi.answers import MessageAnswer
from bridge.api.openapi.directory import ConsoleChange, ConsoleState
from bridge.domain.status import ACTIVE, Status
from bridge.errors import Forbidden, InvalidTransition
from bridge.input_limits import stored_id
from bridge.models import AgentMessageRequest, HandbackRequest, JoinRequest, ReasonRequest
from bridge.ports.agent_side import InboundEvent
from bridge.timeline import console_timeline, timeline_view
from bridge.typedefs import CONSOLE_HUB, INBOUND, JOIN_LINKS, SERVICE
from bridge.views import console_view, message_view

# How often a live stream re-reads the store without a wake-up. Changes wake it at once,
# on every replica (the wake bus); this only bounds the delay of a wake-up that got lost.
STREAM_POLL_SECONDS = 5.0

routes = web.RouteTableDef()
doc = Operations("Console", Access.LINK, errors=(404,))
PAGE = {
    200: Answer(None, "The page.", media_types=("text/html",)),
    403: Answer(None, "The link is not valid (tampered or expired).", media_types=("text/html",)),
}


def _conversation_id(request: web.Request) -> str:
    return request.app[JOIN_LINKS].conversation_id(request.match_info["token"])


@routes.get("/console/c/{token}")
@doc("The agent's conversation page", answers=PAGE)
async def page(request: web.Request) -> web.StreamResponse:
    """The agent's conversation page (the script fetches the data with the same token)."""
    try:
        _conversation_id(request)
    except Forbidden:
        return forbidden_page()
    # Its policy lets attached images load from https (pages.py says why).
    return html_page("console.html", CHAT_PAGE_HEADERS)


@routes.get("/console/api/{token}/conversation")
@doc("The conversation and its transcript", answers={200: ConsoleState})
async def conversation(request: web.Request) -> web.Response:
    """The conversation and its transcript."""
    conversation_id = _conversation_id(request)
    service = request.app[SERVICE]
    row = await service.get(conversation_id)
    messages = await service.transcript(conversation_id)
    timeline = await service.timeline(conversation_id)
    return web.json_response(
        {
            "conversation": console_view(row),
            "messages": [message_view(m) for m in messages],
            "timeline": console_timeline(row, timeline),
        }
    )


@routes.get("/console/api/{token}/events")
@doc(
    "Live server-sent events: `message`, `status`, `conversation` and `timeline`",
    answers={
        200: Answer(None, "The stream.", media_types=("text/event-stream",)),
        204: Answer(None, "The conversation has ended and nothing more is to come."),
    },
)
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: new messages (id = seq), status changes and the timeline's new
    moments (joins, leaves, the end), live."""
    conversation_id = _conversation_id(request)
    service = request.app[SERVICE]
    hub = request.app[CONSOLE_HUB]
    last = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    after = stored_id(last) or 0
    row = await service.get(conversation_id)
    if row.status not in ACTIVE and not await service.transcript(
        conversation_id, after_seq=after, limit=1
    ):
        # Nothing more will happen here: 204 tells EventSource to stop reconnecting.
        return web.Response(status=204)
    # None, so the first pass always sends the status: the page may have loaded before
    # a change that happened while this stream was connecting.
    status: tuple[str, str] | None = None
    # The customer and metadata as last sent (first pass: always, like the status).
    shown: str | None = None
    # The timeline's last moment sent. Every moment changes the status or the agent, so
    # the timeline is read only when they changed (first pass: everything; the page
    # drops what it already shows).
    moment = 0
    wake = hub.subscribe(conversation_id)
    try:
        async with sse_response(request) as stream:
            while not hub.closing.is_set() and stream.is_connected():
                wake.clear()
                for message in await service.transcript(conversation_id, after_seq=after):
                    await stream.send(
                        json.dumps(message_view(message)), id=str(message.seq), event="message"
                    )
                    after = message.seq
                row = await service.get(conversation_id)
                current = (row.status, json.dumps(row.agent, sort_keys=True))
                if current != status:
                    status = current
                    await stream.send(
                        json.dumps({"status": row.status, "agent": row.agent}), event="status"
                    )
                    for entry in await service.timeline(conversation_id, after_id=moment):
                        await stream.send(json.dumps(timeline_view(entry)), event="timeline")
                        moment = entry.id
                details = json.dumps([row.customer, row.conversation_metadata], sort_keys=True)
                if details != shown:
                    await stream.send(json.dumps(console_view(row)), event="conversation")
                shown = details
                if row.status not in ACTIVE:
                    break  # ended: the page has the last word; stop reading the store
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), STREAM_POLL_SECONDS)
        return stream
    finally:
        hub.unsubscribe(conversation_id, wake)


@routes.post("/console/api/{token}/join")
@doc("The agent joins", body=JoinRequest, answers={200: ConsoleChange}, errors=(409,))
async def join(request: web.Request) -> web.Response:
    """The agent joins; the bot is told."""
    conversation_id = _conversation_id(request)
    body = await parse_body(request, JoinRequest)
    row = await request.app[SERVICE].agent_joined(conversation_id, body.name)
    request.app[CONSOLE_HUB].wake(conversation_id)
    return web.json_response({"conversation": console_view(row)})


@routes.post("/console/api/{token}/messages")
@doc(
    "The agent replies",
    body=AgentMessageRequest,
    answers={201: MessageAnswer, 200: MessageAnswer},
    errors=(409,),
)
async def send(request: web.Request) -> web.Response:
    """The agent replies; the reply is relayed to the bot as a signed agent.message event."""
    conversation_id = _conversation_id(request)
    body = await parse_body(request, AgentMessageRequest)
    # The author is the joined agent's name, read in the message's own transaction.
    message, created = await request.app[SERVICE].agent_message(
        conversation_id, body, None, by_assignee=True
    )
    request.app[CONSOLE_HUB].wake(conversation_id)
    return web.json_response({"message": message_view(message)}, status=201 if created else 200)


@routes.post("/console/api/{token}/typing")
@doc(
    "The agent is typing a reply",
    answers={
        204: Answer(None, "Noted; the bot hears `agent.typing` at most once every few seconds.")
    },
    errors=(409,),
)
async def typing(request: web.Request) -> web.Response:
    """The agent is typing: relayed to the bot as agent.typing (throttled, never stored)."""
    conversation_id = _conversation_id(request)
    row = await request.app[SERVICE].get(conversation_id)
    if row.status != Status.ACTIVE:
        # Only the agent who has the chat types in it; after its end nobody does.
        raise InvalidTransition(conversation_id, row.status, "report typing in")
    # The author is the assigned agent, as for the replies this page sends.
    name = (row.agent or {}).get("name")
    event = InboundEvent(
        kind="agent.typing",
        event_id=f"console-typing-{uuid.uuid4().hex}",
        conversation_id=conversation_id,
        agent_name=name if isinstance(name, str) else None,
    )
    await request.app[INBOUND].typing(row.channel, event)
    return web.Response(status=204)


@routes.post("/console/api/{token}/close")
@doc(
    "The agent ends the conversation",
    body=ReasonRequest,
    body_optional=True,
    answers={200: ConsoleChange},
    errors=(409,),
)
async def close(request: web.Request) -> web.Response:
    """The agent ends the conversation."""
    conversation_id = _conversation_id(request)
    body = await parse_body(request, ReasonRequest, optional=True)
    row = await request.app[SERVICE].close(conversation_id, "agent", body.reason)
    request.app[CONSOLE_HUB].wake(conversation_id)
    return web.json_response({"conversation": console_view(row)})


@routes.post("/console/api/{token}/release")
@doc(
    "The agent hands the conversation back to the bot",
    body=ReasonRequest,
    body_optional=True,
    answers={200: ConsoleChange},
    errors=(409,),
)
async def release(request: web.Request) -> web.Response:
    """The agent hands the conversation back to the bot."""
    conversation_id = _conversation_id(request)
    body = await parse_body(request, HandbackRequest, optional=True)
    row = await request.app[SERVICE].release(conversation_id, "agent", body.reason, body)
    request.app[CONSOLE_HUB].wake(conversation_id)
    return web.json_response({"conversation": console_view(row)})


async def _no_sniffing(request: web.Request, response: web.StreamResponse) -> None:
    # The console's scripts, styles and JSON are only ever what their type says.
    if request.path.startswith("/console/"):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")


def setup(app: web.Application) -> None:
    """Mount the console's routes (conversation pages, agent desks, the supervisor page) and
    static files."""
    app.add_routes(routes)
    app.add_routes(desk.routes)
    app.add_routes(agent_action_routes)
    app.add_routes(supervisor.routes)
    app.add_routes(static_routes)
    app.on_response_prepare.append(_no_sniffing)
