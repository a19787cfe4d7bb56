"""timer claims: the claim walks the pending lanes but timers' (a partial index of them),
and finds due timers by time (another), so its cost does not grow with the chats waiting
on a timer

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration keeps the conditions it was written with.
TIMERS = "'routing.accept_timeout', 'routing.evaluate', 'routing.fallback'"
PENDING_LANE_SQL = f"status = 'pending' AND kind NOT IN ({TIMERS})"
PENDING_TIMER_SQL = f"status = 'pending' AND kind IN ({TIMERS})"


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending_lanes",
            ["lane", "id"],
            unique=False,
            sqlite_where=sa.text(PENDING_LANE_SQL),
            postgresql_where=sa.text(PENDING_LANE_SQL),
        )
        batch_op.create_index(
            "ix_outbox_pending_timers",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text(PENDING_TIMER_SQL),
            postgresql_where=sa.text(PENDING_TIMER_SQL),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending_timers")
        batch_op.drop_index("ix_outbox_pending_lanes")
