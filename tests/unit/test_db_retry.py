"""A transaction PostgreSQL aborted for a deadlock runs again; anything else reaches the caller."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from bridge.db.retry import ATTEMPTS, aborted_to_resolve_a_conflict, run_again_on_conflict
from bridge.errors import Conflict


class _DriverError(Exception):
    """What asyncpg's adapter raises: the SQLSTATE as an attribute."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _db_error(sqlstate: str) -> DBAPIError:
    return OperationalError("UPDATE agents …", {}, _DriverError(sqlstate))


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (_db_error("40P01"), True),  # deadlock_detected
        (_db_error("40001"), True),  # serialization_failure
        (_db_error("23505"), False),  # a duplicate key is the request's doing
        (_db_error("08006"), False),  # a lost connection is an outage: 503
        (Conflict("this chat was already taken"), False),
    ],
)
def test_which_errors_run_again(error: BaseException, retried: bool) -> None:
    assert aborted_to_resolve_a_conflict(error) is retried


async def test_a_deadlock_runs_the_whole_transaction_again() -> None:
    calls: list[int] = []

    async def transaction() -> str:
        calls.append(len(calls))
        if len(calls) < 3:
            raise _db_error("40P01")
        return "taken"

    assert await run_again_on_conflict(transaction) == "taken"
    assert len(calls) == 3


async def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    calls: list[int] = []

    async def transaction() -> str:
        calls.append(len(calls))
        raise _db_error("40P01")

    with pytest.raises(DBAPIError):
        await run_again_on_conflict(transaction)
    assert len(calls) == ATTEMPTS


async def test_a_refusal_is_not_run_again() -> None:
    calls: list[int] = []

    async def transaction() -> str:
        calls.append(len(calls))
        raise Conflict("you are at capacity (1 active chats)")

    with pytest.raises(Conflict):
        await run_again_on_conflict(transaction)
    assert calls == [0]
