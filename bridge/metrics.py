"""The service's Prometheus counters and histograms, and the functions that count events.

Events are counted where they happen (the HTTP middleware, the handoff service, the
relay's delivery wrapper) through the small functions here, so the call sites stay one
line and know nothing of prometheus_client. What the store holds (conversations, queues,
the outbox, agents) is not counted here: it is read at scrape time (bridge/api/metrics.py).

With `PROMETHEUS_MULTIPROC_DIR` set (before the process starts), prometheus_client keeps
these values in files in that directory, and a scrape of any replica on the host adds up
every process's values (see `exposition_registry`).
"""

from __future__ import annotations

import functools
import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess

# Methods are a label; anything else a client sends is counted as "other", so a client
# cannot grow the number of series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "(unmatched)"
# The rule label of a handoff refused before it was routed.
NO_RULE = "none"

HTTP_REQUESTS = Counter(
    "bridge_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "bridge_http_request_duration_seconds",
    "Time to answer an HTTP request (until the handler returned), by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HANDOFFS = Counter(
    "bridge_handoffs",
    "Handoffs asked for, by route rule and outcome (created, existing, refused).",
    ["rule", "outcome"],
)
DELIVERIES = Counter(
    "bridge_deliveries",
    "Delivery attempts by job kind and outcome (delivered, failed, dead).",
    ["kind", "outcome"],
)
DELIVERY_LAG = Histogram(
    "bridge_delivery_lag_seconds",
    "From a delivery's acceptance (its outbox row written) to the receiver accepting it.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0),
)


# The labelled series of each hot counter, looked up once: `labels()` validates and locks
# on every call, a few microseconds per request and per delivery. Labels are bounded
# (known methods, route templates, statuses, job kinds), and so are these caches.


@functools.cache
def _http_series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    return HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route)


@functools.cache
def _delivery_series(kind: str, outcome: str) -> Counter:
    return DELIVERIES.labels(kind, outcome)


@functools.cache
def _lag_series(kind: str) -> Histogram:
    return DELIVERY_LAG.labels(kind)


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    """One answered request; `route` is its template, never the raw path."""
    method = method if method in KNOWN_METHODS else "other"
    requests, duration = _http_series(method, route, status)
    requests.inc()
    duration.observe(seconds)


def handoff(rule: str, outcome: str) -> None:
    """A handoff was created, met an existing conversation, or was refused."""
    HANDOFFS.labels(rule, outcome).inc()


def delivery(kind: str, outcome: str) -> None:
    """A delivery attempt ended: delivered, failed (retried later) or dead."""
    _delivery_series(kind, outcome).inc()


def delivered(kind: str, lag_seconds: float) -> None:
    """A delivery reached its receiver `lag_seconds` after it was accepted."""
    _delivery_series(kind, "delivered").inc()
    _lag_series(kind).observe(max(0.0, lag_seconds))


def multiprocess_dir() -> str | None:
    """The directory replicas on this host share their values through, if set."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def exposition_registry() -> CollectorRegistry:
    """What a scrape shows of the counted events: every process's on a shared host."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
