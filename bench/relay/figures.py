"""The figures of one measurement, computed from the load's outcomes and the arrivals.

Rates run from the first request sent to the last answer (requests) or the last arrival
at the receiver (deliveries). Latencies are milliseconds, nearest-rank percentiles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from bench.relay.load import LoadResult, percentile
from bench.relay.procs import Proc

LOAD_ROLE = "load"


def _ms(seconds: float) -> float:
    return seconds * 1000


@dataclass
class CpuSample:
    """CPU seconds used so far by each process of a measurement (and by this one)."""

    at: float
    seconds: dict[str, float]

    @classmethod
    def take(cls, procs: Sequence[Proc]) -> CpuSample:
        """Read every process's CPU time now."""
        seconds = {proc.role: proc.cpu() for proc in procs}
        seconds[LOAD_ROLE] = time.process_time()
        return cls(time.monotonic(), seconds)

    def percent_since(self, earlier: CpuSample) -> dict[str, float]:
        """Each process's CPU use between the samples, in % of one core."""
        wall = max(self.at - earlier.at, 1e-9)
        return {
            role: round(100 * (used - earlier.seconds.get(role, 0.0)) / wall, 1)
            for role, used in self.seconds.items()
        }

    def used_since(self, earlier: CpuSample, roles: Collection[str]) -> float:
        """CPU seconds used between the samples by the processes of these roles."""
        return sum(self.seconds[role] - earlier.seconds.get(role, 0.0) for role in roles)


@dataclass
class Requests:
    """A run of requests as the load generator saw it."""

    sent: int
    ok: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    failures: dict[str, int]
    # The load generator's own CPU over the run: near 100 %, it may be the bottleneck.
    client_cpu_percent: float

    @classmethod
    def of(cls, load: LoadResult) -> Requests:
        """Throughput of successful answers and the latency of every answer."""
        latencies = [o.finished - o.started for o in load.outcomes]
        ok = len(load.ok())
        return cls(
            sent=len(load.outcomes),
            ok=ok,
            seconds=round(load.seconds, 3),
            rate=ok / load.seconds if load.outcomes else 0.0,
            p50_ms=_ms(percentile(latencies, 50)),
            p99_ms=_ms(percentile(latencies, 99)),
            failures=load.failures(),
            client_cpu_percent=round(100 * load.client_cpu_seconds / load.seconds, 1),
        )


@dataclass
class Delivery:
    """Messages accepted by a server, and their arrival at the receiver."""

    accepted: Requests
    delivered: int
    delivered_rate: float
    # Accepted (the answer reached the client) → arrival; 0 when it arrived first.
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    # Sent → arrival: comparable between the bridge and the relay anchor.
    end_to_end_p50_ms: float
    end_to_end_p99_ms: float
    undelivered: int
    duplicates: int
    # CPU of the server processes (every replica) per delivered message.
    cpu_ms_per_message: float
    cpu_percent: dict[str, float] = field(default_factory=dict)
    offered_rate: float | None = None
    notes: list[str] = field(default_factory=list)


def delivery(
    load: LoadResult,
    arrivals: Sequence[tuple[str, float]],
    cpu_before: CpuSample,
    cpu_after: CpuSample,
    server_roles: Collection[str],
    offered_rate: float | None = None,
) -> Delivery:
    """Match arrivals to accepted requests by marker and compute the figures."""
    accepted = {o.marker: o for o in load.ok() if o.marker is not None}
    first: dict[str, float] = {}
    duplicates = 0
    for marker, arrived in arrivals:
        if marker in first:
            duplicates += 1
        else:
            first[marker] = arrived
    matched = [(accepted[m], arrived) for m, arrived in first.items() if m in accepted]
    lags = [max(0.0, arrived - o.finished) for o, arrived in matched]
    end_to_end = [arrived - o.started for o, arrived in matched]
    last = max((arrived for _, arrived in matched), default=load.ended)
    span = max(last - load.began, 1e-9)
    used = cpu_after.used_since(cpu_before, server_roles)
    return Delivery(
        accepted=Requests.of(load),
        delivered=len(matched),
        delivered_rate=len(matched) / span if matched else 0.0,
        lag_p50_ms=_ms(percentile(lags, 50)),
        lag_p99_ms=_ms(percentile(lags, 99)),
        lag_max_ms=_ms(max(lags, default=math.nan)),
        end_to_end_p50_ms=_ms(percentile(end_to_end, 50)),
        end_to_end_p99_ms=_ms(percentile(end_to_end, 99)),
        undelivered=len(accepted) - len(matched),
        duplicates=duplicates,
        cpu_ms_per_message=_ms(used / len(matched)) if matched else math.nan,
        cpu_percent=cpu_after.percent_since(cpu_before),
        offered_rate=offered_rate,
    )


@dataclass
class AnchorFigures:
    """The two anchors, measured in the same run as the bridge."""

    bare: Requests
    bare_cpu_ms_per_request: float
    bare_rss_mb: float
    bare_cpu_percent: dict[str, float]
    relay: Delivery
    relay_rss_mb: float


@dataclass
class Soak:
    """Messages pushed through before the last RSS reading, and RSS along the way."""

    accepted: int
    delivered: int
    seconds: float
    rss_start_mb: list[float]
    rss_peak_mb: list[float]


@dataclass
class BridgeFigures:
    """Every figure of one bridge configuration."""

    label: str
    database: str
    processes: int
    handoffs_empty: Requests | None = None
    handoffs_waiting: Requests | None = None
    waiting: int = 0
    customer: Delivery | None = None
    customer_paced: Delivery | None = None
    agent: Delivery | None = None
    probe: Delivery | None = None
    soak: Soak | None = None
    # Per process: "ready", "active" (after the conversations were opened), "end".
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    active_conversations: int = 0
    messages: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
