"""Which organization a directory call (agents, teams, subscriptions) may see and change.

An organization token's caller sees only its organization's resources: another
organization's answers 404, as an unknown one does, and naming another organization is 403.
The admin (and an open API) sees every organization, and may narrow a list with
`?organization_id=`.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from bridge.api.auth import caller_of
from bridge.api.query import parse_query
from bridge.errors import FieldProblem, Forbidden

MAX_ORGANIZATION_ID = 128


class OrganizationQuery(BaseModel):
    """A directory list's filter."""

    organization_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ORGANIZATION_ID,
        description="Only this organization's (an organization token may name only its own).",
    )


def _not_yours(organization_id: str) -> Forbidden:
    return Forbidden(
        f"you may not act for organization {organization_id!r}",
        [FieldProblem("organization_id", "not your organization")],
    )


def listed_organization(request: web.Request) -> str | None:
    """The organization a list is limited to: the caller's, or the admin's `?organization_id=`."""
    asked = parse_query(request.query, OrganizationQuery).organization_id
    # The same rule as for a resource's owner: the caller's own, or any for the admin.
    return owning_organization(request, asked)


def owning_organization(request: web.Request, asked: str | None) -> str | None:
    """The organization a created or replaced resource belongs to; 403 for another's.

    None only for the admin naming none: the caller then applies its own default.
    """
    own = caller_of(request).organization_id
    if own is None:
        return asked
    if asked is not None and asked != own:
        raise _not_yours(asked)
    return own


def visible(request: web.Request, organization_id: str | None) -> bool:
    """True when the caller may see a resource owned by `organization_id` (None: the admin's)."""
    caller = caller_of(request)
    if caller.organization_id is None:
        return True
    return organization_id is not None and caller.sees(organization_id)
