"""The directory's answers (agents, teams, subscriptions, routers) and the console's, as models.

Like answers.py: what the handlers' views hold, each model refusing unknown fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from bridge.api.openapi.answers import Message, Shown
from bridge.domain.status import Status
from bridge.models import MetadataValue
from bridge.routing.regions import RouteRule
from bridge.routing.steps.schema import Precondition

Presence = Literal["online", "offline", "absent"]


class Agent(Shown):
    """An agent with presence and load."""

    id: str
    name: str
    email: str | None
    organization_id: str
    presence: Presence
    capacity: int
    active_chats: int
    teams: list[str]
    source: str
    updated_at: datetime


class AgentList(Shown):
    """Every agent the caller may see."""

    items: list[Agent]


class PresenceAnswer(Shown):
    """An agent's new presence."""

    id: str
    presence: Presence


class DeskLink(Shown):
    """A fresh personal desk link: whoever holds it signs in as the agent."""

    agent_id: str
    url: str


class Team(Shown):
    """A team as stored."""

    id: str
    name: str
    hours: str | None
    organization_id: str


class TeamWithMembers(Team):
    """A team and the agents in it."""

    members: list[str]


class TeamList(Shown):
    """Every team the caller may see."""

    items: list[TeamWithMembers]


class Subscription(Shown):
    """A subscriber of lifecycle events (its secret is shown only when it is created)."""

    id: str
    url: str
    events: list[str]
    description: str | None
    organization_id: str | None
    created_at: datetime


class NewSubscription(Subscription):
    """A new subscription, with the secret that signs its events (shown this once)."""

    secret: str


class SubscriptionList(Shown):
    """Every subscription the caller may see, without secrets."""

    items: list[Subscription]


class UserRef(Shown):
    """The user beside a `*_by_user_id`."""

    id: str


class StepShown(Shown):
    """A router step with its read-only attributes."""

    id: str
    index: int
    preconditions: list[Precondition]
    organization_ids: list[str]
    team_ids: list[str]
    user_ids: list[str]
    created_at: datetime
    created_by_user_id: str | None
    created_by_user: UserRef | None
    updated_at: datetime
    updated_by_user_id: str | None
    updated_by_user: UserRef | None


class Router(Shown):
    """A router with its ordered steps."""

    id: str
    name: str
    steps: list[StepShown]
    organization_id: str
    created_at: datetime
    created_by_user_id: str | None
    created_by_user: UserRef | None
    updated_at: datetime
    updated_by_user_id: str | None
    updated_by_user: UserRef | None


class RouterPage(Shown):
    """A page of routers, giosg's pagination."""

    count: int
    next: str | None
    previous: str | None
    results: list[Router]


class Room(Shown):
    """A channel (room) and the router it uses."""

    id: str
    name: str
    organization_id: str
    router_id: str | None


class RoomPage(Shown):
    """The organization's rooms using a router."""

    count: int
    next: None
    previous: None
    results: list[Room]


class ShortRoute(Shown):
    """Why the chat went where it went, as the agent sees it."""

    rule: RouteRule
    trace: list[str]


class ConsoleConversation(Shown):
    """A conversation as the console's agent page shows it."""

    id: str
    status: Status
    status_reason: str | None
    channel: str
    main_channel: str
    region: str | None
    customer: dict[str, Any]
    metadata: dict[str, MetadataValue]
    agent: dict[str, Any] | None
    created_at: datetime
    route: ShortRoute


class TimelineEntry(Shown):
    """A moment shown beside the messages: an agent joined or left, or how the chat ended."""

    id: int = Field(ge=0, description="0 for an end told from the conversation's own fields.")
    kind: Literal["joined", "left", "closed", "released", "cancelled", "failed"]
    at: datetime
    text: str = Field(description='The line shown, e.g. "Closed by the bot: resolved".')
    agent: str | None
    by: str | None = Field(description="`bot` or `agent`, for an end.")
    reason: str | None
    disposition: str | None


class ConsoleState(Shown):
    """The conversation, its transcript and its timeline, for the console page."""

    conversation: ConsoleConversation
    messages: list[Message]
    timeline: list[TimelineEntry]


class ConsoleChange(Shown):
    """The conversation after the agent's action."""

    conversation: ConsoleConversation


class DeskAgent(Shown):
    """The agent as their desk shows them."""

    id: str
    name: str
    presence: Presence
    capacity: int
    active_chats: int


class DeskAgentAnswer(Shown):
    """The agent after signing in or changing presence."""

    agent: DeskAgent


class Offer(Shown):
    """A pending chat offered to the agent, with what they need to choose it."""

    id: str
    channel: str
    customer: dict[str, Any]
    metadata: dict[str, MetadataValue]
    created_at: datetime
    waiting_seconds: int = Field(ge=0)
    queue_position: int | None
    estimated_wait_seconds: int | None
    route: ShortRoute


class ActiveChat(Shown):
    """A chat the agent has taken."""

    id: str
    join_url: str | None
    customer: dict[str, Any]


class DeskState(Shown):
    """The agent, the chats offered to them (queue order) and their active chats."""

    agent: DeskAgent
    offers: list[Offer]
    active: list[ActiveChat]


class Taken(Shown):
    """A taken chat and the conversation page's join link."""

    conversation_id: str
    join_url: str | None
