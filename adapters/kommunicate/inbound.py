"""Kommunicate's message webhook: its agent replies read (the adapter checks its header).

Kommunicate posts every message of every conversation to the one webhook URL: the
customer's and bot's messages the bridge itself posted come back too, as do messages of
bots in the conversation and system notices. Only a human agent's reply becomes an event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from adapters.kit import webhook_object
from adapters.kommunicate.options import KommunicateOptions
from bridge.attachments import Attachment, from_platform
from bridge.errors import MalformedPayload
from bridge.ports.agent_side import InboundEvent, InboundRequest

log = logging.getLogger(__name__)

# Put in the metadata of every message the bridge posts; the webhook brings it back.
ORIGIN_KEY = "handoff_bridge_origin"
ORIGIN_VALUE = "handoff-bridge"
# Also in that metadata: the bridge's id for the message, the same on every attempt, so a
# copy posted again after a lost answer can be told for one (Kommunicate documents no
# deduplication of sends).
MESSAGE_ID_KEY = "handoff_bridge_message_id"
# Applozic content types for group notices, hidden messages and call notices.
SYSTEM_CONTENT_TYPES = frozenset({"10", "11", "102", "103"})


def parse(request: InboundRequest, options: KommunicateOptions) -> list[InboundEvent]:
    """An agent's reply as one `agent.message`; anything else as no event."""
    payload = webhook_object(request, "a Kommunicate webhook body")
    key = payload.get("key")
    sender = payload.get("from")
    group_id = payload.get("groupId")
    if not isinstance(key, str) or not key:
        raise MalformedPayload("the webhook's 'key' (the message key) is missing")
    if not isinstance(sender, str) or not sender:
        raise MalformedPayload("the webhook's 'from' (the sender's user id) is missing")
    if isinstance(group_id, bool) or not isinstance(group_id, int | str) or group_id == "":
        raise MalformedPayload("the webhook's 'groupId' is missing")
    text = payload.get("message")
    if text is not None and not isinstance(text, str):
        raise MalformedPayload("the webhook's 'message' must be text")
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedPayload("the webhook's 'metadata' must be an object")
    if not _from_an_agent(sender, metadata, payload.get("contentType"), options):
        log.debug("kommunicate.dropped", extra={"event": key, "group": str(group_id)})
        return []
    text = (text or "").strip()
    files = _attachments(payload.get("file"))
    if not text and not files:
        return []
    client_group_id = payload.get("clientGroupId")
    return [
        InboundEvent(
            kind="agent.message",
            event_id=key,
            # Our conversation id: we gave it as clientGroupId when opening.
            conversation_id=str(client_group_id) if client_group_id else None,
            agent_id=sender,
            agent_name=options.agent_name,
            text=text,
            attachments=files,
        )
    ]


def _from_an_agent(
    sender: str, metadata: Mapping[str, Any], content_type: Any, options: KommunicateOptions
) -> bool:
    if metadata.get(ORIGIN_KEY) == ORIGIN_VALUE:
        return False  # an echo of what the bridge posted
    if sender == options.bot_user_id or sender in options.default_bot_ids:
        return False
    if sender in options.ignored_senders:
        return False
    if options.customer_user_prefix and sender.startswith(options.customer_user_prefix):
        return False  # the customer's own user, posting from somewhere else
    return str(content_type) not in SYSTEM_CONTENT_TYPES


def _attachments(file: Any) -> tuple[Attachment, ...]:
    """The webhook's `file {name, url, contentType, size, thumbnailUrl}` as an attachment."""
    if not isinstance(file, dict):
        return ()
    found = from_platform(
        file.get("url"), file.get("name"), file.get("contentType"), file.get("size")
    )
    return () if found is None else (found,)
