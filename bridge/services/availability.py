"""Is anybody available on a channel? The platform's answer where it can give one, else the
bridge's own presence.

Platforms that can tell (Capabilities.availability: Chatvisor, giosg, JivoChat's Chat
API) are asked, and their answer is kept `availability.cache_seconds` per channel, so a
bot asking before every handoff does not hammer them; concurrent questions about one
channel share one call. A platform that fails, or is slower than
`availability.timeout_seconds`, is answered for by the bridge's presence, flagged as a
platform error. The bridge's presence says something only when the chat would be
offered to agents it knows (a team, router, assignee or agents): online with room for
one more chat. A chat answered through join links has no one the bridge could count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bridge.errors import PlatformError
from bridge.ports.agent_side import AgentSideAdapter
from bridge.routing.engine import Decision, RoutingTable
from bridge.routing.staffing import Staffing, first_offer, staffing_of
from bridge.routing.steps.escalation import Directory

log = logging.getLogger(__name__)

Source = Literal["platform", "bridge"]


@dataclass(frozen=True, slots=True)
class PlatformAnswer:
    """What a channel's platform said: available or not, None when it cannot say."""

    available: bool | None
    # The platform can say but failed to (an error or too slow).
    error: bool = False


CANNOT_SAY = PlatformAnswer(None)


class PlatformAvailability:
    """Asks channels' platforms whether a human is available, with a short cache."""

    def __init__(
        self,
        adapters: Mapping[str, AgentSideAdapter],
        *,
        cache_seconds: float,
        timeout_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapters = adapters
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, PlatformAnswer]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def ask(self, channel: str) -> PlatformAnswer:
        """The platform's answer for `channel`, cached; CANNOT_SAY when it cannot tell."""
        adapter = self._adapters.get(channel)
        if adapter is None or not adapter.capabilities.availability:
            return CANNOT_SAY
        # One call at a time per channel: the others wait for it and read its answer.
        async with self._locks.setdefault(channel, asyncio.Lock()):
            cached = self._cache.get(channel)
            if cached is not None and cached[0] > self._monotonic():
                return cached[1]
            answer = await self._call(channel, adapter)
            self._cache[channel] = (self._monotonic() + self._cache_seconds, answer)
            return answer

    async def _call(self, channel: str, adapter: AgentSideAdapter) -> PlatformAnswer:
        try:
            async with asyncio.timeout(self._timeout):
                return PlatformAnswer(await adapter.check_availability())
        except (PlatformError, TimeoutError) as exc:
            # The error's text may quote the platform; its type is enough to see which.
            log.warning(
                "availability.platform_error",
                extra={"channel": channel, "error": type(exc).__name__},
            )
            return PlatformAnswer(None, error=True)


@dataclass(frozen=True, slots=True)
class Probe:
    """Whether anybody is available for a decision's chat, and who says so."""

    channel: str
    # None: nobody can say (the platform cannot, and no agent the bridge knows is named).
    available: bool | None
    source: Source
    platform_error: bool
    staffing: Staffing


class Prober:
    """Probes a decision's channel: its platform first, else the bridge's presence."""

    def __init__(self, platforms: PlatformAvailability) -> None:
        self._platforms = platforms

    async def probe(
        self, table: RoutingTable, decision: Decision, directory: Directory, now: datetime
    ) -> Probe:
        """Ask the platform of the decision's channel; the bridge answers when it cannot."""
        staffing = staffing_of(first_offer(decision, table.routers, directory, now), directory)
        answer = await self._platforms.ask(decision.channel)
        if answer.available is not None:
            return Probe(decision.channel, answer.available, "platform", False, staffing)
        ours = staffing.waiting_reason is None if staffing.offered else None
        return Probe(decision.channel, ours, "bridge", answer.error, staffing)
