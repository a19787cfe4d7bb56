"""OpenTelemetry export of the bridge's spans (requests and delivery attempts), when asked for.

Optional: the `otel` extra installs the SDK and the OTLP/HTTP exporter, and they are
imported only when `tracing.otlp_endpoint` or OTEL_EXPORTER_OTLP_ENDPOINT names a
collector. Without either, nothing here is imported beyond this module and spans only
carry ids (bridge/tracing.py). The SDK's sampler follows the caller's sampled flag
(OTEL_TRACES_SAMPLER may change that), and spans leave in batches from the SDK's thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridge import tracing
from bridge.errors import ConfigError
from bridge.settings import TracingSettings
from bridge.typedefs import SETTINGS

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def wanted(settings: TracingSettings) -> bool:
    """Whether spans are to be exported: a collector is named in the settings or environment."""
    return settings.otlp_endpoint is not None or any(os.environ.get(v) for v in ENDPOINT_VARIABLES)


class _Exported:
    """A span the SDK records; its ids are the ones the trace continues with."""

    def __init__(self, span: Any, context: tracing.TraceContext) -> None:
        self._span = span
        self.context = context

    def end(self, attributes: tracing.Attributes, *, error: bool) -> None:
        """Set the attributes and status, and hand the span to the exporter."""
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attributes(dict(attributes))
        if error:
            self._span.set_status(Status(StatusCode.ERROR))
        self._span.end()


class OtelRecorder:
    """Starts SDK spans as children of the bridge's trace context."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("handoff-bridge")

    def start(
        self,
        name: str,
        parent: tracing.TraceContext | None,
        kind: tracing.SpanKind,
        attributes: tracing.Attributes,
    ) -> tracing.Span:
        """An SDK span; the caller's trace continues through it."""
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace.span import TraceState

        context = Context()  # never the SDK's own current span: ours is in a contextvar
        if parent is not None:
            remote = trace.SpanContext(
                int(parent.trace_id, 16),
                int(parent.span_id, 16),
                is_remote=True,
                trace_flags=trace.TraceFlags(tracing.SAMPLED if parent.sampled else 0),
                trace_state=(
                    TraceState.from_header([parent.tracestate]) if parent.tracestate else None
                ),
            )
            context = trace.set_span_in_context(trace.NonRecordingSpan(remote), context)
        kinds = {
            "server": trace.SpanKind.SERVER,
            "client": trace.SpanKind.CLIENT,
            "internal": trace.SpanKind.INTERNAL,
        }
        span = self._tracer.start_span(
            name, context=context, kind=kinds[kind], attributes=dict(attributes)
        )
        made = span.get_span_context()
        return _Exported(
            span,
            tracing.TraceContext(
                f"{made.trace_id:032x}",
                f"{made.span_id:016x}",
                made.trace_flags.sampled,
                parent.tracestate if parent is not None else None,
            ),
        )


def make_provider(settings: TracingSettings) -> TracerProvider:
    """The SDK's provider exporting to the configured collector; ConfigError without the SDK."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            "trace export is configured (tracing.otlp_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)"
            " but OpenTelemetry is not installed: pip install 'handoff-bridge[otel]'"
        ) from exc
    endpoint = settings.otlp_endpoint
    # A configured base URL gets the traces path; unset, the SDK reads the environment.
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None)
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


async def span_export(app: web.Application) -> AsyncIterator[None]:
    """Export spans while the app runs (cleanup context); flush them when it stops."""
    settings = app[SETTINGS].tracing
    if not wanted(settings):
        yield
        return
    provider = make_provider(settings)
    tracing.use_recorder(OtelRecorder(provider))
    log.info("tracing.export_started", extra={"service_name": settings.service_name})
    try:
        yield
    finally:
        tracing.use_recorder(None)
        # The last batch is sent from a thread: the loop keeps serving meanwhile.
        await asyncio.to_thread(provider.shutdown)
