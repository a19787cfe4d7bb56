"""The delivery worker's claim (its SQL, run as a unit of work: see bridge/db/steps.py), and
the batched outcomes recorded with a lifecycle hook's transaction (SQLAlchemy Core, one
statement per kind of outcome, whatever the batch size).

A claim walks the lanes that have pending rows, one index seek per lane (a loose index
scan on `ix_outbox_status_lane_id`), and stops as soon as it has found `limit` lanes
whose head (the lowest pending id) is due and not leased. Its cost grows with the lanes
it has to step over (those in flight or waiting for a retry), never with the rows queued
behind a lane's head, so a backlog of thousands of rows costs what a handful does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, bindparam, update

from bridge.db.repo.base import TxPart
from bridge.db.tables import PENDING_LANE_SQL, PENDING_TIMER_SQL, OutboxRow

_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]

# The head of a lane: its lowest pending id (one seek on the (status, lane, id) index).
_HEAD = (
    "(SELECT h.id FROM outbox h WHERE h.status = 'pending' AND h.lane = {lane} "
    "ORDER BY h.id LIMIT 1)"
)
# The next lane after `{lane}` that has a pending row, timers' lanes left out: one seek on
# the partial index of pending lanes (its condition repeated word for word; SQLite is
# told to use it, as its planner may prefer the wider index and step over every timer).
_NEXT_LANE = (
    "(SELECT n.lane FROM outbox n{indexed} WHERE n.{pending} AND n.lane > {{lane}} "
    "ORDER BY n.lane LIMIT 1)"
)
_PENDING_LANE_N = PENDING_LANE_SQL.replace(" AND ", " AND n.")
_PENDING_TIMER_T = PENDING_TIMER_SQL.replace(" AND ", " AND t.")


def _next_lane(dialect: str) -> str:
    indexed = " INDEXED BY ix_outbox_pending_lanes" if dialect == "sqlite" else ""
    return _NEXT_LANE.format(indexed=indexed, pending=_PENDING_LANE_N)


def _claimable(row: str, avoid: int) -> str:
    """Due, not leased, and not to a destination this worker has no room for."""
    condition = (
        f"{row}.next_attempt_at <= :now AND ({row}.lease_until IS NULL OR {row}.lease_until < :now)"
    )
    for i in range(avoid):
        condition += f" AND {row}.target NOT LIKE :avoid_{i} ESCAPE '\\'"
    return condition


def _lease(dialect: str, ctes: str, pick: str, alias: str) -> str:
    """Lease the rows `pick` selects (its `{alias}.id`s), after the `ctes` it reads."""
    columns = ", ".join(column.name for column in _OUTBOX.columns)
    if dialect != "postgresql":
        return f"""
        {ctes}
        UPDATE outbox SET lease_until = :until
        WHERE id IN ({pick})
        RETURNING {columns}
        """
    # The rows are picked once, in a CTE PostgreSQL materializes: as a subquery under
    # IN it may run more than once, each run skipping the rows the last one locked, and
    # lease more than its LIMIT. Rows another replica is claiming right now are skipped,
    # not waited for (its lease keeps them out of every later claim), and each row as
    # locked is checked again. SQLite runs one writer at a time and needs neither; the
    # recheck there would make it scan every pending row through the index.
    with_picked = f"{ctes}, picked" if ctes else "WITH picked"
    returned = ", ".join(f"outbox.{column.name}" for column in _OUTBOX.columns)
    return f"""
        {with_picked} AS MATERIALIZED ({pick} FOR UPDATE OF {alias} SKIP LOCKED)
        UPDATE outbox SET lease_until = :until FROM picked
        WHERE outbox.id = picked.id AND outbox.status = 'pending'
          AND (outbox.lease_until IS NULL OR outbox.lease_until < :now)
        RETURNING {returned}
    """


def claim_sql(dialect: str, avoid: int, bounded: bool) -> str:
    """The claim's text, with parameters :now, :until, :limit, :after, :upto, :avoid_N."""
    head_of_scanned = _HEAD.format(lane="lanes.lane")
    upto = " AND lanes.lane <= :upto" if bounded else ""
    next_lane = _next_lane(dialect)
    ctes = f"""
        WITH RECURSIVE lanes(lane, found) AS (
            SELECT {next_lane.format(lane=":after")}, 0
            UNION ALL
            SELECT {next_lane.format(lane="lanes.lane")},
                   lanes.found + CASE WHEN EXISTS (
                       SELECT 1 FROM outbox c WHERE c.id = {head_of_scanned}
                       AND {_claimable("c", avoid)}
                   ) THEN 1 ELSE 0 END
            FROM lanes
            WHERE lanes.lane IS NOT NULL AND lanes.found < :limit{upto}
        )"""
    pick = f"""
            SELECT c.id FROM lanes JOIN outbox c ON c.id = {head_of_scanned}
            WHERE {_claimable("c", avoid)}{upto}
            LIMIT :limit"""
    return _lease(dialect, ctes, pick, "c")


def claim_timers_sql(dialect: str, avoid: int) -> str:
    """The claim of due timers (parameters :now, :until, :limit, :avoid_N).

    Timers are found by time on their own partial index, oldest due first, so a claim
    costs what is due however many chats wait on a timer; each is still the head of its
    lane (a lane's rows go one at a time, timers' as every other's).
    """
    indexed = " INDEXED BY ix_outbox_pending_timers" if dialect == "sqlite" else ""
    pick = f"""
            SELECT t.id FROM outbox t{indexed}
            WHERE t.{_PENDING_TIMER_T} AND {_claimable("t", avoid)}
              AND t.id = {_HEAD.format(lane="t.lane")}
            ORDER BY t.next_attempt_at
            LIMIT :limit"""
    return _lease(dialect, "", pick, "t")


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with `prefix` (escaped with a backslash)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class DeliveryQueries(TxPart):
    """Batched outcomes of the delivery worker, in an ORM transaction."""

    async def finish_delivered(self, row_ids: Sequence[int], now: datetime) -> None:
        """The receivers accepted these deliveries: one UPDATE for all of them."""
        if not row_ids:
            return
        table = _OUTBOX
        await self.session.execute(
            update(table)
            .where(table.c.id.in_(row_ids))
            .values(
                status="delivered",
                attempts=table.c.attempts + 1,
                delivered_at=now,
                lease_until=None,
                last_error=None,
            )
        )

    async def finish_retries(self, retries: Sequence[tuple[int, datetime, str]]) -> None:
        """These attempts failed for a passing reason: `(id, next attempt at, error)`."""
        if not retries:
            return
        table = _OUTBOX
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                attempts=table.c.attempts + 1,
                next_attempt_at=bindparam("due"),
                lease_until=None,
                last_error=bindparam("error"),
            )
        )
        # One statement executed for many parameter sets (executemany).
        params = [
            {"row_id": row_id, "due": due, "error": error[:2000]} for row_id, due, error in retries
        ]
        await self.session.execute(statement, params)

    async def finish_dead(self, dead: Sequence[tuple[int, str]]) -> None:
        """Give up on these deliveries: `(id, error)`; they stay visible for a retry by hand."""
        if not dead:
            return
        table = _OUTBOX
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status="dead",
                attempts=table.c.attempts + 1,
                lease_until=None,
                last_error=bindparam("error"),
            )
        )
        await self.session.execute(
            statement, [{"row_id": row_id, "error": error[:2000]} for row_id, error in dead]
        )
