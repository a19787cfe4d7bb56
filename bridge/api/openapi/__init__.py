"""The API document: each route declares itself; `/openapi.json` and `/docs` serve the result.

operation.py   what a handler declares (Operations, Access, Answer)
answers.py     the bot side's and the operator's answers as models
directory.py   the directory's, the routers API's and the console's answers as models
document.py    the OpenAPI 3.1 document, built from the router and the declarations
security.py    the security schemes and which routes take which
statuses.py    the error statuses every route may answer
page.py        GET /openapi.json, GET /docs and the page's files
"""

from bridge.api.openapi.document import build_document, undocumented
from bridge.api.openapi.operation import Access, Answer, Operations
from bridge.api.openapi.page import setup

__all__ = [
    "Access",
    "Answer",
    "Operations",
    "build_document",
    "setup",
    "undocumented",
]
