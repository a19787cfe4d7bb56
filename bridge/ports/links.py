"""Signed, expiring console links: join links (one conversation), desk links (one agent) and
supervisor links (one organization's views, or every organization's).

The core signs them (the handoff service hands out join links, the agents API desk
links, the supervision API supervisor links) and the console's pages check them.

Each is HMAC-signed with the console secret plus a timestamp; each kind has its own
salt, so a token of one kind is never accepted as the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bridge.errors import Forbidden

# Tokens verified lately, kept with what they sign and when they were signed: a console page
# sends its token with every call, and checking its signature again (key derivation,
# base64, JSON) cost more than the rest of an agent's message handler.
_VERIFIED_KEPT = 1024


class _SignedLinks:
    """A signed value in a URL path: made with `_sign`, checked with `_verify`."""

    _SALT: ClassVar[str]
    # The URL path before the token, and what an agent is told the link is.
    _PATH: ClassVar[str]
    _NOUN: ClassVar[str]

    def __init__(
        self,
        secret: str,
        base_url: str,
        ttl_seconds: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=self._SALT)
        self._base_url = base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # token -> (the value it signs, when it was signed, in whole seconds)
        self._verified: dict[str, tuple[str, int]] = {}

    def token(self, value: str) -> str:
        """A fresh token for this value."""
        return self._serializer.dumps(value)

    def url(self, value: str) -> str:
        """The public URL with a fresh token for this value."""
        return f"{self._base_url}{self._PATH}/{self.token(value)}"

    def _verify(self, token: str) -> str:
        known = self._verified.get(token)
        if known is not None:
            # The same token was verified before: only its age is checked again, as
            # itsdangerous checks it (whole seconds, not older than the TTL nor from the future).
            value, signed_at = known
            age = int(self._clock()) - signed_at
            if age > self.ttl_seconds or age < 0:
                raise Forbidden(f"this {self._NOUN} has expired; ask for a new one")
            return value
        try:
            value, signed = self._serializer.loads(
                token, max_age=self.ttl_seconds, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise Forbidden(f"this {self._NOUN} has expired; ask for a new one") from exc
        except BadSignature as exc:
            raise Forbidden(f"this {self._NOUN} is not valid") from exc
        if not isinstance(value, str):
            raise Forbidden(f"this {self._NOUN} is not valid")
        if len(self._verified) >= _VERIFIED_KEPT:
            self._verified.clear()
        self._verified[token] = (value, int(signed.timestamp()))
        return value


class JoinLinks(_SignedLinks):
    """Makes and checks console join tokens (HMAC-signed conversation id plus a timestamp)."""

    _SALT = "handoff-bridge.console.join"
    _PATH = "/console/c"
    _NOUN = "join link"

    def conversation_id(self, token: str) -> str:
        """The conversation a token grants, or Forbidden when tampered with or expired."""
        return self._verify(token)


class DeskLinks(_SignedLinks):
    """Makes and checks an agent's personal desk tokens (HMAC-signed agent id plus a timestamp).

    A desk link is an agent's sign-in, kept as a bookmark, so it lives much longer than
    a join link; a new link can be fetched from the admin API at any time.
    """

    _SALT = "handoff-bridge.console.desk"
    _PATH = "/console/desk"
    _NOUN = "desk link"
    DEFAULT_TTL_SECONDS: ClassVar[int] = 30 * 86_400

    def __init__(self, secret: str, base_url: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        super().__init__(secret, base_url, ttl_seconds)

    def agent_id(self, token: str) -> str:
        """The agent a token signs in, or Forbidden when tampered with or expired."""
        return self._verify(token)


class SupervisorLinks(_SignedLinks):
    """Makes and checks supervisor page tokens: the organization whose conversations the
    page shows (or every organization's, for a link the admin made), signed with a timestamp.

    The page is read-only but shows customers' names and the queue, so the link is a
    credential: shorter-lived than a desk link, and a new one comes from the API.
    """

    _SALT = "handoff-bridge.console.supervisor"
    _PATH = "/console/supervisor"
    _NOUN = "supervisor link"
    DEFAULT_TTL_SECONDS: ClassVar[int] = 7 * 86_400
    # Signed values: "org:<id>" for one organization, this for every organization.
    _EVERY = "all"

    def __init__(self, secret: str, base_url: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        super().__init__(secret, base_url, ttl_seconds)

    def url_for(self, organization_id: str | None) -> str:
        """The page's URL for one organization's views (None: every organization's)."""
        return self.url(self._EVERY if organization_id is None else f"org:{organization_id}")

    def organization_id(self, token: str) -> str | None:
        """The organization a token shows (None: every one), or Forbidden."""
        value = self._verify(token)
        if value == self._EVERY:
            return None
        scope, _, organization_id = value.partition(":")
        if scope != "org" or not organization_id:
            raise Forbidden(f"this {self._NOUN} is not valid")
        return organization_id
