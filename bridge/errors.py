"""One exception tree for the bridge; the API middleware maps it to HTTP.

BridgeError
├── ConfigError (also ValueError)     bad settings; the service refuses to start
├── DestinationRefused (also OSError) the outbound policy refuses every address of a host
├── RequestError                      the client sent something wrong (4xx)
│   ├── MalformedJSON          400
│   ├── UnsupportedMediaType   415
│   ├── InvalidInput           422    names each field and its problem
│   ├── Unauthorized           401
│   ├── Forbidden              403
│   ├── NotFound               404
│   │   └── ConversationNotFound
│   ├── RequestTimeout         408    the body arrived too slowly
│   └── Conflict               409    the resource is in the wrong state
│       └── InvalidTransition          (a conversation's state)
└── PlatformError                     an outbound call to a platform or bot failed
    ├── PlatformUnavailable           5xx, 429, timeout, connection error: retry later
    └── PlatformRejected              any other 4xx: do not retry
        └── PlatformAuthError         401/403 from the platform
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one field of a request, as `field` (dotted path) and `problem`."""

    field: str
    problem: str


def field_path(location: Iterable[int | str], prefix: str = "") -> str:
    """A validation error's location as a field path after `prefix`, e.g. `steps[0].value`."""
    path = prefix
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose."""


class ConfigError(BridgeError, ValueError):
    """The configuration is invalid; the message names the setting."""


class DestinationRefused(BridgeError, OSError):
    """Every address a host resolves to is refused by the outbound URL policy.

    An OSError, so aiohttp's connector reports it as the connection error it is.
    """

    def __init__(self, host: str) -> None:
        super().__init__(f"{host}: every address is refused by the outbound policy")
        self.host = host


class RequestError(BridgeError):
    """A client sent something the bridge cannot accept."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, fields: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []


class MalformedJSON(RequestError):
    """The body is not valid JSON (or not a JSON object)."""

    status = 400
    code = "malformed_json"


class MalformedPayload(RequestError):
    """A platform's webhook does not have the documented shape."""

    status = 400
    code = "malformed_payload"


class UnsupportedMediaType(RequestError):
    """The body is not `application/json`."""

    status = 415
    code = "unsupported_media_type"


class InvalidInput(RequestError):
    """Fields are missing or have the wrong type or value."""

    status = 422
    code = "invalid_input"


class Unauthorized(RequestError):
    """Credentials are missing or wrong."""

    status = 401
    code = "unauthorized"


class InvalidSignature(Unauthorized):
    """An inbound webhook's signature, token or secret does not match."""

    code = "invalid_signature"


class Forbidden(RequestError):
    """The credentials are valid but do not reach this resource (or a link expired)."""

    status = 403
    code = "forbidden"


class NotFound(RequestError):
    """The resource does not exist."""

    status = 404
    code = "not_found"


class RequestTimeout(RequestError):
    """The body did not arrive within the server's body timeout."""

    status = 408
    code = "request_timeout"


class ConversationNotFound(NotFound):
    """No conversation has that id."""

    code = "conversation_not_found"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"conversation {conversation_id!r} does not exist",
            [FieldProblem("conversation_id", "unknown conversation")],
        )


class Conflict(RequestError):
    """The resource's state does not allow the request."""

    status = 409
    code = "invalid_state"


class InvalidTransition(Conflict):
    """The conversation's state does not allow the request."""

    def __init__(self, conversation_id: str, status: str, action: str) -> None:
        super().__init__(
            f"cannot {action} conversation {conversation_id!r}: it is {status}",
            [FieldProblem("status", f"is {status}; {action} is not allowed")],
        )
        self.current_status = status


class PlatformError(BridgeError):
    """An outbound call failed; `retryable` tells the relay what to do next."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PlatformUnavailable(PlatformError):
    """A transient failure: 5xx, 429, timeout or connection error. Retry later."""

    retryable = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PlatformRejected(PlatformError):
    """The receiver refused the call (a 4xx other than 429). Retrying would not help."""


class PlatformAuthError(PlatformRejected):
    """The receiver refused our credentials (401 or 403)."""
