"""The figures as a readable table (each beside its anchor and the ratio), and as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from bench.relay.figures import AnchorFigures, BridgeFigures, Delivery, Requests

Row = tuple[str, str, str, str]
WIDTHS = (46, 40, 34, 8)
# The target for a message accepted by one replica: delivered within this, not
# after the other replica's next poll (1 s by default).
PROBE_LAG_TARGET_MS = 250


def _n(value: float, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:,.1f}" if abs(value) < 10 else f"{value:,.0f}"
    return text + unit


def _rate(value: float) -> str:
    return _n(value, "/s")


def _ms(p50: float, p99: float) -> str:
    return f"p50 {_n(p50)} p99 {_n(p99)} ms"


def _share(figure: float, anchor: float) -> str:
    """The figure as a percentage of its anchor (higher is better)."""
    if not anchor or math.isnan(anchor) or math.isnan(figure):
        return "-"
    share = 100 * figure / anchor
    return f"{share:.1f}%" if share < 10 else f"{share:.0f}%"


def _times(figure: float, anchor: float) -> str:
    """How many times the anchor's cost the figure is (lower is better)."""
    if not anchor or math.isnan(anchor) or math.isnan(figure):
        return "-"
    return f"{figure / anchor:,.1f}x"


def _failures(requests: Requests) -> str:
    if not requests.failures:
        return ""
    return " (" + ", ".join(f"{k}: {v}" for k, v in sorted(requests.failures.items())) + ")"


def _requests(requests: Requests) -> str:
    return f"{_rate(requests.rate)} {_ms(requests.p50_ms, requests.p99_ms)}"


def _delivery_rows(name: str, got: Delivery, anchors: AnchorFigures | None) -> list[Row]:
    relay = anchors.relay if anchors else None
    rows: list[Row] = []
    # A paced load is read against what it offered; a closed loop against the relay's rates.
    if got.offered_rate:
        rows.append((name, "", "", ""))
        name = ""
        accepted_anchor = delivered_anchor = got.offered_rate
        accepted_text = delivered_text = f"offered {_rate(got.offered_rate)}"
    else:
        accepted_anchor = relay.accepted.rate if relay else math.nan
        delivered_anchor = relay.delivered_rate if relay else math.nan
        accepted_text = f"relay {_requests(relay.accepted)}" if relay else ""
        delivered_text = f"relay {_rate(delivered_anchor)}" if relay else ""
    rows += [
        (
            f"{name} accepted" if name else "  accepted",
            _requests(got.accepted) + _failures(got.accepted),
            accepted_text,
            _share(got.accepted.rate, accepted_anchor),
        ),
        (
            "  delivered",
            f"{_rate(got.delivered_rate)} ({got.delivered:,} of {got.accepted.ok:,})",
            delivered_text,
            _share(got.delivered_rate, delivered_anchor),
        ),
        ("  lag, accepted → arrival", _ms(got.lag_p50_ms, got.lag_p99_ms), "", ""),
        (
            "  sent → arrival",
            _ms(got.end_to_end_p50_ms, got.end_to_end_p99_ms),
            f"relay {_ms(relay.end_to_end_p50_ms, relay.end_to_end_p99_ms)}" if relay else "",
            "",
        ),
        (
            "  bridge CPU per delivered message",
            _n(got.cpu_ms_per_message, " ms"),
            f"relay {_n(relay.cpu_ms_per_message, ' ms')}" if relay else "",
            _times(got.cpu_ms_per_message, relay.cpu_ms_per_message if relay else math.nan),
        ),
        ("  CPU, % of a core", _cpu(got.cpu_percent), "", ""),
    ]
    return rows


def _no_poll_wait(probe: Delivery) -> str:
    """The probe's verdict: at a low rate, a lag p99 past the target means a poll was awaited."""
    if probe.undelivered or math.isnan(probe.lag_p99_ms):
        return "no: some messages did not arrive"
    if probe.lag_p99_ms <= PROBE_LAG_TARGET_MS:
        return f"yes: lag p99 ≤ {PROBE_LAG_TARGET_MS} ms"
    return f"no: lag p99 > {PROBE_LAG_TARGET_MS} ms"


def _cpu(percent: Mapping[str, float]) -> str:
    return ", ".join(f"{role} {value:.0f}" for role, value in percent.items())


def _table(title: tuple[str, str, str, str], rows: list[Row]) -> list[str]:
    def line(cells: tuple[str, str, str, str]) -> str:
        return "".join(f"{cell:<{width}}" for cell, width in zip(cells, WIDTHS, strict=True))

    return [line(title).rstrip(), *(line(row).rstrip() for row in rows)]


