"""Migrations build exactly the schema the table definitions describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from bridge.db.engine import create_engine
from bridge.db.migrate import upgrade
from bridge.db.tables import Base
from tests.conftest import Database, make_settings


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    settings = make_settings(database, 0)
    engine = create_engine(settings.database)
    try:
        await upgrade(engine, settings.database)
        # A second run (another replica starting) finds nothing to do.
        await upgrade(engine, settings.database)
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
