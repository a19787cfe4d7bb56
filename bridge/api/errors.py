"""The middleware that turns errors into JSON answers, and request-body parsing."""

from __future__ import annotations

import errno
import logging
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bridge.errors import (
    FieldProblem,
    InvalidInput,
    MalformedJSON,
    RequestError,
    UnsupportedMediaType,
    field_path,
)
from bridge.input_limits import load_json
from bridge.typedefs import SETTINGS

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class ProblemShown(BaseModel):
    """One field of the request and what is wrong with it."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="A dotted path (`steps[0].value`), a parameter or a header.")
    problem: str


class ErrorDetail(BaseModel):
    """What went wrong, and where."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable, for programs: `invalid_input`, `not_found`, ...")
    message: str = Field(description="For people.")
    fields: list[ProblemShown]


class ErrorBody(BaseModel):
    """The one error shape every 4xx and 5xx answer uses."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_input",
                        "message": "the request has invalid fields",
                        "fields": [{"field": "bot.conversation_id", "problem": "Field required"}],
                    }
                }
            ]
        },
    )

    error: ErrorDetail


def error_body(code: str, message: str, fields: list[FieldProblem] | None = None) -> dict[str, Any]:
    """The one error shape every 4xx and 5xx answer uses (ErrorBody, as the document says)."""
    problems = [ProblemShown(field=f.field, problem=f.problem) for f in fields or []]
    return ErrorBody(error=ErrorDetail(code=code, message=message, fields=problems)).model_dump()


def invalid_input(exc: ValidationError) -> InvalidInput:
    """A pydantic error as InvalidInput naming each field and its problem."""
    problems = [FieldProblem(field_path(e["loc"]) or "(body)", e["msg"]) for e in exc.errors()]
    return InvalidInput("the request has invalid fields", problems)


async def parse_body(request: web.Request, model: type[M], *, optional: bool = False) -> M:
    """Read and validate a JSON body; 415, 400 or 422 with the field when it is wrong."""
    raw = await request.read()
    if not raw and optional:
        return model()
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "send the body as application/json",
            [FieldProblem("content-type", f"is {request.content_type!r}")],
        )
    data = load_json(raw)
    if not isinstance(data, dict):
        raise MalformedJSON(
            "the body must be a JSON object", [FieldProblem("(body)", "must be a JSON object")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


# How a value the store refused is answered, by status: the code, message and problem.
_REFUSALS = {
    409: (
        "invalid_state",
        "the request conflicts with what is stored",
        "conflicts with stored data (a duplicate)",
    ),
    422: (
        "invalid_input",
        "the request holds a value the store cannot keep",
        "a value is too long, out of range or not storable text",
    ),
}


def _refusal_status(exc: DBAPIError) -> int | None:
    """409 or 422 when the store refused a value the request carried; None for an outage."""
    if isinstance(exc, IntegrityError):
        return 409
    if isinstance(exc, DataError):
        return 422
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        # SQLSTATE classes: 22 is a data exception (too long, out of range, a NUL in
        # text), 23 an integrity constraint violation (a duplicate key).
        return {"22": 422, "23": 409}.get(sqlstate[:2])
    # asyncpg refuses a parameter it cannot encode (a lone surrogate, an integer out of
    # range) with a ValueError before anything is sent.
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return 422 if isinstance(cause, ValueError) else None


def _refused_by_store(request: web.Request, exc: DBAPIError, status: int) -> web.Response:
    """A value the store refused: the request's fault, so a 4xx and never a Retry-After.

    Input checks are meant to catch such values first, naming the field; reaching this
    means one is missing, and the warning says on which route (never the values).
    """
    route = request.match_info.route.resource
    log.warning(
        "api.refused_by_store",
        extra={
            "route": route.canonical if route is not None else "(none)",
            "error": type(exc.orig).__name__,
        },
    )
    code, message, problem = _REFUSALS[status]
    return web.json_response(
        error_body(code, message, [FieldProblem("(body)", problem)]), status=status
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error as JSON; never a stack trace, never 500 for a client's mistake."""
    try:
        return await handler(request)
    except RequestError as exc:
        return web.json_response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].server.max_body_bytes
        return web.json_response(
            error_body(
                "payload_too_large",
                f"the body is larger than the limit of {limit} bytes",
                [FieldProblem("(body)", f"over {limit} bytes")],
            ),
            status=413,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return web.json_response(
            error_body(code, exc.reason),
            status=exc.status,
            headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
        )
    except ConnectionResetError:
        raise  # the client went away (a closed console stream): nothing to answer
    except (DBAPIError, PoolTimeout, OSError) as exc:
        refused = _refusal_status(exc) if isinstance(exc, DBAPIError) else None
        if isinstance(exc, DBAPIError) and refused is not None:
            return _refused_by_store(request, exc, refused)
        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
            # A path too long for a file name (a console static file) names nothing.
            return web.json_response(
                error_body("not_found", "Not Found", [FieldProblem("(path)", "too long")]),
                status=404,
            )
        # The store is down or locked: 503 so the sender retries; nothing was accepted.
        log.error("api.storage_unavailable", extra={"path": request.path, "error": str(exc)})
        return web.json_response(
            error_body("storage_unavailable", "storage is unavailable; try again shortly"),
            status=503,
            headers={"Retry-After": "5"},
        )
    except Exception:
        log.exception("api.unhandled_error", extra={"path": request.path})
        return web.json_response(error_body("internal_error", "internal error"), status=500)
