"""Pure routing: decides where a conversation goes and says why. No I/O, no aiohttp."""

from bridge.routing.regions import RegionRouter, RouteDecision

__all__ = ["RegionRouter", "RouteDecision"]
