"""Region routing, as VivoChat does it: a routing code picks a channel under a main channel.

An exact code selects its channel; a missing or unknown code goes to the main channel.
The table is built once from settings, so a decision is two dict lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

RouteRule = Literal["region", "region_unknown", "region_missing"]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a conversation goes, which rule applied, and a readable trace of why."""

    main_channel: str
    channel: str
    rule: RouteRule
    trace: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The trace as one sentence."""
        return "; ".join(self.trace)


class UnknownMainChannel(LookupError):
    """The handoff named a main channel that is not configured."""


class RegionRouter:
    """Resolves a routing code to a channel, per main channel."""

    def __init__(self, regions: Mapping[str, Mapping[str, str]]) -> None:
        # Frozen copies: the router is shared by every request and never changes.
        self._regions = MappingProxyType(
            {main: MappingProxyType(dict(codes)) for main, codes in regions.items()}
        )

    @property
    def main_channels(self) -> frozenset[str]:
        """The main channels this router knows."""
        return frozenset(self._regions)

    def regions_of(self, main_channel: str) -> Mapping[str, str]:
        """The region codes of a main channel and their channels."""
        return self._regions.get(main_channel, MappingProxyType({}))

    def resolve(self, main_channel: str, code: str | None) -> RouteDecision:
        """Pick the channel for `code` under `main_channel`; fall back to the main channel."""
        try:
            codes = self._regions[main_channel]
        except KeyError:
            raise UnknownMainChannel(main_channel) from None
        if code is None or code == "":
            return RouteDecision(
                main_channel,
                main_channel,
                "region_missing",
                (f"no region code → main channel {main_channel!r}",),
            )
        channel = codes.get(code)
        if channel is None:
            return RouteDecision(
                main_channel,
                main_channel,
                "region_unknown",
                (f"region {code!r} unknown → main channel {main_channel!r}",),
            )
        return RouteDecision(
            main_channel, channel, "region", (f"region {code!r} → channel {channel!r}",)
        )
