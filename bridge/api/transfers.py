"""A conversation's agent-side actions through the API: transfer it, hand it back to the bot.

`POST /v1/conversations/{id}/transfer` is for operators acting for agents: the admin
token, or an organization token for its own organization's conversations (another's
answers 404, as an unknown one). `POST /v1/conversations/{id}/release` stays the bot's
(it takes the chat back) and is also the agents': with an operator's token, or naming
the assigned `agent_id`, it is the agent handing the chat back, and the bot hears
`conversation.released` with the agent's summary.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api.auth import caller_of
from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Operations
from bridge.api.openapi.answers import Conversation
from bridge.db.tables import ConversationRow
from bridge.errors import Conflict, ConversationNotFound, FieldProblem, Forbidden, InvalidInput
from bridge.models import ReleaseRequest, TransferRequest
from bridge.typedefs import ASSIGNMENT, CONSOLE_HUB, SERVICE, TRANSFERS
from bridge.views import conversation_view

routes = web.RouteTableDef()
doc = Operations("Bot side", Access.DIRECTORY)

_TARGETS = ("agent_id", "team_id", "channel")


async def _answer(request: web.Request, row: ConversationRow) -> web.Response:
    queue = await request.app[ASSIGNMENT].spot(row)
    return web.json_response(conversation_view(row, request.app[SERVICE].join_url(row), queue))


def one_target(body: TransferRequest) -> None:
    """A transfer names exactly one of an agent, a team or a channel (422 otherwise)."""
    named = [name for name in _TARGETS if getattr(body, name) is not None]
    if len(named) != 1:
        problem = "give exactly one of agent_id, team_id, channel"
        raise InvalidInput(
            "a transfer needs one target", [FieldProblem(f, problem) for f in (named or _TARGETS)]
        )


async def _visible(request: web.Request, conversation_id: str) -> ConversationRow:
    """The conversation, if the caller's organization (if any) owns it; else 404."""
    row = await request.app[SERVICE].get(conversation_id)
    own = caller_of(request).organization_id
    if own is not None and row.organization_id != own:
        raise ConversationNotFound(conversation_id)
    return row


@routes.post("/v1/conversations/{conversation_id}/transfer")
@doc(
    "Move the chat to another agent, team or channel of its organization",
    body=TransferRequest,
    answers={200: Conversation},
    errors=(403, 404, 409),
)
async def transfer(request: web.Request) -> web.Response:
    """Move the chat to another agent, team or channel of its organization, with a note."""
    caller = caller_of(request)
    if caller.role == "bot":
        raise Forbidden(
            "transfers are made for agents, with the admin or an organization token",
            [FieldProblem("Authorization", "the bot's token cannot transfer")],
        )
    body = await parse_body(request, TransferRequest)
    one_target(body)
    conversation_id = request.match_info["conversation_id"]
    await _visible(request, conversation_id)
    row = await request.app[TRANSFERS].transfer(
        conversation_id,
        body,
        reason="api",
        by=caller.user_id,
        organization_id=caller.organization_id,
    )
    # A console page open on the chat shows the move at once.
    request.app[CONSOLE_HUB].wake(conversation_id)
    return await _answer(request, row)


async def release(request: web.Request) -> web.Response:
    """The bot takes the chat back, or an agent hands it back with a summary."""
    caller = caller_of(request)
    body = await parse_body(request, ReleaseRequest, optional=True)
    conversation_id = request.match_info["conversation_id"]
    row = await _visible(request, conversation_id)
    for_agent = body.agent_id is not None or caller.role in ("admin", "org")
    if body.agent_id is not None:
        if caller.role == "bot":
            raise Forbidden(
                "an agent's hand-back needs the admin or an organization token",
                [FieldProblem("agent_id", "not with the bot's token")],
            )
        if body.agent_id != row.assignee_id:
            raise Conflict(
                "that agent is not the one assigned to this chat",
                [FieldProblem("agent_id", "not the assigned agent")],
            )
    service = request.app[SERVICE]
    if for_agent:
        row = await service.release(conversation_id, "agent", body.reason, body)
    else:
        row = await service.release(conversation_id, "bot", body.reason, body)
    request.app[CONSOLE_HUB].wake(conversation_id)
    return await _answer(request, row)
