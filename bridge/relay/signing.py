"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Written out here rather than taken from the `standardwebhooks` package so that the
tests, which verify with that package, check an independent implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh `whsec_` secret with 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The raw key of a `whsec_<base64>` secret."""
    encoded = secret[len(PREFIX) :] if secret.startswith(PREFIX) else secret
    return base64.b64decode(encoded)


def sign(key: bytes, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`."""
    content = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
        "content-type": "application/json",
    }


TOLERANCE_SECONDS = 300


class VerificationError(ValueError):
    """A webhook's Standard Webhooks headers do not verify."""


def verify(keys: list[bytes], headers: Mapping[str, str], body: str, now: float) -> str:
    """Check a Standard Webhooks request against any of `keys` (several during rotation).

    Returns the webhook-id. The timestamp must be within five minutes either way, and
    every comparison is constant-time.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    given = headers.get("webhook-signature")
    if not msg_id or not stamp or not given:
        raise VerificationError("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise VerificationError("webhook-timestamp is not a number") from exc
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise VerificationError("webhook-timestamp is outside the five-minute window")
    presented = [part.removeprefix("v1,") for part in given.split() if part.startswith("v1,")]
    for key in keys:
        expected = sign(key, msg_id, timestamp, body).removeprefix("v1,")
        if any(hmac.compare_digest(expected, candidate) for candidate in presented):
            return msg_id
    raise VerificationError("no signature matches")
