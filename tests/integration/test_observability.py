"""Request ids, W3C trace context and JSON log lines on the real app, from request to delivery.

A caller's `traceparent` goes in with a request and comes out on the event the request
causes (the same trace, a new span): here an agent's join through the console, and the
`agent.joined` event the fake bot receives. The JSON log lines of the request carry it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge import logs
from bridge.tracing import parse_traceparent
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
JOIN_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
JOIN_PARENT_ID = "b7ad6b7169203331"


class JsonLog:
    """The lines the service's own JSON handler writes while a test runs."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed: each must be one JSON object."""
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def events(self, event: str) -> list[dict[str, Any]]:
        """The lines of one event."""
        return [line for line in self.lines() if line["event"] == event]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    """The service's JSON handler on the root logger, as `server.log_format: json` sets it."""
    captured = JsonLog()
    handler = logs.make_handler(captured.stream, "json")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield captured
    finally:
        root.removeHandler(handler)


def _joined(bot: FakeBot) -> list[Any]:
    """The bot's calls that carried agent.joined."""
    return [
        call
        for call in bot.calls
        if call.path == "/callback" and call.body and call.body.get("type") == "agent.joined"
    ]


async def _join(bridge: RunningBridge, conversation: dict[str, Any], headers: Any) -> None:
    """An agent joins through the conversation's console link, with these headers."""
    token = str(conversation["join_url"]).rsplit("/", 1)[1]
    async with bridge.http.post(
        bridge.url(f"/console/api/{token}/join"), json={"name": "Ana"}, headers=headers
    ) as response:
        assert response.status == 200, await response.text()


async def test_a_callers_trace_reaches_the_bot_and_every_line_of_its_request(
    bridge: RunningBridge, bot: FakeBot, json_log: JsonLog
) -> None:
    """The event a request causes carries the caller's trace id; so do its log lines."""
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=abc", "X-Request-Id": "req-42"}
    async with bridge.http.post(
        bridge.url("/v1/handoffs"), json=handoff_body(bot.url), headers=headers
    ) as response:
        assert response.status == 201, await response.text()
        assert response.headers["X-Request-Id"] == "req-42"
        created = await response.json()
    join = {"traceparent": f"00-{JOIN_TRACE_ID}-{JOIN_PARENT_ID}-01", "tracestate": "vendor=abc"}
    await _join(bridge, created, join)
    await bot.wait_for(_joined)
    sent = parse_traceparent(_joined(bot)[0].headers["traceparent"])
    assert sent is not None
    assert sent.trace_id == JOIN_TRACE_ID
    # A span of the bridge's own (the delivery attempt), not the caller's.
    assert sent.span_id != JOIN_PARENT_ID
    assert sent.sampled

    access = [line for line in json_log.events("http.access") if line["request_id"] == "req-42"]
    assert len(access) == 1
    assert access[0]["trace_id"] == TRACE_ID
    assert access[0]["route"] == "/v1/handoffs"
    assert access[0]["status"] == 201
    assert access[0]["method"] == "POST"
    assert access[0]["bytes"] > 0
    assert access[0]["level"] == "INFO"
    assert access[0]["logger"] == "bridge.access"
    routed = json_log.events("handoff.routed")
    assert routed, json_log.lines()
    assert routed[0]["trace_id"] == TRACE_ID
    assert routed[0]["request_id"] == "req-42"
    assert routed[0]["conversation_id"] == created["id"]


async def test_a_conversations_requests_name_it_in_their_lines(
    bridge: RunningBridge, bot: FakeBot, json_log: JsonLog
) -> None:
    """A request to /v1/conversations/{id} carries the id in its access line."""
    status, created = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201
    status, _ = await bridge.get(f"/v1/conversations/{created['id']}")
    assert status == 200
    lines = [
        line
        for line in json_log.events("http.access")
        if line["route"] == "/v1/conversations/{conversation_id}"
    ]
    assert [line["conversation_id"] for line in lines] == [created["id"]]


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 with more
        "garbage",
    ],
)
async def test_an_invalid_traceparent_starts_a_new_trace(
    bridge: RunningBridge, bot: FakeBot, traceparent: str
) -> None:
    """Never an error: the request is served in a trace of its own, which reaches the bot."""
    async with bridge.http.post(
        bridge.url("/v1/handoffs"),
        json=handoff_body(bot.url),
        headers={"traceparent": traceparent, "X-Request-Id": "has spaces; not sane"},
    ) as response:
        assert response.status == 201, await response.text()
        request_id = response.headers["X-Request-Id"]
        created = await response.json()
    # A request id of the bridge's own instead of one that would mangle a log line.
    assert len(request_id) == 32
    assert request_id != "has spaces; not sane"
    await _join(bridge, created, {"traceparent": traceparent})
    await bot.wait_for(_joined)
    sent = parse_traceparent(_joined(bot)[0].headers["traceparent"])
    assert sent is not None
    assert sent.trace_id not in traceparent.lower()


async def test_every_answer_has_a_request_id_the_error_ones_too(bridge: RunningBridge) -> None:
    """404s and 422s are answered with an id to quote, as successes are."""
    for path, body in [("/v1/nowhere", None), ("/v1/handoffs", {"bot": 1})]:
        async with bridge.http.post(bridge.url(path), json=body) as response:
            assert response.status in {404, 405, 422}
            assert len(response.headers["X-Request-Id"]) == 32


async def test_the_access_log_can_be_turned_off(
    database: Database, bot: FakeBot, json_log: JsonLog
) -> None:
    """`server.access_log: false`: no access lines, the other lines keep their context."""
    settings = make_settings(database, unused_port(), server={"access_log": False})
    running = await start_bridge(settings)
    try:
        headers = {"traceparent": TRACEPARENT}
        status, _ = await running.post("/v1/handoffs", handoff_body(bot.url), headers=headers)
        assert status == 201
    finally:
        await stop_bridge(running)
    assert json_log.events("http.access") == []
    assert json_log.events("handoff.routed")[0]["trace_id"] == TRACE_ID


async def test_an_agent_messages_delivery_continues_the_trace_of_its_request(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """A message is stored by a unit of work (on SQLite, in the store's own thread with
    other requests' units): its delivery still continues the trace of its own request."""
    status, created = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201
    await _join(bridge, created, {})
    token = str(created["join_url"]).rsplit("/", 1)[1]
    async with bridge.http.post(
        bridge.url(f"/console/api/{token}/messages"),
        json={"text": "Hello, I am here"},
        headers={"traceparent": TRACEPARENT},
    ) as response:
        assert response.status in (200, 201), await response.text()

    def replies(bot: FakeBot) -> list[Any]:
        return [
            call
            for call in bot.calls
            if call.path == "/callback" and call.body and call.body.get("type") == "agent.message"
        ]

    await bot.wait_for(replies)
    sent = parse_traceparent(replies(bot)[0].headers["traceparent"])
    assert sent is not None
    assert sent.trace_id == TRACE_ID
