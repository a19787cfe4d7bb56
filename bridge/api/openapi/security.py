"""The credentials of the API document, as bridge/api/auth.py and the handlers check them."""

from __future__ import annotations

from typing import Any

from bridge.api.openapi.operation import Access

SECURITY_SCHEMES: dict[str, Any] = {
    "botToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "BRIDGE_SECURITY__API_TOKEN: the bot side (/v1/handoffs, "
        "/v1/conversations/...). Open while unset, which only a loopback listener allows.",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "BRIDGE_SECURITY__ADMIN_TOKEN: every other /v1/ route. Open while "
        "unset, which only a loopback listener allows.",
    },
    "organizationToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from BRIDGE_SECURITY__ORG_TOKENS with the `settings` "
        "permission: its own organization's agents, teams, subscriptions and routers. "
        "The routers API also takes it as `Authorization: Token <token>`, as giosg does.",
    },
    "integrationSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "A Standard Webhooks signature (with `webhook-id` and "
        "`webhook-timestamp`) by one of BRIDGE_SECURITY__INTEGRATION_SECRETS; at most "
        "five minutes off.",
    },
}

_REQUIREMENTS: dict[Access, list[dict[str, list[str]]]] = {
    Access.BOT: [{"botToken": []}],
    Access.BOT_OR_OPERATOR: [{"botToken": []}, {"adminToken": []}, {"organizationToken": []}],
    Access.ADMIN: [{"adminToken": []}],
    Access.DIRECTORY: [{"adminToken": []}, {"organizationToken": []}],
    Access.ORGANIZATION: [{"organizationToken": []}],
    Access.SIGNED: [{"integrationSignature": []}],
    # These carry their credential in the path (a signed link, a URL secret) or in a
    # platform's own signature header, or need none: no scheme the document can name.
    Access.PLATFORM: [],
    Access.LINK: [],
    Access.PUBLIC: [],
}


def requirements(access: Access) -> list[dict[str, list[str]]]:
    """The operation's `security`: any one of the listed schemes is enough."""
    return _REQUIREMENTS[access]
