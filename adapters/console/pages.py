"""What the console's pages share: their static files and the headers every page is sent with."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

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


def forbidden_page() -> web.FileResponse:
    """The 403 "link not valid" page, for a join or desk link that is tampered or expired."""
    return web.FileResponse(STATIC / "forbidden.html", status=403, headers=PAGE_HEADERS)


def html_page(name: str) -> web.FileResponse:
    """One of the console's HTML pages, with the page headers."""
    return web.FileResponse(STATIC / name, headers=PAGE_HEADERS)
