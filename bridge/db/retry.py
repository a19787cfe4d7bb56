"""Running a transaction again when PostgreSQL aborted it to break a deadlock or a conflict.

Every path takes its row locks in one order (a conversation before its agent), so a
deadlock should not happen; but PostgreSQL may still abort a transaction for waits
outside that order (two inserts of the same unique key waiting on each other's
transaction, a serialization failure under a stricter isolation level). Such a
transaction changed nothing and may simply run again: answering 503 would push that
retry onto the caller.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# serialization_failure, deadlock_detected: the transaction was rolled back, nothing stays.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
ATTEMPTS = 5


def aborted_to_resolve_a_conflict(exc: BaseException) -> bool:
    """True for a transaction the database rolled back to break a deadlock or a conflict."""
    if not isinstance(exc, DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def unique_violation(exc: BaseException) -> bool:
    """True for an insert a unique index refused, from the ORM or from a unit of work
    (whose runners raise the drivers' own errors)."""
    if isinstance(exc, IntegrityError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return sqlstate == "23505" if sqlstate else "UNIQUE" in str(exc.orig)
    if isinstance(exc, asyncpg.UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


def _log_retry(state: object) -> None:
    log.info("db.transaction_retried", extra={"attempt": getattr(state, "attempt_number", 0)})


async def run_again_on_conflict(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` (one whole transaction) up to ATTEMPTS times while the database aborts it.

    Any other error, and the last conflict, reach the caller unchanged.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception(aborted_to_resolve_a_conflict),
        stop=stop_after_attempt(ATTEMPTS),
        # Short and jittered: the other transaction has usually finished by then.
        wait=wait_random_exponential(multiplier=0.01, max=0.2),
        before_sleep=_log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await work()
    raise AssertionError("unreachable: tenacity re-raises the last error")
