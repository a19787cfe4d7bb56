"""giosg's Routers API: routers with ordered steps, scoped to an organization.

    GET    /api/v5/orgs/{organization_id}/routers                 200 (paginated)
    POST   /api/v5/orgs/{organization_id}/routers                 201, 400
    GET    /api/v5/orgs/{organization_id}/routers/{router_id}     200, 404
    PATCH  /api/v5/orgs/{organization_id}/routers/{router_id}     200, 400, 404
    PUT    /api/v5/orgs/{organization_id}/routers/{router_id}     200, 400, 404
    DELETE /api/v5/orgs/{organization_id}/routers/{router_id}     204, 404
    GET    /api/v5/orgs/{organization_id}/routers/{router_id}/rooms
    PATCH  /api/v5/orgs/{organization_id}/rooms/{room_id}         link a channel to a router

Every call needs `Authorization: Token <token>` (or Bearer) with a token from
BRIDGE_SECURITY__ORG_TOKENS: 401 without a valid one, 403 when it belongs to another
organization or lacks the `settings` permission.

Tenants are kept apart: a room (channel) of another organization answers 404, like an
unknown one, so rooms cannot be probed; steps may name only users and teams of the
organization or its partner organizations (`partner_organizations`), else 400 naming them.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.api.errors import invalid_input
from bridge.api.openapi import Access, Answer, Operations
from bridge.api.openapi.directory import Room, RoomPage, RouterPage
from bridge.api.openapi.directory import Router as RouterShown
from bridge.api.query import parse_query
from bridge.api.router_steps import out_of_scope, step_records, step_views, user_ref
from bridge.db.repo import Tx
from bridge.db.tables import RouterRow
from bridge.errors import (
    FieldProblem,
    Forbidden,
    InvalidInput,
    MalformedJSON,
    NotFound,
    Unauthorized,
)
from bridge.input_limits import load_json
from bridge.routing.steps.schema import SERVER_SET_FIELDS, RouterStep, parse_steps
from bridge.settings import OrgToken
from bridge.typedefs import ROUTING, SETTINGS, STORE

routes = web.RouteTableDef()
doc = Operations("Routers (giosg-compatible)", Access.ORGANIZATION, errors=(400,))

BASE = "/api/v5/orgs/{organization_id}"
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 100


class BadRequest(MalformedJSON):
    """giosg answers 400 for both a wrong format and missing attributes."""

    code = "invalid_router"


STEPS = (
    "In giosg's shape, checked by the routers API: each step has `preconditions`, "
    "`organization_ids`, `team_ids` and `user_ids` (arrays); the first step's preconditions "
    "are empty, each later step has at least one (`type`, integer `value`)."
)

# Read-only attributes a client may send back unchanged (a GET body PUT back).
_READ_ONLY = SERVER_SET_FIELDS | {"organization_id"}


class RouterBody(BaseModel):
    """A router as a client sends it (steps are parsed separately, in the seed's shape)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    steps: list[Any] = Field(min_length=1, description=STEPS)


class RouterPatch(BaseModel):
    """A partial update."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=256)
    steps: list[Any] | None = Field(default=None, min_length=1, description=STEPS)


class RouterListQuery(BaseModel):
    """The order and page of a router list."""

    ordering: Literal["created_at", "-created_at"] = "created_at"
    page: int = Field(default=1, ge=1, le=10**6)
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class RoomPatch(BaseModel):
    """A room (channel) settings update."""

    model_config = ConfigDict(extra="forbid")

    router_id: str | None


def _authorize(request: web.Request) -> OrgToken:
    organization_id = request.match_info["organization_id"]
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    token: OrgToken | None = None
    if scheme.lower() in {"token", "bearer"} and given:
        for known, grant in request.app[SETTINGS].security.org_tokens.items():
            if hmac.compare_digest(known.encode(), given.strip().encode()):
                token = grant
    if token is None:
        raise Unauthorized(
            "authentication required: Authorization: Token <api token>",
            [FieldProblem("Authorization", "missing or unknown token")],
        )
    if token.organization_id != organization_id:
        raise Forbidden(
            "you do not have access to this organization",
            [FieldProblem("organization_id", "not the token's organization")],
        )
    if "settings" not in token.permissions:
        raise Forbidden(
            "the settings permission is required",
            [FieldProblem("Authorization", "token lacks the settings permission")],
        )
    return token


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    data = load_json(raw or b"null", BadRequest)
    if not isinstance(data, dict):
        raise BadRequest(
            "the body must be a JSON object", [FieldProblem("(body)", "must be a JSON object")]
        )
    if model is not RoomPatch:
        data = {k: v for k, v in data.items() if k not in _READ_ONLY}
    try:
        parsed: Any = model.model_validate(data)
    except ValidationError as exc:
        error = invalid_input(exc)
        raise BadRequest(error.message, error.fields) from exc
    return parsed


async def _steps(
    request: web.Request,
    tx: Tx,
    sent: list[Any],
    router: RouterRow | None,
    changed_by: tuple[datetime, str | None],
) -> list[dict[str, Any]]:
    """Validate sent steps in the seed's shape and scope; the records to store."""
    try:
        # The seed's shape: no index (steps are numbered by position), and read-only
        # fields a client may send back are ignored.
        steps: list[RouterStep] = parse_steps(sent)
    except InvalidInput as exc:
        raise BadRequest(exc.message, exc.fields) from exc
    organization_id = request.match_info["organization_id"]
    reachable = request.app[SETTINGS].reachable_organizations(organization_id)
    problems = await out_of_scope(tx, steps, organization_id, reachable)
    if problems:
        raise BadRequest(
            "steps may name only your organization's users and teams, and your organization"
            " or its partners",
            problems,
        )
    return step_records(steps, sent, router, *changed_by)


def router_view(row: RouterRow) -> dict[str, Any]:
    """A router as the API shows it."""
    return {
        "id": row.id,
        "name": row.name,
        "steps": step_views(row),
        "organization_id": row.organization_id,
        "created_at": row.created_at.isoformat(),
        "created_by_user_id": row.created_by_user_id,
        "created_by_user": user_ref(row.created_by_user_id),
        "updated_at": row.updated_at.isoformat(),
        "updated_by_user_id": row.updated_by_user_id,
        "updated_by_user": user_ref(row.updated_by_user_id),
    }


@routes.get(BASE + "/routers")
@doc("A page of routers", query=RouterListQuery, answers={200: RouterPage})
async def list_routers(request: web.Request) -> web.Response:
    """A page of routers, ordered by `created_at` or `-created_at`."""
    _authorize(request)
    try:
        query = parse_query(request.query, RouterListQuery)
    except InvalidInput as exc:
        raise BadRequest(exc.message, exc.fields) from exc
    page, size = query.page, query.page_size
    async with request.app[STORE].transaction() as tx:
        rows, total = await tx.routers(
            request.match_info["organization_id"],
            newest_first=query.ordering == "-created_at",
            offset=(page - 1) * size,
            limit=size,
        )

    def link(number: int) -> str:
        return str(request.url.update_query({"page": number, "page_size": size}))

    return web.json_response(
        {
            "count": total,
            "next": link(page + 1) if page * size < total else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": [router_view(row) for row in rows],
        }
    )


@routes.post(BASE + "/routers")
@doc("Create a router", body=RouterBody, answers={201: RouterShown})
async def create_router(request: web.Request) -> web.Response:
    """Create a router."""
    token = _authorize(request)
    body: RouterBody = await _body(request, RouterBody)
    now = datetime.now(UTC)
    async with request.app[STORE].transaction() as tx:
        row = RouterRow(
            id=str(uuid.uuid4()),
            organization_id=request.match_info["organization_id"],
            name=body.name,
            steps=await _steps(request, tx, body.steps, None, (now, token.user_id)),
            created_at=now,
            created_by_user_id=token.user_id,
            updated_at=now,
            updated_by_user_id=token.user_id,
        )
        await tx.add_router(row)
    await request.app[ROUTING].reload()
    return web.json_response(router_view(row), status=201)


async def _require(request: web.Request, tx: Any) -> RouterRow:
    router_id = request.match_info["router_id"]
    row: RouterRow | None = await tx.get_router(request.match_info["organization_id"], router_id)
    if row is None:
        raise NotFound(
            f"router {router_id!r} was not found", [FieldProblem("router_id", "unknown router")]
        )
    return row


@routes.get(BASE + "/routers/{router_id}")
@doc("One router", answers={200: RouterShown}, errors=(404,))
async def get_router(request: web.Request) -> web.Response:
    """One router."""
    _authorize(request)
    async with request.app[STORE].transaction() as tx:
        row = await _require(request, tx)
    return web.json_response(router_view(row))


async def _update(request: web.Request, *, partial: bool) -> web.Response:
    token = _authorize(request)
    body = await _body(request, RouterPatch if partial else RouterBody)
    async with request.app[STORE].transaction() as tx:
        row = await _require(request, tx)
        if body.name is not None:
            row.name = body.name
        now = datetime.now(UTC)
        if body.steps is not None:
            row.steps = await _steps(request, tx, body.steps, row, (now, token.user_id))
        row.updated_at = now
        row.updated_by_user_id = token.user_id
    await request.app[ROUTING].reload()
    return web.json_response(router_view(row))


@routes.patch(BASE + "/routers/{router_id}")
@doc("Update some fields of a router", body=RouterPatch, answers={200: RouterShown}, errors=(404,))
async def patch_router(request: web.Request) -> web.Response:
    """Update some fields of a router."""
    return await _update(request, partial=True)


@routes.put(BASE + "/routers/{router_id}")
@doc("Replace a router", body=RouterBody, answers={200: RouterShown}, errors=(404,))
async def put_router(request: web.Request) -> web.Response:
    """Replace a router (name and steps required)."""
    return await _update(request, partial=False)


@routes.delete(BASE + "/routers/{router_id}")
@doc("Delete a router", answers={204: Answer(None, "Deleted.")}, errors=(404,))
async def delete_router(request: web.Request) -> web.Response:
    """Delete a router; channels that used it fall back to their team or default."""
    _authorize(request)
    async with request.app[STORE].transaction() as tx:
        row = await _require(request, tx)
        await tx.delete_router(row)
    await request.app[ROUTING].reload()
    return web.Response(status=204)


@routes.get(BASE + "/routers/{router_id}/rooms")
@doc("The rooms (channels) using a router", answers={200: RoomPage}, errors=(404,))
async def router_rooms(request: web.Request) -> web.Response:
    """The channels (rooms) that use this router."""
    _authorize(request)
    async with request.app[STORE].transaction() as tx:
        row = await _require(request, tx)
    rooms = [
        name for name in request.app[ROUTING].channels_using(row.id) if _owns_room(request, name)
    ]
    return web.json_response(
        {
            "count": len(rooms),
            "next": None,
            "previous": None,
            "results": [_room_view(request, name, row.id) for name in rooms],
        }
    )


def _owns_room(request: web.Request, room_id: str) -> bool:
    settings = request.app[SETTINGS]
    return (
        room_id in settings.channels
        and settings.channel_organization(room_id) == request.match_info["organization_id"]
    )


def _room_view(request: web.Request, room_id: str, router_id: str | None) -> dict[str, Any]:
    return {
        "id": room_id,
        "name": room_id,
        "organization_id": request.match_info["organization_id"],
        "router_id": router_id,
    }


@routes.patch(BASE + "/rooms/{room_id}")
@doc("Link a room (channel) to a router", body=RoomPatch, answers={200: Room}, errors=(404,))
async def patch_room(request: web.Request) -> web.Response:
    """Link a channel (room) to a router, or unlink it with `router_id: null`."""
    _authorize(request)
    room_id = request.match_info["room_id"]
    routing = request.app[ROUTING]
    # Another organization's room gets the unknown room's answer: nothing to probe.
    if not _owns_room(request, room_id):
        raise NotFound(f"room {room_id!r} was not found", [FieldProblem("room_id", "unknown")])
    body: RoomPatch = await _body(request, RoomPatch)
    async with request.app[STORE].transaction() as tx:
        if body.router_id is not None:
            router = await tx.get_router(request.match_info["organization_id"], body.router_id)
            if router is None:
                raise BadRequest(
                    "router_id names no router of this organization",
                    [FieldProblem("router_id", "unknown router")],
                )
        await tx.set_channel_route(room_id, body.router_id, datetime.now(UTC))
    await routing.reload()
    return web.json_response(_room_view(request, room_id, body.router_id))
