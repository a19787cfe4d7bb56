"""Alembic environment: runs on the connection the bridge hands it (see bridge/db/migrate.py)."""

from __future__ import annotations

from alembic import context

from bridge.db.tables import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    """Run migrations on the connection passed in config.attributes."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations with `python -m bridge db upgrade`, which supplies the connection"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
