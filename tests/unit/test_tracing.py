"""W3C trace context: what is accepted, what is ignored, and how spans nest and propagate."""

from __future__ import annotations

import asyncio

import pytest

from bridge import tracing
from bridge.tracing import TraceContext, parse_traceparent, valid_tracestate

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("header", "sampled"),
    [
        (f"00-{TRACE}-{SPAN}-01", True),
        (f"00-{TRACE}-{SPAN}-00", False),
        (f"00-{TRACE}-{SPAN}-03", True),  # other flag bits: only "sampled" is read
        (f"  00-{TRACE}-{SPAN}-01  ", True),
        (f"01-{TRACE}-{SPAN}-01-future-fields", True),  # a later version may add fields
    ],
)
def test_valid_traceparents_are_continued(header: str, sampled: bool) -> None:
    context = parse_traceparent(header)
    assert context == TraceContext(TRACE, SPAN, sampled)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"00-{TRACE}-{SPAN}",
        f"00-{TRACE}-{SPAN}-01-more",  # version 00 has exactly four fields
        f"ff-{TRACE}-{SPAN}-01",
        f"00-{'0' * 32}-{SPAN}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE.upper()}-{SPAN}-01",
        f"00-{TRACE[:-1]}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-0x",
        f"00_{TRACE}_{SPAN}_01",
        f"01-{TRACE}-{SPAN}-01garbage",
        "x" * 10_000,
    ],
)
def test_invalid_traceparents_are_ignored(header: str | None) -> None:
    assert parse_traceparent(header) is None


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("vendor=abc", "vendor=abc"),
        ("a=1, b=2,,", "a=1,b=2"),
        ("tenant@system=x/y", "tenant@system=x/y"),
        ("Upper=1", None),
        ("novalue", None),
        ("a=1," * 33, None),  # more than 32 members
        ("a=" + "x" * 600, None),
        ("a=has,comma", None),
        ("", None),
        (None, None),
    ],
)
def test_tracestate_is_kept_only_when_well_formed(header: str | None, kept: str | None) -> None:
    assert valid_tracestate(header) == kept


def test_a_span_continues_its_parents_trace_with_a_span_of_its_own() -> None:
    parent = TraceContext(TRACE, SPAN, True, "vendor=abc")
    assert tracing.current() is None
    with tracing.span("work", parent, "server") as outer:
        assert tracing.current() == outer.context
        assert outer.context.trace_id == TRACE
        assert outer.context.span_id != SPAN
        assert outer.context.sampled
        with tracing.span("inner", outer.context, "client") as inner:
            assert tracing.current_traceparent() == f"00-{TRACE}-{inner.context.span_id}-01"
        assert tracing.current() == outer.context
    assert tracing.current() is None


def test_without_a_parent_a_new_unsampled_trace_starts() -> None:
    with tracing.span("root", None, "server") as root:
        context = root.context
    assert len(context.trace_id) == 32
    assert context.trace_id != "0" * 32
    assert len(context.span_id) == 16
    assert not context.sampled
    assert context.traceparent().endswith("-00")


def test_a_failed_block_marks_its_span_failed_and_still_ends_it() -> None:
    ended: list[tuple[dict[str, object], bool]] = []

    class Recorder:
        def start(
            self,
            name: str,
            parent: TraceContext | None,
            kind: tracing.SpanKind,
            attributes: tracing.Attributes,
        ) -> tracing.Span:
            span = tracing.IdsOnly().start(name, parent, kind, attributes)

            class Ending:
                context = span.context

                def end(self, attributes: tracing.Attributes, *, error: bool) -> None:
                    ended.append((dict(attributes), error))

            return Ending()

    tracing.use_recorder(Recorder())
    try:
        with pytest.raises(RuntimeError), tracing.span("boom", None, "internal") as span:
            span.attributes["step"] = "one"
            raise RuntimeError("boom")
        with tracing.span("fine", None, "internal"):
            pass
    finally:
        tracing.use_recorder(None)
    assert ended == [({"step": "one"}, True), ({}, False)]
    assert tracing.current() is None


def test_outgoing_calls_carry_the_current_span_unless_they_name_one() -> None:
    assert tracing.outgoing_headers({"a": "1"}) == {"a": "1"}
    parent = TraceContext(TRACE, SPAN, True, "vendor=abc")
    with tracing.span("deliver", parent, "client") as span:
        headers = tracing.outgoing_headers({"a": "1"})
        assert headers == {
            "a": "1",
            "traceparent": span.context.traceparent(),
            "tracestate": "vendor=abc",
        }
        own = {"TraceParent": "00-x"}
        assert tracing.outgoing_headers(own) is own


async def test_concurrent_tasks_keep_their_own_spans() -> None:
    """A span set in one task (one delivery attempt) is never seen by another."""
    seen: dict[str, str | None] = {}

    async def attempt(name: str, trace_id: str) -> None:
        with tracing.span(name, TraceContext(trace_id, SPAN), "client"):
            await asyncio.sleep(0)
            context = tracing.current()
            seen[name] = context.trace_id if context else None

    other = "0af7651916cd43dd8448eb211c80319c"
    await asyncio.gather(attempt("a", TRACE), attempt("b", other))
    assert seen == {"a": TRACE, "b": other}
    assert tracing.current() is None
