"""The app's one HTTP client, which every adapter is given.

It is the one place that turns HTTP outcomes into adapter errors, with quick tenacity
retries.

5xx, 429, timeouts and connection errors become `PlatformUnavailable` (retried here a few
times, then durably by the relay); 401/403 become `PlatformAuthError`; any other 4xx or
a redirect becomes `PlatformRejected`, which is never retried. Redirects are not followed.

An error says only what happened ("HTTP 500", "timed out", "connection failed"), never
what the receiver answered nor how a connection failed: it is stored and shown by
`GET /v1/outbox`, and callers choose some of the URLs, so it must not read internal
services back to them or tell an open port from a closed one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from bridge.errors import (
    DestinationRefused,
    PlatformAuthError,
    PlatformRejected,
    PlatformUnavailable,
)
from bridge.outbound import REFUSED_AT_DELIVERY, OutboundPolicy

log = logging.getLogger(__name__)

# A Retry-After longer than this is left to the relay's durable schedule instead of
# holding a worker slot while we sleep.
_MAX_INLINE_RETRY_AFTER = 2.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A finished response: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


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


def _should_retry_inline(exc: BaseException) -> bool:
    if not isinstance(exc, PlatformUnavailable):
        return False
    return exc.retry_after is None or exc.retry_after <= _MAX_INLINE_RETRY_AFTER


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
        retrying = AsyncRetrying(
            retry=retry_if_exception(_should_retry_inline),
            stop=stop_after_attempt(self._quick_retries + 1),
            wait=wait_exponential(multiplier=0.2, max=2.0) + wait_random(0, 0.2),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(method, url, json_body, data, headers, params)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _once(
        self,
        method: str,
        url: str,
        json_body: Any,
        data: bytes | str | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
    ) -> HttpResponse:
        if self._policy is not None:
            try:
                # An address in the URL never reaches the resolver, so it is checked here.
                self._policy.destination(url)
            except ValueError:
                raise PlatformRejected(REFUSED_AT_DELIVERY) from None
        try:
            async with self._session.request(
                method,
                url,
                json=json_body,
                data=data,
                headers=headers,
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
            return HttpResponse(status, response_headers, body)
        message = f"HTTP {status}"
        if self._policy is None:
            # Platforms the operator configured: their answer may help at DEBUG.
            log.debug(
                "http.error_answer",
                extra={"status": status, "answer": body[:300].decode("utf-8", "replace")},
            )
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response_headers.get("Retry-After"))
            raise PlatformUnavailable(message, status=status, retry_after=retry_after)
        if status in (401, 403):
            raise PlatformAuthError(message, status=status)
        raise PlatformRejected(message, status=status)
