"""The outbound policy applied where names become addresses: at the API and at delivery.

At the API a caller's URL is resolved once, asynchronously and with a short timeout, and
refused (422) when the policy refuses what it resolves to. DNS may answer differently by
the time an event is sent (rebinding), so deliveries resolve again through
`GuardedResolver`, which drops refused addresses and fails when none remain; the HTTP
client records that as a permanent failure.
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from bridge.errors import DestinationRefused, FieldProblem, InvalidInput
from bridge.outbound import OutboundPolicy


class GuardedResolver(AbstractResolver):
    """Resolves through another resolver and keeps only the addresses the policy allows."""

    def __init__(self, policy: OutboundPolicy, resolver: AbstractResolver) -> None:
        self._policy = policy
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of `host`; DestinationRefused when there are none."""
        results = await self._resolver.resolve(host, port, family)
        allowed, _ = self._policy.usable(host, [result["host"] for result in results])
        kept = [result for result in results if result["host"] in allowed]
        if not kept:
            raise DestinationRefused(host)
        return kept

    async def close(self) -> None:
        """The wrapped resolver belongs to whoever made it; nothing to release here."""


class OutboundGuard:
    """Checks the URLs callers give, and makes the resolver deliveries to them use."""

    def __init__(self, policy: OutboundPolicy, resolver: AbstractResolver, timeout: float) -> None:
        self.policy = policy
        self._resolver = resolver
        self._timeout = timeout

    def delivery_resolver(self) -> GuardedResolver:
        """A resolver for the connector of deliveries to callers' URLs."""
        return GuardedResolver(self.policy, self._resolver)

    async def refusal(self, url: str) -> str | None:
        """Why the URL may not be called ("resolves to a loopback address"), or None."""
        try:
            destination = self.policy.destination(url)
        except ValueError as exc:
            return str(exc)
        if destination.address is not None or self.policy.trusts_name(destination.host):
            return None
        try:
            results = await asyncio.wait_for(
                self._resolver.resolve(destination.host, destination.port, socket.AF_UNSPEC),
                self._timeout,
            )
        except TimeoutError:
            return f"host did not resolve within {self._timeout:g} s"
        except OSError:
            return "host does not resolve"
        addresses = [result["host"] for result in results]
        if not addresses:
            return "host does not resolve"
        allowed, refused = self.policy.usable(destination.host, addresses)
        # Every address must pass: a connection may go to any of them.
        if refused is not None:
            return f"resolves to {refused}"
        return None if allowed else "host does not resolve"

    async def check(self, field: str, url: str) -> None:
        """InvalidInput (422) naming the field when the URL may not be called."""
        problem = await self.refusal(url)
        if problem is not None:
            raise InvalidInput(
                f"{field} may not be called: {problem}", [FieldProblem(field, problem)]
            )
