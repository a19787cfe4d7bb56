"""What every fake platform shares: a real aiohttp app on a free port that records each call.

A fake is a real server, so the code under test keeps its real HTTP client, URLs and
timeouts; no internal is patched. A fake subclasses `FakePlatform`, adds its routes in
`add_routes` and keeps only what is its platform's own: its state, its checks, its
answers. The base gives it:

- `async with FakeX(...) as fake:` listens on 127.0.0.1, port 0, and stops on exit (held
  requests released and the fake's own outgoing posts finished first);
- `url` (what the bridge is configured with) and `url_for(path)`;
- `calls`: every request as it arrived (method, path, query, headers, JSON body), recorded
  before anything answers it, so refused and held requests are there too;
- `script` and `scripted()`: statuses to answer the next requests with, at the point
  where the fake asks for them (most after their own authentication check, as the real
  platform would);
- `hold()` / `release()`: a gate that keeps requests waiting, e.g. to act while the
  bridge's call is still in flight (it holds before the fake's own checks);
- `lost`: handle the next requests, then drop their answers (see lost_answers.py);
- `http` and `spawn()`: the fake's own calls to the bridge (webhooks, echoes);
- `wait_for(predicate)`: `eventually` on the fake's state, failing with `report()`.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler, Middleware

from tests.kit.eventually import WITHIN_SECONDS, eventually
from tests.kit.lost_answers import LostAnswers

# A fake's state is in memory: looking at it often costs nothing and ends a wait sooner.
LOOK_SECONDS = 0.01


@dataclass
class Call:
    """One request a fake received, as it arrived."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    # The JSON body; the text when it is not JSON; None when there is none.
    body: Any


def _every(call: Call) -> bool:
    return True


@dataclass(kw_only=True)
class FakePlatform:
    """A platform's stand-in: a real aiohttp app on port 0 that records every call."""

    calls: list[Call] = field(default_factory=list, repr=False)
    # Statuses to answer the next requests with (e.g. [503, 503]), in order, where the
    # fake asks `scripted()`.
    script: deque[int] = field(default_factory=deque)
    # Requests handled, then their answers dropped (inert until `lost.lose_next()`).
    lost: LostAnswers = field(default_factory=LostAnswers)
    # Requests the gate kept waiting, in arrival order.
    held: list[Call] = field(default_factory=list, repr=False)
    server: TestServer | None = field(default=None, repr=False)
    _holding: Callable[[Call], object] | None = field(default=None, init=False, repr=False)
    _let_through: int = field(default=0, init=False, repr=False)
    _released: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _http: ClientSession | None = field(default=None, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    # -- what a fake supplies -------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the platform's endpoints."""
        raise NotImplementedError

    def middlewares(self) -> list[Middleware]:
        """The platform's own checks around every endpoint (run after recording)."""
        return []

    def report(self) -> str:
        """What the fake got, for the message of a wait that timed out."""
        return "; ".join(f"{call.method} {call.path}" for call in self.calls) or "no request"

    # -- running --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free loopback port."""
        middlewares: list[Middleware] = [self._record, self.lost.middleware, *self.middlewares()]
        app = web.Application(middlewares=middlewares)
        self.add_routes(app.router)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()

    async def close(self) -> None:
        """Let held requests go, finish the fake's own posts, then stop listening."""
        self.release()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        if self.server is not None:
            await self.server.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The address the bridge is configured with: the base URL, without a trailing slash."""
        return self.url_for("").rstrip("/")

    def url_for(self, path: str) -> str:
        """An absolute URL on the fake."""
        assert self.server is not None, "the fake is not started"
        return str(self.server.make_url(path))

    # -- what tests read ------------------------------------------------------------------

    def paths(self, method: str | None = None) -> list[str]:
        """Paths requested, in order (of one method when given)."""
        return [call.path for call in self.calls if method is None or call.method == method]

    def called(self) -> list[tuple[str, str]]:
        """(method, path) of every request, in order."""
        return [(call.method, call.path) for call in self.calls]

    async def wait_for(
        self, predicate: Callable[[Self], object], within: float = WITHIN_SECONDS
    ) -> None:
        """Wait until `predicate(self)` holds; fail with what the fake received if it never does."""
        await eventually(
            lambda: self,
            predicate,
            within=within,
            every=LOOK_SECONDS,
            what=type(self).__name__,
            show=lambda fake: fake.report(),
        )

    # -- what tests make the platform do --------------------------------------------------

    def scripted(self) -> int | None:
        """The next scripted status for this request, or None when the script is done."""
        return self.script.popleft() if self.script else None

    def hold(self, which: Callable[[Call], object] = _every, *, after: int = 0) -> None:
        """Keep `which` requests waiting until `release()`, once `after` of them went through."""
        self._holding = which
        self._let_through = after
        self._released.clear()

    def release(self) -> None:
        """Let the held requests, and every later one, through."""
        self._holding = None
        self._released.set()

    @property
    def holding(self) -> bool:
        """Whether the gate is closed."""
        return self._holding is not None

    @property
    def http(self) -> ClientSession:
        """The fake's own client, for what the platform sends the bridge."""
        if self._http is None:
            self._http = ClientSession()
        return self._http

    def spawn(self, post: Coroutine[Any, Any, None]) -> None:
        """Send in the background, as a platform does after answering; awaited by close()."""
        task = asyncio.create_task(post)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the recording middleware ---------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Read the body now: it is cached for the handler, and a held request's connection
        # may be gone by the time it is handled.
        raw = await request.read() if request.can_read_body else b""
        call = Call(request.method, request.path, request.query, request.headers, _parsed(raw))
        self.calls.append(call)
        if self._holding is not None and self._holding(call):
            if self._let_through > 0:
                self._let_through -= 1
            else:
                self.held.append(call)
                await self._released.wait()
        return await handler(request)


def _parsed(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
