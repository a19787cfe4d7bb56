"""schemathesis over the whole API document, against the real app on a real port.

The app serves /openapi.json; schemathesis reads it from there and, for every operation,
sends the document's examples, its coverage cases and a bounded number of generated
requests (valid and invalid), each with the credential the operation's `security` names.
Every answer is checked with all of schemathesis' checks: no 5xx, a documented status,
content type and headers, a body that matches the documented schema, valid data accepted,
invalid data refused, and a route that declares a credential refusing a request without one.

The app runs on its own event loop in a thread, because schemathesis' pytest tests are
synchronous and call the app with `requests`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import unused_port
from standardwebhooks.webhooks import Webhook

from bridge.api.openapi import build_document
from bridge.app import create_app
from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge

BOT_TOKEN = "st-bot-token"
ADMIN_TOKEN = "st-admin-token"
ORG_TOKEN = "st-acme-token"
INTEGRATION_SECRET = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LTMyYnl0ZXM="

# Bounded so the whole run stays short on a small shared machine: each operation gets its
# examples and coverage cases, then this many generated requests.
EXAMPLES_PER_OPERATION = 8

# Valid by the document but refused by what only the running bridge knows: a channel,
# team or event name it has not configured, a URL the outbound policy refuses, a step that
# names people outside the organization. The document cannot list those (they change
# with the configuration and the store), so for these operations a 400 or 422 naming the
# field is an acceptable answer to valid-looking data too. So is it for a transfer, which
# names exactly one of its three optional targets, a rule the schema does not spell out.
# Nor is a conversation list's `cursor`, valid only as a page's `next_cursor`, or its
# `created_to`, which may not come before `created_from`.
STATEFUL_VALIDATION = [
    {"include-path-regex": "^/v1/conversations$"},
    {"include-path-regex": "^/console/supervisor-api/[^/]+/conversations$"},
    {"include-path-regex": "^/v1/(handoffs|availability|routing/explain|subscriptions)$"},
    {"include-path-regex": "/transfer$"},
    # Attachments: the allowed MIME types and sizes are settings, and a link's host must
    # resolve to an address the outbound policy allows.
    {"include-path-regex": "/messages$"},
    {"include-path-regex": "^/v1/(agents|teams)/"},
    {"include-path-regex": "^/api/v5/orgs/"},
    {"include-path-regex": "^/integrations/"},
]
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": EXAMPLES_PER_OPERATION},
        # Operations are independent here: no links between them to follow.
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            {
                **where,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422"]
                    }
                },
            }
            for where in STATEFUL_VALIDATION
        ],
    }
)


class AnyNameIsHere(AbstractResolver):
    """Every host name resolves to this machine, so any http(s) URL passes the policy."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """127.0.0.1 for every name."""
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


class BridgeThread:
    """The real bridge on a real port, on an event loop of its own in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: RunningBridge | None = None

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def __enter__(self) -> str:
        self.thread.start()
        self.running = self._run(start_bridge(self.settings, resolver=AnyNameIsHere()))
        return f"http://127.0.0.1:{self.settings.server.port}"

    def __exit__(self, *_: object) -> None:
        if self.running is not None:
            self._run(stop_bridge(self.running))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


def _bridge_settings(database: Database, port: int) -> Settings:
    return make_settings(
        database,
        port,
        organization_id="acme",
        teams=[{"id": "support"}],
        agents=[{"id": "ana", "name": "Ana", "teams": ["support"]}],
        security={
            "api_token": BOT_TOKEN,
            "admin_token": ADMIN_TOKEN,
            "org_tokens": {ORG_TOKEN: {"organization_id": "acme", "user_id": "acme-admin"}},
            "integration_secrets": [INTEGRATION_SECRET],
        },
    )


# The port and the document are fixed when the module is collected, because schemathesis
# makes one test per operation from the document; the fixture below starts the app with
# the same settings and checks it serves that very document.
PORT = unused_port()
BASE_URL = f"http://127.0.0.1:{PORT}"
BUILT_WITH = _bridge_settings(Database("sqlite", "sqlite+aiosqlite://"), PORT)
DOCUMENT = build_document(create_app(BUILT_WITH))
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The running bridge's base URL, once it serves the document the tests were made from."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('st')}/st.db")
    with BridgeThread(_bridge_settings(database, PORT)) as url:
        answer = requests.get(f"{url}/openapi.json", timeout=30)
        assert answer.status_code == 200
        assert answer.json() == DOCUMENT
        yield url


class SignedAsIntegration(requests.auth.AuthBase):
    """Signs the body as it is sent, as a CRM does (Standard Webhooks)."""

    counter = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from datetime import UTC, datetime

        if "webhook-signature" not in request.headers:
            return request  # a case without the credential, to see it refused
        SignedAsIntegration.counter += 1
        body = request.body or b""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        when = datetime.now(UTC)
        message_id = f"msg_st_{SignedAsIntegration.counter}"
        request.headers["webhook-id"] = message_id
        request.headers["webhook-timestamp"] = str(int(when.timestamp()))
        request.headers["webhook-signature"] = Webhook(INTEGRATION_SECRET).sign(
            message_id, when, text
        )
        return request


BEARERS = {
    "botToken": f"Bearer {BOT_TOKEN}",
    "adminToken": f"Bearer {ADMIN_TOKEN}",
    "organizationToken": f"Token {ORG_TOKEN}",
}


def credentials(case: schemathesis.Case) -> dict[str, Any]:
    """The call's arguments that carry the credential the operation's `security` names first."""
    security = case.operation.definition.raw.get("security") or [{}]
    scheme = next(iter(security[0]), None)
    if scheme == "integrationSignature":
        return {"auth": SignedAsIntegration()}
    if scheme in BEARERS:
        return {"headers": {"Authorization": BEARERS[scheme]}}
    return {}


@pytest.mark.timeout(300)
@schema.parametrize()
def test_every_answer_matches_the_document(served: str, case: schemathesis.Case) -> None:
    """No 5xx, and every answer as the document says, for every operation."""
    case.call_and_validate(base_url=served, **credentials(case))
