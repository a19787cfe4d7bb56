"""The delivery worker: leases due outbox rows and delivers them, lane by lane, in order.

Each lane (one side of one conversation) has at most one delivery in flight, across
every replica, so messages reach each side in the order they were written. A claim
leases the heads of due lanes in one statement (see bridge/db/repo/delivery.py); the
lease is short and renewed while the attempt runs, so a delivery cut off by a crash is
taken over about one lease later. Outcomes are recorded in batches: whatever finished
since the last tick is marked by the same unit of work as the next claim. A failed
attempt is rescheduled on the retry schedule, honouring Retry-After; a rejected one (a
4xx) or one out of attempts is marked dead, stays visible through the API, and does not
hold back the rest of its lane. No destination (a URL's host and port, else its channel)
gets more than its share of the slots, so receivers that hang hold back only their own
lanes. Heads a claim found beyond their destination's share wait in the worker, leased,
for its next free slot (up to one share of them), instead of being given back and claimed
again a moment later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from bridge.db import steps
from bridge.db.repo import Store
from bridge.db.tables import TIMER_KINDS, OutboxRow
from bridge.db.units import Unit, single
from bridge.errors import PlatformError, PlatformUnavailable
from bridge.ports.agent_side import ConversationRef
from bridge.relay.delivery import Deliverer, DeliveryHooks, claimed_ref
from bridge.relay.destinations import destination, target_patterns
from bridge.relay.outcomes import Flight, OutcomeRecorder
from bridge.settings import RelaySettings

log = logging.getLogger(__name__)

# How long one claim may take before it is given up as stuck (see run_once).
CLAIM_TIMEOUT_SECONDS = 10.0
# How often a claim also looks for due timers (more often while it finds a full batch).
TIMER_LOOK_SECONDS = 0.25


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
        self._recording = asyncio.Lock()
        self._outcomes = OutcomeRecorder(store, hooks, settings, clock)
        self._flights: dict[int, Flight] = {}
        # Claimed heads waiting for a slot of their destination, oldest first (see _claim).
        self._held: dict[str, deque[Flight]] = {}
        self._lease = timedelta(seconds=settings.lease_seconds)
        # Renewed three times per lease, so two renewals can fail before an attempt stops.
        self._renew_every = settings.lease_seconds / 3
        self._next_renewal = 0.0
        # An attempt stops this long before its lease runs out unrenewed, so it has
        # ended before any other worker may take the row over.
        self._stop_margin = settings.lease_seconds / 10
        # Where the next claim starts walking the lanes, so every lane gets its turn.
        self._cursor = ""
        # Whether the last claim stopped at its limit: more may be due at once, and the next
        # claim walks on from the cursor. A claim that found fewer looked at every lane, so
        # the next one walks them all from the start, in one statement instead of two.
        self._more = False
        # When due timers were last looked for (time.monotonic()): a few times a second is
        # on time for a timer, and spares a busy worker's claims a statement each.
        self._timers_looked_at = float("-inf")
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
                full = len(self._flights) >= self._settings.max_in_flight
                # A claim that found fewer heads than it asked for looked at every lane:
                # the next one waits for a commit, an attempt's end or the poll.
                if claimed == 0 or full or not self._more:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_seconds())
        finally:
            self.running = False

    async def run_once(self) -> int:
        """One tick: keep leases, then record finished attempts and lease what is due."""
        await self._keep_leases()
        # A claim takes milliseconds; one that has not answered in this long is stuck on
        # its connection, and is given up so the worker goes on and can still stop,
        # rather than wait forever (whatever it leased waits for its short lease to end).
        async with asyncio.timeout(CLAIM_TIMEOUT_SECONDS):
            return await self._claim()

    def _idle_seconds(self) -> float:
        """How long the loop may sleep: until the next poll, or the next lease renewal."""
        wait = self._settings.poll_interval_seconds
        # Attempts that have ended hold no lease worth renewing: the next tick records them.
        if self._held or any(not flight.finished for flight in self._flights.values()):
            wait = min(wait, max(0.0, self._next_renewal - time.monotonic()))
        return wait

    async def _claim(self) -> int:
        async with self._recording:
            done = [flight for flight in self._flights.values() if flight.finished]
            plain, hooked = self._outcomes.split(done)
            if hooked:
                await self._outcomes.record(hooked)
                self._forget(hooked)
            # Plain outcomes are written by the claim's own unit of work, just before it
            # looks for the next heads: one round trip where there were two, and the lanes
            # they held are claimable again in the same statement's view.
            self._start_held()
            running = [flight for flight in self._flights.values() if not flight.finished]
            free = self._settings.max_in_flight - len(running)
            busy = Counter(flight.destination for flight in running)
            cap = self._settings.max_in_flight_per_destination
            avoid = sorted(
                {
                    pattern
                    for flight in running
                    if busy[flight.destination] >= cap
                    for pattern in target_patterns(flight.row.target)
                }
            )
            now = self._clock()
            started = time.monotonic()
            if free <= 0 and not plain:
                return 0
            after = self._cursor if self._more else ""
            timers = started - self._timers_looked_at >= TIMER_LOOK_SECONDS
            if timers:
                self._timers_looked_at = started
            claims, retries = await self._store.run(
                self._claim_unit(now, free, avoid, plain, after, timers=timers)
            )
            self._forget(plain)
            self._outcomes.log_plain(plain, retries)
        self._more = free > 0 and len(claims) >= free
        # The walk goes on from the last lane it claimed (timers are found by time).
        rows = [claim.row for claim in claims if claim.row.kind not in TIMER_KINDS]
        if free > 0 and len(claims) - len(rows) >= free:
            self._timers_looked_at = float("-inf")  # a full batch of timers: more may be due
        if rows:
            self._cursor = max(rows, key=lambda row: (row.lane > self._cursor, row.lane)).lane
        over_cap: list[int] = []
        for claim in claims:
            row = claim.row
            where = destination(row.target)
            flight = Flight(row, where, started + self._settings.lease_seconds)
            if row.conversation_id is not None and claim.channel is not None:
                flight.ref = ConversationRef(row.conversation_id, claim.channel, claim.external_ref)
            if busy[where] < cap and free > 0:
                busy[where] += 1
                free -= 1
                self._launch(flight)
                continue
            # Over its destination's share (the claim cannot count a destination's rows,
            # and the same destination spelt another way gets past its filter), or over the
            # slots (a claim may answer more heads than asked for): it waits here for the
            # next slot, leased, up to one share of waiting heads per destination.
            waiting = self._held.setdefault(where, deque())
            if len(waiting) < cap:
                waiting.append(flight)
            else:
                over_cap.append(row.id)
        if over_cap:
            await self._store.run(single(steps.release_leases(over_cap)))
        if (self._flights or self._held) and self._next_renewal <= started:
            self._next_renewal = started + self._renew_every
        return len(rows) - len(over_cap)

    def _launch(self, flight: Flight) -> None:
        """Start the attempt of a claimed row."""
        row_id = flight.row.id
        self._flights[row_id] = flight
        flight.task = asyncio.create_task(self._attempt(flight), name=f"relay-{row_id}")
        flight.task.add_done_callback(functools.partial(self._settle, row_id))

    def _start_held(self, only: str | None = None) -> None:
        """Start waiting heads whose destination (`only`, else any) has a free slot now.

        A head whose lease is about to run out unrenewed is dropped instead: another worker
        may take it over from then on, and one lane never has two deliveries in flight.
        """
        if not self._held or self._stopping.is_set():
            return
        running = [flight for flight in self._flights.values() if not flight.finished]
        busy = Counter(flight.destination for flight in running)
        slots = self._settings.max_in_flight - len(running)
        cap = self._settings.max_in_flight_per_destination
        now = time.monotonic()
        for where in [only] if only is not None else list(self._held):
            waiting = self._held.get(where)
            while waiting and slots > 0 and busy[where] < cap:
                flight = waiting.popleft()
                if flight.lease_ends - self._stop_margin <= now:
                    continue
                busy[where] += 1
                slots -= 1
                self._launch(flight)
            if not waiting:
                self._held.pop(where, None)

    def _claim_unit(
        self,
        now: datetime,
        free: int,
        avoid: Sequence[str],
        finished: Sequence[Flight],
        after: str,
        *,
        timers: bool = True,
    ) -> Unit[tuple[list[steps.Claimed], list[tuple[int, datetime, str]]]]:
        """Record plain outcomes, then lease up to `free` due timers (when `timers`) and the
        heads of due lanes, walking on from the lane `after` (all of them from the start
        when it is "")."""
        retries: list[tuple[int, datetime, str]] = []
        if finished:
            retries = yield from self._outcomes.plain_unit(finished)
        rows: list[steps.Claimed] = []
        if free <= 0:
            return rows, retries
        until = now + self._lease
        # Due timers first: found by time, they cost what is due (however many chats wait
        # on one), and a busy walk of the lanes would otherwise keep them waiting.
        found: list[OutboxRow] = []
        if timers:
            found = steps.outbox_rows(
                (yield steps.claim_timers(now, free, until, avoid_patterns=avoid))
            )
        lanes_free = free - len(found)
        if lanes_free > 0:
            first = yield steps.claim_heads(
                now, lanes_free, until, after_lane=after, avoid_patterns=avoid
            )
            walked = steps.outbox_rows(first)
            if len(walked) < lanes_free and after:
                # Every lane after the cursor was looked at: go round to the start.
                more = yield steps.claim_heads(
                    now, lanes_free - len(walked), until, upto_lane=after, avoid_patterns=avoid
                )
                walked += steps.outbox_rows(more)
            found += walked
        # Where their conversations are on their platforms, for all of them at once, so an
        # attempt needs no read of its own (see relay/delivery.py).
        ids = [row.conversation_id for row in found if row.conversation_id]
        refs = (yield steps.platform_refs(ids)) if ids else []
        rows = steps.claimed(found, refs)
        return rows, retries

    def _forget(self, flights: Sequence[Flight]) -> None:
        for flight in flights:
            self._flights.pop(flight.row.id, None)

    def _settle(self, row_id: int, _task: asyncio.Task[None]) -> None:
        """An attempt ended: without an outcome (stopped) its row waits for its lease to end."""
        flight = self._flights.get(row_id)
        if flight is not None and not flight.finished:
            del self._flights[row_id]
        if flight is not None:
            # Its slot goes at once to a head waiting for the same destination.
            self._start_held(flight.destination)
        # The next tick records the outcome with its claim (see _claim).
        self._wake.set()

    async def _attempt(self, flight: Flight) -> None:
        claimed_ref.set(flight.ref)  # this attempt's own task: no other sees it
        try:
            flight.result = await self._deliverer.deliver(flight.row)
        except PlatformError as exc:
            flight.failure = exc
        except Exception as exc:
            # A bug in an adapter must not stop the worker; treat it as transient so
            # the row is retried (and goes dead after max attempts) rather than lost.
            log.exception("relay.unexpected_error", extra={"outbox_id": flight.row.id})
            # Only the error's type is kept: its text may quote what a receiver answered.
            flight.failure = PlatformUnavailable(f"unexpected error ({type(exc).__name__})")

    async def _keep_leases(self) -> None:
        """Renew the leases of attempts still running; stop those whose lease ran out."""
        now_mono = time.monotonic()
        held = [f for waiting in self._held.values() for f in waiting]
        running = [f for f in self._flights.values() if not f.finished] + held
        if running and now_mono >= self._next_renewal:
            self._next_renewal = now_mono + self._renew_every
            now = self._clock()
            try:
                extended = await self._store.run(
                    single(steps.renew_leases([f.row.id for f in running], now, now + self._lease))
                )
                renewed = {row["id"] for row in extended}
            except Exception:
                # The lease deadlines below stop the attempts before anyone may take over.
                log.exception("relay.lease_renewal_failed")
                renewed = set()
            for flight in running:
                if flight.row.id in renewed:
                    flight.lease_ends = now_mono + self._settings.lease_seconds
        for flight in running:
            if flight.task is not None and flight.lease_ends - self._stop_margin <= now_mono:
                # Another worker may take the row over from now on: one lane must never
                # have two deliveries in flight, so this one stops (same webhook-id later).
                log.warning("relay.lease_lost", extra={"outbox_id": flight.row.id})
                flight.task.cancel()

    async def _record_outcomes(self) -> None:
        """Record every finished attempt: one transaction for the batch, then one per row."""
        async with self._recording:
            done = [flight for flight in self._flights.values() if flight.finished]
            if done:
                await self._outcomes.record(done)
                for flight in done:
                    self._flights.pop(flight.row.id, None)

    async def drain(self) -> None:
        """Wait for the deliveries in flight and record them (tests and graceful shutdown)."""
        self._start_held()
        while self._flights:
            tasks = [f.task for f in self._flights.values() if f.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._record_outcomes()
            self._start_held()

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming, let deliveries in flight finish for a while, then give back the rest.

        The loop is asked to stop rather than cancelled, so a claim is not cut off between
        its commit and the start of its deliveries (that would strand leases until they
        run out); only a tick still stuck after the grace period is cancelled.
        Deliveries still running after the grace period are cancelled and their leases
        released, so the next instance takes them over at once (same webhook-id).
        """
        self._stopping.set()
        self._wake.set()
        # Heads waiting for a slot are given back with the attempts cut off (below).
        held = [f for waiting in self._held.values() for f in waiting]
        self._held.clear()
        if self._loop_task is not None:
            # The loop ends at its next check; a tick stuck past the grace is cancelled
            # (outcomes it had not recorded yet are recorded below).
            _, pending = await asyncio.wait({self._loop_task}, timeout=grace_seconds)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._loop_task = None
        tasks = [f.task for f in self._flights.values() if f.task is not None and not f.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_seconds)
        leftover = [f for f in self._flights.values() if not f.finished]
        for flight in leftover:
            if flight.task is not None:
                flight.task.cancel()
        await asyncio.gather(*(f.task for f in leftover if f.task), return_exceptions=True)
        await self._record_outcomes()
        if leftover or held:
            given_back = [f.row.id for f in leftover + held]
            await self._store.run(single(steps.release_leases(given_back)))
