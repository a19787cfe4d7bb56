"""Wakes the live pages (the console's) watching a conversation when something in it changes.

The core wakes it when a customer or its metadata change; the console adapter when a
delivery reaches it.

The pages read what changed from the database, so a wake-up carries no data and a
missed one costs only latency: each stream also re-reads on a short timer, which is
how a change made on another replica reaches it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class ConsoleHub:
    """Per-conversation wake-up events for live console streams."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self.closing = asyncio.Event()

    def wake(self, conversation_id: str) -> None:
        """Wake every stream watching this conversation."""
        for event in self._waiters.get(conversation_id, ()):
            event.set()

    def subscribe(self, conversation_id: str) -> asyncio.Event:
        """An event that is set when this conversation changes; unsubscribe when done."""
        event = asyncio.Event()
        self._waiters[conversation_id].add(event)
        return event

    def unsubscribe(self, conversation_id: str, event: asyncio.Event) -> None:
        """Stop watching."""
        waiters = self._waiters.get(conversation_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[conversation_id]

    def shutdown(self) -> None:
        """Tell every stream to finish, so the server can stop promptly."""
        self.closing.set()
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()
