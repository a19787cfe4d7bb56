"""`GET /openapi.json` and the `/docs` page, both public like the health checks.

The page is Swagger UI, served from the `swagger-ui-bundle-v2` package's files and this
package's own, never from a CDN, so it works with no network; its policy lets it load
nothing from anywhere else.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from aiohttp import web

from bridge.api.openapi.document import build_document
from bridge.api.openapi.operation import Access, Answer, Operations

OWN = Path(str(resources.files("bridge.api.openapi") / "static"))
SWAGGER_UI = Path(str(swagger_ui_bundle.swagger_ui_path))

# The only files /docs/{asset} serves: Swagger UI's script and style, and ours.
ASSETS = {
    "swagger-ui-bundle.js": SWAGGER_UI / "swagger-ui-bundle.js",
    "swagger-ui.css": SWAGGER_UI / "swagger-ui.css",
    "docs.js": OWN / "docs.js",
    "docs.css": OWN / "docs.css",
}

# Only this server's scripts, styles, images and document; no frames, forms or base URL.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
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
}

# Built on the first request: the router is complete by then and never changes after.
DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document", dict)

routes = web.RouteTableDef()
doc = Operations("API document", Access.PUBLIC)


@routes.get("/openapi.json")
@doc("This document (OpenAPI 3.1)", answers={200: Answer(None, "The OpenAPI document.")})
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document of every route this app serves."""
    cache = request.app[DOCUMENT]
    if not cache:
        cache.update(build_document(request.app))
    return web.json_response(cache)


@routes.get("/docs")
@doc(
    "The API docs page (Swagger UI)",
    answers={200: Answer(None, "The page.", media_types=("text/html",))},
)
async def docs_page(request: web.Request) -> web.FileResponse:
    """Swagger UI over /openapi.json, with everything it loads served from here."""
    return web.FileResponse(OWN / "docs.html", headers=PAGE_HEADERS)


@routes.get("/docs/{asset}")
@doc(
    "A script or style of the docs page",
    answers={200: Answer(None, "The file.", media_types=("text/javascript", "text/css"))},
    errors=(404,),
)
async def docs_asset(request: web.Request) -> web.FileResponse:
    """One of the page's own files; any other name is 404."""
    path = ASSETS.get(request.match_info["asset"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    """Serve the document and its page."""
    app[DOCUMENT] = {}
    app.add_routes(routes)
