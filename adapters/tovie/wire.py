"""Tovie's Operator API on the wire: the calls Tovie makes to us, and the events we post back.

Requests are parsed leniently (Tovie may add fields; unknown ones are ignored) but a
request without its documented fields is `MalformedPayload`, naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from bridge.attachments import Attachment, with_links
from bridge.errors import FieldProblem, MalformedPayload, RequestError
from bridge.input_limits import load_json
from bridge.models import MAX_TEXT, HandoffRequest, MetadataValue
from bridge.ports.agent_side import InboundRequest

P = TypeVar("P", bound="_Payload")

# How a bridge channel and one of its region codes are written as one Tovie destinationId.
REGION_SEPARATOR = ":"


class _Payload(BaseModel):
    # Lenient on extra fields: the docs are thin and Tovie may send more than they show.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)


class SetWebhookCall(_Payload):
    """`POST {apiUrl}/setWebhook`: where Tovie wants our events."""

    url: HttpUrl


class _UserCall(_Payload):
    user_id: str = Field(alias="userId", min_length=1, max_length=256)

    @field_validator("user_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Documented as a string; a numeric id is taken as its text all the same.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class SendTextCall(_UserCall):
    """`POST {apiUrl}/sendText`: a client's message (or one line of the history)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)


class SendFileCall(_UserCall):
    """`POST {apiUrl}/sendFile`: a client's file, as a download link."""

    # Kept as sent (a plain http(s) link); bounded so "name: url" fits one message.
    url: str = Field(min_length=1, max_length=8_000, pattern=r"^https?://\S+$")
    # `fileName` per the docs; `name` as the events spell it, accepted too.
    file_name: str | None = Field(default=None, alias="fileName", max_length=1_000)
    name: str | None = Field(default=None, max_length=1_000)
    size: int | None = Field(default=None, ge=0)


class CloseChatCall(_UserCall):
    """`POST {apiUrl}/closeChat`: the client ended the chat with the agent."""

    text: str | None = Field(default=None, max_length=MAX_TEXT)


class SelectDestinationCall(_UserCall):
    """`POST {apiUrl}/selectDestination`: open the agent session on a destination."""

    # Documented as mandatory; absent or empty is taken as "the default channel".
    destination_id: str | None = Field(default=None, alias="destinationId", max_length=300)
    user_name: str | None = Field(default=None, alias="userName", max_length=512)
    attributes: dict[str, Any] = Field(default_factory=dict)
    # Documented as "not sent to the agent": parsed for shape, never stored.
    hidden_attributes: dict[str, Any] = Field(default_factory=dict, alias="hiddenAttributes")
    custom_data: dict[str, Any] = Field(default_factory=dict, alias="customData")

    @field_validator("attributes", "hidden_attributes", "custom_data", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        # The docs type these as "string" holding JSON, and show them as objects: take both.
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                # Within the bridge's JSON limits: deep nesting in a string is no safer.
                return load_json(value.encode("utf-8", "surrogatepass"))
            except RequestError:
                return value  # left for the dict check to refuse, naming the field
        return value


def parse(model: type[P], request: InboundRequest) -> P:
    """The request body as `model`, or MalformedPayload naming each bad field."""
    try:
        return model.model_validate(request.json())
    except ValidationError as exc:
        fields = [
            FieldProblem(".".join(str(p) for p in e["loc"]) or "(body)", e["msg"])
            for e in exc.errors()
        ]
        raise MalformedPayload(
            f"the Tovie request is not a documented {model.__name__.removesuffix('Call')}",
            fields,
        ) from exc


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, MetadataValue]:
    """Nested JSON as the bridge's flat metadata: `{"a": {"b": 1}}` → `{"a.b": 1}`."""
    flat: dict[str, MetadataValue] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif value is None or isinstance(value, str | int | float | bool):
            flat[name] = value
        else:
            # Lists have no flat form that keeps their order and types; keep them as JSON.
            flat[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return flat


def split_name(full: str | None) -> tuple[str | None, str | None]:
    """`"First Last Name"` as `("First", "Last Name")`; blanks are None."""
    first, _, last = (full or "").strip().partition(" ")
    return first or None, last.strip() or None


def destination(destination_id: str, name: str) -> dict[str, Any]:
    """One Tovie destination (an agent group)."""
    # "hasOnline" is a string in Tovie's own example; the bridge queues a handoff for
    # whoever comes online, so every destination is reported as taking chats.
    return {"destinationId": destination_id, "name": name, "hasOnline": "true"}


def employee(name: str, avatar_url: str) -> dict[str, str]:
    """The `employee` block of an event: the bridge knows agents by display name only."""
    first, last = split_name(name)
    return {
        "employeeId": name,
        "firstName": first or name,
        "lastName": last or "",
        "avatarUrl": avatar_url,
    }


def text_message(event_id: str, user_id: str, text: str, author: dict[str, str]) -> dict[str, Any]:
    """A `TextMessage` event: an agent's text for the client."""
    return {
        "id": event_id,
        "userId": user_id,
        "type": "TextMessage",
        "text": text,
        "employee": author,
    }


def file_message(
    event_id: str, user_id: str, url: str, name: str, author: dict[str, str]
) -> dict[str, Any]:
    """A `FileMessage` event: an agent's file link (its size is not known to the bridge)."""
    return {
        "id": event_id,
        "userId": user_id,
        "type": "FileMessage",
        "url": url,
        "name": name,
        "employee": author,
    }


def attachment_message(
    event_id: str, user_id: str, attachment: Attachment, author: dict[str, str]
) -> dict[str, Any]:
    """A `FileMessage` event for one attachment, with its size when the sender gave it."""
    event = file_message(event_id, user_id, attachment.url, attachment.name, author)
    if attachment.size is not None:
        event["size"] = str(attachment.size)  # a string in Tovie's documented example
    return event


def message_with_files(
    event_id: str,
    user_id: str,
    text: str,
    attachments: Sequence[Attachment],
    author: dict[str, str],
) -> list[dict[str, Any]]:
    """An agent message with files: its text, then a `FileMessage` per file.

    The first event keeps the bridge's event id; the others add `.1`, `.2`..., so every
    part has an id of its own that a retried delivery repeats.
    """
    events = [text_message(event_id, user_id, text, author)] if text else []
    for attachment in attachments:
        part = f"{event_id}.{len(events)}" if events else event_id
        events.append(attachment_message(part, user_id, attachment, author))
    return events


def closed(event_id: str, user_id: str, author: dict[str, str]) -> dict[str, Any]:
    """A `Closed` event: the agent session is over and the client goes back to the bot."""
    return {"id": event_id, "userId": user_id, "type": "Closed", "employee": author}


def file_link(text: str, extensions: frozenset[str]) -> tuple[str, str] | None:
    """`(url, file name)` when the whole text is one http(s) link to a file, else None."""
    candidate = text.strip()
    if not candidate or any(c.isspace() for c in candidate):
        return None
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    name = unquote(parts.path.rsplit("/", 1)[-1])
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or extension.lower() not in extensions:
        return None
    return candidate, name


def files_as_links(handoff: HandoffRequest) -> HandoffRequest:
    """The handoff with its history's files turned into `name: url` lines."""
    history = [
        message.model_copy(
            update={
                "text": with_links(message.text, message.attachments)[:MAX_TEXT],
                "attachments": [],
            }
        )
        for message in handoff.history
    ]
    return handoff.model_copy(update={"history": history})
