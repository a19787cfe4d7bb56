"""Routing explained: a dry run of a would-be handoff."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Operations
from bridge.api.openapi.answers import Decision as DecisionShown
from bridge.models import HandoffRequest
from bridge.routing.engine import Decision
from bridge.typedefs import SERVICE

routes = web.RouteTableDef()
doc = Operations("Routing", Access.ADMIN)


def decision_view(decision: Decision) -> dict[str, Any]:
    """A decision as JSON."""
    return {
        "main_channel": decision.main_channel,
        "channel": decision.channel,
        "region_rule": decision.region_rule,
        "rule": decision.rule_name,
        "team_id": decision.team_id,
        "router_id": decision.router_id,
        "agent_ids": list(decision.agent_ids),
        "assignee": decision.assignee,
        "priority": decision.priority,
        "settings": decision.settings.model_dump(mode="json"),
        "outside_hours": decision.closed,
        "next_opening": decision.next_open.isoformat() if decision.next_open else None,
        "fallback_channels": list(decision.fallback_channels),
        "fallback_after_seconds": decision.fallback_after_seconds,
        "trace": list(decision.trace),
    }


@routes.post("/v1/routing/explain")
@doc(
    "Explain where a handoff would go, storing nothing",
    body=HandoffRequest,
    answers={200: DecisionShown},
)
async def explain(request: web.Request) -> web.Response:
    """Where this handoff would go and why, without storing anything."""
    body = await parse_body(request, HandoffRequest)
    return web.json_response(decision_view(request.app[SERVICE].explain(body)))
