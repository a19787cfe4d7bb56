"""What every outbox job is: a typed value stored as an outbox row's kind string and JSON.

A job is what the bridge must do once a transaction commits. The caller writes it as an
outbox row (`to_row`) in its own transaction; the worker reads it back (`from_row`) and
hands it to the job's handler (see bridge/relay/handlers.py).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from bridge import tracing
from bridge.db.tables import OutboxRow
from bridge.errors import PlatformRejected

Side = Literal["agent", "bot"]


class DeliveryStatus(StrEnum):
    """Where an outbox row stands; stored as its value."""

    # Waiting for its time or its turn in the lane, or leased by a worker right now.
    PENDING = "pending"
    DELIVERED = "delivered"
    # Refused, or out of attempts: it stays for an operator to retry.
    DEAD = "dead"
    # Dropped unsent: its conversation failed to open, or its subscriber was deleted.
    CANCELLED = "cancelled"


def lane(conversation_id: str, side: Side) -> str:
    """Deliveries to one side of one conversation go out in order: this names that line."""
    return f"{conversation_id}:{side}"


_TYPES: dict[str, type[Job]] = {}


def conversation_of(row: OutboxRow) -> str:
    """The conversation of a row whose job is about one."""
    if row.conversation_id is None:
        raise KeyError("conversation_id")
    return row.conversation_id


def job_types() -> tuple[type[Job], ...]:
    """Every kind of job there is."""
    return tuple(_TYPES.values())


@dataclass(frozen=True, slots=True)
class Place:
    """Where a job's row stands: its lane (one in flight at a time), conversation, target."""

    lane: str
    conversation_id: str | None
    target: str


class Job(ABC):
    """One kind of outbox row, typed; `kind` is the string stored in the row."""

    __slots__ = ()
    kind: ClassVar[str]
    # The idempotency key's prefix: deliveries send theirs as webhook-id.
    key_prefix: ClassVar[str] = "msg_"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is None:
            return
        known = _TYPES.get(kind)
        # A slotted dataclass is made again under the same name: that one replaces it.
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"{cls.__qualname__} and {known.__qualname__} are both {kind!r}")
        _TYPES[kind] = cls

    @abstractmethod
    def place(self) -> Place:
        """The row's lane, conversation and target."""

    @abstractmethod
    def payload(self) -> dict[str, Any]:
        """The row's JSON payload."""

    @classmethod
    @abstractmethod
    def read(cls, row: OutboxRow) -> Self:
        """The job a row of this kind holds (KeyError or ValueError when it holds none)."""

    def to_row(self, now: datetime, *, due: datetime | None = None) -> OutboxRow:
        """The outbox row that keeps this job until it is done (at `due`, else at once)."""
        return OutboxRow(**self.values(now, due=due))

    def values(self, now: datetime, *, due: datetime | None = None) -> dict[str, Any]:
        """The outbox row's column values (for a statement that inserts it directly)."""
        place = self.place()
        return {
            "lane": place.lane,
            "conversation_id": place.conversation_id,
            "kind": self.kind,
            "target": place.target,
            "idempotency_key": self.key_prefix + uuid.uuid4().hex,
            "payload": self.payload(),
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": due or now,
            "created_at": now,
            # The request (or delivery) that caused it: its delivery continues that trace.
            "traceparent": tracing.current_traceparent(),
        }

    @classmethod
    def from_row(cls, row: OutboxRow) -> Self:
        """The job in a row of this kind; PlatformRejected when its payload is not readable."""
        if row.kind != cls.kind:
            raise PlatformRejected(f"a {row.kind!r} row holds no {cls.kind!r} job")
        try:
            return cls.read(row)
        except KeyError as exc:
            # Retrying cannot add what the stored payload lacks.
            raise PlatformRejected(f"the {row.kind} payload has no {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise PlatformRejected(
                f"the {row.kind} payload cannot be read ({type(exc).__name__})"
            ) from exc
