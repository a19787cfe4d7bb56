"""Wake-ups across the replicas of one bridge: new deliveries, and conversations that changed.

A wake-up carries no data: whoever is woken reads what changed from the store, so a
missed one costs only latency (every reader also looks again on a slow timer). The
composition root picks the implementation: `LocalWake` for one process (SQLite), or
PostgreSQL `LISTEN/NOTIFY` (bridge/db/notify.py) when replicas share a database.

Deliveries are announced by the store itself in the ORM's transactions (the wake-up is
sent exactly when they commit), and, for the message path, after the commit through the
bus (`outbox_changed`), coalesced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# Called with a conversation's id, or with None when anything may have changed (a
# listener that reconnected cannot know what it missed).
ConversationListener = Callable[[str | None], None]


class WakeBus(Protocol):
    """Delivers wake-ups from every replica to this one's relay worker and live pages."""

    def on_outbox(self, listener: Callable[[], None]) -> None:
        """Call `listener` when any replica committed deliveries."""

    def on_conversation(self, listener: ConversationListener) -> None:
        """Call `listener` when any replica said a conversation changed."""

    def conversation_changed(self, conversation_id: str) -> None:
        """Tell the other replicas (never blocks; sent in the background)."""

    def outbox_changed(self) -> None:
        """Tell the other replicas that deliveries were committed (never blocks; wake-ups
        asked for while one is being sent go out as one)."""

    async def start(self) -> None:
        """Begin listening."""

    async def stop(self) -> None:
        """Stop listening and give back what it holds."""


class LocalWake:
    """One process: the in-process wake-ups after each commit are all there is."""

    def on_outbox(self, listener: Callable[[], None]) -> None:
        """Nothing to add: the services wake this process's worker after their commits."""

    def on_conversation(self, listener: ConversationListener) -> None:
        """Nothing to add: the live pages are woken in process."""

    def conversation_changed(self, conversation_id: str) -> None:
        """There is no other replica to tell."""

    def outbox_changed(self) -> None:
        """There is no other replica to tell."""

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""
