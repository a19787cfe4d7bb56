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
def _policy(images: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            f"img-src {images}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = _policy("'self'")
# The conversation page shows the images customers and agents attach, which live anywhere
# on the web: images (only) may load from any https origin. An image cannot run script,
# and the page's no-referrer policy keeps the token out of those requests; plain http
# images are shown as links instead.
CHAT_CONTENT_SECURITY_POLICY = _policy("'self' https:")


def _headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


PAGE_HEADERS = _headers(CONTENT_SECURITY_POLICY)
CHAT_PAGE_HEADERS = _headers(CHAT_CONTENT_SECURITY_POLICY)


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


def html_page(name: str, headers: dict[str, str] = PAGE_HEADERS) -> web.FileResponse:
    """One of the console's HTML pages, with the page headers."""
    return web.FileResponse(STATIC / name, headers=headers)
