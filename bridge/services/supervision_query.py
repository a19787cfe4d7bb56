"""What a supervisor may ask for: the filters of a conversation list and of the queue,
and the opaque cursor that pages a list.

The cursor is the last row's place in the list's order, `(created_at, id)`, with the
order it was made for; it grants nothing (every page is scoped and filtered again), so
it is encoded, not signed. Anything that does not decode is a 422 naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bridge.db.repo.supervision import Keyset
from bridge.db.tables import ConversationRow
from bridge.domain.status import Status
from bridge.errors import FieldProblem, InvalidInput

Order = Literal["created_at", "-created_at"]
# Ten years: longer waits are not waits, and the subtraction stays in range.
MAX_WAIT_SECONDS = 10 * 365 * 86_400
MAX_PAGE = 200
MAX_QUEUE_HEAD = 500

Name = Annotated[str, Field(min_length=1, max_length=128)]


def _utc(moment: datetime | None) -> datetime | None:
    # As elsewhere in the API, a time without an offset is UTC.
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as exc:  # the first or last day of the calendar, shifted past it
        raise ValueError("is out of range") from exc


class ConversationQuery(BaseModel):
    """The filters and page of `GET /v1/conversations`."""

    model_config = ConfigDict(extra="forbid")

    status: list[Status] = Field(default_factory=list, max_length=len(Status))
    channel: Name | None = None
    team: Name | None = None
    agent: Name | None = None
    waiting_longer_than: int | None = Field(default=None, ge=0, le=MAX_WAIT_SECONDS)
    created_from: datetime | None = None
    created_to: datetime | None = None
    order: Order = "created_at"
    cursor: str | None = Field(default=None, min_length=1, max_length=512)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    organization_id: Name | None = None

    @field_validator("created_from", "created_to", mode="before")
    @classmethod
    def _iso_8601(cls, given: object) -> object:
        # Only ISO 8601 text, as documented: not a number read as a Unix time.
        if given is None or isinstance(given, datetime):
            return given
        if not isinstance(given, str):
            raise ValueError("must be an ISO 8601 date and time")
        try:
            return datetime.fromisoformat(given)
        except ValueError as exc:
            raise ValueError("must be an ISO 8601 date and time") from exc

    @field_validator("created_from")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        return _utc(moment)

    @field_validator("created_to")
    @classmethod
    def _after_the_start(cls, moment: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("created_from")
        moment = _utc(moment)
        if moment is not None and start is not None and moment < start:
            raise ValueError("must not be before created_from")
        return moment


class QueueQuery(BaseModel):
    """The scope of `GET /v1/queue`: one channel or all, and how many chats of each."""

    model_config = ConfigDict(extra="forbid")

    channel: Name | None = None
    limit: int = Field(default=50, ge=1, le=MAX_QUEUE_HEAD)
    organization_id: Name | None = None


def cursor_of(row: ConversationRow, order: Order) -> str:
    """The cursor of the page after `row`."""
    raw = json.dumps([order, row.created_at.isoformat(), row.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _not_a_cursor(problem: str = "is not a cursor this list gave") -> InvalidInput:
    return InvalidInput("the cursor is not valid", [FieldProblem("cursor", problem)])


def read_cursor(cursor: str | None, order: Order) -> Keyset | None:
    """Where the page of `cursor` starts; None for the first page."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, created_at, row_id = json.loads(raw)
        moment = _utc(datetime.fromisoformat(created_at))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise _not_a_cursor() from exc
    if not isinstance(row_id, str) or not 1 <= len(row_id) <= 36 or moment is None:
        raise _not_a_cursor()
    if made_for != order:
        raise _not_a_cursor(f"was made for order {made_for!r}; ask again without it")
    return Keyset(moment, row_id)
