"""OpenTelemetry export: the bridge's spans reach an OTLP collector, in the caller's trace.

The collector is a real HTTP server on port 0 that decodes what the SDK's exporter posts
to /v1/traces (OTLP/HTTP, protobuf); the spans are flushed when the bridge stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bridge import tracing
from bridge.tracing import parse_traceparent
from tests.conftest import Database, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.kit.fake_platform import FakePlatform

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@dataclass(frozen=True)
class ExportedSpan:
    """One span as the collector received it, ids in hex."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    service: str
    attributes: dict[str, Any]


@dataclass(kw_only=True)
class FakeCollector(FakePlatform):
    """An OTLP/HTTP trace receiver."""

    spans: list[ExportedSpan] = field(default_factory=list)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/traces", self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    self.spans.append(
                        ExportedSpan(
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            service,
                            attributes,
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture
async def collector() -> AsyncIterator[FakeCollector]:
    async with FakeCollector() as fake:
        yield fake


async def test_spans_of_a_request_and_its_delivery_reach_the_collector(
    database: Database, collector: FakeCollector, bot: FakeBot
) -> None:
    settings = make_settings(
        database,
        unused_port(),
        tracing={"otlp_endpoint": collector.url, "service_name": "bridge-under-test"},
    )
    running = await start_bridge(settings)
    try:
        traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
        status, created = await running.post(
            "/v1/handoffs", handoff_body(bot.url), headers={"traceparent": traceparent}
        )
        assert status == 201, created
        token = str(created["join_url"]).rsplit("/", 1)[1]
        status, _ = await running.post(
            f"/console/api/{token}/join", {"name": "Ana"}, headers={"traceparent": traceparent}
        )
        assert status == 200
        await bot.wait_for(
            lambda fake: any(call.body.get("type") == "agent.joined" for call in fake.calls)
        )
        joined = next(call for call in bot.calls if call.body.get("type") == "agent.joined")
    finally:
        await stop_bridge(running)  # flushes the last batch
    sent = parse_traceparent(joined.headers["traceparent"])
    assert sent is not None

    ours = [span for span in collector.spans if span.trace_id == TRACE_ID]
    assert {span.service for span in ours} == {"bridge-under-test"}
    handoff = next(span for span in ours if span.name == "POST /v1/handoffs")
    assert handoff.parent_span_id == PARENT_ID
    assert handoff.attributes["http.response.status_code"] == 201
    # The delivery the join caused: the span the bot was told is its parent, under the
    # join request's span.
    delivery = next(span for span in ours if span.span_id == sent.span_id)
    assert delivery.name == "deliver bot.event"
    join = next(span for span in ours if span.span_id == delivery.parent_span_id)
    assert join.name == "POST /console/api/{token}/join"
    assert join.parent_span_id == PARENT_ID
    # Nothing is left recording once the app has stopped.
    with tracing.span("after", None, "internal") as after:
        pass
    assert not after.context.sampled
