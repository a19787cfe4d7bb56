"""Routers set through the API and the channel links to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from bridge.db.repo.base import TxPart
from bridge.db.tables import ChannelRouteRow, RouterRow


class RouterQueries(TxPart):
    """Routers and the channels linked to them."""

    async def add_router(self, row: RouterRow) -> None:
        """Store a new router."""
        self.session.add(row)
        await self.session.flush()

    async def routers(
        self, organization_id: str, *, newest_first: bool, offset: int, limit: int
    ) -> tuple[list[RouterRow], int]:
        """A page of an organization's routers and the total count."""
        order = RouterRow.created_at.desc() if newest_first else RouterRow.created_at
        base = select(RouterRow).where(RouterRow.organization_id == organization_id)
        rows = await self.session.execute(
            base.order_by(order, RouterRow.id).offset(offset).limit(limit)
        )
        total = await self.session.execute(
            select(func.count())
            .select_from(RouterRow)
            .where(RouterRow.organization_id == organization_id)
        )
        return list(rows.scalars()), int(total.scalar_one())

    async def all_routers(self) -> list[RouterRow]:
        """Every router (for building the routing table)."""
        return list((await self.session.execute(select(RouterRow))).scalars())

    async def get_router(self, organization_id: str, router_id: str) -> RouterRow | None:
        """One router of an organization."""
        row = await self.session.get(RouterRow, router_id)
        return row if row is not None and row.organization_id == organization_id else None

    async def delete_router(self, row: RouterRow) -> None:
        """Remove a router and unlink it from channels."""
        await self.session.delete(row)
        await self.session.execute(
            update(ChannelRouteRow)
            .where(ChannelRouteRow.router_id == row.id)
            .values(router_id=None)
        )

    async def channel_routes(self) -> dict[str, str | None]:
        """Router links set through the API, by channel."""
        rows = (await self.session.execute(select(ChannelRouteRow))).scalars()
        return {row.channel: row.router_id for row in rows}

    async def set_channel_route(self, channel: str, router_id: str | None, now: datetime) -> None:
        """Link a channel to a router (or unlink with None)."""
        row = await self.session.get(ChannelRouteRow, channel)
        if row is None:
            self.session.add(ChannelRouteRow(channel=channel, router_id=router_id, updated_at=now))
        else:
            row.router_id, row.updated_at = router_id, now
        await self.session.flush()
