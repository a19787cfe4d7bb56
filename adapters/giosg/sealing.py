"""Sealing a visitor's secret so it can be kept on giosg without being readable there.

Why this exists: posting a customer message needs a fresh visitor access token (they
last 30 minutes), which only the visitor's `visitor_secret_id` can get. The bridge keeps
nothing for an agent-side adapter but `external_ref`, and that must be the bare chat id,
because giosg's webhooks name only the chat and the bridge matches them on
`external_ref` exactly. So the secret is kept on the visitor itself, as a visitor
variable, sealed: agents see an opaque value, and only a holder of the key can open it.

The construction uses only the standard library (the project has no cryptography
dependency): HMAC-SHA256 as a PRF in counter mode for the keystream, and HMAC-SHA256
over the version, the associated data (the visitor id), the nonce and the ciphertext as
the tag (encrypt-then-MAC, with separate derived keys). A fresh random nonce per seal.
Binding the visitor id means a value copied onto another visitor does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_VERSION = "v1"
_NONCE_BYTES = 16
_TAG_BYTES = 16
_BLOCK_BYTES = hashlib.sha256().digest_size


class SealError(ValueError):
    """A sealed value is damaged, was made with another key, or belongs to another visitor."""


def _derive(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"handoff-bridge/giosg/" + purpose, hashlib.sha256).digest()


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + _BLOCK_BYTES - 1) // _BLOCK_BYTES
    return b"".join(
        hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        for counter in range(blocks)
    )[:length]


def _tag(key: bytes, associated: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    message = _VERSION.encode() + len(associated).to_bytes(4, "big") + associated
    return hmac.new(key, message + nonce + ciphertext, hashlib.sha256).digest()[:_TAG_BYTES]


def seal(key: str, associated: str, plaintext: str) -> str:
    """Encrypt and authenticate `plaintext`, bound to `associated` (e.g. a visitor id)."""
    raw_key = key.encode()
    nonce = os.urandom(_NONCE_BYTES)
    data = plaintext.encode()
    stream = _keystream(_derive(raw_key, b"enc"), nonce, len(data))
    ciphertext = bytes(a ^ b for a, b in zip(data, stream, strict=True))
    tag = _tag(_derive(raw_key, b"mac"), associated.encode(), nonce, ciphertext)
    encoded = base64.urlsafe_b64encode(nonce + ciphertext + tag).rstrip(b"=").decode()
    return f"{_VERSION}.{encoded}"


def unseal(key: str, associated: str, sealed: str) -> str:
    """The plaintext of a value made by `seal` with the same key and associated data."""
    version, _, encoded = sealed.partition(".")
    if version != _VERSION or not encoded:
        raise SealError("not a sealed value of a known version")
    try:
        blob = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError as exc:
        raise SealError("the sealed value is not valid base64") from exc
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise SealError("the sealed value is too short")
    nonce, ciphertext, tag = (
        blob[:_NONCE_BYTES],
        blob[_NONCE_BYTES:-_TAG_BYTES],
        blob[-_TAG_BYTES:],
    )
    raw_key = key.encode()
    expected = _tag(_derive(raw_key, b"mac"), associated.encode(), nonce, ciphertext)
    if not hmac.compare_digest(tag, expected):
        raise SealError("the sealed value does not match this key and visitor")
    stream = _keystream(_derive(raw_key, b"enc"), nonce, len(ciphertext))
    try:
        return bytes(a ^ b for a, b in zip(ciphertext, stream, strict=True)).decode()
    except UnicodeDecodeError as exc:  # pragma: no cover - only with a forged tag
        raise SealError("the sealed value does not decode") from exc
