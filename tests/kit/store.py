"""A migrated store on a test's database, for tests that drive the repository directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bridge.db.engine import create_engine, create_sessionmaker
from bridge.db.migrate import upgrade
from bridge.db.repo import Store
from bridge.settings import Settings


@asynccontextmanager
async def migrated(settings: Settings) -> AsyncIterator[Store]:
    """A store on the settings' database, migrated to the newest schema, disposed after."""
    engine = create_engine(settings.database)
    try:
        await upgrade(engine, settings.database)
        store = Store(create_sessionmaker(engine))
        try:
            yield store
        finally:
            await store.close()
    finally:
        await engine.dispose()
