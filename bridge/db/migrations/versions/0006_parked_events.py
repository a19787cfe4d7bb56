"""parked events: platform events that arrive before their conversation is known

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "parked_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("external_ref", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_events")),
    )
    with op.batch_alter_table("parked_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_parked_events_channel_ref", ["channel", "external_ref", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_parked_events_received_at"), ["received_at"], unique=False
        )
        batch_op.create_index(
            "uq_parked_events_channel_event", ["channel", "event_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("parked_events", schema=None) as batch_op:
        batch_op.drop_index("uq_parked_events_channel_event")
        batch_op.drop_index(batch_op.f("ix_parked_events_received_at"))
        batch_op.drop_index("ix_parked_events_channel_ref")

    op.drop_table("parked_events")
