"""`GET /metrics`: Prometheus exposition of the counted events and of the store's live state.

Who may scrape it, like the admin API (bridge/api/auth.py): the bearer token in
BRIDGE_SECURITY__METRICS_TOKEN (for Prometheus' `authorization` block) or the admin
token; open while neither is set (the service then listens on loopback, or the open API
was allowed on purpose); open to anyone with `metrics.public: true`.

The store's state (conversations, queues, outbox, agents) is read at the scrape, in one
transaction of three grouped statements, and shown as gauges computed then; with several
replicas each shows the same store, so alert on `max()` of them, not `sum()`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge import metrics
from bridge.api.openapi import Access, Answer, Operations
from bridge.db.repo.stats import StatsQueries, StoreSnapshot
from bridge.domain.status import Status
from bridge.errors import FieldProblem, Unauthorized
from bridge.settings import Settings
from bridge.typedefs import SETTINGS, STORE

routes = web.RouteTableDef()
doc = Operations("Metrics", Access.ADMIN)


def _allowed(settings: Settings, authorization: str) -> bool:
    """Whether a request with this Authorization header may scrape."""
    if settings.metrics.public:
        return True
    tokens = [settings.security.metrics_token, settings.security.admin_token]
    expected = [token.get_secret_value() for token in tokens if token is not None]
    if not expected:
        return True
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() not in {"bearer", "token"} or not given.strip():
        return False
    # Every token is compared, in constant time, so the answer's timing tells nothing.
    matched = [hmac.compare_digest(given.strip().encode(), token.encode()) for token in expected]
    return any(matched)


class SnapshotCollector(Collector):
    """The store's live state as gauges, from one snapshot."""

    def __init__(self, snapshot: StoreSnapshot, now: datetime) -> None:
        self._snapshot = snapshot
        self._now = now

    def collect(self) -> Iterator[Metric]:
        """Every gauge the snapshot gives."""
        snapshot, now = self._snapshot, self._now
        conversations = GaugeMetricFamily(
            "bridge_conversations",
            "Conversations under way (pending or active), by status and channel.",
            labels=["status", "channel"],
        )
        queue = GaugeMetricFamily(
            "bridge_queue_length", "Chats waiting for an agent, by channel.", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "bridge_queue_oldest_wait_seconds",
            "How long the longest-waiting chat has waited, by channel.",
            labels=["channel"],
        )
        for row in snapshot.conversations:
            conversations.add_metric([row.status, row.channel], row.count)
            if row.status == Status.PENDING:
                queue.add_metric([row.channel], row.count)
                waited = (now - row.oldest).total_seconds() if row.oldest else 0.0
                oldest.add_metric([row.channel], max(0.0, waited))
        yield from (conversations, queue, oldest)
        outbox = snapshot.outbox
        yield GaugeMetricFamily(
            "bridge_outbox_pending", "Deliveries waiting in the outbox.", value=outbox.pending
        )
        late = (now - outbox.earliest_due).total_seconds() if outbox.earliest_due else 0.0
        yield GaugeMetricFamily(
            "bridge_outbox_oldest_due_seconds",
            "How long the oldest due delivery has been due (0 when none is).",
            value=max(0.0, late),
        )
        yield GaugeMetricFamily(
            "bridge_outbox_dead",
            "Deliveries given up, waiting for a retry by hand.",
            value=outbox.dead,
        )
        agents = GaugeMetricFamily("bridge_agents", "Agents by presence.", labels=["presence"])
        for presence, count in sorted(snapshot.agents.items()):
            agents.add_metric([presence], count)
        yield agents


def _render(snapshot: StoreSnapshot, now: datetime, accept: str) -> tuple[bytes, str]:
    """The exposition text: the counted events, then the store's gauges."""
    encoder, content_type = choose_encoder(accept)
    state = CollectorRegistry(auto_describe=False)
    state.register(SnapshotCollector(snapshot, now))
    events = encoder(metrics.exposition_registry())
    store = encoder(state)
    # OpenMetrics ends its text with one "# EOF"; the two parts become one document.
    eof = b"# EOF\n"
    if events.endswith(eof):
        events = events[: -len(eof)]
    return events + store, content_type


@routes.get("/metrics")
@doc(
    "Prometheus metrics of this replica",
    description="Takes BRIDGE_SECURITY__METRICS_TOKEN or the admin token; open while "
    "neither is set.",
    answers={200: Answer(None, "The Prometheus text format.", ("text/plain",))},
)
async def scrape(request: web.Request) -> web.Response:
    """Everything Prometheus scrapes from this replica."""
    settings = request.app[SETTINGS]
    if not _allowed(settings, request.headers.get("Authorization", "")):
        raise Unauthorized(
            "a valid bearer token is required",
            [
                FieldProblem(
                    "Authorization",
                    "missing or wrong token (set by BRIDGE_SECURITY__METRICS_TOKEN or"
                    " BRIDGE_SECURITY__ADMIN_TOKEN)",
                )
            ],
        )
    async with request.app[STORE].transaction() as tx:
        snapshot = await StatsQueries(tx.session).snapshot()
    now = datetime.now(UTC)
    # Reading every replica's files (multiprocess mode) is file I/O: off the event loop.
    body, content_type = await asyncio.to_thread(
        _render, snapshot, now, request.headers.get("Accept", "")
    )
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
