"""The supervisor page: the queue per channel and the conversations, read-only and live.

Every route takes the signed supervisor token from the URL and shows only the
organization it names (or every organization, for a link the admin made); a tampered or
expired token gets a 403 (an HTML page for the page, JSON for the API). The page reads
the same views as `GET /v1/queue` and `GET /v1/conversations`, with the same filters,
and keeps one server-sent event stream open: it says `changed` whenever a conversation
of the page's organization changed, and the page then reads the views again. Nothing on
the page changes anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import TypeVar

from aiohttp import web
from aiohttp_sse import sse_response

from adapters.console.pages import forbidden_page, html_page
from bridge.api.openapi import Access, Answer, Operations
from bridge.api.query import parse_query
from bridge.api.supervision_answers import ConversationPage, QueueAnswer, SupervisorScope
from bridge.errors import FieldProblem, Forbidden
from bridge.services.supervision_query import ConversationQuery, QueueQuery
from bridge.typedefs import CONSOLE_HUB, SUPERVISION, SUPERVISOR_LINKS

# A stream looks again at most this often however busy the bridge is (every change wakes
# it; changes within this gap are read together) ...
MIN_GAP_SECONDS = 1.0
# ... and at least this often, for a wake-up that got lost (another replica's, say).
STREAM_POLL_SECONDS = 5.0

routes = web.RouteTableDef()
Q = TypeVar("Q", ConversationQuery, QueueQuery)
doc = Operations("Console", Access.LINK)


def _scope(request: web.Request) -> str | None:
    """The organization the link shows; None for every organization."""
    return request.app[SUPERVISOR_LINKS].organization_id(request.match_info["token"])


def _narrowed(scope: str | None, asked: str | None) -> str | None:
    """`?organization_id=` narrows a link for every organization; another's is 403."""
    if scope is None:
        return asked
    if asked is not None and asked != scope:
        raise Forbidden(
            f"this link does not show organization {asked!r}",
            [FieldProblem("organization_id", "not this link's organization")],
        )
    return scope


def _asked(request: web.Request, model: type[Q]) -> tuple[Q, str | None]:
    """The page's query, and the organization whose conversations it may show."""
    scope = _scope(request)
    query = parse_query(request.query, model)
    return query, _narrowed(scope, query.organization_id)


@routes.get("/console/supervisor/{token}")
@doc(
    "The supervisor page",
    answers={
        200: Answer(None, "The page.", media_types=("text/html",)),
        403: Answer(
            None, "The link is not valid (tampered or expired).", media_types=("text/html",)
        ),
    },
)
async def page(request: web.Request) -> web.StreamResponse:
    """The supervisor page (its script reads the views with the same token)."""
    try:
        _scope(request)
    except Forbidden:
        return forbidden_page()
    return html_page("supervisor.html")


@routes.get("/console/supervisor-api/{token}/scope")
@doc("Whose conversations the supervisor link shows", answers={200: SupervisorScope})
async def scope(request: web.Request) -> web.Response:
    """Whose conversations this link shows, for the page's heading."""
    return web.json_response({"organization_id": _scope(request)})


@routes.get("/console/supervisor-api/{token}/conversations")
@doc(
    "The supervisor page's conversations",
    query=ConversationQuery,
    answers={200: ConversationPage},
)
async def conversations(request: web.Request) -> web.Response:
    """One page of conversations, filtered as `GET /v1/conversations` filters."""
    query, organization = _asked(request, ConversationQuery)
    page = await request.app[SUPERVISION].conversations(query, organization, datetime.now(UTC))
    return web.json_response(page)


@routes.get("/console/supervisor-api/{token}/queue")
@doc("The supervisor page's queue", query=QueueQuery, answers={200: QueueAnswer})
async def queue(request: web.Request) -> web.Response:
    """The queue per channel, as `GET /v1/queue` shows it."""
    query, organization = _asked(request, QueueQuery)
    answer = await request.app[SUPERVISION].queue(query, organization, datetime.now(UTC))
    return web.json_response(answer)


@routes.get("/console/supervisor-api/{token}/events")
@doc(
    "Live server-sent events: `changed` when the views may show something new",
    answers={200: Answer(None, "The stream.", media_types=("text/event-stream",))},
)
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `changed` when the views may show something new.

    The first is sent at once, so a page that loaded before the stream connected reads
    again. Then each wake-up (any conversation, on any replica) reads a small marker of
    the organization's conversations under way, and only a different one is sent.
    """
    organization = _scope(request)
    supervision = request.app[SUPERVISION]
    hub = request.app[CONSOLE_HUB]
    wake = hub.watch_everything()
    try:
        async with sse_response(request) as stream:
            shown: object = None
            while not hub.closing.is_set() and stream.is_connected():
                wake.clear()
                marker = await supervision.change_marker(organization)
                if marker != shown:
                    shown = marker
                    counts = {"under_way": marker.under_way, "waiting": marker.waiting}
                    await stream.send(json.dumps(counts), event="changed")
                # Changes that come in a burst are read together, once; a wake-up that
                # came meanwhile stays set, so the next change is read right after.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hub.closing.wait(), MIN_GAP_SECONDS)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), STREAM_POLL_SECONDS)
        return stream
    finally:
        hub.unwatch_everything(wake)
