"""A fake platform's switch for the ambiguous outcome: the request was handled, its answer lost.

The platform stored what it was sent, then the connection dropped before the answer
reached the bridge: a timeout after the platform's commit, a proxy that went away, or
the bridge killed between its send and recording it. The sender cannot tell this from a
request that never arrived, so it sends again, and what the platform then shows depends
on whether its API has an idempotency key the bridge sends.

Every fake has one (`FakePlatform.lost`), inert until a test calls `lose_next()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler


@dataclass
class LostAnswers:
    """A middleware that drops the connection after handling the next requests to `paths`."""

    # Request paths it applies to; empty means every path.
    paths: frozenset[str] = field(default_factory=frozenset)
    pending: int = 0
    lost: int = 0

    def lose_next(self, count: int = 1) -> None:
        """Handle the next `count` matching requests, then drop their answers."""
        self.pending += count

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Run the handler (the platform stores), then close before the answer is written."""
        response = await handler(request)
        wanted = not self.paths or request.path in self.paths
        if self.pending > 0 and wanted and 200 <= response.status < 300:
            self.pending -= 1
            self.lost += 1
            assert request.transport is not None
            # The sender sees the connection close with no answer (ServerDisconnectedError).
            request.transport.close()
        return response
