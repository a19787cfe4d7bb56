"""What the console's pages share: their static files and the headers every page is sent with."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from bridge.api.openapi import Access, Answer, Operations
from bridge.errors import FieldProblem, NotFound

STATIC = Path(str(resources.files("adapters.console") / "static"))

# The pages load only their own scripts and styles, talk only to their own origin, and
# may not be framed: a strict policy, so even markup slipped into a page cannot run. The
# token is in the URL: keep it out of caches and out of the Referer of any link followed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# The files /console/static/{filename} serves: what the package ships, and nothing else.
# A handler rather than aiohttp's static route, so a missing file is the JSON 404 every
# other unknown resource gets (the static route's 404 has no body).
STATIC_FILES = {path.name: path for path in STATIC.iterdir() if path.is_file()}

static_routes = web.RouteTableDef()


@static_routes.get("/console/static/{filename}")
@Operations("Console", Access.PUBLIC)(
    "The console pages' scripts, styles and pages",
    answers={
        200: Answer(None, "The file.", media_types=("text/javascript", "text/css", "text/html"))
    },
    errors=(404,),
)
async def static_file(request: web.Request) -> web.FileResponse:
    """One of the console's own files; any other name is 404."""
    path = STATIC_FILES.get(request.match_info["filename"])
    if path is None:
        raise NotFound("no such file", [FieldProblem("filename", "unknown file")])
    return web.FileResponse(path)


def forbidden_page() -> web.FileResponse:
    """The 403 "link not valid" page, for a join or desk link that is tampered or expired."""
    return web.FileResponse(STATIC / "forbidden.html", status=403, headers=PAGE_HEADERS)


def html_page(name: str) -> web.FileResponse:
    """One of the console's HTML pages, with the page headers."""
    return web.FileResponse(STATIC / name, headers=PAGE_HEADERS)
