"""accept timers and hand-back: the armed timer's round, agents passed over, the summary

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Defaults, so conversations stored before them read as having no timer and no one
    # passed over; the hand-back summary exists only once an agent gave one.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accept_round", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("passed_over", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.add_column(sa.Column("handback", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("handback")
        batch_op.drop_column("passed_over")
        batch_op.drop_column("accept_round")
