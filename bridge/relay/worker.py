"""The delivery worker: leases due outbox rows and delivers them, lane by lane, in order.

Each lane (one side of one conversation) has at most one delivery in flight, across
every replica, so messages reach each side in the order they were written. A failed
attempt is rescheduled with capped exponential backoff and jitter, honouring
Retry-After; a rejected one (a 4xx) or one out of attempts is marked dead, stays
visible through the API, and does not hold back the rest of its lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bridge.db.repo import Store, Tx
from bridge.db.tables import OutboxRow
from bridge.errors import PlatformError, PlatformUnavailable
from bridge.settings import RelaySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a delivery learned that the bridge keeps (the platform's id, its join link)."""

    external_ref: str | None = None
    join_url: str | None = None


class Deliverer(Protocol):
    """Performs one delivery, raising a PlatformError when it fails."""

    async def deliver(self, row: OutboxRow) -> DeliveryResult: ...


class DeliveryHooks(Protocol):
    """Lets the conversation lifecycle react to a delivery's outcome, in the same transaction."""

    async def delivered(self, tx: Tx, row: OutboxRow, result: DeliveryResult) -> None: ...

    async def dead(self, tx: Tx, row: OutboxRow, error: str) -> None: ...


def backoff_seconds(
    attempts: int, settings: RelaySettings, rand: Callable[[], float] = random.random
) -> float:
    """Capped exponential backoff with equal jitter, for the attempt just failed (1-based)."""
    ceiling: float = min(
        settings.backoff_max_seconds, settings.backoff_initial_seconds * 2.0 ** (attempts - 1)
    )
    return ceiling / 2 + rand() * ceiling / 2


class RelayWorker:
    """Runs in the background of each replica; safe to run on several at once."""

    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        hooks: DeliveryHooks,
        settings: RelaySettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._deliverer = deliverer
        self._hooks = hooks
        self._settings = settings
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: dict[asyncio.Task[None], int] = {}
        # Long enough for every quick retry of one attempt to time out, plus a margin;
        # past it another replica may take the row over (at-least-once, same webhook-id).
        self._lease = timedelta(
            seconds=settings.request_timeout_seconds * (settings.quick_retries + 1) + 10
        )
        self.running = False

    def wake(self) -> None:
        """Look for work now instead of at the next poll (called after a commit)."""
        self._wake.set()

    def start(self) -> None:
        """Run the delivery loop in the background until `stop`."""
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self.run(), name="relay-worker")

    async def run(self) -> None:
        """Deliver until stopped; survives database outages by waiting and trying again."""
        self.running = True
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    claimed = await self.run_once()
                except Exception:
                    log.exception("relay.poll_failed")
                    claimed = 0
                if claimed == 0 or len(self._in_flight) >= self._settings.max_in_flight:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), self._settings.poll_interval_seconds
                        )
        finally:
            self.running = False

    async def run_once(self) -> int:
        """Lease what is due (up to the free slots) and start delivering it."""
        free = self._settings.max_in_flight - len(self._in_flight)
        if free <= 0:
            return 0
        async with self._store.transaction() as tx:
            rows = await tx.claim_due(self._clock(), free, self._lease)
        for row in rows:
            task = asyncio.create_task(self._deliver(row), name=f"relay-{row.id}")
            self._in_flight[task] = row.id
            task.add_done_callback(self._forget)
        return len(rows)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)

    async def drain(self) -> None:
        """Wait for the deliveries in flight (tests and graceful shutdown)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming, let deliveries in flight finish for a while, then give back the rest.

        The loop is asked to stop rather than cancelled, so a claim is never cut off
        between its commit and the start of its deliveries (which would strand leases).
        Deliveries still running after the grace period are cancelled and their leases
        released, so the next instance takes them over at once (same webhook-id).
        """
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=grace_seconds)
        leftover = dict(self._in_flight)
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)
        if leftover:
            async with self._store.transaction() as tx:
                await tx.release_leases(list(leftover.values()))

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            try:
                result = await self._deliverer.deliver(row)
            except PlatformError as exc:
                await self._record_failure(row, exc)
                return
            except Exception as exc:
                # A bug in an adapter must not stop the worker; treat it as transient so
                # the row is retried (and goes dead after max attempts) rather than lost.
                log.exception("relay.unexpected_error", extra={"outbox_id": row.id})
                # Only the error's type is kept: its text may quote what a receiver answered.
                failure = PlatformUnavailable(f"unexpected error ({type(exc).__name__})")
                await self._record_failure(row, failure)
                return
            async with self._store.transaction() as tx:
                await tx.mark_delivered(row.id, self._clock())
                await self._hooks.delivered(tx, row, result)
            log.info(
                "relay.delivered",
                extra={"outbox_id": row.id, "kind": row.kind, "conversation": row.conversation_id},
            )
        except Exception:
            # The outcome could not be recorded (database down): the lease runs out and
            # the row is delivered again with the same webhook-id.
            log.exception("relay.record_failed", extra={"outbox_id": row.id})
        finally:
            self._wake.set()

    async def _record_failure(self, row: OutboxRow, exc: PlatformError) -> None:
        attempts = row.attempts + 1
        error = str(exc)
        async with self._store.transaction() as tx:
            if not exc.retryable or attempts >= self._settings.max_attempts:
                await tx.mark_dead(row.id, error)
                await self._hooks.dead(tx, row, error)
                log.warning(
                    "relay.dead",
                    extra={"outbox_id": row.id, "kind": row.kind, "attempts": attempts},
                )
                return
            delay = backoff_seconds(attempts, self._settings)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                delay = max(delay, retry_after)
            await tx.mark_retry(row.id, self._clock() + timedelta(seconds=delay), error)
            log.info(
                "relay.retry_scheduled",
                extra={"outbox_id": row.id, "attempts": attempts, "delay": round(delay, 2)},
            )
