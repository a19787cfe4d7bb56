"""`python -m bridge listen`: a small bot receiver, to try the bridge's events to the bot.

Point a handoff's `callback_url` at it (any path, e.g. `http://127.0.0.1:9000/callback`).
Every event's Standard Webhooks signature is verified with the webhook secret, as a real
bot must; a verified event is printed (type, conversation, text) and answered `204`. One
that does not verify is printed as refused and answered `401`, which the bridge takes as
final (see the README's delivery guarantees), so it is never printed as if it were real.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bridge.errors import ConfigError
from bridge.relay import signing

# Delivery is at-least-once: ids seen lately are remembered so a retry prints as a repeat.
REMEMBERED_IDS = 10_000

Printer = Callable[[str], None]


def signing_key(secret: str) -> bytes:
    """The key of a `whsec_<base64>` secret, or ConfigError saying what is wrong."""
    if not secret.startswith(signing.PREFIX):
        raise ConfigError("the webhook secret must start with whsec_ (see `secrets show`)")
    try:
        key = signing.secret_key(secret)
    except ValueError as exc:
        raise ConfigError("the webhook secret is not whsec_ followed by base64") from exc
    if not key:
        raise ConfigError("the webhook secret holds no key")
    return key


def describe(event: Mapping[str, Any]) -> str:
    """One line for an event: its type, conversation and what it says."""
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    # repr() for every value a bot or customer chose: quoted, and no control character
    # (a terminal escape, say) reaches the terminal as is.
    parts = [
        str(event.get("type", "?")),
        f"conversation={data.get('conversation_id')}",
        f"bot_conversation={data.get('bot_conversation_id')!r}",
    ]
    message = data.get("message")
    if isinstance(message, dict) and "text" in message:
        parts.append(f"text={message['text']!r}")
        if message.get("author"):
            parts.append(f"author={message['author']!r}")
    agent = data.get("agent")
    if isinstance(agent, dict) and agent.get("name"):
        parts.append(f"agent={agent['name']!r}")
    for key in ("position", "estimated_wait_seconds", "reason", "detail", "options"):
        if key in data:
            parts.append(f"{key}={data[key]!r}")
    return "  ".join(parts)


def _refusal(problem: str) -> web.Response:
    body = {
        "error": {
            "code": "invalid_signature",
            "message": "the event's signature does not verify",
            "fields": [{"field": "webhook-signature", "problem": problem}],
        }
    }
    return web.json_response(body, status=401)


class Listener:
    """Verifies, prints and acknowledges the events the bridge POSTs to a bot."""

    def __init__(self, key: bytes, out: Printer, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._out = out
        self._clock = clock
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def handle(self, request: web.Request) -> web.Response:
        """One POSTed event: 204 once verified and printed, 401 when it does not verify."""
        where = f"{request.method} {request.raw_path!r}"
        try:
            body = (await request.read()).decode("utf-8")
            webhook_id = signing.verify([self._key], request.headers, body, self._clock())
        except UnicodeDecodeError:
            return self._refuse(where, "the body is not UTF-8")
        except signing.VerificationError as exc:
            return self._refuse(where, str(exc))
        if webhook_id in self._seen:
            self._out(f"repeat    webhook-id={webhook_id!r} (printed before; answered 204 again)")
            return web.Response(status=204)
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self._out(f"rejected  {where}: signed, but the body is not a JSON object")
            return web.json_response(
                {"error": {"code": "malformed_json", "message": "the body is not a JSON object"}},
                status=400,
            )
        self._remember(webhook_id)
        self._out(f"event     {describe(event)}  webhook-id={webhook_id!r}")
        return web.Response(status=204)

    def _refuse(self, where: str, problem: str) -> web.Response:
        self._out(f"refused   {where}: {problem} (answered 401)")
        return _refusal(problem)

    def _remember(self, webhook_id: str) -> None:
        self._seen[webhook_id] = None
        while len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)


def listener_app(secret: str, out: Printer) -> web.Application:
    """The receiver as an aiohttp application: POST on any path is an event."""
    listener = Listener(signing_key(secret), out)
    app = web.Application()
    app.router.add_post("/{path:.*}", listener.handle)
    return app


def _print_now(line: str) -> None:
    print(line, flush=True)


def run(host: str, port: int, secret: str, secret_source: str) -> None:
    """Serve until Ctrl+C, printing every event on standard output."""
    app = listener_app(secret, _print_now)
    web.run_app(
        app,
        host=host,
        port=port,
        print=lambda _: _print_now(
            f"listening for the bridge's events on http://{host}:{port}/ "
            f"(use http://{host}:{port}/callback as callback_url); verifying signatures "
            f"with the webhook secret from {secret_source}; stop with Ctrl+C"
        ),
    )
