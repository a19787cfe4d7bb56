"""The loopback servers the benchmark starts, each as its own process.

`python -m bench.relay.servers KIND --port P [--forward URL]`, KIND one of:

- `receiver`: the fake Kommunicate API (under `/km`) and the fake bot callback (`/bot`).
  Both answer at once; they record when each message carrying a marker arrived (a text
  whose first word starts with `~`), and `/_arrivals` and `/_counts` tell the benchmark.
- `bare`: the first anchor, a handler that parses the JSON body and answers.
- `relay`: the second anchor, non-durable: a handler that translates the message into a
  Kommunicate send and POSTs it through one shared `ClientSession` to `--forward`,
  answering once the receiver has.

The anchors serve the same path as the bridge's customer messages, so the load generator
sends them the very same requests.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
from aiohttp import web

MESSAGES_PATH = "/v1/conversations/{conversation_id}/messages"
KOMMUNICATE_PREFIX = "/km"
SEND_PATH = "/rest/ws/message/v2/send"
CREATE_PATH = "/rest/ws/group/conversation"
ASSIGN_PATH = "/rest/ws/group/assignee/change"
STATUS_PATH = "/rest/ws/group/status/change"
BOT_PATH = "/bot"
MARK = "~"

FORWARD: web.AppKey[str] = web.AppKey("forward", str)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)


def marker_of(text: Any) -> str | None:
    """The marker a benchmark message carries (its first word, without the `~`), if any."""
    if not isinstance(text, str) or not text.startswith(MARK):
        return None
    return text[1:].split(" ", 1)[0]


def _kommunicate(response: Any) -> web.Response:
    body = {"status": "success", "generatedAt": int(time.time() * 1000), "response": response}
    return web.json_response(body)


class Receiver:
    """Arrivals per marker prefix (the part before the first `.`), and a count per kind."""

    def __init__(self) -> None:
        self.arrivals: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
        self.counts: Counter[str] = Counter()
        self._groups = itertools.count(81_000_001)

    def record(self, text: Any) -> None:
        """Keep the arrival time of a marked text."""
        arrived = time.monotonic()
        if (marker := marker_of(text)) is not None:
            self.arrivals[marker.split(".", 1)[0]].append((marker, arrived))

    async def create(self, request: web.Request) -> web.Response:
        """Kommunicate's create-conversation: a new group id for each call."""
        body = await request.json()
        self.counts["kommunicate.create"] += 1
        group = next(self._groups)
        return _kommunicate({"id": group, "clientGroupId": body.get("clientGroupId")})

    async def send(self, request: web.Request) -> web.Response:
        """Kommunicate's message send."""
        body = await request.json()
        self.counts["kommunicate.send"] += 1
        self.record(body.get("message"))
        return _kommunicate({"messageKey": "5-bench", "createdAt": int(time.time() * 1000)})

    async def change(self, request: web.Request) -> web.Response:
        """Kommunicate's assignee and status changes."""
        self.counts["kommunicate.change"] += 1
        return _kommunicate("updated")

    async def bot(self, request: web.Request) -> web.Response:
        """The bot's callback: every event is accepted; agent messages are recorded."""
        body = await request.json()
        kind = str(body.get("type"))
        self.counts[f"bot.{kind}"] += 1
        if kind == "agent.message":
            self.record(body.get("data", {}).get("message", {}).get("text"))
        return web.Response(status=204)

    async def arrivals_of(self, request: web.Request) -> web.Response:
        """`[[marker, arrived], …]` for one prefix."""
        return web.json_response({"items": self.arrivals.get(request.query["prefix"], [])})

    async def counts_of(self, request: web.Request) -> web.Response:
        """Requests per kind, and arrivals per prefix."""
        arrived = {prefix: len(items) for prefix, items in self.arrivals.items()}
        return web.json_response({"kinds": dict(self.counts), "arrivals": arrived})

    def app(self) -> web.Application:
        """The receiver's routes."""
        app = web.Application()
        km = KOMMUNICATE_PREFIX
        app.router.add_post(km + CREATE_PATH, self.create)
        app.router.add_post(km + SEND_PATH, self.send)
        app.router.add_patch(km + ASSIGN_PATH, self.change)
        app.router.add_patch(km + STATUS_PATH, self.change)
        app.router.add_post(BOT_PATH, self.bot)
        app.router.add_get("/_arrivals", self.arrivals_of)
        app.router.add_get("/_counts", self.counts_of)
        return app


async def bare(request: web.Request) -> web.Response:
    """Parse the JSON body and answer, as the cheapest possible handler would."""
    body = await request.json()
    return web.json_response({"id": body.get("id")}, status=201)


async def relay(request: web.Request) -> web.Response:
    """Translate to a Kommunicate send and POST it onward, answering after the receiver."""
    body = await request.json()
    onward = {
        "groupId": request.match_info["conversation_id"],
        "message": body["text"],
        "fromUserName": "customer-bench",
        "metadata": {"origin": "relay", "id": body.get("id")},
    }
    async with request.app[SESSION].post(request.app[FORWARD], json=onward) as answer:
        await answer.read()
        if answer.status >= 300:
            return web.json_response({"error": f"receiver answered {answer.status}"}, status=502)
    return web.json_response({"id": body.get("id")}, status=201)


async def _session(app: web.Application) -> AsyncIterator[None]:
    # One session for the app, as a relay (and the bridge) would keep; no per-host limit
    # below the load's concurrency.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        app[SESSION] = session
        yield


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(kind: str, forward: str | None) -> web.Application:
    """The application for one kind of server."""
    if kind == "receiver":
        app = Receiver().app()
    else:
        app = web.Application()
        app.router.add_post(MESSAGES_PATH, bare if kind == "bare" else relay)
        if kind == "relay":
            if not forward:
                raise SystemExit("relay needs --forward URL")
            app[FORWARD] = forward
            app.cleanup_ctx.append(_session)
    app.router.add_get("/healthz", _healthz)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one kind on 127.0.0.1 until terminated."""
    parser = argparse.ArgumentParser(prog="python -m bench.relay.servers")
    parser.add_argument("kind", choices=("receiver", "bare", "relay"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--forward", help="relay: the receiver URL to POST each message to")
    args = parser.parse_args(argv)
    app = build_app(args.kind, args.forward)
    # No access log: an anchor is the cheapest handler; what the bridge logs is its own cost.
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
