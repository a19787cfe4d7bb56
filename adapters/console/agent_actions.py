"""The console's transfer control: where the chat may go, and moving it there.

Bound, like every console route, to the one conversation its signed token names. Only
a chat an agent has (it is active) may be transferred from here: the agent on the page
passes it on to another agent, a team or a channel of the chat's organization, with a
note that the next agent reads in the transcript.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Answer, Operations
from bridge.api.openapi.directory import ConsoleChange
from bridge.api.transfers import one_target
from bridge.domain.status import Status
from bridge.errors import Conflict, FieldProblem
from bridge.models import TransferRequest
from bridge.typedefs import CONSOLE_HUB, JOIN_LINKS, SERVICE, TRANSFERS
from bridge.views import console_view

routes = web.RouteTableDef()
doc = Operations("Console", Access.LINK, errors=(404,))


def _conversation_id(request: web.Request) -> str:
    return request.app[JOIN_LINKS].conversation_id(request.match_info["token"])


@routes.get("/console/api/{token}/transfer-options")
@doc(
    "Where the chat may be transferred: online agents, teams, channels",
    answers={200: Answer(None, "`agents`, `teams` and `channels`.")},
)
async def transfer_options(request: web.Request) -> web.Response:
    """Online agents, teams and channels of the chat's organization it may go to."""
    options = await request.app[TRANSFERS].options(_conversation_id(request))
    return web.json_response(
        {"agents": options.agents, "teams": options.teams, "channels": options.channels}
    )


@routes.post("/console/api/{token}/transfer")
@doc(
    "The agent passes the chat on",
    body=TransferRequest,
    answers={200: ConsoleChange},
    errors=(409,),
)
async def transfer(request: web.Request) -> web.Response:
    """The agent passes the chat on; the bot hears conversation.transferred."""
    conversation_id = _conversation_id(request)
    body = await parse_body(request, TransferRequest)
    one_target(body)
    current = await request.app[SERVICE].get(conversation_id)
    if current.status != Status.ACTIVE:
        raise Conflict(
            "only a chat an agent has can be transferred from the console",
            [FieldProblem("status", f"is {current.status}; join it first")],
        )
    by = (current.agent or {}).get("name")
    row = await request.app[TRANSFERS].transfer(conversation_id, body, reason="agent", by=by)
    request.app[CONSOLE_HUB].wake(conversation_id)
    return web.json_response({"conversation": console_view(row)})
