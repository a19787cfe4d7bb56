"""Recording what deliveries came to: delivered, to retry at a later time, or dead.

Outcomes are recorded in batches (whatever finished since the last write). Deliveries and
retries are one unit of work, with what a delivery learned (an opened chat's platform id)
written by the lifecycle's own steps in it; a dead delivery, which the lifecycle reacts to
in an ORM transaction (failing the handoff, telling the bot), is recorded in one
transaction with that hook, so neither is kept without the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.db import steps
from bridge.db.repo import Store, Tx
from bridge.db.tables import OutboxRow
from bridge.db.units import Unit
from bridge.errors import PlatformError
from bridge.ports.agent_side import ConversationRef
from bridge.relay.delivery import DeliveryHooks, DeliveryResult
from bridge.relay.schedule import retry_delay
from bridge.settings import RelaySettings

log = logging.getLogger(__name__)

# A delivery that learned nothing the bridge keeps (every kind but opening a chat).
_NOTHING_LEARNED = DeliveryResult()


@dataclass(slots=True)
class Flight:
    """One claimed row: its attempt, its lease, and the attempt's outcome once it has one."""

    row: OutboxRow
    destination: str
    lease_ends: float  # time.monotonic() when the lease last confirmed runs out
    task: asyncio.Task[None] | None = None
    result: DeliveryResult | None = None
    failure: PlatformError | None = None
    # Its conversation's place on its platform when claimed (None: no conversation).
    ref: ConversationRef | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.failure is not None


class OutcomeRecorder:
    """Writes finished attempts' outcomes to the outbox (and the lifecycle's hooks)."""

    def __init__(
        self,
        store: Store,
        hooks: DeliveryHooks,
        settings: RelaySettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._hooks = hooks
        self._settings = settings
        self._clock = clock

    async def record(self, done: Sequence[Flight]) -> None:
        """Record these outcomes (never raises: an outcome not recorded is delivered again)."""
        plain, hooked = self.split(done)
        try:
            if plain:
                retries = await self._store.run(self.plain_unit(plain))
                self.log_plain(plain, retries)
            if hooked:
                await self.record_hooked(hooked)
        except Exception:
            # The outcome could not be recorded (database down): the lease runs out and
            # the row is delivered again with the same webhook-id.
            log.exception("relay.record_failed", extra={"outbox_id": done[0].row.id})

    def split(self, done: Sequence[Flight]) -> tuple[list[Flight], list[Flight]]:
        """Outcomes written as a unit of work, and the dead ones, recorded with their hook.

        Deliveries and retries are statements of a unit of work, which the worker runs
        with its next claim (an opened chat's platform id is kept by the lifecycle's steps
        in it). A dead delivery is recorded in one transaction with its hook, so neither
        is kept without the other.
        """
        plain: list[Flight] = []
        hooked: list[Flight] = []
        for flight in done:
            if flight.failure is not None:
                dead = retry_delay(flight.failure, flight.row.attempts + 1, self._settings) is None
                (hooked if dead else plain).append(flight)
            else:
                plain.append(flight)
        return plain, hooked

    def plain_unit(self, flights: Sequence[Flight]) -> Unit[list[tuple[int, datetime, str]]]:
        """The statements recording plain outcomes (see `split`); answers the retries."""
        now = self._clock()
        delivered = [f.row.id for f in flights if f.result is not None]
        retries: list[tuple[int, datetime, str]] = []
        for flight in flights:
            if flight.failure is not None:
                delay = retry_delay(flight.failure, flight.row.attempts + 1, self._settings)
                if delay is None:
                    raise ValueError("a dead delivery is recorded with its hook")
                due = now + timedelta(seconds=delay)
                retries.append((flight.row.id, due, str(flight.failure)))
        if delivered:
            yield steps.finish_delivered(delivered, now)
        for flight in flights:
            if flight.result is not None and flight.result != _NOTHING_LEARNED:
                # What the delivery learned (an opened chat's platform id), kept by the
                # lifecycle's own steps in this same transaction.
                yield from self._hooks.delivered(flight.row, flight.result)
        if retries:
            yield steps.finish_retries(retries)
        return retries

    def log_plain(
        self, flights: Sequence[Flight], retries: Sequence[tuple[int, datetime, str]]
    ) -> None:
        """Log recorded plain outcomes."""
        self._log_outcomes([f for f in flights if f.result is not None], retries, [])

    async def record_hooked(self, done: Sequence[Flight]) -> None:
        """Record outcomes with their lifecycle hooks, one transaction per batch (or row)."""
        try:
            async with self._store.transaction() as tx:
                await self._record(tx, done)
        except Exception:
            if len(done) == 1:
                raise
            # One row's hook failed the batch: record the others without it.
            log.exception("relay.record_batch_failed", extra={"rows": len(done)})
            for flight in done:
                try:
                    async with self._store.transaction() as tx:
                        await self._record(tx, [flight])
                except Exception:
                    log.exception("relay.record_failed", extra={"outbox_id": flight.row.id})

    async def _record(self, tx: Tx, flights: Sequence[Flight]) -> None:
        now = self._clock()
        delivered = [f for f in flights if f.result is not None]
        await tx.finish_delivered([f.row.id for f in delivered], now)
        retries: list[tuple[int, datetime, str]] = []
        dead: list[tuple[Flight, str]] = []
        for flight in flights:
            exc = flight.failure
            if exc is None:
                continue
            delay = retry_delay(exc, flight.row.attempts + 1, self._settings)
            if delay is None:
                dead.append((flight, str(exc)))
                continue
            retries.append((flight.row.id, now + timedelta(seconds=delay), str(exc)))
        await tx.finish_retries(retries)
        await tx.finish_dead([(flight.row.id, error) for flight, error in dead])
        for flight, error in dead:
            await self._hooks.dead(tx, flight.row, error)
        tx.after_commit(lambda: self._log_outcomes(delivered, retries, dead))

    def _log_outcomes(
        self,
        delivered: Sequence[Flight],
        retries: Sequence[tuple[int, datetime, str]],
        dead: Sequence[tuple[Flight, str]],
    ) -> None:
        for flight in delivered:
            row = flight.row
            log.info(
                "relay.delivered",
                extra={"outbox_id": row.id, "kind": row.kind, "conversation": row.conversation_id},
            )
        for row_id, due, _error in retries:
            log.info("relay.retry_scheduled", extra={"outbox_id": row_id, "due": due.isoformat()})
        for flight, _error in dead:
            row = flight.row
            log.warning(
                "relay.dead",
                extra={"outbox_id": row.id, "kind": row.kind, "attempts": row.attempts + 1},
            )
