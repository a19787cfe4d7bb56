"""The relay as it is observed: each attempt a span of its request's trace, each outcome counted.

The worker is given these wrappers of its deliverer and outcome hooks (app.py), so the
hot path gains a span and two counter increments per attempt and no change of its own.
An attempt runs in a task of its own: the span, the conversation id for the log lines
and the traceparent the HTTP client sends (bridge/ports/http.py) stay inside it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bridge import logs, metrics, tracing
from bridge.db.repo import Tx
from bridge.db.tables import OutboxRow
from bridge.db.units import Unit
from bridge.relay.delivery import Deliverer, DeliveryHooks, DeliveryResult


def _accepted_at(row: OutboxRow) -> datetime:
    """When the delivery was accepted; a row written to fall due later, when it fell due."""
    if row.attempts == 0 and row.next_attempt_at > row.created_at:
        return row.next_attempt_at
    return row.created_at


class ObservedDeliverer:
    """Delivers through `inner`, inside the span of the row's trace, counting the outcome."""

    def __init__(self, inner: Deliverer) -> None:
        self._inner = inner

    async def deliver(self, row: OutboxRow) -> DeliveryResult:
        """One attempt: a child span of the request that caused it (a new trace if none)."""
        parent = tracing.parse_traceparent(row.traceparent)
        attributes: tracing.Attributes = {
            "bridge.delivery.kind": row.kind,
            "bridge.outbox_id": row.id,
        }
        with (
            logs.bind(conversation_id=row.conversation_id),
            tracing.span(f"deliver {row.kind}", parent, "client", attributes) as span,
        ):
            try:
                result = await self._inner.deliver(row)
            except Exception as exc:
                # The worker retries any error (a bug in an adapter included): all failed.
                metrics.delivery(row.kind, "failed")
                span.attributes["error.type"] = type(exc).__name__
                span.failed = True
                raise
            lag = (datetime.now(UTC) - _accepted_at(row)).total_seconds()
            metrics.delivered(row.kind, lag)
            return result


class ObservedHooks:
    """Passes outcomes to `inner`; counts a delivery given up once its transaction commits."""

    def __init__(self, inner: DeliveryHooks) -> None:
        self._inner = inner

    def delivered(self, row: OutboxRow, result: DeliveryResult) -> Unit[None]:
        """As `inner` does."""
        return self._inner.delivered(row, result)

    async def dead(self, tx: Tx, row: OutboxRow, error: str) -> None:
        """As `inner` does, then count it."""
        await self._inner.dead(tx, row, error)
        kind = row.kind
        tx.after_commit(lambda: metrics.delivery(kind, "dead"))
