"""`POST /v1/availability`: before handing off, where the chat would land and who is there."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field, HttpUrl

from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Operations
from bridge.api.openapi.answers import Shown
from bridge.domain.reasons import Reason
from bridge.models import BotRef, Customer, HandoffRequest
from bridge.typedefs import AVAILABILITY

routes = web.RouteTableDef()
doc = Operations("Bot side", Access.BOT)


class AvailabilityRequest(HandoffRequest):
    """A handoff's body, or only its routing part: nothing but routing is read."""

    bot: BotRef | None = None  # type: ignore[assignment]
    customer: Customer | None = None  # type: ignore[assignment]
    callback_url: HttpUrl | None = None  # type: ignore[assignment]


class Agents(Shown):
    """The agents the bridge counts for the landing channel."""

    counted: Literal["offered", "organization"] = Field(
        description="`offered`: whom the chat would be offered to; `organization`: the"
        " channel's organization, when the chat would be offered to nobody in particular."
    )
    total: int
    online: int
    with_capacity: int = Field(description="Online, with room for one more chat.")


class Queue(Shown):
    """The landing channel's queue, as a new handoff would join it."""

    waiting: int | None = Field(description="Chats ahead; null past `queue.count_limit`.")
    estimated_wait_seconds: int | None


class Route(Shown):
    """How the chat was routed there."""

    team_id: str | None
    router_id: str | None
    fallback_channels: list[str]
    trace: list[str]


class Availability(Shown):
    """Where a handoff would land now and who is there; nothing is stored."""

    main_channel: str
    channel: str
    platform: str
    moved_from: str | None = Field(
        description="The channel the rules chose, when nobody was available there."
    )
    available: bool | None = Field(description="null: neither the platform nor the bridge can say.")
    reason: Reason | None
    source: Literal["platform", "bridge"]
    platform_error: bool = Field(
        description="The platform failed to answer; the bridge's presence answered instead."
    )
    agents: Agents
    queue: Queue
    open_now: bool
    next_opening: datetime | None
    route: Route


@routes.post("/v1/availability")
@doc(
    "Check availability before handing off",
    body=AvailabilityRequest,
    answers={200: Availability},
    errors=(422,),
)
async def availability(request: web.Request) -> web.Response:
    """Where this handoff would land and who is there now, without storing anything."""
    body = await parse_body(request, AvailabilityRequest)
    customer = body.customer.model_dump(mode="json") if body.customer else {}
    answer = await request.app[AVAILABILITY].check(
        body.channel, body.region, customer, body.metadata, body.settings
    )
    return web.json_response(answer)
