"""What every part of a transaction shares: its session, and the SQL dialects' differences."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Result
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def affected(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE touched."""
    # session.execute is typed as returning a Result; DML statements return a CursorResult.
    return int(result.rowcount)  # type: ignore[attr-defined]


class TxPart:
    """One aggregate's queries; `Tx` combines every part over one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.committed_hooks: list[Callable[[], None]] = []

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Call `hook` once this transaction has committed (never when it rolls back)."""
        if hook not in self.committed_hooks:
            self.committed_hooks.append(hook)

    async def _insert_new(
        self, table: type[Any], values: Mapping[str, Any], key: Sequence[str]
    ) -> bool:
        """Insert a row unless one with the same `key` exists; whether it was inserted.

        One statement, so replicas racing on the same key cannot both insert or fail.
        """
        dialect = self.session.get_bind().dialect.name
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        result = await self.session.execute(
            insert_fn(table).values(**values).on_conflict_do_nothing(index_elements=list(key))
        )
        return affected(result) == 1
