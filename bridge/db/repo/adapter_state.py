"""Small values kept by name: adapters' state, and secrets made once and shared by replicas."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bridge.db.repo.base import TxPart
from bridge.db.tables import AdapterStateRow, SecretRow


class AdapterStateQueries(TxPart):
    """Values kept by name: adapters' state and the service's own secrets."""

    async def put_state(self, adapter: str, key: str, value: str, now: datetime) -> None:
        """Keep a value for an adapter (last write wins)."""
        row = await self.session.get(AdapterStateRow, (adapter, key))
        if row is None:
            self.session.add(AdapterStateRow(adapter=adapter, key=key, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now
        await self.session.flush()

    async def get_state(self, adapter: str, key: str) -> str | None:
        """A value an adapter kept, if any."""
        row = await self.session.get(AdapterStateRow, (adapter, key))
        return row.value if row is not None else None

    async def secret(self, name: str, make: Callable[[], str], now: datetime) -> str:
        """The stored secret `name`, created once; replicas racing agree on one value."""
        await self._insert_new(
            SecretRow, {"name": name, "value": make(), "created_at": now}, key=("name",)
        )
        row = await self.session.get(SecretRow, name, populate_existing=True)
        assert row is not None
        return row.value