def anchors_table(anchors: AnchorFigures) -> list[str]:
    """The anchors' own figures."""
    bare, relay = anchors.bare, anchors.relay
    rows: list[Row] = [
        (
            "bare aiohttp, parse 1 KB JSON",
            _requests(bare) + _failures(bare),
            f"CPU {_n(anchors.bare_cpu_ms_per_request, ' ms')}/req",
            f"RSS {_n(anchors.bare_rss_mb, ' MB')}",
        ),
        (
            "non-durable relay, accepted",
            _requests(relay.accepted) + _failures(relay.accepted),
            f"CPU {_n(relay.cpu_ms_per_message, ' ms')}/msg",
            f"RSS {_n(anchors.relay_rss_mb, ' MB')}",
        ),
        (
            "  arrived at the fake platform",
            f"{_rate(relay.delivered_rate)} sent → arrival"
            f" {_ms(relay.end_to_end_p50_ms, relay.end_to_end_p99_ms)}",
            "",
            "",
        ),
        ("  CPU, % of a core: bare run", _cpu(anchors.bare_cpu_percent), "", ""),
        ("  CPU, % of a core: relay run", _cpu(relay.cpu_percent), "", ""),
    ]
    return _table(("anchors (same requests, same run)", "figure", "cost", "memory"), rows)


def bridge_table(figures: BridgeFigures, anchors: AnchorFigures | None) -> list[str]:
    """One configuration's figures beside the anchors."""
    title = (f"bridge: {figures.label}", "bridge", "anchor", "ratio")
    if figures.error:
        return [title[0], f"  not measured: {figures.error}"]
    bare = anchors.bare if anchors else None
    rows: list[Row] = []
    for name, got in (
        ("POST /v1/handoffs, 0 waiting", figures.handoffs_empty),
        (f"POST /v1/handoffs, {figures.waiting:,} waiting", figures.handoffs_waiting),
    ):
        if got is not None:
            rows.append(
                (
                    name,
                    _requests(got) + _failures(got),
                    f"bare {_requests(bare)}" if bare else "",
                    _share(got.rate, bare.rate if bare else math.nan),
                )
            )
    for name, delivery in (
        ("customer→platform", figures.customer),
        ("customer→platform, half the relay's rate", figures.customer_paced),
        ("agent→bot", figures.agent),
        ("probe, low rate across replicas", figures.probe),
    ):
        if delivery is not None:
            rows += _delivery_rows(name, delivery, anchors)
    if probe := figures.probe:
        rows.append(("  delivered without waiting for a poll?", _no_poll_wait(probe), "", ""))
    rows += _rss_rows(figures, anchors)
    lines = _table(title, rows)
    notes = list(figures.notes)
    for delivery in (figures.customer, figures.customer_paced, figures.agent, figures.probe):
        notes += delivery.notes if delivery else []
    lines += [f"  note: {note}" for note in notes]
    return lines


def _rss_rows(figures: BridgeFigures, anchors: AnchorFigures | None) -> list[Row]:
    def mb(values: list[float]) -> str:
        return " + ".join(_n(v) for v in values) + " MB"

    relay = f"relay {_n(anchors.relay_rss_mb, ' MB')}" if anchors else ""
    rss = figures.rss_mb
    rows: list[Row] = []
    if "ready" in rss:
        rows.append(("RSS when ready", mb(rss["ready"]), relay, ""))
    if "active" in rss:
        rows.append((f"  with {figures.active_conversations:,} active", mb(rss["active"]), "", ""))
    if soak := figures.soak:
        rows.append(
            (
                f"  soak, {soak.accepted:,} messages in {soak.seconds:g} s",
                f"start {mb(soak.rss_start_mb)}, peak {mb(soak.rss_peak_mb)}",
                f"{soak.delivered:,} delivered",
                "",
            )
        )
    if "end" in rss:
        rows.append((f"  after {figures.messages:,} messages", mb(rss["end"]), "", ""))
    return rows


def render(
    conditions: Mapping[str, Any], anchors: AnchorFigures | None, bridges: list[BridgeFigures]
) -> str:
    """The whole report."""
    lines = [f"{key}: {value}" for key, value in conditions.items()]
    if anchors:
        lines += ["", *anchors_table(anchors)]
    for figures in bridges:
        lines += ["", *bridge_table(figures, anchors)]
    return "\n".join(lines)


def as_json(
    conditions: Mapping[str, Any], anchors: AnchorFigures | None, bridges: list[BridgeFigures]
) -> str:
    """Every figure as JSON (NaN as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    figures = {
        "conditions": dict(conditions),
        "anchors": dataclasses.asdict(anchors) if anchors else None,
        "bridge": [dataclasses.asdict(b) for b in bridges],
    }
    return json.dumps(clean(figures), indent=2)
