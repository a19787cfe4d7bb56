"""Signed, expiring join links, each bound to one conversation."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bridge.errors import Forbidden


class JoinLinks:
    """Makes and checks console join tokens (HMAC-signed conversation id plus a timestamp)."""

    _SALT = "handoff-bridge.console.join"

    def __init__(self, secret: str, base_url: str, ttl_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=self._SALT)
        self._base_url = base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds

    def token(self, conversation_id: str) -> str:
        """A fresh token for this conversation."""
        return self._serializer.dumps(conversation_id)

    def url(self, conversation_id: str) -> str:
        """The public URL an agent opens to join."""
        return f"{self._base_url}/console/c/{self.token(conversation_id)}"

    def conversation_id(self, token: str) -> str:
        """The conversation a token grants, or Forbidden when tampered with or expired."""
        try:
            value = self._serializer.loads(token, max_age=self.ttl_seconds)
        except SignatureExpired as exc:
            raise Forbidden("this join link has expired; ask for a new one") from exc
        except BadSignature as exc:
            raise Forbidden("this join link is not valid") from exc
        if not isinstance(value, str):
            raise Forbidden("this join link is not valid")
        return value
