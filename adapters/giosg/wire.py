"""giosg's wire formats: channel webhooks in, rich (attachment) messages out.

A giosg app's webhook is `{action: added|changed|removed, resource_id, resource, channel}`;
`channel` is the path of the changed resource, which tells what the resource is. An
`added` carries the whole resource, a `changed` only the fields that changed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bridge.errors import MalformedPayload
from bridge.ports.agent_side import InboundEvent, OutboundMessage

log = logging.getLogger(__name__)

ACTIONS = frozenset({"added", "changed", "removed"})
# /api/v5/orgs/{org}/owned_chats/{chat}/messages, /api/v5/users/{uid}/chats/{chat}/messages...
_MESSAGES = re.compile(r"chats/(?P<chat>[^/]+)/messages/?$")
_MEMBERSHIPS = re.compile(r"chats/(?P<chat>[^/]+)/memberships/?$")
# /api/v5/orgs/{org}/owned_chats (and .../owned_chats/{chat}, routed_chats, chats).
_CHATS = re.compile(r"chats(?:/(?P<chat>[^/]+))?/?$")


@dataclass(frozen=True, slots=True)
class GiosgAction:
    """A button on a rich message: `button` answers with `value`, `link_button` opens it."""

    text: str
    value: str
    type: Literal["button", "link_button"] = "button"


@dataclass(frozen=True, slots=True)
class GiosgAttachment:
    """A giosg message attachment: a line of text and its buttons."""

    text: str | None = None
    actions: tuple[GiosgAction, ...] = ()


def rich_body(text: str, attachments: Sequence[GiosgAttachment]) -> dict[str, Any]:
    """The message body with attachments, as giosg's chat message API takes it."""
    return {
        "type": "msg",
        "message": text,
        "attachments": [
            {
                **({"text": a.text} if a.text else {}),
                "actions": [{"text": b.text, "type": b.type, "value": b.value} for b in a.actions],
            }
            for a in attachments
        ],
    }


def file_buttons(message: OutboundMessage) -> list[GiosgAttachment]:
    """A message's files as attachments of one `link_button` each, labelled with the name.

    giosg's message API takes links, not files; as plain text each is `name: url`.
    """
    return [
        GiosgAttachment(actions=(GiosgAction(a.name, a.url, "link_button"),))
        for a in message.attachments
    ]


def plain_text(text: str, attachments: Sequence[GiosgAttachment]) -> str:
    """The same message as plain text, for when rich content is absent or refused."""
    lines = [text] if text else []
    for attachment in attachments:
        if attachment.text:
            lines.append(attachment.text)
        buttons = [b for b in attachment.actions if b.type == "button"]
        if buttons:
            lines.append(" ".join(f"[{b.text}]" for b in buttons))
        lines.extend(f"{b.text}: {b.value}" for b in attachment.actions if b.type == "link_button")
    return "\n".join(lines)


def _text(resource: Mapping[str, Any], key: str) -> str | None:
    value = resource.get(key)
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise MalformedPayload(f"giosg webhook: resource.{key} must be text")


def _envelope(body: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:
    action = body.get("action")
    if not isinstance(action, str) or action not in ACTIONS:  # a list or object is unhashable
        raise MalformedPayload("giosg webhook: action must be added, changed or removed")
    resource_id = body.get("resource_id")
    if not isinstance(resource_id, str | int) or isinstance(resource_id, bool) or resource_id == "":
        raise MalformedPayload("giosg webhook: resource_id is missing")
    channel = body.get("channel")
    if not isinstance(channel, str) or not channel:
        raise MalformedPayload("giosg webhook: channel is missing")
    # A `removed` may come without the resource; the others always carry one.
    resource = body.get("resource", {} if action == "removed" else None)
    if not isinstance(resource, dict):
        raise MalformedPayload("giosg webhook: resource must be an object")
    return action, str(resource_id), resource, channel


def parse_webhook(body: dict[str, Any]) -> list[InboundEvent]:
    """The bridge events in one giosg channel webhook (echoes and other noise dropped)."""
    action, resource_id, resource, channel = _envelope(body)
    if match := _MESSAGES.search(channel):
        return _message(action, resource_id, resource, match["chat"])
    if match := _MEMBERSHIPS.search(channel):
        return _membership(action, resource_id, resource, match["chat"])
    if match := _CHATS.search(channel):
        return _chat(action, match["chat"] or resource_id, resource)
    log.debug("giosg.webhook_ignored", extra={"channel": channel})
    return []


def _message(
    action: str, resource_id: str, resource: dict[str, Any], channel_chat: str
) -> list[InboundEvent]:
    if action != "added":
        # Edits and deletions of messages are not relayed: the bot has already said it.
        return []
    chat_id = _text(resource, "chat_id") or channel_chat
    message_id = _text(resource, "id") or resource_id
    sender_type = _text(resource, "sender_type")
    if sender_type is None:
        raise MalformedPayload("giosg webhook: the message has no sender_type")
    if sender_type != "user":
        # "visitor" is the bridge itself (every visitor of its chats is one it made): an
        # echo. Anything else (e.g. a system sender) is no agent's reply.
        return []
    kind = _text(resource, "type") or "msg"
    name = _text(resource, "sender_public_name") or _text(resource, "sender_name")
    sender = _text(resource, "sender_id")
    if kind == "join":
        return [InboundEvent("agent.joined", message_id, chat_id, agent_id=sender, agent_name=name)]
    text = _text(resource, "message")
    if kind != "msg" or not text or not text.strip():
        # Leave notices, autosuggestions and attachment-only messages carry no text to relay.
        return []
    return [
        InboundEvent(
            "agent.message", message_id, chat_id, agent_id=sender, agent_name=name, text=text
        )
    ]


def _membership(
    action: str, resource_id: str, resource: dict[str, Any], chat_id: str
) -> list[InboundEvent]:
    if action != "added" or resource.get("member_type") != "user":
        return []
    if resource.get("is_participating") is False:
        return []
    member = _text(resource, "member_id") or resource_id
    name = _text(resource, "member_public_name") or _text(resource, "member_name")
    return [
        InboundEvent(
            "agent.joined", f"{chat_id}:member:{member}", chat_id, agent_id=member, agent_name=name
        )
    ]


def _chat(action: str, chat_id: str, resource: dict[str, Any]) -> list[InboundEvent]:
    if action == "removed":
        # A deleted chat (e.g. purged for GDPR) cannot go on: the conversation is over.
        return [InboundEvent("conversation.closed", f"{chat_id}:removed", chat_id)]
    events: list[InboundEvent] = []
    present = resource.get("present_user_participant_count")
    if present is not None and (not isinstance(present, int) or isinstance(present, bool)):
        raise MalformedPayload("giosg webhook: present_user_participant_count must be a number")
    # `changed` carries only changed fields: a count above zero means a user is now present.
    if present:
        events.append(InboundEvent("agent.joined", f"{chat_id}:present", chat_id))
    ended = resource.get("is_ended")
    if ended is not None and not isinstance(ended, bool):
        raise MalformedPayload("giosg webhook: is_ended must be true or false")
    if ended:
        events.append(InboundEvent("conversation.closed", f"{chat_id}:ended", chat_id))
    return events
