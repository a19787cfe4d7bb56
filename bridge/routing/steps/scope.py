"""Whom a router's steps may name: the owner's own users and teams, and partner organizations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bridge.errors import FieldProblem
from bridge.routing.steps.schema import RouterStep


def scope_problems(
    steps: Sequence[RouterStep],
    owner: str,
    reachable: frozenset[str],
    user_organizations: Mapping[str, str],
    team_organizations: Mapping[str, str],
) -> list[FieldProblem]:
    """The names in steps that a router of organization `owner` may not route to.

    As giosg's Routers API says: `organization_ids` may hold the owner and its partner
    organizations (`reachable`), `team_ids` and `user_ids` only the owner's own teams and
    users. `user_organizations` and `team_organizations` map the users and teams the steps
    name to their organization; a name missing from them gets the same answer as another
    organization's, so nobody can probe which ids other organizations use.
    """
    problems: list[FieldProblem] = []
    for position, step in enumerate(steps):
        where = f"steps[{position}]"
        problems.extend(
            FieldProblem(f"{where}.organization_ids[{k}]", "not your organization or a partner")
            for k, organization in enumerate(step.organization_ids)
            if organization not in reachable
        )
        problems.extend(
            FieldProblem(f"{where}.team_ids[{k}]", "no team of your organization")
            for k, team in enumerate(step.team_ids)
            if team_organizations.get(team) != owner
        )
        problems.extend(
            FieldProblem(f"{where}.user_ids[{k}]", "no user of your organization")
            for k, user in enumerate(step.user_ids)
            if user_organizations.get(user) != owner
        )
    return problems
