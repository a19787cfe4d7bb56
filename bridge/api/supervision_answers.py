"""The supervisor views' answers as models, for the API document.

bridge/services/supervision.py builds the answers; these models say what they hold, and
refuse unknown fields, so the document's conformance checks fail when a view grows a
field that is not described here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from bridge.api.openapi.answers import Shown
from bridge.domain.status import Status


class CustomerSummary(Shown):
    """The customer as a supervisor sees them: no contact details."""

    id: str
    name: str | None = Field(description="First and last name, when the bot gave them.")


class AgentSummary(Shown):
    """The agent who took or joined the chat."""

    id: str | None = Field(description="Set when taken through `/assign` or the desk.")
    name: str | None


class StuckDeliveries(Shown):
    """The conversation's deliveries not delivered yet."""

    pending: int = Field(description="Due, waiting for their turn, or being retried.")
    dead: int = Field(description="Given up; see `GET /v1/outbox?status=dead`.")


class ConversationSummary(Shown):
    """One conversation in a supervisor's list."""

    id: str
    status: Status
    status_reason: str | None
    organization_id: str | None
    main_channel: str
    channel: str
    platform: str
    customer: CustomerSummary
    team_id: str | None
    agent: AgentSummary | None
    offered_to: list[str]
    priority: int
    created_at: datetime
    assigned_at: datetime | None
    closed_at: datetime | None
    wait_seconds: int = Field(
        description="Waiting so far; else until an agent came, or until it ended without one."
    )
    queue_position: int | None = Field(description="While it waits: 1 is next.")
    estimated_wait_seconds: int | None
    deliveries: StuckDeliveries


class ConversationPage(Shown):
    """A page of conversations, and the cursor of the next (null on the last page)."""

    items: list[ConversationSummary]
    next_cursor: str | None


class WaitingChat(Shown):
    """A chat waiting in a channel's queue."""

    id: str
    customer: CustomerSummary
    position: int
    estimated_wait_seconds: int | None
    wait_seconds: int
    created_at: datetime
    priority: int
    team_id: str | None
    offered_to: list[str]


class ChannelQueueAnswer(Shown):
    """One channel's queue: how many wait, the oldest wait, and the first chats in order."""

    channel: str
    organization_id: str | None
    platform: str | None = Field(description="Null for a channel no longer configured.")
    length: int
    oldest_wait_seconds: int | None
    waiting: list[WaitingChat]


class QueueAnswer(Shown):
    """The queue of each channel the caller may see."""

    channels: list[ChannelQueueAnswer]


class SupervisorLinkAnswer(Shown):
    """A fresh link to the console's supervisor page: whoever holds it sees the views."""

    organization_id: str | None = Field(description="Whose views; null: every organization's.")
    url: str
    expires_in_seconds: int


class SupervisorScope(Shown):
    """Whose conversations a supervisor link shows (null: every organization's)."""

    organization_id: str | None
