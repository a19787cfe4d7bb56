"""The agent desk: an agent's personal page to go online and take the chats offered to them.

Every route takes the signed desk token from the URL and acts only as the one agent it
names; a tampered or expired token gets a 403 (an HTML page for the page, JSON for the
API). Presence: `absent` (not signed in) becomes `offline` (signed in) when the page
posts `sign-in` on load, and Start / Stop set `online` / `offline`. Signing in is a POST
the page's script makes, not a side effect of a GET, so a link preview or a prefetch of
the URL signs no one in. The page polls `state`; taking a chat answers with the join link
of the conversation page, where the agent is already joined.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from adapters.console.pages import forbidden_page, html_page
from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Answer, Operations
from bridge.api.openapi.directory import DeskAgentAnswer, DeskState, Taken
from bridge.errors import Forbidden
from bridge.typedefs import ASSIGNMENT, CONSOLE_HUB, DESK_LINKS, SERVICE
from bridge.views import desk_agent_view, offer_view

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
doc = Operations("Agent desk", Access.LINK, errors=(404,))


class DeskPresence(BaseModel):
    """Start (online) or Stop (offline); `absent` is only for signing out elsewhere."""

    model_config = ConfigDict(extra="forbid")

    presence: Literal["online", "offline"]


def _agent_id(request: web.Request) -> str:
    return request.app[DESK_LINKS].agent_id(request.match_info["token"])


@routes.get("/console/desk/{token}")
@doc(
    "The agent's desk page",
    answers={
        200: Answer(None, "The page.", media_types=("text/html",)),
        403: Answer(None, "The link is not valid.", media_types=("text/html",)),
    },
)
async def page(request: web.Request) -> web.StreamResponse:
    """The agent's desk page (the script fetches the data with the same token)."""
    try:
        _agent_id(request)
    except Forbidden:
        return forbidden_page()
    return html_page("desk.html")


@routes.post("/console/desk-api/{token}/sign-in")
@doc("The desk was opened: an absent agent becomes offline", answers={200: DeskAgentAnswer})
async def sign_in(request: web.Request) -> web.Response:
    """The desk was opened: an absent agent becomes offline (signed in, not started)."""
    agent_id = _agent_id(request)
    assignment = request.app[ASSIGNMENT]
    agent = await assignment.agent(agent_id)
    if agent.presence == "absent":
        await assignment.set_presence(agent_id, "offline", source="console")
        log.info("desk.signed_in", extra={"agent": agent_id})
        agent = await assignment.agent(agent_id)
    return web.json_response({"agent": desk_agent_view(agent)})


@routes.get("/console/desk-api/{token}/state")
@doc("The agent, the chats offered to them and their active chats", answers={200: DeskState})
async def state(request: web.Request) -> web.Response:
    """The agent, the chats offered to them (queue order) and their active chats."""
    agent_id = _agent_id(request)
    agent, active = await request.app[ASSIGNMENT].desk(agent_id)
    offers = await request.app[ASSIGNMENT].offers(agent_id)
    service = request.app[SERVICE]
    now = datetime.now(UTC)
    return web.json_response(
        {
            "agent": desk_agent_view(agent),
            "offers": [offer_view(row, spot, now) for row, spot in offers],
            "active": [
                {"id": row.id, "join_url": service.join_url(row), "customer": row.customer}
                for row in active
            ],
        }
    )


@routes.post("/console/desk-api/{token}/presence")
@doc("Start (online) or Stop (offline)", body=DeskPresence, answers={200: DeskAgentAnswer})
async def presence(request: web.Request) -> web.Response:
    """Start (online) or Stop (offline); pending chats with routers are re-evaluated."""
    agent_id = _agent_id(request)
    body = await parse_body(request, DeskPresence)
    assignment = request.app[ASSIGNMENT]
    await assignment.agent(agent_id)
    await assignment.set_presence(agent_id, body.presence, source="console")
    log.info("desk.presence", extra={"agent": agent_id, "presence": body.presence})
    return web.json_response({"agent": desk_agent_view(await assignment.agent(agent_id))})


@routes.post("/console/desk-api/{token}/take/{conversation_id}")
@doc("Take an offered chat: the first to take it wins", answers={200: Taken}, errors=(409,))
async def take(request: web.Request) -> web.Response:
    """Take an offered chat: the first to take it wins; others get a 409 saying why."""
    agent_id = _agent_id(request)
    row = await request.app[ASSIGNMENT].take(request.match_info["conversation_id"], agent_id)
    # A conversation page already open on this chat shows the agent at once.
    request.app[CONSOLE_HUB].wake(row.id)
    log.info("desk.taken", extra={"conversation": row.id, "agent": agent_id})
    return web.json_response(
        {"conversation_id": row.id, "join_url": request.app[SERVICE].join_url(row)}
    )
