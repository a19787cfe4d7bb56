"""The requests the load sends: handoffs, customer and agent messages, console joins.

Every body is about 1 KB of JSON, the size the bare anchor parses, so the anchors and the
bridge read the same amount per request. A message's text starts with its marker
(`~<prefix>.<n>`), which the receiver reads back on arrival.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from bench.relay.client import encode_request
from bench.relay.load import Request
from bench.relay.servers import MARK, MESSAGES_PATH

BODY_BYTES = 1024
_FILLER = "Hello, my parcel was due on Monday and the tracking page still says it is at the depot. "


def _fill(used: int) -> str:
    """Filler text that brings a body of `used` bytes up to about BODY_BYTES."""
    wanted = max(0, BODY_BYTES - used)
    return (_FILLER * (wanted // len(_FILLER) + 1))[:wanted]


def _post(port: int, path: str, body: Mapping[str, object], token: str | None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return encode_request("POST", path, port, json.dumps(body).encode(), headers)


def marked(marker: str) -> dict[str, str]:
    """A message body `{text, id}` of about 1 KB whose text starts with the marker."""
    head = f"{MARK}{marker} "
    body = {"text": head, "id": marker}
    body["text"] = head + _fill(len(json.dumps(body)))
    return body


def customer_message(
    port: int, conversation_id: str, marker: str, token: str | None = None
) -> Request:
    """`POST /v1/conversations/{id}/messages`, as the bot relays its customer's message."""
    path = MESSAGES_PATH.format(conversation_id=conversation_id)
    return Request(port, _post(port, path, marked(marker), token), marker)


def agent_message(port: int, join_token: str, marker: str) -> Request:
    """The built-in console's send, as an agent's browser posts it."""
    body = marked(marker)
    console_body = {"text": body["text"], "client_id": body["id"]}
    path = f"/console/api/{join_token}/messages"
    return Request(port, _post(port, path, console_body, None), marker)


def join(port: int, join_token: str, agent: str) -> Request:
    """The console's join, as an agent opening the link does."""
    return Request(port, _post(port, f"/console/api/{join_token}/join", {"name": agent}, None))


def handoff(
    port: int,
    key: str,
    callback_url: str,
    token: str,
    *,
    channel: str | None = None,
    region: str | None = None,
) -> Request:
    """`POST /v1/handoffs` for a distinct customer and bot conversation named by `key`."""
    body: dict[str, object] = {
        "bot": {"platform": "webhook", "conversation_id": f"bot-{key}"},
        "customer": {
            "id": f"customer-{key}",
            "email": f"{key}@example.com",
            "firstname": "Ada",
            "lastname": "Lovelace",
        },
        "metadata": {"plan": "vip", "order": 42, "source": "bench"},
        "history": [
            {"role": "customer", "text": "Where is my order?", "sent_at": "2026-11-21T10:00:00Z"},
            {"role": "bot", "text": "", "sent_at": "2026-11-21T10:00:02Z"},
        ],
        "callback_url": callback_url,
    }
    if channel:
        body["channel"] = channel
    if region:
        body["region"] = region
    history = body["history"]
    assert isinstance(history, list)
    history[1]["text"] = "Let me get a person. " + _fill(len(json.dumps(body)) + 21)
    return Request(port, _post(port, "/v1/handoffs", body, token))
