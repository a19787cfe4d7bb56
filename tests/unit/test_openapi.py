"""The API document covers every route the app serves, and says what auth.py checks.

The app is built (not started) from the shipped config with every token set, and its
router is walked: a route whose handler declares nothing fails here, so a new route
cannot be left out of /openapi.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bridge.api.auth import PROTECTED_PREFIX, identify
from bridge.api.openapi import build_document, undocumented
from bridge.api.openapi.document import served
from bridge.app import create_app
from bridge.errors import Unauthorized
from bridge.models import HandoffRequest
from bridge.settings import SecuritySettings, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config" / "bridge.yaml"
TOKENS = {"botToken": "bot-1", "adminToken": "admin-2", "organizationToken": "org-3"}
ROLES = {"botToken": "bot", "adminToken": "admin", "organizationToken": "org"}


def _app() -> web.Application:
    return create_app(
        load_settings(
            CONFIG,
            security={
                "api_token": TOKENS["botToken"],
                "admin_token": TOKENS["adminToken"],
                "org_tokens": {TOKENS["organizationToken"]: {"organization_id": "acme"}},
            },
        )
    )


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_served_route_is_in_the_document() -> None:
    app = _app()
    assert undocumented(app) == []
    document = build_document(app)
    for route in served(app):
        assert route.method in document["paths"][route.path], (route.method, route.path)
    # The page and the document themselves are part of it.
    assert {"/openapi.json", "/docs"} <= set(document["paths"])


def test_a_route_without_a_declaration_is_named_and_left_out() -> None:
    app = _app()

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_post("/v1/forgotten/{thing_id}", handler)
    assert "POST /v1/forgotten/{thing_id}" in undocumented(app)
    assert "/v1/forgotten/{thing_id}" not in build_document(app)["paths"]


def test_bodies_are_the_models_the_handlers_validate_with() -> None:
    document = build_document(_app())
    body = document["paths"]["/v1/handoffs"]["post"]["requestBody"]
    assert body["required"] is True
    reference = body["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    # The same required fields and limits HandoffRequest enforces.
    assert set(schema["required"]) == {
        name for name, field in HandoffRequest.model_fields.items() if field.is_required()
    }
    assert schema["additionalProperties"] is False
    assert schema["properties"]["history"]["maxItems"] == 1000


def test_query_parameters_carry_the_models_limits() -> None:
    document = build_document(_app())
    parameters = {
        p["name"]: p
        for p in document["paths"]["/v1/conversations/{conversation_id}/messages"]["get"][
            "parameters"
        ]
    }
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert parameters["limit"]["schema"]["minimum"] == 1
    assert parameters["conversation_id"]["in"] == "path"


def test_every_error_answer_has_the_error_shape() -> None:
    document = build_document(_app())
    for method, path, operation in _operations(document):
        for status, answer in operation["responses"].items():
            # 4xx: a readiness check's 503 has its own shape, the checks that failed.
            if 400 <= int(status) < 500 and "content" in answer:
                media = answer["content"].get("application/json")
                if media is not None:
                    assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (
                        method,
                        path,
                        status,
                    )


def _concrete(path: str) -> str:
    return "/".join("x" if part.startswith("{") else part for part in path.split("/"))


def test_the_documented_credentials_are_the_ones_auth_checks() -> None:
    """Each scheme an operation lists gets in; no token is refused; public ones are not checked."""
    security = SecuritySettings(
        api_token=SecretStr(TOKENS["botToken"]),
        admin_token=SecretStr(TOKENS["adminToken"]),
        org_tokens={TOKENS["organizationToken"]: {"organization_id": "acme"}},
    )
    checked = 0
    for method, path, operation in _operations(build_document(_app())):
        concrete = _concrete(path)
        schemes = [name for requirement in operation["security"] for name in requirement]
        if not concrete.startswith(PROTECTED_PREFIX):
            # Not under /v1/: the handler checks its own credential, if any.
            assert set(schemes) <= {"integrationSignature", "organizationToken", "adminToken"}
            continue
        assert schemes, (method, path)
        with pytest.raises(Unauthorized):
            identify(security, concrete, None)
        for scheme in schemes:
            caller = identify(security, concrete, TOKENS[scheme])
            assert caller.role == ROLES[scheme], (method, path, scheme)
            checked += 1
    assert checked > 20


def test_the_document_and_its_page_need_no_token() -> None:
    document = build_document(_app())
    for path in ("/openapi.json", "/docs", "/docs/{asset}"):
        assert document["paths"][path]["get"]["security"] == []
        assert not path.startswith(PROTECTED_PREFIX)
