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
import time
from collections import OrderedDict
from collections.abc import Callable

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


# How long a name's verdict is reused at the API: as long as aiohttp's connector keeps a
# name's addresses. Deliveries judge the addresses again when they connect (rebinding).
VERDICT_SECONDS = 10.0
VERDICTS_KEPT = 1024


class OutboundGuard:
    """Checks the URLs callers give, and makes the resolver deliveries to them use."""

    def __init__(
        self,
        policy: OutboundPolicy,
        resolver: AbstractResolver,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._resolver = resolver
        self._timeout = timeout
        self._clock = clock
        # (host, port) -> (verdict, until): a bot hands every conversation over with the
        # same callback host, which need not be resolved again for each handoff.
        self._verdicts: OrderedDict[tuple[str, int], tuple[str | None, float]] = OrderedDict()
        # URL -> verdict, for URLs judged without DNS (an address, a trusted name, a URL
        # the policy refuses as written): a bot sends the same callback URL every time.
        self._fixed: OrderedDict[str, tuple[str | None]] = OrderedDict()

    def delivery_resolver(self) -> GuardedResolver:
        """A resolver for the connector of deliveries to callers' URLs."""
        return GuardedResolver(self.policy, self._resolver)

    async def refusal(self, url: str) -> str | None:
        """Why the URL may not be called ("resolves to a loopback address"), or None."""
        fixed = self._fixed.get(url)
        if fixed is not None:
            return fixed[0]
        try:
            destination = self.policy.destination(url)
        except ValueError as exc:
            return self._keep(url, str(exc))
        if destination.address is not None or self.policy.trusts_name(destination.host):
            # An address the policy allows (one it refuses raised above), or a trusted name.
            return self._keep(url, None)
        key = (destination.host, destination.port)
        kept = self._verdicts.get(key)
        if kept is not None and kept[1] > self._clock():
            return kept[0]
        verdict, resolved = await self._judge(destination.host, destination.port)
        if resolved:
            # Only what the name resolved to is kept; a lookup that failed is tried again.
            self._verdicts[key] = (verdict, self._clock() + VERDICT_SECONDS)
            self._verdicts.move_to_end(key)
            if len(self._verdicts) > VERDICTS_KEPT:
                self._verdicts.popitem(last=False)
        return verdict

    def _keep(self, url: str, verdict: str | None) -> str | None:
        """Keep the verdict on a URL that needs no DNS (the same URL, the same verdict)."""
        self._fixed[url] = (verdict,)
        if len(self._fixed) > VERDICTS_KEPT:
            self._fixed.popitem(last=False)
        return verdict

    async def _judge(self, host: str, port: int) -> tuple[str | None, bool]:
        """Resolve `host` and judge its addresses: the refusal (or None), and whether the
        name resolved at all."""
        try:
            results = await asyncio.wait_for(
                self._resolver.resolve(host, port, socket.AF_UNSPEC),
                self._timeout,
            )
        except TimeoutError:
            return f"host did not resolve within {self._timeout:g} s", False
        except OSError:
            return "host does not resolve", False
        addresses = [result["host"] for result in results]
        if not addresses:
            return "host does not resolve", False
        allowed, refused = self.policy.usable(host, addresses)
        # Every address must pass: a connection may go to any of them.
        if refused is not None:
            return f"resolves to {refused}", True
        return (None, True) if allowed else ("host does not resolve", True)

    async def check(self, field: str, url: str) -> None:
        """InvalidInput (422) naming the field when the URL may not be called."""
        problem = await self.refusal(url)
        if problem is not None:
            raise InvalidInput(
                f"{field} may not be called: {problem}", [FieldProblem(field, problem)]
            )
