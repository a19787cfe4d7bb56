"""The index at `/`: what runs here and where to start, for a browser (HTML) or a client (JSON).

Public like /healthz, so it holds nothing secret: no token, no secret, no channel option
(options name the variables secrets are read from). Agents' ids are listed only while the
admin API answers without a token, because anyone could then list them there anyway.
"""

from __future__ import annotations

from html import escape
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

import bridge
from bridge.api.openapi import Access, Answer, Operations
from bridge.settings import Settings
from bridge.typedefs import SETTINGS

routes = web.RouteTableDef()
doc = Operations("Index", Access.PUBLIC)

# Where to go next, when this app serves it: (key, path, what it is). Checked against the
# router at each request, so the index never links to a page this build does not have.
LINKS = (
    ("docs", "/docs", "API documentation (offline)"),
    ("openapi", "/openapi.json", "OpenAPI 3.1 document"),
    ("health", "/healthz", "liveness"),
    ("ready", "/readyz", "readiness: database and relay"),
    ("metrics", "/metrics", "Prometheus metrics"),
)

# Nothing on this page loads, runs or submits anything: the strictest policy there is.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # The same URL answers HTML or JSON: caches must keep them apart.
    "Vary": "Accept",
}


def _quality(accept: str, media_type: str) -> float:
    """The q-value `accept` gives exactly `media_type` (0 when it is not named)."""
    best = 0.0
    for item in accept.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if name.lower() != media_type:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best


def wants_html(accept: str) -> bool:
    """True when the client ranks HTML above JSON (browsers do; curl and API clients not)."""
    return _quality(accept, "text/html") > _quality(accept, "application/json")


def _served_paths(app: web.Application) -> set[str]:
    paths = set()
    for resource in app.router.resources():
        paths.add(resource.canonical.rstrip("/") or "/")
    return paths


class _Shown(BaseModel):
    # Every field the answer shows and no other, so its description cannot drift.
    model_config = ConfigDict(extra="forbid")


class IndexChannel(_Shown):
    """A configured channel: its platform, whether it is a main channel, regions, team."""

    name: str
    platform: str
    main: bool
    regions: dict[str, str]
    team_id: str | None


class IndexBot(_Shown):
    """A configured bot platform (any other `bot.platform` gets signed webhooks)."""

    name: str
    platform: str


class IndexApi(_Shown):
    """Where a bot hands over, and which credential that takes (never its value)."""

    handoff: str
    bot_credential: str


class IndexDesk(_Shown):
    """How an agent gets a desk link."""

    how: str
    credential: str
    # The config's agent ids; null while the admin API needs a token.
    agents: list[str] | None


class IndexView(_Shown):
    """What runs here and where to start."""

    service: Literal["handoff bridge"]
    version: str
    database: Literal["sqlite", "postgresql"]
    public_url: str
    default_channel: str | None
    channels: list[IndexChannel]
    bots: list[IndexBot]
    api: IndexApi
    # Name -> path, for those this build serves: docs, openapi, health, ready, metrics.
    links: dict[str, str]
    desk: IndexDesk


def index_view(settings: Settings, served: set[str]) -> IndexView:
    """What the index shows."""
    security = settings.security
    admin_open = security.admin_token is None
    main_channels = set(settings.main_channels())
    return IndexView(
        service="handoff bridge",
        version=bridge.__version__,
        database="sqlite" if settings.database.is_sqlite else "postgresql",
        public_url=settings.server.base_url(),
        default_channel=settings.default_channel,
        channels=[
            IndexChannel(
                name=name,
                platform=channel.platform,
                main=name in main_channels,
                regions=dict(channel.regions),
                team_id=channel.team_id,
            )
            for name, channel in settings.channels.items()
        ],
        bots=[IndexBot(name=name, platform=bot.platform) for name, bot in settings.bots.items()],
        api=IndexApi(
            handoff="POST /v1/handoffs",
            bot_credential="none (the bot-side API is open)"
            if security.api_token is None
            else "Authorization: Bearer <BRIDGE_SECURITY__API_TOKEN>",
        ),
        links={key: path for key, path, _ in LINKS if path in served},
        desk=IndexDesk(
            how="GET /v1/agents/{agent_id}/desk_link answers {agent_id, url}: open the url "
            "in a browser (a personal link, valid 30 days; share it like a password)",
            credential="none (the admin API is open)"
            if admin_open
            else "Authorization: Bearer <BRIDGE_SECURITY__ADMIN_TOKEN>",
            agents=[agent.id for agent in settings.agents] if admin_open else None,
        ),
    )


def _rows(items: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in items)


def index_page(view: IndexView) -> str:
    """The index as an HTML page (every value escaped)."""
    links = "".join(
        f'<li><a href="{escape(path)}">{escape(path)}</a> {escape(what)}</li>'
        for key, path, what in LINKS
        if key in view.links
    )
    channels = "".join(
        "<tr>"
        f"<td>{escape(c.name)}</td><td>{escape(c.platform)}</td>"
        f"<td>{'main' if c.main else 'region'}</td>"
        f"<td>{escape(', '.join(f'{k} → {v}' for k, v in c.regions.items()))}</td>"
        f"<td>{escape(c.team_id or '')}</td>"
        "</tr>"
        for c in view.channels
    )
    bots = ", ".join(f"{b.name} ({b.platform})" for b in view.bots) or "webhook only"
    desk = view.desk
    example = desk.agents[0] if desk.agents else "{agent_id}"
    curl = f"curl -s {view.public_url}/v1/agents/{example}/desk_link"
    if desk.agents is None:
        curl += ' -H "Authorization: Bearer $BRIDGE_SECURITY__ADMIN_TOKEN"'
    summary = _rows(
        [
            ("database", view.database),
            ("public URL", view.public_url),
            ("default channel", view.default_channel or ""),
            ("bot platforms", bots),
            ("handoffs", view.api.handoff),
            ("bot-side credential", view.api.bot_credential),
        ]
    )
    agent_line = (
        f"<p>Agents in the config: {escape(', '.join(desk.agents) or 'none')}.</p>"
        if desk.agents is not None
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>handoff bridge</title></head>
<body>
<h1>handoff bridge {escape(view.version)}</h1>
<table>{summary}</table>
<h2>Links</h2>
<ul>{links}</ul>
<h2>Agent desk</h2>
<p>{escape(desk.how)}. Credential: {escape(desk.credential)}.</p>
{agent_line}<pre>{escape(curl)}</pre>
<h2>Channels</h2>
<table><tr><th>channel</th><th>platform</th><th>kind</th><th>regions</th><th>team</th></tr>
{channels}</table>
</body>
</html>
"""


@routes.get("/")
@doc(
    "What runs here, with links to the docs, health and the desk",
    answers={
        200: Answer(
            IndexView, "HTML for a browser, JSON otherwise.", ("application/json", "text/html")
        )
    },
)
async def index(request: web.Request) -> web.Response:
    """What runs here, and links to the docs, health and the desk."""
    view = index_view(request.app[SETTINGS], _served_paths(request.app))
    if wants_html(request.headers.get("Accept", "")):
        return web.Response(text=index_page(view), content_type="text/html", headers=PAGE_HEADERS)
    return web.json_response(view.model_dump(mode="json"), headers=PAGE_HEADERS)
