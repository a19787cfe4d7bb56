"""The bot side's and the operator's answers as models, for the document.

The handlers build their answers in bridge/views.py; these models say what those answers
hold. They refuse unknown fields, so the schemathesis run and the answer-conformance test
fail when a view grows a field the document does not describe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.attachments import Attachment
from bridge.domain.status import Status
from bridge.models import MetadataValue, Role
from bridge.relay.jobs import DeliveryStatus
from bridge.routing.regions import RouteRule


class Shown(BaseModel):
    """An answer's model: every field it shows, and no other."""

    model_config = ConfigDict(extra="forbid")


class Message(Shown):
    """One transcript message."""

    seq: int = Field(description="Its place in the transcript; page with `after=seq`.")
    role: Role
    text: str
    author: str | None
    id: str | None = Field(description="The sender's own id for the message, if it gave one.")
    sent_at: datetime
    attachments: list[Attachment] = Field(
        default_factory=list, description="Its files, as links; left out when it has none."
    )


class MessageAnswer(Shown):
    """A stored message."""

    message: Message


class Transcript(Shown):
    """A page of the transcript, oldest first."""

    messages: list[Message]


class Route(Shown):
    """Why the conversation went where it went."""

    rule: RouteRule
    reason: str
    trace: list[str]


class BotRefShown(Shown):
    """The bot platform and its own id for the conversation."""

    platform: str
    conversation_id: str


class Routing(Shown):
    """Who the chat is offered to, and its place in the channel's queue."""

    team_id: str | None
    router_id: str | None
    priority: int
    offered_to: list[str]
    steps_in_effect: int
    assignee_id: str | None
    queue_position: int | None = Field(description="1 is next; null when not waiting.")
    estimated_wait_seconds: int | None


class Conversation(Shown):
    """A conversation's state, with why it went where it went and its place in the queue."""

    id: str
    status: Status
    status_reason: str | None
    main_channel: str
    channel: str
    platform: str
    region: str | None
    route: Route
    join_url: str | None = Field(description="A freshly signed console link; null once ended.")
    bot: BotRefShown
    callback_url: str
    customer: dict[str, Any]
    metadata: dict[str, MetadataValue]
    settings: dict[str, Any]
    agent: dict[str, Any] | None
    routing: Routing
    external_ref: str | None
    platform_join_url: str | None
    handback: dict[str, Any] | None = Field(
        default=None, description="What the agent said when handing it back, and who."
    )
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class OutboxItem(Shown):
    """A delivery, for the operator."""

    id: int
    conversation_id: str | None
    kind: str
    event_type: str | None
    target: str
    webhook_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class OutboxPage(Shown):
    """A page of deliveries; pass `next_after` as `after` for the next one."""

    items: list[OutboxItem]
    next_after: int | None


class Decision(Shown):
    """Where a would-be handoff goes and why; nothing is stored."""

    main_channel: str
    channel: str
    region_rule: RouteRule
    rule: str | None
    team_id: str | None
    router_id: str | None
    agent_ids: list[str]
    assignee: str | None
    priority: int
    settings: dict[str, Any]
    outside_hours: bool
    next_opening: datetime | None
    fallback_channels: list[str] = Field(
        default_factory=list,
        description="Where the chat moves, in order, when nobody is available on `channel`.",
    )
    fallback_after_seconds: float | None = Field(
        default=None,
        description="After how long a chat nobody took moves on to the next fallback channel.",
    )
    trace: list[str]


class Alive(Shown):
    """The process is up."""

    status: Literal["ok"]


class Readiness(Shown):
    """Whether the store answers and the relay runs."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


class UpdatedConversations(Shown):
    """The active conversations a profile change reached."""

    updated_conversations: list[str]


class MetadataAnswer(Shown):
    """A conversation's metadata after the change."""

    conversation_id: str
    metadata: dict[str, MetadataValue]


class Done(Shown):
    """The change was made."""

    result: Literal["ok"]
