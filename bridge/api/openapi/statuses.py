"""Which error statuses a route may answer: its own, and those its middleware adds.

The middlewares answer for every route (bridge/app.py): a parameter or header the bridge
cannot take (422), a body that is too slow, too large, not JSON or not an object (408,
413, 415, 400), a store that is down (503), and each credential's refusals (401, 403).
"""

from __future__ import annotations

from bridge.api.openapi.operation import Access, Operation

WHY = {
    400: "The body is not a JSON object or breaks a client input limit (named in `fields`).",
    401: "A missing or wrong credential.",
    403: "The credential does not reach this resource, or the link expired or was tampered.",
    404: "Unknown (or another organization's) resource.",
    408: "The body did not arrive within the server's body timeout.",
    409: "The resource's state forbids it, or a value duplicates a stored one.",
    413: "The body is larger than `server.max_body_bytes`.",
    415: "The body is not `application/json`.",
    422: "A missing or wrong field, path or query parameter or header, named in `fields`.",
    503: "The store is unavailable; nothing was stored. Retry after `Retry-After` seconds.",
}

_BY_ACCESS: dict[Access, tuple[int, ...]] = {
    Access.BOT: (401,),
    Access.BOT_OR_OPERATOR: (401, 403),
    Access.ADMIN: (401,),
    Access.DIRECTORY: (401, 403),
    Access.ORGANIZATION: (401, 403),
    # 403 while no integration secret is configured.
    Access.SIGNED: (401, 403),
    Access.PLATFORM: (401,),
    Access.LINK: (403,),
    Access.PUBLIC: (),
}


def error_statuses(operation: Operation, has_body: bool) -> dict[int, str]:
    """Each error status the route may answer, with why, in order."""
    statuses = {422, 503, *_BY_ACCESS[operation.access], *operation.errors}
    if has_body:
        statuses |= {400, 408, 413, 415}
    return {status: WHY.get(status, "See the error's message.") for status in sorted(statuses)}
