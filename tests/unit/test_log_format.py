"""`server.log_format: json`: one redacted JSON object per line, with the line's context."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bridge import logs, tracing
from bridge.logs import REDACTED

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Captured:
    """A logger writing through the service's handler in one format."""

    def __init__(self, log_format: logs.LogFormat) -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger("tests.format." + secrets.token_hex(4))
        self.logger.handlers[:] = [logs.make_handler(self.stream, log_format)]
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]


@pytest.fixture
def json_lines() -> Iterator[Captured]:
    captured = Captured("json")
    try:
        yield captured
    finally:
        captured.logger.handlers.clear()


def test_a_line_is_one_object_with_the_fixed_fields_first(json_lines: Captured) -> None:
    json_lines.logger.info("relay.delivered", extra={"outbox_id": 7, "kind": "bot.event"})
    json_lines.logger.warning("quota %s of %d", "used", 3)
    first, second = json_lines.lines()
    assert list(first)[:4] == ["ts", "level", "event", "logger"]
    assert first["event"] == "relay.delivered"
    assert first["level"] == "INFO"
    assert first["logger"] == json_lines.logger.name
    assert first["outbox_id"] == 7
    assert first["kind"] == "bot.event"
    assert first["ts"].endswith("+00:00")  # ISO 8601, UTC
    assert second["event"] == "quota used of 3"
    assert second["level"] == "WARNING"


def test_the_context_of_a_request_or_delivery_is_on_every_line(json_lines: Captured) -> None:
    parent = tracing.TraceContext(TRACE, "00f067aa0ba902b7", True)
    with (
        logs.bind(request_id="req-1", conversation_id="conv-9"),
        tracing.span("request", parent, "server") as span,
    ):
        json_lines.logger.info("handoff.agent_joined")
        # A line naming its conversation keeps its own, under the uniform name.
        json_lines.logger.info("handoff.routed", extra={"conversation": "conv-own"})
    json_lines.logger.info("housekeeping.pruned")
    joined, routed, outside = json_lines.lines()
    assert joined["request_id"] == "req-1"
    assert joined["conversation_id"] == "conv-9"
    assert joined["trace_id"] == TRACE
    assert joined["span_id"] == span.context.span_id
    assert routed["conversation_id"] == "conv-own"
    assert "conversation" not in routed
    assert not {"request_id", "conversation_id", "trace_id", "span_id"} & set(outside)


def test_json_lines_are_redacted_as_text_lines_are(json_lines: Captured) -> None:
    secret = "configured-json-" + secrets.token_hex(8)
    logs.add_secrets(SecretStr(secret))
    logger = json_lines.logger
    logger.info("api.unhandled_error", extra={"path": f"/x/{secret}", "data": {"k": [secret]}})
    logger.info("http.access", extra={"path": "/console/c/tok3n-in-path"})
    logger.warning("called %s", "https://h.example/p?token=q-s3cret")
    logger.info("header", extra={"headers": {"Authorization": "Bearer b3arer-tok"}})
    try:
        raise ValueError(f'boom {secret} "quoted" and\nnewline')
    except ValueError:
        logger.exception("relay.unexpected_error", extra={"outbox_id": 1})
    text = json_lines.text()
    for leaked in (secret, "tok3n-in-path", "q-s3cret", "b3arer-tok"):
        assert leaked not in text
    lines = json_lines.lines()  # still one valid object per line
    assert lines[0]["path"] == f"/x/{REDACTED}"
    assert lines[0]["data"] == {"k": [REDACTED]}
    assert lines[1]["path"] == f"/console/c/{REDACTED}"
    failure = lines[-1]
    assert failure["event"] == "relay.unexpected_error"
    assert f"ValueError: boom {REDACTED}" in failure["traceback"]


def test_text_lines_carry_the_context_as_key_value_pairs() -> None:
    captured = Captured("text")
    try:
        with logs.bind(request_id="req-2"), tracing.span("r", None, "server") as span:
            captured.logger.info("handoff.routed", extra={"conversation": "c-1"})
    finally:
        captured.logger.handlers.clear()
    line = captured.text()
    assert "handoff.routed conversation=c-1" in line
    assert "request_id=req-2" in line
    assert f"trace_id={span.context.trace_id}" in line


def test_an_extra_named_like_a_fixed_field_does_not_replace_it(json_lines: Captured) -> None:
    """Inbound lines name the platform's event id `event`: it stays, beside the event name."""
    json_lines.logger.info("inbound.parked", extra={"event": "evt-1", "level": 3})
    (line,) = json_lines.lines()
    assert line["event"] == "inbound.parked"
    assert line["level"] == "INFO"
    assert line["extra.event"] == "evt-1"
    assert line["extra.level"] == 3


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("route=/console/c/{token}", True),
        ("route=/bots/{bot}/{path}", True),
        ("route=/console/api/{token}/join", True),
        ("path=/console/c/{token}but-more", False),
        ("path=/console/c/abc{token}", False),
    ],
)
def test_route_templates_keep_their_placeholders(text: str, kept: bool) -> None:
    """An access line names the route by its template; only a real segment is a token."""
    assert (logs.redact(text) == text) is kept
