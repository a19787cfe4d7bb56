"""The app's one HTTP client, which every adapter is given.

It is the one place that turns HTTP outcomes into adapter errors, with quick retries.

5xx, 429, timeouts and connection errors become `PlatformUnavailable` (retried here a few
times, then durably by the relay); 401/403 become `PlatformAuthError`; any other 4xx or
a redirect becomes `PlatformRejected`, which is never retried. Redirects are not followed.

An error says only what happened ("HTTP 500", "timed out", "connection failed"), never
what the receiver answered nor how a connection failed: it is stored and shown by
`GET /v1/outbox`, and callers choose some of the URLs, so it must not read internal
services back to them or tell an open port from a closed one.

An adapter's client is `redacting` its secrets (the kit does this for every adapter with
the SecretStr values of its options): an error it raises, its cause, the answer it logs
at DEBUG and any excerpt of an answer an adapter quotes never show one of them, though a
platform may echo a request (and a token in its URL) in an error answer.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from bridge import tracing
from bridge.errors import (
    DestinationRefused,
    PlatformAuthError,
    PlatformError,
    PlatformRejected,
    PlatformUnavailable,
)
from bridge.logs import Redactor
from bridge.outbound import REFUSED_AT_DELIVERY, OutboundPolicy

log = logging.getLogger(__name__)

# A Retry-After longer than this is left to the relay's durable schedule instead of
# holding a worker slot while we sleep.
_MAX_INLINE_RETRY_AFTER = 2.0
# Quick retries wait 0.2 s, doubling up to 2 s, plus up to 0.2 s of jitter.
_QUICK_FIRST_WAIT = 0.2
_QUICK_MAX_WAIT = 2.0
_QUICK_JITTER = 0.2
# URLs the policy let through lately: the same callback or platform URL is called for every
# delivery, and parsing it and its address again cost a tenth of a bot event's delivery.
_ALLOWED_KEPT = 1024


def _unchanged(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A finished response: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    # The redaction of the client that received it, for adapters that quote the answer.
    redact: Callable[[str], str] = field(default=_unchanged, repr=False, compare=False)

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    def excerpt(self, limit: int = 300) -> str:
        """The start of the body as text, without the client's secrets: for error messages."""
        # Redacted before it is cut, so a secret across the cut cannot show in part.
        return self.redact(self.body.decode("utf-8", "replace"))[:limit]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone also takes "²"
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _redacted(exc: PlatformError, redact: Redactor) -> PlatformError:
    """The same error (type, status, Retry-After) with the secrets taken out of its text."""
    message = redact(str(exc))
    if isinstance(exc, PlatformUnavailable):
        return PlatformUnavailable(message, status=exc.status, retry_after=exc.retry_after)
    return type(exc)(message, status=exc.status)


def _clean_cause(exc: BaseException, redact: Redactor) -> BaseException | None:
    """The error's cause, kept for debugging unless its text shows a secret (a traceback
    prints it, and an aiohttp error may quote the URL)."""
    cause = exc.__cause__
    return cause if cause is None or redact(str(cause)) == str(cause) else None


def _should_retry_inline(exc: BaseException) -> bool:
    if not isinstance(exc, PlatformUnavailable):
        return False
    return exc.retry_after is None or exc.retry_after <= _MAX_INLINE_RETRY_AFTER


def quick_wait(failed_attempts: int) -> float:
    """Seconds to wait before the next quick retry, after this many failed attempts."""
    wait = min(_QUICK_FIRST_WAIT * 2.0 ** (failed_attempts - 1), _QUICK_MAX_WAIT)
    return wait + random.uniform(0, _QUICK_JITTER)


class HttpClient:
    """Outbound HTTP over one ClientSession, with typed errors and quick retries.

    With a `policy` it calls only destinations the outbound URL policy allows: a URL
    whose host is a refused address is not sent at all, and the session's connector is
    expected to resolve names through a `GuardedResolver` of the same policy.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        quick_retries: int,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._quick_retries = quick_retries
        self._policy = policy
        self._secrets: tuple[str, ...] = ()
        self._redact: Redactor | None = None
        # Shared with the redacting clones: the same policy decides for all of them.
        self._allowed: set[str] = set()

    def redacting(self, secrets: Iterable[str]) -> HttpClient:
        """This client (the same session and policy), never showing these secrets.

        Its errors, their causes, the answers it logs and `HttpResponse.excerpt` have every
        one of them (raw, URL-quoted or JSON-escaped) replaced, as the logs do.
        """
        values = tuple(dict.fromkeys((*self._secrets, *(s for s in secrets if s))))
        clone = copy.copy(self)
        clone._secrets = values
        clone._redact = None
        if values:
            clone._redact = Redactor()
            clone._redact.add(values)
        return clone

    def redact(self, text: str) -> str:
        """The text without this client's secrets (unchanged when it has none)."""
        return text if self._redact is None else self._redact(text)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send one request, retrying transient failures quickly; raise a PlatformError."""
        # A plain loop: a retrying object built per call cost a tenth of a delivery's CPU,
        # and nearly every call succeeds the first time.
        failed = 0
        try:
            while True:
                try:
                    return await self._once(method, url, json_body, data, headers, params)
                except PlatformError as exc:
                    failed += 1
                    if failed > self._quick_retries or not _should_retry_inline(exc):
                        raise
                await asyncio.sleep(quick_wait(failed))
        except PlatformError as exc:
            if self._redact is None:
                raise
            # The relay stores the text (GET /v1/outbox shows it) and may log the cause.
            raise _redacted(exc, self._redact) from _clean_cause(exc, self._redact)

    async def _once(
        self,
        method: str,
        url: str,
        json_body: Any,
        data: bytes | str | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
    ) -> HttpResponse:
        if self._policy is not None and url not in self._allowed:
            try:
                # An address in the URL never reaches the resolver, so it is checked here
                # (the policy is fixed: a URL it let through once, it always lets through).
                self._policy.destination(url)
            except ValueError:
                raise PlatformRejected(REFUSED_AT_DELIVERY) from None
            if len(self._allowed) >= _ALLOWED_KEPT:
                self._allowed.clear()
            self._allowed.add(url)
        try:
            async with self._session.request(
                method,
                url,
                json=json_body,
                data=data,
                # Inside a request or a delivery, the receiver continues its trace.
                headers=tracing.outgoing_headers(headers),
                params=params,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                response_headers = dict(response.headers)
        except TimeoutError as exc:
            raise PlatformUnavailable("timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, DestinationRefused):
                # DNS changed since the URL was accepted: retrying would not help.
                raise PlatformRejected(REFUSED_AT_DELIVERY) from None
            raise PlatformUnavailable("connection failed") from exc
        except aiohttp.ClientError as exc:
            raise PlatformUnavailable("connection failed") from exc
        if 200 <= status < 300:
            return HttpResponse(status, response_headers, body, redact=self.redact)
        message = f"HTTP {status}"
        if self._policy is None:
            # Platforms the operator configured: their answer may help at DEBUG.
            answer = self.redact(body.decode("utf-8", "replace"))[:300]
            log.debug("http.error_answer", extra={"status": status, "answer": answer})
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response_headers.get("Retry-After"))
            raise PlatformUnavailable(message, status=status, retry_after=retry_after)
        if status in (401, 403):
            raise PlatformAuthError(message, status=status)
        raise PlatformRejected(message, status=status)
