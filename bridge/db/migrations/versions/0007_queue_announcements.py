"""queue announcements: changed-queue markers, per-channel announcement times, and an
index on a channel's assignments for the estimated wait

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_changes")),
    )
    with op.batch_alter_table("queue_changes", schema=None) as batch_op:
        batch_op.create_index("ix_queue_changes_channel_id", ["channel", "id"], unique=False)
    op.create_table(
        "queue_channels",
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_queue_channels")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversations_channel_assigned",
            ["channel", "assigned_at"],
            unique=False,
            sqlite_where=sa.text("assigned_at IS NOT NULL"),
            postgresql_where=sa.text("assigned_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_channel_assigned")
    op.drop_table("queue_channels")
    with op.batch_alter_table("queue_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_changes_channel_id")
    op.drop_table("queue_changes")
