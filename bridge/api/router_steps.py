"""Router steps as giosg's Routers API keeps and shows them, and whom they may name.

The engine needs only a step's routing content (`RouterStep`). The seed also gives every
step read-only attributes: a UUID `id`, its `index`, and who created and last updated it
when. They are kept inside the stored step. A step sent back with its `id` keeps its
identity and creation; its update time and user move only when its routing content did.
Steps stored before they had ids get one derived from the router and their position.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.db.repo import Tx
from bridge.db.tables import RouterRow
from bridge.errors import FieldProblem
from bridge.routing.steps.schema import RouterStep, stored_step
from bridge.routing.steps.scope import scope_problems

_META = ("id", "created_at", "created_by_user_id", "updated_at", "updated_by_user_id")


def user_ref(user_id: str | None) -> dict[str, Any] | None:
    """The user object the seed shows beside a `*_by_user_id`."""
    return {"id": user_id} if user_id else None


def _content(step: RouterStep) -> dict[str, Any]:
    content = step.model_dump(mode="json")
    # The seed's precondition value is an integer; the engine keeps numbers as floats.
    for precondition in content["preconditions"]:
        precondition["value"] = _integral(precondition["value"])
    return content


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _meta(router: RouterRow, position: int, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The read-only attributes of a stored step, derived from the router's when it has none."""
    if "id" in stored:
        return {key: stored.get(key) for key in _META}
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"router/{router.id}/step/{position}")),
        "created_at": router.created_at.isoformat(),
        "created_by_user_id": router.created_by_user_id,
        "updated_at": router.updated_at.isoformat(),
        "updated_by_user_id": router.updated_by_user_id,
    }


def step_records(
    steps: Sequence[RouterStep],
    sent: Sequence[Any],
    router: RouterRow | None,
    now: datetime,
    user_id: str | None,
) -> list[dict[str, Any]]:
    """The steps to store: routing content plus read-only attributes, kept or new."""
    earlier: dict[str, tuple[dict[str, Any], RouterStep]] = {}
    if router is not None:
        for position, stored in enumerate(router.steps):
            meta = _meta(router, position, stored)
            earlier[meta["id"]] = (meta, stored_step(stored))
    records = []
    for step, raw in zip(steps, sent, strict=True):
        sent_id = raw.get("id") if isinstance(raw, Mapping) else None
        kept = earlier.pop(sent_id, None) if isinstance(sent_id, str) else None
        if kept is None:
            meta = {
                "id": str(uuid.uuid4()),
                "created_at": now.isoformat(),
                "created_by_user_id": user_id,
            }
        else:
            meta = dict(kept[0])
        if kept is None or kept[1] != step:
            meta.update(updated_at=now.isoformat(), updated_by_user_id=user_id)
        records.append({**meta, **_content(step)})
    return records


def step_views(router: RouterRow) -> list[dict[str, Any]]:
    """A router's steps with every attribute the seed lists."""
    views = []
    for position, stored in enumerate(router.steps):
        meta = _meta(router, position, stored)
        step = stored_step(stored)
        views.append(
            {
                "id": meta["id"],
                **_content(step),
                "created_at": meta["created_at"],
                "created_by_user_id": meta["created_by_user_id"],
                "created_by_user": user_ref(meta["created_by_user_id"]),
                "updated_at": meta["updated_at"],
                "updated_by_user_id": meta["updated_by_user_id"],
                "updated_by_user": user_ref(meta["updated_by_user_id"]),
            }
        )
    return views


async def out_of_scope(
    tx: Tx, steps: Sequence[RouterStep], owner: str, reachable: frozenset[str]
) -> list[FieldProblem]:
    """The users, teams and organizations in steps that the router's owner may not name."""
    users = {user for step in steps for user in step.user_ids}
    teams = {team for step in steps for team in step.team_ids}
    return scope_problems(
        steps,
        owner,
        reachable,
        await tx.agent_organizations(users) if users else {},
        await tx.team_organizations(teams) if teams else {},
    )
