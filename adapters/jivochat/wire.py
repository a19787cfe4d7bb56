"""Jivo's wire format: reading its events and building its (secret) URLs.

Shared by the bot side (the Bot API provider) and the agent side (both modes).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from bridge.errors import MalformedPayload

# Jivo → provider events (Bot API). AGENT_JOINED and AGENT_MESSAGE are listed on the
# Russian page only; INVITE_AGENT_ACCEPTED and CONTACT_FORM_SENT only in third-party bots.
CLIENT_MESSAGE = "CLIENT_MESSAGE"
AGENT_UNAVAILABLE = "AGENT_UNAVAILABLE"
AGENT_JOINED = "AGENT_JOINED"
AGENT_MESSAGE = "AGENT_MESSAGE"
CHAT_CLOSED = "CHAT_CLOSED"

# Provider → Jivo events (Bot API).
BOT_MESSAGE = "BOT_MESSAGE"
INVITE_AGENT = "INVITE_AGENT"

# Ids the bridge derives are stable (uuid5), so a retried delivery carries the same id.
_NAMESPACE = uuid.UUID("5d0c4c0e-7c1b-4a57-9a57-6a1f0e0b7a11")


def stable_uuid(*parts: str) -> str:
    """A UUID that is always the same for the same parts (Jivo wants a uuid `id`)."""
    return str(uuid.uuid5(_NAMESPACE, "\0".join(parts)))


def as_id(value: Any, field: str) -> str:
    """An id Jivo may send as a string or a number, as text; MalformedPayload when absent."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedPayload(f"the Jivo event has no usable {field!r}")


def optional_object(body: Mapping[str, Any], field: str) -> dict[str, Any]:
    """A nested object that may be absent (an empty dict then), or MalformedPayload."""
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{field!r} must be an object")
    return value


def optional_text(body: Mapping[str, Any], field: str) -> str | None:
    """A string field that may be absent; MalformedPayload when it has another type."""
    value = body.get(field)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MalformedPayload(f"{field!r} must be a string")


def event_key(body: Mapping[str, Any], raw: bytes) -> str:
    """The event's own `id`; without one, a digest of the bytes (a redelivery repeats them)."""
    given = body.get("id")
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given):
        return str(given)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def short_id(key: str, limit: int = 256) -> str:
    """An id that fits the bridge's id columns (a digest of it when it is longer)."""
    return key if len(key) <= limit else hashlib.sha256(key.encode()).hexdigest()


def secret_url(base_url: str, path: str, secret: SecretStr, **fields: str) -> str:
    """`base_url` + `path` with `{token}`/`{secret}` and the other fields filled, URL-quoted."""
    values = {name: quote(value, safe="") for name, value in fields.items()}
    token = quote(secret.get_secret_value(), safe="")
    return base_url.rstrip("/") + path.format(token=token, secret=token, **values)


def check_path_template(path: str, allowed: set[str], required: set[str]) -> str:
    """Validate a configurable path: it starts with '/' and uses only known placeholders."""
    if not path.startswith("/"):
        raise ValueError("must start with '/'")
    try:
        path.format(**dict.fromkeys(allowed, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"may only use the placeholders {sorted(allowed)}: {exc}") from exc
    missing = [name for name in sorted(required) if "{" + name + "}" not in path]
    if missing:
        raise ValueError(f"must contain {', '.join('{' + m + '}' for m in missing)}")
    return path


def check_base_url(value: str) -> str:
    """A base URL must be http(s); a trailing slash is dropped."""
    if not value.startswith(("https://", "http://")):
        raise ValueError("must start with https:// (or http:// for a local test server)")
    return value.rstrip("/")


def compact(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping without None values (Jivo's examples leave unknown fields out)."""
    return {key: value for key, value in payload.items() if value is not None}


def dumps(payload: Any) -> str:
    """Compact JSON, as kept in adapter state."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
