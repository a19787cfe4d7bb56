"""`python -m bridge listen`: real signed deliveries from the bridge are printed and answered
204; tampered, stale, unsigned or wrongly signed ones are printed as refused and answered 401."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from bridge.listen import describe, listener_app
from bridge.relay import signing
from bridge.relay.signing import new_secret
from tests.conftest import RunningBridge
from tests.fakes import WEBHOOK_SECRET, handoff_body
from tests.kit.eventually import eventually


@dataclass
class Delivery:
    """One request as it reached the listener: raw body and the webhook-* headers."""

    body: bytes
    headers: dict[str, str]


@dataclass
class RunningListener:
    """The listener on a real port, what it printed, and what reached it."""

    server: TestServer
    printed: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def callback_url(self) -> str:
        return str(self.server.make_url("/callback"))

    def lines(self, kind: str) -> list[str]:
        return [line for line in self.printed if line.startswith(kind)]


@pytest.fixture
async def listener() -> AsyncIterator[RunningListener]:
    """The listener with the bridge's webhook secret, recording each raw request."""
    printed: list[str] = []
    app = listener_app(WEBHOOK_SECRET, printed.append)
    running = RunningListener(TestServer(app, host="127.0.0.1", port=0), printed)

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "host"}
        running.deliveries.append(Delivery(await request.read(), headers))
        return await handler(request)

    app.middlewares.append(record)
    await running.server.start_server()
    try:
        yield running
    finally:
        await running.server.close()


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with ClientSession() as http, http.post(url, data=body, headers=headers) as answer:
        return answer.status, await answer.text()


def _signed(secret: str, event: dict[str, Any], *, at: float | None = None) -> Delivery:
    body = json.dumps(event)
    stamp = int(time.time() if at is None else at)
    return Delivery(
        body.encode(), signing.headers(signing.secret_key(secret), "msg_t1", stamp, body)
    )


EVENT = {
    "type": "agent.message",
    "timestamp": "2026-11-21T10:00:00+00:00",
    "data": {
        "conversation_id": "c-1",
        "bot_conversation_id": "bot-conv-1",
        "channel": "mysite",
        "message": {"seq": 3, "role": "agent", "text": "Hi \x1b[2J John", "author": "Ana"},
    },
}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_real_delivery_is_printed_and_tampered_one_refused(
    bridge: RunningBridge, listener: RunningListener
) -> None:
    """The bridge's own signed events verify; the same delivery with its body changed does not."""
    status, conversation = await bridge.post(
        "/v1/handoffs", handoff_body(listener.callback_url, region=None)
    )
    assert status == 201, conversation
    # The first queue position goes out at once: a real signed delivery.
    await eventually(lambda: listener.lines("event"), what="an event printed by the listener")
    (line,) = listener.lines("event")
    assert line.startswith(f"event     queue.updated  conversation={conversation['id']}"), line
    assert "bot_conversation='bot-conv-1'" in line and "position=1" in line
    assert listener.lines("refused") == []

    real = listener.deliveries[0]
    tampered = real.body.replace(b'"position": 1', b'"position": 9').replace(
        b'"position":1', b'"position":9'
    )
    assert tampered != real.body
    status, answer = await _post(listener.callback_url, tampered, real.headers)
    assert status == 401, answer
    assert json.loads(answer)["error"]["fields"] == [
        {"field": "webhook-signature", "problem": "no signature matches"}
    ]
    assert listener.lines("refused") == [
        "refused   POST '/callback': no signature matches (answered 401)"
    ]

    # The untouched delivery again (the bridge retries so): answered 204, printed as a repeat.
    status, _ = await _post(listener.callback_url, real.body, real.headers)
    assert status == 204
    assert len(listener.lines("event")) == 1
    assert len(listener.lines("repeat")) == 1


# Made when the test runs, not when the suite is collected: a signature made at collection
# could be more than five minutes old by then, and refused for that instead.
@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: _signed(new_secret(), EVENT), "no signature matches"),
        (
            lambda: _signed(WEBHOOK_SECRET, EVENT, at=time.time() - 3600),
            "outside the five-minute window",
        ),
        (
            lambda: Delivery(json.dumps(EVENT).encode(), {"content-type": "application/json"}),
            "are required",
        ),
    ],
    ids=["other-secret", "stale", "unsigned"],
)
async def test_wrongly_signed_events_are_refused(
    listener: RunningListener, make: Callable[[], Delivery], problem: str
) -> None:
    delivery = make()
    status, answer = await _post(listener.callback_url, delivery.body, delivery.headers)
    assert status == 401, answer
    assert listener.lines("event") == []
    (line,) = listener.lines("refused")
    assert problem in line, line


async def test_signed_event_prints_type_conversation_and_text(listener: RunningListener) -> None:
    delivery = _signed(WEBHOOK_SECRET, EVENT)
    status, _ = await _post(listener.callback_url, delivery.body, delivery.headers)
    assert status == 204
    (line,) = listener.lines("event")
    # The text as repr: the terminal escape in it is shown, not sent to the terminal.
    assert line == (
        "event     agent.message  conversation=c-1  bot_conversation='bot-conv-1'"
        "  text='Hi \\x1b[2J John'  author='Ana'  webhook-id='msg_t1'"
    )


def test_describe_names_what_each_event_type_says() -> None:
    base = {"conversation_id": "c-1", "bot_conversation_id": "b-1", "channel": "mysite"}
    joined = {"type": "agent.joined", "data": {**base, "agent": {"name": "Ana"}}}
    assert describe(joined).endswith("agent='Ana'")
    closed = {"type": "conversation.closed", "data": {**base, "reason": "done", "by": "agent"}}
    assert describe(closed).endswith("reason='done'")
    assert describe({"type": "x", "data": "not an object"}).startswith("x  conversation=None")
