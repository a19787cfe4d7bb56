"""The delivery worker's hot path: claim the heads of due lanes, renew leases, finish in batches.

Everything here is SQLAlchemy Core, one statement per step, whatever the batch size.

A claim walks the lanes that have pending rows, one index seek per lane (a loose index
scan on `ix_outbox_status_lane_id`), and stops as soon as it has found `limit` lanes
whose head (the lowest pending id) is due and not leased. Its cost grows with the lanes
it has to step over (those in flight or waiting for a retry), never with the rows queued
behind a lane's head, so a backlog of thousands of rows costs what a handful does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, TextualSelect, bindparam, text, update

from bridge.db.repo.base import TxPart
from bridge.db.tables import OutboxRow, UTCDateTime

_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]

# The head of a lane: its lowest pending id (one seek on the (status, lane, id) index).
_HEAD = (
    "(SELECT h.id FROM outbox h WHERE h.status = 'pending' AND h.lane = {lane} "
    "ORDER BY h.id LIMIT 1)"
)
# The next lane after `{lane}` that has a pending row (one seek on the same index).
_NEXT_LANE = (
    "(SELECT n.lane FROM outbox n WHERE n.status = 'pending' AND n.lane > {lane} "
    "ORDER BY n.lane LIMIT 1)"
)


def _claimable(row: str, avoid: int) -> str:
    """Due, not leased, and not to a destination this worker has no room for."""
    condition = (
        f"{row}.next_attempt_at <= :now AND ({row}.lease_until IS NULL OR {row}.lease_until < :now)"
    )
    for i in range(avoid):
        condition += f" AND {row}.target NOT LIKE :avoid_{i} ESCAPE '\\'"
    return condition


def claim_sql(dialect: str, avoid: int, bounded: bool) -> str:
    """The claim's text, with parameters :now, :until, :limit, :after, :upto, :avoid_N."""
    head_of_scanned = _HEAD.format(lane="lanes.lane")
    upto = " AND lanes.lane <= :upto" if bounded else ""
    # PostgreSQL: rows another replica is claiming right now are skipped, not waited for;
    # its lease then keeps them out of every later claim.
    skip_locked = ""
    recheck = ""
    if dialect == "postgresql":
        skip_locked = " FOR UPDATE OF c SKIP LOCKED"
        # The row as locked is checked again; SQLite runs one writer at a time, and the
        # same condition there would make it scan every pending row through the index.
        recheck = "AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)"
    columns = ", ".join(column.name for column in _OUTBOX.columns)
    sql = f"""
        WITH RECURSIVE lanes(lane, found) AS (
            SELECT {_NEXT_LANE.format(lane=":after")}, 0
            UNION ALL
            SELECT {_NEXT_LANE.format(lane="lanes.lane")},
                   lanes.found + CASE WHEN EXISTS (
                       SELECT 1 FROM outbox c WHERE c.id = {head_of_scanned}
                       AND {_claimable("c", avoid)}
                   ) THEN 1 ELSE 0 END
            FROM lanes
            WHERE lanes.lane IS NOT NULL AND lanes.found < :limit{upto}
        )
        UPDATE outbox SET lease_until = :until
        WHERE id IN (
            SELECT c.id FROM lanes JOIN outbox c ON c.id = {head_of_scanned}
            WHERE {_claimable("c", avoid)}{upto}
            LIMIT :limit{skip_locked}
        )
        {recheck}
        RETURNING {columns}
    """
    return sql


# Built once per shape: the claim runs on every tick of every worker.
@functools.lru_cache(maxsize=64)
def _claim_statement(dialect: str, avoid: int, bounded: bool) -> TextualSelect:
    stamp = UTCDateTime()
    return (
        text(claim_sql(dialect, avoid, bounded))
        .bindparams(bindparam("now", type_=stamp), bindparam("until", type_=stamp))
        .columns(*_OUTBOX.columns)
    )


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with `prefix` (escaped with a backslash)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class DeliveryQueries(TxPart):
    """Claims, lease renewals and batched outcomes of the delivery worker."""

    async def claim_heads(
        self,
        now: datetime,
        limit: int,
        until: datetime,
        *,
        after_lane: str = "",
        upto_lane: str | None = None,
        avoid_patterns: Sequence[str] = (),
    ) -> list[OutboxRow]:
        """Lease, until `until`, the heads of up to `limit` due lanes, in one statement.

        Lanes are walked in key order from just after `after_lane` (up to `upto_lane`),
        so a worker that moves its starting point serves every lane in turn. Rows whose
        target matches one of `avoid_patterns` (LIKE patterns) are passed over. Only the
        lowest pending id of a lane is ever claimed, and not while it is leased, so one
        lane has one delivery in flight across replicas. The rows are not attached to
        the session: they are read, not loaded as tracked objects.
        """
        if limit <= 0:
            return []
        dialect = self.session.get_bind().dialect.name
        statement = _claim_statement(dialect, len(avoid_patterns), upto_lane is not None)
        params: dict[str, Any] = {"now": now, "until": until, "limit": limit, "after": after_lane}
        if upto_lane is not None:
            params["upto"] = upto_lane
        for i, pattern in enumerate(avoid_patterns):
            params[f"avoid_{i}"] = pattern
        result = await self.session.execute(statement, params)
        rows = [OutboxRow(**dict(row._mapping)) for row in result]
        rows.sort(key=lambda row: row.id)
        return rows

    async def renew_leases(
        self, row_ids: Sequence[int], now: datetime, until: datetime
    ) -> set[int]:
        """Extend the leases still held on `row_ids`; the ids whose lease was extended.

        A lease that already ran out is not extended: another worker may have taken the
        row over, and the caller must stop its attempt.
        """
        if not row_ids:
            return set()
        table = _OUTBOX
        result = await self.session.execute(
            update(table)
            .where(
                table.c.id.in_(row_ids),
                OutboxRow.status == "pending",
                table.c.lease_until > now,
            )
            .values(lease_until=until)
            .returning(table.c.id)
        )
        return set(result.scalars())

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
