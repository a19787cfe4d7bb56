"""Query strings validated by a pydantic model: a wrong parameter is a 422 naming it.

Each parameter may be given once, except those the model takes as a list, which repeat
(`?status=pending&status=active`). Unknown parameters are refused like unknown body
fields, so a misspelt filter is an error and not a silently wider answer.
"""

from __future__ import annotations

from typing import Any, TypeVar, get_origin

from multidict import MultiMapping
from pydantic import BaseModel, ValidationError

from bridge.api.errors import invalid_input
from bridge.errors import FieldProblem, InvalidInput

M = TypeVar("M", bound=BaseModel)


def _repeatable(model: type[BaseModel]) -> set[str]:
    """The model's fields that take a list: their parameter may be given several times."""
    return {
        field.alias or name
        for name, field in model.model_fields.items()
        if get_origin(field.annotation) is list
    }


def parse_query(query: MultiMapping[str], model: type[M]) -> M:
    """The query string as `model`; InvalidInput (422) naming each wrong parameter."""
    lists = _repeatable(model)
    values: dict[str, Any] = {}
    repeated: list[FieldProblem] = []
    for name in dict.fromkeys(query.keys()):
        given = query.getall(name)
        if name in lists:
            values[name] = given
        elif len(given) > 1:
            repeated.append(FieldProblem(name, "must be given at most once"))
        else:
            values[name] = given[0]
    if repeated:
        raise InvalidInput("the request has invalid parameters", repeated)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid_input(exc) from exc
