"""Wakes the live pages (the console's) watching a conversation when something in it changes.

The core wakes it when a customer or its metadata change; the console adapter when a
delivery reaches it.

The pages read what changed from the database, so a wake-up carries no data and a
missed one costs only latency: each stream also re-reads on a slow timer. A wake-up is
also passed to the other replicas (the wake bus, `broadcast`), whose bus calls
`wake_local` here, so a change made on another replica reaches the page at once.

A supervisor's page watches every conversation: it is woken by every conversation's
wake-up, and by `anything_changed` (a queue changed here, or any replica committed
deliveries), which covers changes to chats no console page shows.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable


class ConsoleHub:
    """Per-conversation wake-up events for live console streams."""

    def __init__(self, broadcast: Callable[[str], None] | None = None) -> None:
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._everything: set[asyncio.Event] = set()
        self._broadcast = broadcast
        self.closing = asyncio.Event()

    def wake(self, conversation_id: str) -> None:
        """Wake every stream watching this conversation, on this replica and the others."""
        self.wake_local(conversation_id)
        if self._broadcast is not None:
            self._broadcast(conversation_id)

    def wake_local(self, conversation_id: str | None) -> None:
        """Wake this replica's streams of one conversation (None: every stream)."""
        if conversation_id is None:
            waiters = [event for events in self._waiters.values() for event in events]
        else:
            waiters = list(self._waiters.get(conversation_id, ()))
        for event in [*waiters, *self._everything]:
            event.set()

    def anything_changed(self) -> None:
        """Wake this replica's streams that watch every conversation."""
        for event in self._everything:
            event.set()

    def watch_everything(self) -> asyncio.Event:
        """An event that is set when any conversation may have changed; unwatch when done."""
        event = asyncio.Event()
        self._everything.add(event)
        return event

    def unwatch_everything(self, event: asyncio.Event) -> None:
        """Stop watching every conversation."""
        self._everything.discard(event)

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
        self.anything_changed()
