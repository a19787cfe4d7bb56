"""W3C trace context: the trace a request or a delivery belongs to, carried in a contextvar.

Every request continues the caller's trace when it sends a valid `traceparent` (an
invalid one is ignored, never an error) and starts a new one otherwise. Its outbox rows
keep the request's traceparent (`current_traceparent`, stamped by `Job.to_row`), and each
delivery attempt is a child span of it, whose traceparent the app's HTTP client sends
(`outgoing_headers`), so a bot's trace continues through the bridge to the platform.

Spans are recorded by a `SpanRecorder`: the default one only makes ids; the OpenTelemetry
one (bridge/otel.py, optional) also exports them. Log lines carry the trace id (logs.py).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol

# version-traceid-parentid-flags, lower-case hex; a later version may append fields.
_TRACEPARENT = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?$"
)
# Printable ASCII without a comma inside a member; at most 32 members, 512 characters
# (what the W3C recommends a receiver keeps at least).
_TRACESTATE_MEMBER = re.compile(
    r"^[a-z0-9][a-z0-9_\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,256}$"
)
MAX_TRACESTATE = 512
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SAMPLED = 0x01

SpanKind = Literal["server", "client", "internal"]
Attributes = Mapping[str, str | int | float | bool]


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One span's place in a trace: what a `traceparent` header says."""

    trace_id: str
    span_id: str
    sampled: bool = False
    tracestate: str | None = None

    def traceparent(self) -> str:
        """The `traceparent` header naming this span as the parent."""
        return f"00-{self.trace_id}-{self.span_id}-{SAMPLED if self.sampled else 0:02x}"


def parse_traceparent(value: str | None, tracestate: str | None = None) -> TraceContext | None:
    """The context a `traceparent` header gives, or None when it is absent or invalid."""
    if not value or len(value) > 512:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id = match["version"], match["trace"], match["span"]
    # Version ff is forbidden; version 00 has exactly four fields.
    if version == "ff" or (version == "00" and match["rest"]):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    sampled = bool(int(match["flags"], 16) & SAMPLED)
    return TraceContext(trace_id, span_id, sampled, valid_tracestate(tracestate))


def valid_tracestate(value: str | None) -> str | None:
    """The `tracestate` header when it is well formed, else None (it is then dropped)."""
    if not value or len(value) > MAX_TRACESTATE:
        return None
    members = [member.strip() for member in value.split(",") if member.strip()]
    if not members or len(members) > 32:
        return None
    if not all(_TRACESTATE_MEMBER.match(member) for member in members):
        return None
    return ",".join(members)


def new_trace_id() -> str:
    """A random, non-zero 128-bit trace id."""
    return f"{random.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    """A random, non-zero 64-bit span id."""
    return f"{random.getrandbits(64) or 1:016x}"


class Span(Protocol):
    """A span being recorded; `context` is what its children name as their parent."""

    context: TraceContext

    def end(self, attributes: Attributes, *, error: bool) -> None:
        """Finish the span with these attributes."""


class SpanRecorder(Protocol):
    """Starts spans: makes their ids and, for an exporter, records them."""

    def start(
        self, name: str, parent: TraceContext | None, kind: SpanKind, attributes: Attributes
    ) -> Span:
        """A span named `name`, the child of `parent` or the root of a new trace."""


@dataclass(slots=True)
class _IdsOnly:
    """A span that nobody records: only its ids travel on."""

    context: TraceContext

    def end(self, attributes: Attributes, *, error: bool) -> None:
        return None


class IdsOnly:
    """The recorder without an exporter: the caller's trace goes on, with new span ids."""

    def start(
        self, name: str, parent: TraceContext | None, kind: SpanKind, attributes: Attributes
    ) -> Span:
        """A child of `parent` keeping its trace id and sampling, or a new unsampled trace."""
        if parent is None:
            return _IdsOnly(TraceContext(new_trace_id(), new_span_id()))
        return _IdsOnly(
            TraceContext(parent.trace_id, new_span_id(), parent.sampled, parent.tracestate)
        )


@dataclass(slots=True)
class _Recording:
    recorder: SpanRecorder = field(default_factory=IdsOnly)


_recording = _Recording()
_current: ContextVar[TraceContext | None] = ContextVar("bridge_trace", default=None)


def use_recorder(recorder: SpanRecorder | None) -> None:
    """Record spans with `recorder` from now on (None: ids only, nothing exported)."""
    _recording.recorder = recorder if recorder is not None else IdsOnly()


def current() -> TraceContext | None:
    """The span this code runs in (a request's or a delivery's), if any."""
    return _current.get()


def current_traceparent() -> str | None:
    """The traceparent to keep with work caused here (an outbox row), if in a span."""
    context = _current.get()
    return context.traceparent() if context is not None else None


@dataclass(slots=True)
class Outcome:
    """What a `span` block learns about its span: attributes to end it with, failure."""

    context: TraceContext
    attributes: dict[str, str | int | float | bool] = field(default_factory=dict)
    failed: bool = False


@contextmanager
def span(
    name: str,
    parent: TraceContext | None,
    kind: SpanKind,
    attributes: Attributes | None = None,
) -> Iterator[Outcome]:
    """Run the block in a new span, the child of `parent` (a new trace without one).

    The span is current inside the block (log lines and outgoing calls carry it) and
    ends with it, with the attributes the block added; an exception marks it failed.
    """
    started = _recording.recorder.start(name, parent, kind, attributes or {})
    token = _current.set(started.context)
    outcome = Outcome(started.context)
    try:
        yield outcome
    except BaseException:
        outcome.failed = True
        raise
    finally:
        _current.reset(token)
        started.end(outcome.attributes, error=outcome.failed)


def outgoing_headers(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """`headers` plus the current span's traceparent (and tracestate), unless they name one."""
    context = _current.get()
    if context is None:
        return headers
    if headers is not None and any(key.lower() == "traceparent" for key in headers):
        return headers
    merged = dict(headers or {})
    merged["traceparent"] = context.traceparent()
    if context.tracestate:
        merged["tracestate"] = context.tracestate
    return merged
