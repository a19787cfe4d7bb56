"""Apply Alembic migrations, at start and from the command line."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.settings import DatabaseSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same for every replica.
_MIGRATION_LOCK_ID = 0x6272_6964_6765  # "bridge"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade(engine: AsyncEngine, settings: DatabaseSettings) -> None:
    """Bring the schema to the newest revision; safe when several replicas start at once."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Replicas starting together take turns; the later ones find nothing to do.
            await connection.execute(
                text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
            try:
                if settings.pg_schema:
                    await connection.execute(
                        text(f'CREATE SCHEMA IF NOT EXISTS "{settings.pg_schema}"')
                    )
                    await connection.commit()
                await connection.run_sync(_upgrade)
                await connection.commit()
            finally:
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
                await connection.commit()
        else:
            await connection.run_sync(_upgrade)
            await connection.commit()
    log.info("db.migrated", extra={"url": engine.url.render_as_string(hide_password=True)})
