"""supervisor views: the conversation list's keyset order, every organization's and one
organization's, and a partial index of the deliveries not delivered yet

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration keeps the condition it was written with.
STUCK_SQL = "status IN ('pending', 'dead')"


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index("ix_conversations_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_conversations_org_created", ["organization_id", "created_at", "id"], unique=False
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_conversation_stuck",
            ["conversation_id"],
            unique=False,
            sqlite_where=sa.text(STUCK_SQL),
            postgresql_where=sa.text(STUCK_SQL),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_conversation_stuck")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_org_created")
        batch_op.drop_index("ix_conversations_created")
