"""Which handler does each kind of job: the worker's one way from an outbox row to its work.

A row is read into its typed job (see jobs.py) and given to the handler registered for
that job's type. A row of a kind no job has, or whose payload cannot be read, is
refused: the worker marks it dead with that reason, since trying again cannot help.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bridge.db.tables import OutboxRow
from bridge.errors import PlatformRejected
from bridge.relay.delivery import DeliveryResult
from bridge.relay.jobs import Job, job_types

J = TypeVar("J", bound=Job)

# A handler does one job; it is given the row's idempotency key (the webhook-id a
# receiver drops repeats by) and returns what the delivery learned, if anything.
Handler = Callable[[J, str], Awaitable[DeliveryResult | None]]


class JobRegistry:
    """Each job type with its handler; delivers outbox rows for the worker."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[type[Job], Handler[Any]]] = {}

    def register(self, job_type: type[J], handler: Handler[J]) -> None:
        """Make `handler` the one that does jobs of `job_type`."""
        if job_type.kind in self._entries:
            raise TypeError(f"{job_type.__name__} has a handler already")
        self._entries[job_type.kind] = (job_type, handler)

    def missing(self) -> list[type[Job]]:
        """The job types no handler does."""
        return [job_type for job_type in job_types() if job_type.kind not in self._entries]

    def require_every_job(self) -> None:
        """Fail at start, not at the first row, when a job type has no handler."""
        missing = self.missing()
        if missing:
            names = ", ".join(job_type.__name__ for job_type in missing)
            raise TypeError(f"no handler for {names}")

    async def deliver(self, row: OutboxRow) -> DeliveryResult:
        """Do the job a row holds, raising a PlatformError when it fails."""
        entry = self._entries.get(row.kind)
        if entry is None:
            raise PlatformRejected(f"unknown delivery kind {row.kind!r}")
        job_type, handler = entry
        result = await handler(job_type.from_row(row), row.idempotency_key)
        return result if result is not None else DeliveryResult()
