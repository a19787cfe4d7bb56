"""The polling cursor: what the last poll saw of each open Chatvisor customer.

The customer list (`GET /rest/v1/customer`) has no "changed since" filter and its
entries carry no documented change time, so a poll compares each entry with what the
previous poll saw instead of trusting clocks. The cursor keeps, for every customer not
DONE, its status and last message id:

- a last message id that differs from the remembered one, written by an agent, is a
  new agent.message (its id is the platform's message id, so applying it twice, or after
  the same message came by webhook, stores it once);
- a remembered customer now DONE is a conversation.closed, and is then forgotten;
- a customer already DONE when first seen is not news: it may be a chat that ended long
  before the current handoff, and closing the handoff on it would be wrong.

The first poll (no cursor) only takes this baseline, so history that predates polling
is never replayed into a new conversation. Entries missing from several complete scans
in a row are forgotten, which keeps the cursor as small as the set of open chats. A
cursor that cannot be read starts a new baseline rather than failing every poll.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from adapters.chatvisor.wire import DONE, CustomerState
from bridge.ports.agent_side import InboundEvent

log = logging.getLogger(__name__)

VERSION = 1
# Complete scans a remembered customer may be missing from before it is forgotten:
# entries shift between pages while a scan runs, so one miss proves nothing.
FORGET_AFTER_MISSES = 3
# A bound on the cursor's size, whatever the platform returns.
MAX_TRACKED = 10_000


@dataclass
class Tracked:
    """What the last poll saw of one open customer."""

    status: str
    last_message_id: str | None
    misses: int = 0


@dataclass
class PollCursor:
    """The remembered open customers; `fresh` until a first baseline has been taken."""

    fresh: bool = True
    open: dict[str, Tracked] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: str | None) -> PollCursor:
        """The cursor from its stored form; a new baseline when absent or unreadable."""
        if raw is None:
            return cls()
        try:
            data = json.loads(raw)
            if data.get("v") != VERSION:
                raise ValueError(f"unknown cursor version {data.get('v')!r}")
            tracked = {
                str(cid): Tracked(str(entry[0]), entry[1], int(entry[2]))
                for cid, entry in data["open"].items()
            }
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            log.warning("chatvisor.cursor_reset", extra={"why": str(exc)})
            return cls()
        return cls(fresh=False, open=tracked)

    def dump(self) -> str:
        """The stored form: compact JSON, stable for equal content."""
        entries = {cid: [t.status, t.last_message_id, t.misses] for cid, t in self.open.items()}
        return json.dumps({"v": VERSION, "open": entries}, separators=(",", ":"))

    def advance(self, customers: Iterable[CustomerState], complete: bool) -> list[InboundEvent]:
        """The events that the change from the remembered state to `customers` means."""
        events: list[InboundEvent] = []
        seen: set[str] = set()
        for customer in customers:
            seen.add(customer.customer_id)
            known = self.open.get(customer.customer_id)
            if not self.fresh:
                events.extend(self._news(customer, known))
            if customer.status == DONE:
                self.open.pop(customer.customer_id, None)
            else:
                self.open[customer.customer_id] = Tracked(customer.status, customer.last_message_id)
        if complete:
            self._count_misses(seen)
        while len(self.open) > MAX_TRACKED:
            # Dicts keep insertion order: the customer remembered longest goes first.
            self.open.pop(next(iter(self.open)))
        self.fresh = False
        return events

    @staticmethod
    def _news(customer: CustomerState, known: Tracked | None) -> list[InboundEvent]:
        news: list[InboundEvent] = []
        if known is None and customer.status == DONE:
            return news
        if customer.agent_message is not None and (
            known is None or known.last_message_id != customer.last_message_id
        ):
            news.append(customer.agent_message)
        if customer.closed is not None:
            news.append(customer.closed)
        return news

    def _count_misses(self, seen: set[str]) -> None:
        for cid in list(self.open):
            if cid in seen:
                continue
            self.open[cid].misses += 1
            if self.open[cid].misses >= FORGET_AFTER_MISSES:
                del self.open[cid]
