"""subscriptions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_deliveries",
        sa.Column("webhook_id", sa.String(length=256), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_inbound_deliveries")),
    )
    with op.batch_alter_table("inbound_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_deliveries_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("subscriptions")
    with op.batch_alter_table("inbound_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_deliveries_received_at"))

    op.drop_table("inbound_deliveries")
