"""Supervisor views: list and search conversations, the queue per channel, and the link to
the console's live supervisor page.

The admin token sees every organization (`?organization_id=` narrows); an organization
token sees only its organization's conversations and channels, and naming another
organization is 403. The bots' token is refused (401): it is shared by every bot, so it
names no conversations of its own, and a bot reads its conversation by id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from bridge.api.openapi import Access, Operations
from bridge.api.query import parse_query
from bridge.api.supervision_answers import ConversationPage, QueueAnswer, SupervisorLinkAnswer
from bridge.api.tenancy import owning_organization
from bridge.services.supervision_query import ConversationQuery, Name, QueueQuery
from bridge.typedefs import SUPERVISION, SUPERVISOR_LINKS

routes = web.RouteTableDef()
doc = Operations("Supervision", Access.DIRECTORY)

# The page's data is the conversations' own: never cached on the way.
NO_STORE = {"Cache-Control": "no-store"}


@routes.get("/v1/conversations")
@doc(
    "List and search conversations",
    query=ConversationQuery,
    answers={200: ConversationPage},
    description="Filters combine; `status` repeats. Pages follow `(created_at, id)` from "
    "`cursor` (the last page's `next_cursor`, with the same `order`).",
)
async def list_conversations(request: web.Request) -> web.Response:
    """One page of conversations matching the filters, and the cursor of the next."""
    query = parse_query(request.query, ConversationQuery)
    organization = owning_organization(request, query.organization_id)
    page = await request.app[SUPERVISION].conversations(query, organization, datetime.now(UTC))
    return web.json_response(page, headers=NO_STORE)


@routes.get("/v1/queue")
@doc("The queue of each channel", query=QueueQuery, answers={200: QueueAnswer})
async def queue(request: web.Request) -> web.Response:
    """Per channel: how many wait, the oldest wait, and the first waiting chats in order."""
    query = parse_query(request.query, QueueQuery)
    organization = owning_organization(request, query.organization_id)
    answer = await request.app[SUPERVISION].queue(query, organization, datetime.now(UTC))
    return web.json_response(answer, headers=NO_STORE)


class LinkQuery(BaseModel):
    """Whose conversations a supervisor link shows: the caller's organization, or for the
    admin the one named (none: every organization's)."""

    model_config = ConfigDict(extra="forbid")

    organization_id: Name | None = None


@routes.get("/v1/supervisor_link")
@doc(
    "A link to the console's supervisor page", query=LinkQuery, answers={200: SupervisorLinkAnswer}
)
async def supervisor_link(request: web.Request) -> web.Response:
    """A fresh link to the console's live supervisor page (whoever holds it sees the views)."""
    query = parse_query(request.query, LinkQuery)
    organization = owning_organization(request, query.organization_id)
    links = request.app[SUPERVISOR_LINKS]
    return web.json_response(
        {
            "organization_id": organization,
            "url": links.url_for(organization),
            "expires_in_seconds": links.ttl_seconds,
        },
        headers=NO_STORE,
    )
