"""Who is calling: one credential per kind of caller, checked before any handler runs.

| path                                     | credential                         | caller role |
|------------------------------------------|------------------------------------|-------------|
| /v1/handoffs, /v1/conversations/...      | BRIDGE_SECURITY__API_TOKEN (bots)  | bot         |
| /v1/agents, /v1/teams, /v1/subscriptions | BRIDGE_SECURITY__ADMIN_TOKEN, or   | admin       |
| /v1/conversations (the list), /v1/queue, | an organization token (its own     | org         |
| /v1/supervisor_link                      | organization only)                 |             |
| any other /v1/ (outbox, routing)         | BRIDGE_SECURITY__ADMIN_TOKEN       | admin       |
| /api/v5/orgs/{org}/...                   | an organization token (routers.py) | -           |
| /v1/conversations/{id}/transfer, release | the bot's, the admin's or an       | bot, admin, |
|                                          | organization's token               | org         |

A group whose token is not set is open (role "open"). That is allowed only while the
service listens on loopback, or when `security.allow_open_api` says so on purpose;
`check_exposure` refuses to start otherwise. Platforms, bots' own APIs, integrations and
console links carry their own secrets and are checked where they are handled.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import SecretStr

from bridge.errors import ConfigError, FieldProblem, Unauthorized
from bridge.settings import OrgToken, SecuritySettings, Settings
from bridge.typedefs import SETTINGS

PROTECTED_PREFIX = "/v1/"
BOT_PREFIXES = ("/v1/handoffs", "/v1/conversations/", "/v1/availability")
ORG_PREFIXES = ("/v1/agents", "/v1/teams", "/v1/subscriptions", "/v1/queue", "/v1/supervisor_link")
# The conversation list; a conversation's own paths (/v1/conversations/...) are the bots'.
ORG_PATHS = frozenset({"/v1/conversations"})

# A conversation's transfer and release are its agents' too: an operator acting for them
# may call them with the admin token, or an organization token for its own conversations.
AGENT_ACTIONS = re.compile(r"/v1/conversations/[^/]+/(?:transfer|release)")

Role = Literal["bot", "admin", "org", "open"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request and the organizations it may touch."""

    role: Role
    # The one organization this caller may see and change; None means every organization.
    organization_id: str | None = None
    user_id: str | None = None

    def sees(self, organization_id: str) -> bool:
        """True when the caller may see or change a resource owned by `organization_id`."""
        return self.organization_id is None or self.organization_id == organization_id


CALLER: web.RequestKey[Caller] = web.RequestKey("caller", Caller)
OPEN = Caller("open")


def caller_of(request: web.Request) -> Caller:
    """The caller the auth middleware identified (open for unprotected paths)."""
    caller: Caller = request.get(CALLER, OPEN)
    return caller


def _given_token(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in {"bearer", "token"} or not given.strip():
        return None
    return given.strip()


def _matches(given: str, expected: SecretStr | None) -> bool:
    return expected is not None and hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    )


def org_token(security: SecuritySettings, given: str) -> OrgToken | None:
    """The organization grant for a token, compared in constant time against each one."""
    found: OrgToken | None = None
    for known, grant in security.org_tokens.items():
        if hmac.compare_digest(known.encode(), given.encode()):
            found = grant
    return found


def _refuse(variable: str) -> Unauthorized:
    return Unauthorized(
        "a valid bearer token is required",
        [FieldProblem("Authorization", f"missing or wrong token (set by {variable})")],
    )


def _operator(security: SecuritySettings, given: str) -> Caller | None:
    """The admin or an organization's admin, when `given` is one of their tokens."""
    grant = org_token(security, given)
    if grant is not None and "settings" in grant.permissions:
        return Caller("org", grant.organization_id, grant.user_id)
    if _matches(given, security.admin_token):
        return Caller("admin")
    return None


def identify(security: SecuritySettings, path: str, given: str | None) -> Caller:
    """The caller for a request to `path` with the bearer token `given`, or Unauthorized."""
    if given is not None and AGENT_ACTIONS.fullmatch(path):
        operator = _operator(security, given)
        if operator is not None:
            return operator
    if path.startswith(BOT_PREFIXES):
        if security.api_token is None:
            return OPEN
        if given is not None and _matches(given, security.api_token):
            return Caller("bot")
        raise _refuse("BRIDGE_SECURITY__API_TOKEN")
    if given is not None and (path.startswith(ORG_PREFIXES) or path in ORG_PATHS):
        grant = org_token(security, given)
        if grant is not None and "settings" in grant.permissions:
            return Caller("org", grant.organization_id, grant.user_id)
    if security.admin_token is None:
        return OPEN
    if given is not None and _matches(given, security.admin_token):
        return Caller("admin")
    raise _refuse("BRIDGE_SECURITY__ADMIN_TOKEN")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Identify the caller of every /v1/ request, or answer 401."""
    if request.path.startswith(PROTECTED_PREFIX):
        security = request.app[SETTINGS].security
        request[CALLER] = identify(security, request.path, _given_token(request))
    return await handler(request)


def is_loopback(host: str) -> bool:
    """True when `host` (a listen address) accepts connections from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_groups(security: SecuritySettings) -> list[str]:
    """The API groups that answer without a token under these settings."""
    groups = []
    if security.api_token is None:
        groups.append("bot-side API (BRIDGE_SECURITY__API_TOKEN)")
    if security.admin_token is None:
        groups.append("admin API (BRIDGE_SECURITY__ADMIN_TOKEN)")
    return groups


def check_exposure(settings: Settings) -> list[str]:
    """Refuse an open API on a non-loopback listener; the warnings to log at every start."""
    groups = open_groups(settings.security)
    if not groups or is_loopback(settings.server.host):
        return []
    listing = " and ".join(groups)
    if settings.security.allow_open_api:
        return [
            f"the {listing} answer anyone who can reach {settings.server.host}:"
            f"{settings.server.port} (security.allow_open_api is true)"
        ]
    raise ConfigError(
        f"refusing to listen on {settings.server.host} with no token for the {listing}: "
        "set BRIDGE_SECURITY__API_TOKEN and BRIDGE_SECURITY__ADMIN_TOKEN (for example to the "
        'output of `python -c "import secrets; print(secrets.token_urlsafe(32))"`), listen on '
        "127.0.0.1, or set BRIDGE_SECURITY__ALLOW_OPEN_API=true to run it open on purpose"
    )
