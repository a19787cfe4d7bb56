"""Chatvisor's wire shapes, and how they become bridge events.

Documented: the Conversation object `{customerId, status: UNREAD|DONE|UNRESOLVED,
lastMessage{...}, url}` of the "new conversation" and "status change" webhooks, and that
"new message" carries a Message and "new subscriber" a Customer object.

Assumed (the public docs do not show them):
- a Message is `{id, customerId, text, timestamp, direction: IN|OUT, user{id, firstname,
  lastname, name}, externalId, source}`: IN was written by the customer, OUT by an agent;
  messages the bridge posts carry our `source` marker and an `externalId` that starts
  with it, and keep them when Chatvisor sends them back;
- an entry of `GET /rest/v1/customer` (`{page, results: [...]}`) is a Customer with the
  Conversation's `status` and `lastMessage`, its id in `id` (or `customerId`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.errors import MalformedPayload
from bridge.ports.agent_side import InboundEvent

Status = Literal["UNREAD", "DONE", "UNRESOLVED"]
DONE: Status = "DONE"


def _as_text(value: Any) -> Any:
    # Chatvisor's examples show numeric ids; the bridge keeps every id as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class ChatvisorUser(BaseModel):
    """The agent (user) who wrote a message."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    firstname: str | None = None
    lastname: str | None = None

    _text_id = field_validator("id", mode="before")(_as_text)

    def display_name(self) -> str | None:
        """`name`, else first and last name, else None."""
        if self.name:
            return self.name
        joined = " ".join(part for part in (self.firstname, self.lastname) if part)
        return joined or None


class ChatvisorMessage(BaseModel):
    """A Message (assumed shape, see the module docstring)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1)
    customer_id: str = Field(alias="customerId", min_length=1)
    text: str | None = None
    timestamp: int | float | str | None = None
    direction: Literal["IN", "OUT"]
    user: ChatvisorUser | None = None
    external_id: str | None = Field(default=None, alias="externalId")
    source: str | None = None

    _text_ids = field_validator("id", "customer_id", mode="before")(_as_text)

    def is_echo(self, marker: str) -> bool:
        """Whether the bridge itself posted this message."""
        return self.source == marker or (self.external_id or "").startswith(f"{marker}:")

    def agent_event(self, marker: str) -> InboundEvent | None:
        """The agent.message this is, or None for the customer's own words and our echoes."""
        if self.direction != "OUT" or self.is_echo(marker) or not (self.text or "").strip():
            return None
        return InboundEvent(
            kind="agent.message",
            # The platform's message id: a redelivery, or the same message seen by a poll,
            # is applied once.
            event_id=f"chatvisor:msg:{self.id}",
            external_ref=self.customer_id,
            agent_id=self.user.id if self.user else None,
            agent_name=self.user.display_name() if self.user else None,
            text=self.text,
        )


class ChatvisorConversation(BaseModel):
    """The Conversation object of the new-conversation and status-change webhooks."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    customer_id: str = Field(alias="customerId", min_length=1)
    status: Status
    last_message: dict[str, Any] | None = Field(default=None, alias="lastMessage")
    url: str | None = None
    timestamp: int | float | str | None = None

    _text_id = field_validator("customer_id", mode="before")(_as_text)

    def closed_event(self) -> InboundEvent | None:
        """conversation.closed when the status is DONE; other statuses change nothing here."""
        if self.status != DONE:
            return None
        return InboundEvent(
            kind="conversation.closed",
            event_id=status_event_id(self.customer_id, self.status, self._marker()),
            external_ref=self.customer_id,
        )

    def last_message_id(self) -> str | None:
        """The id of the last message, if the object carries one."""
        if not self.last_message:
            return None
        value = _as_text(self.last_message.get("id"))
        return value if isinstance(value, str) and value else None

    def _marker(self) -> str:
        # What tells this status change from an earlier one to the same status: its own
        # timestamp when sent, else the last message's timestamp or id.
        if self.timestamp is not None:
            return str(self.timestamp)
        if self.last_message:
            for key in ("timestamp", "id"):
                if self.last_message.get(key) is not None:
                    return str(self.last_message[key])
        return ""


def status_event_id(customer_id: str, status: str, marker: str) -> str:
    """A stable id for a status change: the same change always hashes the same."""
    digest = hashlib.sha256(f"{customer_id}\0{status}\0{marker}".encode()).hexdigest()
    return f"chatvisor:status:{digest[:32]}"


def _problem(what: str, exc: ValidationError) -> MalformedPayload:
    where = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in exc.errors()
    )
    return MalformedPayload(f"not a Chatvisor {what}: {where}")


def parse_webhook(body: dict[str, Any], marker: str) -> list[InboundEvent]:
    """The events in one webhook body (all three hooks may share one URL)."""
    # A Message is told by its own fields first: it might carry a status of its own
    # (delivery, say), while a Conversation has its text only inside lastMessage.
    is_message = "direction" in body or "text" in body
    try:
        if is_message:
            event = ChatvisorMessage.model_validate(body).agent_event(marker)
        elif "status" in body:
            event = ChatvisorConversation.model_validate(body).closed_event()
        elif "id" in body:
            # "New subscriber" (a Customer object): nothing for a conversation to do.
            return []
        else:
            raise MalformedPayload(
                "not a Chatvisor Conversation, Message or Customer object (no status, text or id)"
            )
    except ValidationError as exc:
        raise _problem("Message" if is_message else "Conversation", exc) from exc
    return [event] if event is not None else []


@dataclass(frozen=True, slots=True)
class CustomerState:
    """One entry of the customer list, reduced to what polling compares."""

    customer_id: str
    status: Status
    last_message_id: str | None
    agent_message: InboundEvent | None
    closed: InboundEvent | None


def parse_customer(entry: Any, marker: str) -> CustomerState:
    """One customer list entry; MalformedPayload when it lacks an id or a known status."""
    if not isinstance(entry, dict):
        raise MalformedPayload("a Chatvisor customer list entry must be an object")
    data = dict(entry)
    data.setdefault("customerId", data.get("id"))
    try:
        conversation = ChatvisorConversation.model_validate(data)
    except ValidationError as exc:
        raise _problem("customer list entry", exc) from exc
    agent_message = None
    if conversation.last_message:
        message = dict(conversation.last_message)
        message.setdefault("customerId", conversation.customer_id)
        try:
            agent_message = ChatvisorMessage.model_validate(message).agent_event(marker)
        except ValidationError:
            # A last message of an unknown shape is no agent message; the status still counts.
            agent_message = None
    return CustomerState(
        customer_id=conversation.customer_id,
        status=conversation.status,
        last_message_id=conversation.last_message_id(),
        agent_message=agent_message,
        closed=conversation.closed_event(),
    )
