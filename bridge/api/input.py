"""Path parameters, query strings and headers checked once, before any handler runs.

A NUL in a path or query value (`%00`) would reach the store, where PostgreSQL fails the
whole statement; a header with bytes that are not UTF-8 arrives as lone surrogates, which
no code can encode again. Both are answered 422 naming the parameter or header. Path
parameters that become stored ids (`PUT /v1/agents/{agent_id}`) are held to their
column's length here, so an over-long one is a 422 and not a database error.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.db.lengths import column_length
from bridge.db.tables import AgentRow, TeamRow
from bridge.errors import FieldProblem, InvalidInput
from bridge.input_limits import text_problem

# Path parameters stored as ids, and the length of the column that keeps them.
STORED_PATH_PARAMETERS = {
    "agent_id": column_length(AgentRow, "id"),
    "team_id": column_length(TeamRow, "id"),
}


def _path_problems(match_info: dict[str, str]) -> list[FieldProblem]:
    problems = []
    for name, value in match_info.items():
        problem = text_problem(value)
        limit = STORED_PATH_PARAMETERS.get(name)
        if problem is None and limit is not None and len(value) > limit:
            problem = f"must be at most {limit} characters"
        if problem:
            problems.append(FieldProblem(name, problem))
    return problems


def request_problems(request: web.Request) -> list[FieldProblem]:
    """What in the request's path, query and headers the bridge cannot take."""
    problems = _path_problems(dict(request.match_info))
    for name, value in request.query.items():
        problem = text_problem(name) or text_problem(value)
        if problem:
            # A name with a NUL cannot be echoed back usefully; its position can.
            shown = name if text_problem(name) is None else "(query)"
            problems.append(FieldProblem(shown, problem))
    for name, value in request.headers.items():
        if text_problem(value):
            problems.append(FieldProblem(name, "is not UTF-8 text"))
    return problems


@web.middleware
async def input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 422 for a NUL, a lone surrogate or an over-long stored id outside the body."""
    problems = request_problems(request)
    if problems:
        raise InvalidInput("the request has invalid parameters", problems)
    return await handler(request)
