"""The Jivo bot side's memory of recent Jivo events, kept in adapter state."""

from __future__ import annotations

import hashlib
import json

from adapters.jivochat.wire import dumps
from bridge.ports.context import StateStore

# Jivo redelivers within seconds (3 s timeout, 2 retries): a short memory is enough.
RECENT_EVENTS = 64


class RecentEvents:
    """The last event ids of one chat, kept in adapter state to drop Jivo's redeliveries.

    Read, apply, then record: a crash in between means the event is applied again on
    redelivery (at least once), never lost. Two copies racing each other could both
    pass the check; Jivo only redelivers after its 3-second timeout, and the handoff
    calls are idempotent on their own.
    """

    def __init__(self, state: StateStore, adapter: str, chat_id: str) -> None:
        self._state = state
        self._adapter = adapter
        # State keys are short; a chat id normally is too, but it is not ours to trust.
        digest = chat_id if len(chat_id) <= 64 else hashlib.sha256(chat_id.encode()).hexdigest()
        self._key = f"seen:{digest}"

    async def _load(self) -> list[str]:
        raw = await self._state.get_state(self._adapter, self._key)
        loaded = json.loads(raw) if raw else []
        return [str(item) for item in loaded] if isinstance(loaded, list) else []

    async def seen(self, event_id: str) -> bool:
        """Whether this event was applied before."""
        return event_id in await self._load()

    async def remember(self, event_id: str) -> None:
        """Record the event as applied."""
        recent = [item for item in await self._load() if item != event_id]
        recent.append(event_id)
        await self._state.put_state(self._adapter, self._key, dumps(recent[-RECENT_EVENTS:]))
