"""What the Jivo bot side asks of the bridge, and its memory of recent Jivo events."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, runtime_checkable

from adapters.base import BotGateway
from adapters.jivochat.wire import dumps
from bridge.models import AgentMessageRequest

# Jivo redelivers within seconds (3 s timeout, 2 retries): a short memory is enough.
RECENT_EVENTS = 64


@runtime_checkable
class JivoGateway(BotGateway, Protocol):
    """The gateway calls this adapter needs beyond BotGateway (HandoffService has them)."""

    async def notify_bot(
        self,
        bot: str,
        bot_conversation_id: str,
        target: str,
        event_type: str,
        data: dict[str, Any],
    ) -> None: ...

    async def put_state(self, adapter: str, key: str, value: str) -> None: ...

    async def get_state(self, adapter: str, key: str) -> str | None: ...

    async def agent_joined(self, conversation_id: str, name: str) -> Any: ...

    async def agent_message(
        self, conversation_id: str, request: AgentMessageRequest, author: str | None
    ) -> Any: ...


class RecentEvents:
    """The last event ids of one chat, kept in adapter state to drop Jivo's redeliveries.

    Read, apply, then record: a crash in between means the event is applied again on
    redelivery (at least once), never lost. Two copies racing each other could both
    pass the check; Jivo only redelivers after its 3-second timeout, and the handoff
    calls are idempotent on their own.
    """

    def __init__(self, gateway: JivoGateway, adapter: str, chat_id: str) -> None:
        self._gateway = gateway
        self._adapter = adapter
        # State keys are short; a chat id normally is too, but it is not ours to trust.
        digest = chat_id if len(chat_id) <= 64 else hashlib.sha256(chat_id.encode()).hexdigest()
        self._key = f"seen:{digest}"

    async def _load(self) -> list[str]:
        raw = await self._gateway.get_state(self._adapter, self._key)
        loaded = json.loads(raw) if raw else []
        return [str(item) for item in loaded] if isinstance(loaded, list) else []

    async def seen(self, event_id: str) -> bool:
        """Whether this event was applied before."""
        return event_id in await self._load()

    async def remember(self, event_id: str) -> None:
        """Record the event as applied."""
        recent = [item for item in await self._load() if item != event_id]
        recent.append(event_id)
        await self._gateway.put_state(self._adapter, self._key, dumps(recent[-RECENT_EVENTS:]))
