"""The OpenAPI 3.1 document, built from the app's router and each handler's declaration.

Every route the router serves is walked: its method and path come from the router, the
rest from the declaration its handler carries (operation.py). Schemas come from the same
pydantic models the handlers validate with, through `models_json_schema`, so the document
says what the code accepts. A route without a declaration is left out and reported by
`undocumented`, which the coverage test holds to empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bridge.api.errors import ErrorBody
from bridge.api.input import STORED_PATH_PARAMETERS
from bridge.api.openapi.operation import Answer, Operation, declaration_of
from bridge.api.openapi.security import SECURITY_SCHEMES, requirements
from bridge.api.openapi.statuses import error_statuses

REF = "#/components/schemas/{model}"
# What aiohttp matches for a path parameter ([^{}/]+), less the NUL the input check refuses.
PATH_TEXT = "^[^{}/\\u0000]+$"
# Any other parameter: any text but NUL (bridge/api/input.py refuses it).
TEXT = "^[^\\u0000]*$"
NON_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


@dataclass(frozen=True, slots=True)
class Served:
    """One method on one path, and its declaration (None: the handler declares nothing)."""

    method: str
    path: str
    operation: Operation | None


def served(app: web.Application) -> Iterator[Served]:
    """Every method and path the app's router serves (HEAD only where there is no GET)."""
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource):
            # No handler of ours to declare it: serve files through a declared route instead.
            yield Served("get", resource.canonical + "/{filename}", None)
            continue
        methods = {route.method for route in resource}
        for route in resource:
            if route.method == "HEAD" and "GET" in methods:
                continue  # aiohttp answers HEAD for every GET
            operation = declaration_of(route.handler)
            if route.method == "*":
                listed = operation.methods if operation is not None else ("*",)
                for method in listed:
                    yield Served(method.lower(), resource.canonical, operation)
            else:
                yield Served(route.method.lower(), resource.canonical, operation)


def undocumented(app: web.Application) -> list[str]:
    """`METHOD /path` of every served route whose handler declares nothing."""
    return [f"{s.method.upper()} {s.path}" for s in served(app) if s.operation is None]


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _path_parameter(name: str, path: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "pattern": PATH_TEXT}
    if path.endswith("/{" + name + "}") and path.startswith("/bots/"):
        # The rest of the path, slashes included, for the bot platform's own API.
        schema = {"type": "string"}
    limit = STORED_PATH_PARAMETERS.get(name)
    if limit is not None:
        schema["maxLength"] = limit
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _no_nul(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every string in it refusing NUL, as the input check does."""
    if schema.get("type") == "string" and "enum" not in schema:
        schema = {"pattern": TEXT, **schema}
    for key in ("anyOf", "oneOf"):
        if key in schema:
            schema = {**schema, key: [_no_nul(option) for option in schema[key]]}
    return schema


def _storable_text(schema: Any) -> Any:
    """Every string and key in a body schema as the bridge takes it.

    A NUL is refused in any string or key (bridge/input_limits.py), and strings are
    stripped before their length is checked, so one that must not be empty needs a
    character that is not a space.
    """
    if isinstance(schema, list):
        return [_storable_text(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found = {key: _storable_text(value) for key, value in schema.items()}
    if found.get("type") == "string" and "enum" not in found and "pattern" not in found:
        found["pattern"] = NON_BLANK if found.get("minLength", 0) >= 1 else TEXT
    if found.get("type") == "object" and "propertyNames" not in found:
        found["propertyNames"] = {"pattern": TEXT}
    return found


def _query_parameters(model: type[BaseModel], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = defs[model.__name__]
    required = set(schema.get("required", []))
    parameters = []
    for name, field in schema["properties"].items():
        described = _no_nul({k: v for k, v in field.items() if k not in {"title", "description"}})
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": described,
        }
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(answer: Answer) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for media_type in answer.media_types:
        if media_type != "application/json":
            content[media_type] = {"schema": {"type": "string"}}
        else:
            # No model: whatever JSON the answer holds (a platform adapter's own shape).
            content[media_type] = {"schema": _ref(answer.model) if answer.model else {}}
    return content


def _responses(operation: Operation, has_body: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in sorted(operation.answers.items()):
        entry: dict[str, Any] = {"description": answer.description or operation.summary}
        if status != 204:
            entry["content"] = _content(answer)
        if answer.headers:
            entry["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in answer.headers.items()
            }
        responses[str(status)] = entry
    for status, why in error_statuses(operation, has_body).items():
        responses.setdefault(
            str(status),
            {"description": why, "content": {"application/json": {"schema": _ref(ErrorBody)}}},
        )
    return responses


def _request_body(operation: Operation) -> dict[str, Any] | None:
    if operation.body is not None:
        media: dict[str, Any] = {"schema": _ref(operation.body)}
    elif operation.raw_body is not None:
        media = {"schema": {}}
    else:
        return None
    if operation.examples:
        media["examples"] = {name: {"value": value} for name, value in operation.examples.items()}
    body: dict[str, Any] = {
        "required": not operation.body_optional,
        "content": {"application/json": media},
    }
    if operation.raw_body is not None:
        body["description"] = operation.raw_body
    return body


def _operation(served: Served, operation: Operation, defs: dict[str, Any]) -> dict[str, Any]:
    parameters = [_path_parameter(name, served.path) for name in _path_names(served.path)]
    if operation.query is not None:
        parameters += _query_parameters(operation.query, defs)
    body = _request_body(operation)
    entry: dict[str, Any] = {
        "operationId": _operation_id(served),
        "summary": operation.summary,
        "tags": [operation.tag],
        "security": requirements(operation.access),
        "responses": _responses(operation, body is not None),
    }
    if operation.description:
        entry["description"] = operation.description
    if parameters:
        entry["parameters"] = parameters
    if body is not None:
        entry["requestBody"] = body
    return entry


def _operation_id(served: Served) -> str:
    words = [part.strip("{}").replace("-", "_") for part in served.path.split("/") if part]
    return "_".join([served.method, *words])


def _models(operations: list[Operation]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {ErrorBody.__name__: ErrorBody}
    for operation in operations:
        for model in (operation.body, operation.query):
            if model is not None:
                found[model.__name__] = model
        for answer in operation.answers.values():
            if answer.model is not None:
                found[answer.model.__name__] = answer.model
    return list(found.values())


def _version() -> str:
    try:
        return metadata.version("handoff-bridge")
    except metadata.PackageNotFoundError:
        return "0.0.0"


DESCRIPTION = (
    "Hands a chat from a bot to human agents, routes it, and relays it durably. Each group "
    "of routes takes its own credential: the bot side the API token, the operator's routes "
    "the admin token (or an organization token for its own organization), the routers API "
    "an organization token, integrations a Standard Webhooks signature, platforms their own "
    "secrets, and the console a signed link. Every error has the body `ErrorBody`."
)


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared route the app serves."""
    routes = [(s, s.operation) for s in served(app) if s.operation is not None]
    _, schemas = models_json_schema(
        [(model, "validation") for model in _models([op for _, op in routes])],
        ref_template=REF,
    )
    defs: dict[str, Any] = _storable_text(schemas.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route, operation in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route, operation, defs)
    for _, operation in routes:
        # A query model's fields are the parameters; the model itself is no schema.
        if operation.query is not None:
            defs.pop(operation.query.__name__, None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "handoff bridge", "version": _version(), "description": DESCRIPTION},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(defs.items())), "securitySchemes": SECURITY_SCHEMES},
    }
