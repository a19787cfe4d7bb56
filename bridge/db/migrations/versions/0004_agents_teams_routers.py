"""agents teams routers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("presence", sa.String(length=16), server_default="absent", nullable=False),
        sa.Column("capacity", sa.Integer(), server_default="3", nullable=False),
        sa.Column("active_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("source", sa.String(length=128), server_default="api", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    op.create_table(
        "channel_routes",
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("router_id", sa.String(length=36), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_routes")),
    )
    op.create_table(
        "routers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_user_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routers")),
    )
    with op.batch_alter_table("routers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_routers_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "agent_id", name=op.f("pk_team_members")),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("hours", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=128), server_default="api", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("router_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("offered_to", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("routing_progress", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.add_column(sa.Column("assignee_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("queue_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("queue_eta_seconds", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_conversations_assignee_status", ["assignee_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_conversations_queue", ["channel", "status", "priority", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_queue")
        batch_op.drop_index("ix_conversations_assignee_status")
        batch_op.drop_column("queue_eta_seconds")
        batch_op.drop_column("queue_position")
        batch_op.drop_column("assigned_at")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("routing_progress")
        batch_op.drop_column("offered_to")
        batch_op.drop_column("priority")
        batch_op.drop_column("router_id")
        batch_op.drop_column("team_id")

    op.drop_table("teams")
    op.drop_table("team_members")
    with op.batch_alter_table("routers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routers_organization_id"))

    op.drop_table("routers")
    op.drop_table("channel_routes")
    op.drop_table("agents")
